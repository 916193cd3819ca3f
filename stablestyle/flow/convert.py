"""Conversions between numpy ``(H, W, 2)`` flow, torch ``(1, 2, H, W)`` flow and colour images."""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

__all__ = ["flow_to_tensor", "flow_to_numpy", "flow_to_color"]

# Middlebury unknown-flow convention: |component| >= 1e9 means "no value".
UNKNOWN_FLOW_THRESH = 1e9


def flow_to_tensor(flow: np.ndarray, device: torch.device | str | None = None) -> Tensor:
    """numpy ``(H, W, 2)`` flow (pixels) -> ``float32 (1, 2, H, W)`` tensor (a copy)."""
    arr = np.asarray(flow)
    if arr.ndim != 3 or arr.shape[2] != 2:
        raise ValueError(f"flow must be a numpy array of shape (H, W, 2), got shape {arr.shape}")
    tensor = torch.from_numpy(np.array(arr, dtype=np.float32, copy=True)).permute(2, 0, 1).unsqueeze(0)
    return tensor.contiguous().to(device) if device is not None else tensor.contiguous()


def flow_to_numpy(flow: Tensor) -> np.ndarray:
    """Torch ``(1, 2, H, W)`` or ``(2, H, W)`` flow -> numpy ``float32 (H, W, 2)`` (detached, on CPU)."""
    if not isinstance(flow, Tensor):
        raise ValueError(f"flow must be a torch.Tensor, got {type(flow).__name__}")
    t = flow[0] if flow.dim() == 4 and flow.shape[0] == 1 else flow
    if t.dim() != 3 or t.shape[0] != 2:
        raise ValueError(
            f"flow must have shape (1, 2, H, W) or (2, H, W), got {tuple(flow.shape)}; index a batch first"
        )
    return np.ascontiguousarray(t.detach().to("cpu", torch.float32).permute(1, 2, 0).numpy())


def _color_wheel() -> np.ndarray:
    """The 55-entry Middlebury colour wheel, ``(55, 3)`` float RGB in 0..255.

    Baker et al., "A Database and Evaluation Methodology for Optical Flow",
    IJCV 2011 (``flow-code/colorcode.cpp``): hue segments red-yellow (15),
    yellow-green (6), green-cyan (4), cyan-blue (11), blue-magenta (13),
    magenta-red (6), chosen for perceptual uniformity.
    """
    segments = [(15, 0, 1, +1), (6, 1, 0, -1), (4, 1, 2, +1), (11, 2, 1, -1), (13, 2, 0, +1), (6, 0, 2, -1)]
    rows = []
    for n, full, ramp, direction in segments:
        # ``full`` channel stays at 255; ``ramp`` channel rises (+1) or falls (-1) across the segment.
        block = np.zeros((n, 3))
        block[:, full] = 255
        steps = np.floor(255 * np.arange(n) / n)
        block[:, ramp] = steps if direction > 0 else 255 - steps
        rows.append(block)
    return np.concatenate(rows)


def flow_to_color(flow: np.ndarray, max_flow: float | None = None) -> np.ndarray:
    """Middlebury colour coding of a flow field, for plots.

    Args:
        flow: numpy ``(H, W, 2)`` in pixels.
        max_flow: flow magnitude (pixels) shown at full saturation; default
            the largest known magnitude in ``flow``.

    Returns:
        ``uint8 (H, W, 3)`` RGB: hue = direction (right = red, down = yellow,
        left = cyan, up = violet), saturation = magnitude; zero flow
        is white, unknown (``>= 1e9`` or non-finite) flow is black.
    """
    arr = np.asarray(flow, dtype=np.float64)
    if arr.ndim != 3 or arr.shape[2] != 2:
        raise ValueError(f"flow must be a numpy array of shape (H, W, 2), got shape {arr.shape}")
    if max_flow is not None and not max_flow > 0:
        raise ValueError(f"max_flow must be > 0 pixels, got {max_flow!r}")
    u, v = arr[..., 0], arr[..., 1]
    unknown = ~np.isfinite(u) | ~np.isfinite(v)
    unknown |= (np.abs(np.nan_to_num(u)) >= UNKNOWN_FLOW_THRESH) | (np.abs(np.nan_to_num(v)) >= UNKNOWN_FLOW_THRESH)
    u = np.where(unknown, 0.0, u)
    v = np.where(unknown, 0.0, v)
    rad = np.hypot(u, v)
    scale = max_flow if max_flow is not None else max(float(rad.max(initial=0.0)), 1e-12)
    u, v, rad = u / scale, v / scale, rad / scale

    wheel = _color_wheel()
    ncols = len(wheel)
    angle = np.arctan2(-v, -u) / np.pi  # in [-1, 1]; rightward flow -> 1 -> last (red) entry
    fk = (angle + 1) / 2 * (ncols - 1)
    k0 = np.floor(fk).astype(int)
    k1 = (k0 + 1) % ncols
    f = (fk - k0)[..., None]
    col = ((1 - f) * wheel[k0] + f * wheel[k1]) / 255
    inside = (rad <= 1)[..., None]
    # Desaturate towards white for small motion; dim what exceeds max_flow.
    col = np.where(inside, 1 - rad[..., None] * (1 - col), col * 0.75)
    img = np.floor(255 * np.clip(col, 0, 1)).astype(np.uint8)
    img[unknown] = 0
    return img
