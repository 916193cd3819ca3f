"""Optimisation baselines for video style transfer, as compared in Gupta et al. 2017 (Sec. 6).

* ``gatys``: per-frame optimisation (Gatys, Ecker, Bethge, CVPR 2016), :mod:`.gatys`;
* ``ruder``: optimisation with the flow-warped previous result as initialisation
  and a masked temporal loss, optionally long-term (Ruder, Dosovitskiy, Brox,
  GCPR 2016), :mod:`.ruder`;
* ``ruder-long``: the same with the long-term temporal loss (Eq. 9-10).

Every method has the signature ``(frames, style, *, options, device, quiet=False)
-> Iterator[uint8 (H, W, 3)]``: ``frames`` an iterable of ``uint8 (H, W, 3)``
RGB frames, ``style`` one such image, ``options`` an :class:`OptimOptions`;
results stream out one per frame at the input size.  Look methods up with
:func:`get_method` (unknown names raise :class:`~stablestyle.errors.UserError`
listing the valid ones)::

    from stablestyle.baselines import OptimOptions, get_method
    for out in get_method("ruder")(frames, style, options=OptimOptions(size=256), device="cpu"):
        sink.write(out)
"""

from .options import OptimOptions, default_weights
from .registry import OPTIMIZATION_METHODS, get_method, register_method
from .gatys import stylize_gatys  # noqa: E402  (registers "gatys")
from .ruder import stylize_ruder, stylize_ruder_long  # noqa: E402  (registers "ruder", "ruder-long")
from .temporal import long_term_masks

__all__ = [
    "OPTIMIZATION_METHODS",
    "OptimOptions",
    "default_weights",
    "get_method",
    "long_term_masks",
    "register_method",
    "stylize_gatys",
    "stylize_ruder",
    "stylize_ruder_long",
]
