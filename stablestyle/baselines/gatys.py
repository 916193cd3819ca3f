"""Per-frame optimisation: Gatys, Ecker, Bethge, "Image Style Transfer Using CNNs", CVPR 2016.

Each frame is stylised independently by minimising (Gatys et al., Eq. 7, plus
a total-variation regulariser as in Johnson et al. 2016)

    L(x) = w_c L_content(x, frame) + w_s L_style(x, style) + w_tv L_tv(x)

over the pixels ``x`` with L-BFGS (or Adam), starting from the frame (default),
noise, or the previous result warped by the flow (``init="prev-warped"``:
Ruder et al.'s initialisation without their temporal loss).  The terms and
their normalisation are in :mod:`stablestyle.baselines.objective`.  Nothing
ties consecutive frames together, so small changes in the input are
amplified into flicker: the instability that Gupta et al. 2017 (Sec. 3)
analyse.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

import numpy as np
import torch

from .engine import optimize_clip
from .options import OptimOptions
from .registry import register_method

__all__ = ["stylize_gatys"]


@register_method("gatys")
def stylize_gatys(frames: Iterable[np.ndarray], style: np.ndarray, *, options: OptimOptions | None = None,
                  device: torch.device | str | None = None, quiet: bool = False) -> Iterator[np.ndarray]:
    """Stylise ``frames`` one at a time by Gatys et al.'s optimisation.

    Args:
        frames: ``uint8 (H, W, 3)`` RGB frames of one size (any iterable; read lazily).
        style: ``uint8 (H, W, 3)`` RGB style image.
        options: :class:`OptimOptions` (``None`` = defaults; ``init`` defaults to ``"content"``).
        device: device of the optimisation (``None`` = CPU).
        quiet: no progress bars.

    Returns:
        A generator of ``uint8 (H, W, 3)`` results at each input frame's size,
        each yielded as soon as it is optimised.  Options and the style image
        are checked on the call (:class:`~stablestyle.errors.UserError`), frames
        as they arrive.
    """
    return optimize_clip(frames, style, options=options or OptimOptions(), device=device, quiet=quiet,
                         temporal=False, default_init="content", name="gatys")
