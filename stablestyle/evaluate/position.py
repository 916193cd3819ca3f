"""Does a network paint by position? Flip tests for bands and stripes fixed to the frame's edges.

A style network should treat a patch the same wherever it sits in the frame:
turning the input upside down, stylizing it and turning the result back
should give (almost) the output of the upright input.  A net that learned a
position prior (e.g. the painting's sky always at the top, a stripe along
one edge) fails this where the prior acts, and only there.  So:

* :func:`flip_difference_profile`: ``|f(x) - flip(f(flip(x)))|`` averaged
  over everything but one axis: a profile over rows (``axis="rows"``,
  vertical flips) or columns (``axis="cols"``, horizontal flips);
* :func:`edge_excess`: that profile's mean over the frame's outer strips
  (each ``edge_fraction`` of the side, both ends) divided by its mean over
  the middle half.  About 1 for a net without a position prior (reflection
  padding leaves a little extra at the very edge); a band the net paints
  into every frame raises it well above.

Both are pure: ``stylize`` is any function ``(B, 3, H, W) -> (B, 3, H, W)``.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

__all__ = ["AXES", "flip_difference_profile", "edge_excess"]

#: ``rows``: vertical flips, a value per row; ``cols``: horizontal flips, a value per column.
AXES = {"rows": -2, "cols": -1}


@torch.no_grad()
def flip_difference_profile(stylize: Callable[[Tensor], Tensor], x: Tensor, axis: str = "rows") -> Tensor:
    """Mean ``|f(x) - flip(f(flip(x)))|`` per row or column.

    Args:
        stylize: ``(B, 3, H, W) -> (B, 3, H, W)``, values in ``[0, 1]``.
        x: ``(B, 3, H, W)`` inputs.
        axis: ``"rows"`` (flip upside down; profile of length ``H``) or
            ``"cols"`` (mirror left-right; length ``W``).

    Returns:
        ``(H,)`` or ``(W,)`` float32: mean absolute difference over batch,
        channels and the other axis.
    """
    if axis not in AXES:
        raise ValueError(f"axis must be one of {', '.join(AXES)}, got {axis!r}")
    if x.dim() != 4:
        raise ValueError(f"x must be (B, C, H, W), got shape {tuple(x.shape)}")
    dim = AXES[axis]
    upright = stylize(x).float()
    turned = stylize(x.flip(dim)).float().flip(dim)
    if upright.shape != x.shape or turned.shape != x.shape:
        raise ValueError(f"stylize must keep the shape {tuple(x.shape)}, got {tuple(upright.shape)}")
    diff = (upright - turned).abs()
    other = -1 if dim == -2 else -2
    return diff.mean(dim=(0, 1, other))


def edge_excess(profile: Tensor, edge_fraction: float = 0.125) -> float:
    """Mean of ``profile`` over both outer strips (``edge_fraction`` of its length each) / mean over the middle half.

    ``profile``: 1-D, at least 8 values.  ``inf`` when the middle is exactly
    zero and the edges are not; ``1.0`` when both are zero.
    """
    if profile.dim() != 1 or profile.numel() < 8:
        raise ValueError(f"profile must be 1-D with at least 8 values, got shape {tuple(profile.shape)}")
    if not 0 < edge_fraction <= 0.25:
        raise ValueError(f"edge_fraction must be in (0, 0.25], got {edge_fraction}")
    n = profile.numel()
    k = max(1, round(n * edge_fraction))
    edges = torch.cat([profile[:k], profile[-k:]]).double().mean().item()
    middle = profile[n // 4: n - n // 4].double().mean().item()
    if middle == 0.0:
        return 1.0 if edges == 0.0 else float("inf")
    return edges / middle
