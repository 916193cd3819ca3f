"""Temporal pieces of Ruder et al. 2016: warped previous results, their masks, the long-term mask combination.

Ruder, Dosovitskiy, Brox, "Artistic Style Transfer for Videos", GCPR 2016:

* Sec. 3.1, initialisation: frame ``i`` starts from ``omega_{i-1}^i(x^(i-1))``,
  the previous *result* warped to frame ``i`` by the backward flow estimated on
  the *input* frames.
* Eq. 7, short-term consistency: ``L = (1/D) sum_k c_k (x_k - w_k)^2`` with
  ``w = omega_{i-1}^i(x^(i-1))`` and ``c`` the reliability mask (Eq. 5-6,
  :func:`stablestyle.flow.reliability_mask`); the same form as
  :func:`stablestyle.losses.temporal_loss`.
* Eq. 8-9, long-term consistency over ``J`` (e.g. ``{1, 2, 4}``):
  ``L = sum_{j in J, i-j >= 1} (1/D) sum_k c_long,k^(i-j) (x_k - omega_{i-j}^i(x^(i-j))_k)^2``
  with ``c_long^(i-j) = max(c^(i-j) - sum_{k in J, k < j} c^(i-k), 0)``: each
  pixel is tied to the most recent previous frame where it is reliable.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from ..flow import backward_warp, estimate_flow, flow_to_tensor, inbounds_mask, reliability_mask

__all__ = ["long_term_masks", "WarpedPrevious", "warp_previous", "fill_outside"]


def long_term_masks(masks: Sequence[Tensor]) -> list[Tensor]:
    """Ruder et al. 2016, Eq. 9: ``c_long^(i-j) = max(c^(i-j) - sum_{k in J, k < j} c^(i-k), 0)``.

    Args:
        masks: reliability masks ``c^(i-j)``, each ``(B, 1, H, W)`` in [0, 1],
            ordered by *increasing* offset ``j`` (most recent frame first).

    Returns:
        The combined masks in the same order.  For binary masks they are
        disjoint and their union is the union of the inputs: a pixel goes to
        the first (most recent) frame where it is reliable.
    """
    if not masks:
        raise ValueError("long_term_masks needs at least one mask")
    shape = masks[0].shape
    if any(m.shape != shape for m in masks):
        raise ValueError(f"masks must share one shape (B, 1, H, W), got {[tuple(m.shape) for m in masks]}")
    combined = []
    earlier = torch.zeros_like(masks[0])
    for mask in masks:
        combined.append((mask - earlier).clamp_min(0))
        earlier = earlier + mask
    return combined


def fill_outside(warped: Tensor, fallback: Tensor, inside: Tensor) -> Tensor:
    """``warped`` where ``inside`` (``(B, 1, H, W)``, 1 = the flow stays in the image) else ``fallback``.

    Used for the ``prev-warped`` initialisation: :func:`stablestyle.flow.backward_warp`
    pads with black where the flow leaves the image (newly visible border
    strips); there the content frame is a better start than black.  (Ruder et
    al. initialise with the bare warp; this only changes those strips.)
    """
    return warped * inside + fallback * (1 - inside)


@dataclass
class WarpedPrevious:
    """A previous result aligned with frame ``t``.

    Attributes:
        offset: ``j`` (the result is of frame ``t - j``).
        warped: ``(1, 3, H, W)`` ``omega_{t-j}^t(x^(t-j))``.
        inside: ``(1, 1, H, W)`` :func:`stablestyle.flow.inbounds_mask` of the flow.
        reliable: ``(1, 1, H, W)`` :func:`stablestyle.flow.reliability_mask`, or
            ``None`` when not asked for.
    """

    offset: int
    warped: Tensor
    inside: Tensor
    reliable: Tensor | None


def warp_previous(frame: np.ndarray, prev_frame: np.ndarray, prev_result: Tensor, *, offset: int,
                  flow_method: str = "dis", with_mask: bool = True) -> WarpedPrevious:
    """Warp ``prev_result`` (of ``prev_frame``) onto ``frame``'s grid with flow estimated on the inputs.

    Args:
        frame, prev_frame: ``uint8 (H, W, 3)`` input frames ``t`` and ``t - offset``.
        prev_result: ``(1, 3, H, W)`` result of frame ``t - offset`` in [0, 1];
            the output follows its device and dtype.
        offset: ``j`` (recorded in the result).
        flow_method: :func:`stablestyle.flow.estimate_flow` method.
        with_mask: also estimate the forward flow and the reliability mask
            (the temporal loss needs it; the initialisation alone does not).

    ``flow_bw = estimate_flow(frame, prev_frame)`` (frame ``t`` -> ``t - j``),
    ``flow_fw = estimate_flow(prev_frame, frame)``.
    """
    device, dtype = prev_result.device, prev_result.dtype
    flow_bw = flow_to_tensor(estimate_flow(frame, prev_frame, flow_method), device).to(dtype)
    warped = backward_warp(prev_result, flow_bw)
    reliable = None
    if with_mask:
        flow_fw = flow_to_tensor(estimate_flow(prev_frame, frame, flow_method), device).to(dtype)
        reliable = reliability_mask(flow_bw, flow_fw)
    return WarpedPrevious(offset=offset, warped=warped, inside=inbounds_mask(flow_bw), reliable=reliable)
