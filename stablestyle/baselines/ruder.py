"""Temporally consistent optimisation: Ruder, Dosovitskiy, Brox, "Artistic Style Transfer for Videos", GCPR 2016.

Frame ``i`` (``x^(i)`` its result, ``p^(i)`` its input) minimises (Ruder et al., Eq. 8 / 10)

    L(x) = w_c L_content(x, p^(i)) + w_s L_style(x, a) + w_tv L_tv(x) + w_t L_temporal(x)

* short-term (Eq. 7): ``L_temporal = (1/D) sum_k c_k (x_k - w_k)^2`` with
  ``w = backward_warp(x^(i-1), flow_bw)``, ``flow_bw = estimate_flow(p^(i), p^(i-1))``,
  ``c = reliability_mask(flow_bw, flow_fw)``, ``flow_fw = estimate_flow(p^(i-1), p^(i))``
  (Eq. 5-6: forward-backward consistency, motion boundaries, in-bounds);
  ``D = 3 H W``, :func:`stablestyle.losses.temporal_loss`;
* long-term (``options.long_term``, Eq. 9-10): the sum of that term over the
  results of frames ``i - j``, ``j`` in ``J = options.long_term_offsets``
  (default ``{1, 2, 4}``), warped with ``estimate_flow(p^(i), p^(i-j))``, with
  the masks ``c_long^(i-j) = max(c^(i-j) - sum_{k in J, k < j} c^(i-k), 0)``
  (:func:`~stablestyle.baselines.temporal.long_term_masks`).

Frame ``i`` starts from ``w`` (``init="prev-warped"``, the default here; the
first frame from the content), which alone removes much of the flicker; the
temporal term keeps the reliable pixels there.  Flow comes from DIS
(``flow_method="dis"``, fast) or DeepFlow (``"deepflow"``, Ruder et al.'s
choice), estimated on the input frames at the working size.  Departures from
Ruder et al.: no multi-pass algorithm (Sec. 3.4); strips that enter the
image (flow leaving the image) start from the content frame instead of black;
content / style normalised as in :mod:`stablestyle.baselines.objective`.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import replace

import numpy as np
import torch

from .engine import optimize_clip
from .options import OptimOptions
from .registry import register_method

__all__ = ["stylize_ruder", "stylize_ruder_long"]


@register_method("ruder")
def stylize_ruder(frames: Iterable[np.ndarray], style: np.ndarray, *, options: OptimOptions | None = None,
                  device: torch.device | str | None = None, quiet: bool = False) -> Iterator[np.ndarray]:
    """Stylise ``frames`` one at a time by Ruder et al.'s temporally constrained optimisation.

    Args:
        frames: ``uint8 (H, W, 3)`` RGB frames of one size (any iterable; read lazily).
        style: ``uint8 (H, W, 3)`` RGB style image.
        options: :class:`OptimOptions` (``None`` = defaults; ``init`` defaults to
            ``"prev-warped"``; ``long_term`` / ``long_term_offsets`` choose
            Eq. 7 or Eq. 9; ``weights.temporal`` is ``w_t``).
        device: device of the optimisation (``None`` = CPU).
        quiet: no progress bars.

    Returns:
        A generator of ``uint8 (H, W, 3)`` results at each input frame's size,
        each yielded as soon as it is optimised; only the last ``max(J)``
        inputs and results are kept.  Options and the style image are checked
        on the call (:class:`~stablestyle.errors.UserError`), frames as they arrive.
    """
    return optimize_clip(frames, style, options=options or OptimOptions(), device=device, quiet=quiet,
                         temporal=True, default_init="prev-warped", name="ruder")


@register_method("ruder-long")
def stylize_ruder_long(frames: Iterable[np.ndarray], style: np.ndarray, *, options: OptimOptions | None = None,
                       device: torch.device | str | None = None, quiet: bool = False) -> Iterator[np.ndarray]:
    """:func:`stylize_ruder` with the long-term temporal loss (Ruder et al. 2016, Eq. 9-10).

    The temporal term covers the results of frames ``t - j`` for ``j`` in
    ``options.long_term_offsets`` (default 1, 2, 4), each masked where a
    nearer frame already constrains the pixel; the name under which
    ``stylize --method`` and ``evaluate --method`` reach it.
    """
    options = replace(options or OptimOptions(), long_term=True)
    return optimize_clip(frames, style, options=options, device=device, quiet=quiet,
                         temporal=True, default_init="prev-warped", name="ruder-long")
