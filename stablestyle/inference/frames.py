"""Frames crossing into and out of a backend: ``uint8`` host arrays <-> float tensors on the device.

Owns :func:`frames_to_tensor`, :func:`quantize` (the same arithmetic as
:func:`stablestyle.video.to_tensor` / :func:`~stablestyle.video.to_uint8`, batched and on the device)
and :func:`as_input`, which every backend's ``step`` uses to accept either kind of frame.
"""

from __future__ import annotations

import numpy as np
import torch


def frames_to_tensor(frames: np.ndarray, device: torch.device | str) -> torch.Tensor:
    """``uint8`` ``(H, W, 3)`` or ``(B, H, W, 3)`` RGB -> float32 ``(B, 3, H, W)`` in ``[0, 1]`` on ``device``.

    The same arithmetic as :func:`stablestyle.video.to_tensor` (``x / 255``);
    the ``uint8`` data crosses to the device first (4x fewer bytes) and the
    result keeps the channels-last memory layout of the permuted array.
    """
    if not isinstance(frames, np.ndarray) or frames.dtype != np.uint8 or frames.shape[-1] != 3 \
            or frames.ndim not in (3, 4):
        desc = f"{frames.dtype} {frames.shape}" if isinstance(frames, np.ndarray) else type(frames).__name__
        raise ValueError(f"frames must be uint8 RGB arrays (H, W, 3) or (B, H, W, 3), got {desc}")
    if frames.ndim == 3:
        frames = frames[None]
    if not frames.flags.writeable:  # torch.from_numpy warns on read-only arrays
        frames = frames.copy()
    t = torch.from_numpy(np.ascontiguousarray(frames)).to(device, non_blocking=True)
    return t.permute(0, 3, 1, 2).float().div_(255.0)


def quantize(out: torch.Tensor) -> torch.Tensor:
    """Float ``(B, 3, H, W)`` in ``[0, 1]`` -> ``uint8`` ``(B, H, W, 3)`` on the same device.

    Exactly :func:`stablestyle.video.to_uint8`'s rounding (NaN -> 0, clamp,
    ``round(255 x)``), batched and kept on the device so that only ``uint8``
    data is copied back.
    """
    if out.ndim != 4 or out.shape[1] != 3:
        raise ValueError(f"expected (B, 3, H, W) images, got shape {tuple(out.shape)}")
    q = out.detach().float().nan_to_num(0.0).clamp(0.0, 1.0).mul(255.0).round().to(torch.uint8)
    return q.permute(0, 2, 3, 1).contiguous()


def as_input(frame, device: torch.device) -> torch.Tensor:
    """A step's ``frame`` argument as float ``(B, 3, H, W)`` on ``device``."""
    if isinstance(frame, np.ndarray):
        return frames_to_tensor(frame, device)
    if isinstance(frame, torch.Tensor):
        if frame.ndim != 4 or frame.shape[1] != 3 or not frame.is_floating_point():
            raise ValueError(f"frame tensors must be float (B, 3, H, W), got {frame.dtype} {tuple(frame.shape)}")
        return frame.to(device, non_blocking=True)
    raise TypeError(f"frame must be a uint8 numpy array or a float tensor, got {type(frame).__name__}")

