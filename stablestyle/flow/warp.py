"""Backward warping with optical flow and the matching in-bounds mask.

Conventions (see :mod:`stablestyle`): flow is ``(B, 2, H, W)`` in pixels,
channel 0 = x (right), 1 = y (down).  ``flow_bw`` takes frame ``t`` back to
``t-1``: pixel ``x`` of frame ``t`` is seen at ``x + flow_bw(x)`` in frame
``t-1``.  Warping frame ``t-1`` (or its stylised output) with ``flow_bw``
therefore aligns it with frame ``t``; this is the ``omega`` warp of the
temporal loss (Gupta et al. 2017, Eq. 3; Ruder et al. 2016, Eq. 7).

Warping is an fp32 island (STYLE habit 8): half / bfloat16 inputs are
computed in float32 and cast back; float64 stays float64 (for ``gradcheck``).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["backward_warp", "inbounds_mask", "BackwardWarp"]


def _check_flow(flow: Tensor, name: str = "flow") -> None:
    if not isinstance(flow, Tensor):
        raise ValueError(f"{name} must be a torch.Tensor of shape (B, 2, H, W), got {type(flow).__name__}")
    if flow.dim() != 4 or flow.shape[1] != 2:
        raise ValueError(
            f"{name} must have shape (B, 2, H, W) (channel 0 = x, 1 = y, in pixels), got {tuple(flow.shape)}"
        )
    if not flow.is_floating_point():
        raise ValueError(f"{name} must be a floating-point tensor, got {flow.dtype}")
    if flow.shape[2] < 2 or flow.shape[3] < 2:
        raise ValueError(f"{name} must be at least 2x2 pixels, got H={flow.shape[2]}, W={flow.shape[3]}")


def _compute_dtype(*tensors: Tensor) -> torch.dtype:
    """At least float32: the precision of the fp32 island."""
    dtype = torch.float32
    for t in tensors:
        dtype = torch.promote_types(dtype, t.dtype)
    return dtype


def _sample_positions(flow: Tensor) -> tuple[Tensor, Tensor]:
    """Absolute sampling positions ``x + flow_x(x)``, ``y + flow_y(y)``, each ``(B, H, W)`` in pixels."""
    _, _, h, w = flow.shape
    xs = torch.arange(w, device=flow.device, dtype=flow.dtype).view(1, 1, w)
    ys = torch.arange(h, device=flow.device, dtype=flow.dtype).view(1, h, 1)
    return xs + flow[:, 0], ys + flow[:, 1]


def backward_warp(image: Tensor, flow_bw: Tensor) -> Tensor:
    """Bilinearly sample ``image`` at ``x + flow_bw(x)``.

    Args:
        image: ``(B, C, H, W)`` floating point, any range (images, features,
            masks or flow fields alike).
        flow_bw: ``(B, 2, H, W)`` in pixels on the *output* grid: output
            pixel ``x`` reads ``image`` at ``x + flow_bw(x)``.

    Returns:
        ``(B, C, H, W)`` with ``image``'s dtype and device.  Pixel centres sit
        at integer coordinates (``grid_sample`` with ``align_corners=True``),
        so an integer flow reproduces shifted pixels exactly.  Samples outside
        the image blend with zeros (``padding_mode="zeros"``); combine with
        :func:`inbounds_mask` to ignore them.

    Raises:
        ValueError: on shapes that do not match, or a non-floating ``image``.
    """
    if not isinstance(image, Tensor) or image.dim() != 4:
        shape = tuple(image.shape) if isinstance(image, Tensor) else type(image).__name__
        raise ValueError(f"image must have shape (B, C, H, W), got {shape}")
    if not image.is_floating_point():
        raise ValueError(f"image must be a floating-point tensor, got {image.dtype}; convert it with .float()")
    _check_flow(flow_bw, "flow_bw")
    if image.shape[0] != flow_bw.shape[0] or image.shape[2:] != flow_bw.shape[2:]:
        raise ValueError(
            f"image {tuple(image.shape)} and flow_bw {tuple(flow_bw.shape)} must share batch size and H, W"
        )
    if image.device != flow_bw.device:
        raise ValueError(f"image is on {image.device} but flow_bw is on {flow_bw.device}; move both to one device")

    dtype = _compute_dtype(image, flow_bw)
    _, _, h, w = image.shape
    px, py = _sample_positions(flow_bw.to(dtype))
    # align_corners=True: normalised -1 / +1 are the centres of the first / last pixel.
    grid = torch.stack((2.0 * px / (w - 1) - 1.0, 2.0 * py / (h - 1) - 1.0), dim=-1)
    warped = F.grid_sample(image.to(dtype), grid, mode="bilinear", padding_mode="zeros", align_corners=True)
    return warped.to(image.dtype)


def inbounds_mask(flow: Tensor) -> Tensor:
    """1 where ``x + flow(x)`` lies inside the image, else 0.

    Args:
        flow: ``(B, 2, H, W)`` in pixels.

    Returns:
        ``(B, 1, H, W)`` mask in ``flow``'s dtype; inside means
        ``0 <= x + u <= W - 1`` and ``0 <= y + v <= H - 1`` (pixel centres),
        i.e. where :func:`backward_warp` does not blend with zero padding.
    """
    _check_flow(flow)
    px, py = _sample_positions(flow.to(_compute_dtype(flow)))
    _, _, h, w = flow.shape
    inside = (px >= 0) & (px <= w - 1) & (py >= 0) & (py <= h - 1)
    return inside.unsqueeze(1).to(flow.dtype)


class BackwardWarp(nn.Module):
    """Thin module around :func:`backward_warp` (no parameters or buffers)."""

    def forward(self, image: Tensor, flow_bw: Tensor) -> Tensor:
        return backward_warp(image, flow_bw)
