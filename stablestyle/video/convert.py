"""Pure conversions of frames: ``uint8`` ``(H, W, 3)`` <-> float tensors, resizing, RGB -> yuv420p.

:func:`to_tensor` and :func:`to_uint8` are the only two conversions between the ``uint8`` frames of
the I/O layer and the ``float32`` tensors in ``[0, 1]`` that the rest of the package uses.  No file
I/O here.
"""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np
import torch


def to_tensor(frames: np.ndarray | Sequence[np.ndarray], *, device: torch.device | str | None = None,
              dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """``uint8`` RGB frames -> float tensor in ``[0, 1]``.

    ``(H, W, 3)`` -> ``(1, 3, H, W)``; ``(T, H, W, 3)`` or a sequence of
    ``(H, W, 3)`` frames -> ``(T, 3, H, W)``.  With ``device`` the ``uint8``
    data moves first (4x less to transfer) and is converted there.  The input
    array is never modified.
    """
    if not isinstance(frames, np.ndarray):
        frames = np.stack([np.asarray(f) for f in frames])
    if frames.dtype != np.uint8:
        raise ValueError(f"to_tensor expects uint8 frames, got {frames.dtype}")
    if frames.ndim == 3 and frames.shape[-1] == 3:
        frames = frames[None]
    if frames.ndim != 4 or frames.shape[-1] != 3:
        raise ValueError(f"to_tensor expects (H, W, 3) or (T, H, W, 3) frames, got shape {frames.shape}")
    if not frames.flags.writeable:  # torch.from_numpy warns on read-only arrays (PyAV, Pillow buffers)
        frames = frames.copy()
    t = torch.from_numpy(np.ascontiguousarray(frames))
    if device is not None:
        t = t.to(device)
    return t.permute(0, 3, 1, 2).to(dtype).div_(255.0).contiguous()


def to_uint8(image: torch.Tensor) -> np.ndarray:
    """Float image ``(3, H, W)`` or ``(1, 3, H, W)`` in ``[0, 1]`` -> ``uint8`` ``(H, W, 3)`` numpy.

    Values are clamped to ``[0, 1]`` and rounded to the nearest level; NaN
    becomes 0.  Works for any float dtype (fp16 / bf16 are computed in fp32)
    and device (the ``uint8`` result is what crosses to the CPU).
    """
    if not isinstance(image, torch.Tensor):
        raise TypeError(f"to_uint8 expects a torch.Tensor, got {type(image).__name__}")
    if image.ndim == 4 and image.shape[0] == 1:
        image = image[0]
    if image.ndim != 3 or image.shape[0] != 3:
        raise ValueError(f"to_uint8 expects (3, H, W) or (1, 3, H, W), got shape {tuple(image.shape)}")
    x = image.detach().float().nan_to_num(0.0).clamp(0.0, 1.0).mul(255.0).round().to(torch.uint8)
    return x.permute(1, 2, 0).contiguous().cpu().numpy()


def resized_size(size: tuple[int, int], max_size: int | None) -> tuple[int, int]:
    """``(W, H)`` scaled so that the long side is at most ``max_size`` (aspect kept, never enlarged)."""
    w, h = size
    if max_size is None or max(w, h) <= max_size:
        return (w, h)
    scale = max_size / max(w, h)
    return (max(1, round(w * scale)), max(1, round(h * scale)))


def resize(frame: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Area-interpolated resize of ``(H, W, 3)`` ``uint8`` to ``size = (W, H)`` (no-op when equal)."""
    if (frame.shape[1], frame.shape[0]) == size:
        return frame
    return cv2.resize(frame, size, interpolation=cv2.INTER_AREA)


def shrink_frame(frame: np.ndarray, max_size: int | None) -> np.ndarray:
    """``(H, W, 3)`` ``uint8`` shrunk (area interpolation) so its long side is at most ``max_size``, as
    :func:`open_source` does; the frame itself when it is small enough."""
    return resize(frame, resized_size((frame.shape[1], frame.shape[0]), max_size))


#: BT.601 limited-range chroma rows (Cb, Cr) of full-range RGB, with the +128 offset, for ``cv2.transform``.
_RGB_TO_CBCR = np.array([[-37.797, -74.203, 112.0, 128 * 255], [112.0, -93.786, -18.214, 128 * 255]]) / 255


def rgb_to_yuv420p(frame: np.ndarray) -> np.ndarray:
    """``uint8`` ``(H, W, 3)`` RGB (even ``H``, ``W``) to planar yuv420p, ``(H * 3 // 2, W)``, as PyAV takes it.

    BT.601 limited range with each chroma sample the mean of its 2x2 block: what FFmpeg's swscale writes
    with area interpolation (within 1 level), which x264 then encodes ~0.15 dB better than swscale's
    default bilinear (and OpenCV's ``COLOR_RGB2YUV_I420`` ~0.3 dB worse).  A third of swscale's time
    (3.3 vs 8.6 ms at 1920x1080 here), and OpenCV releases the GIL, so the encoder thread keeps up with
    a GPU (docs/PERFORMANCE.md).
    """
    h, w = frame.shape[:2]
    if h % 2 or w % 2:
        raise ValueError(f"yuv420p needs even sides, got {w}x{h}")
    frame = np.ascontiguousarray(frame)
    out = cv2.cvtColor(frame, cv2.COLOR_RGB2YUV_I420)  # its luma is swscale's; its chroma is point-sampled
    cbcr = cv2.transform(cv2.resize(frame, (w // 2, h // 2), interpolation=cv2.INTER_AREA), _RGB_TO_CBCR)
    planes = out.reshape(-1)  # Y, then the U and V planes, each (H / 2) x (W / 2), back to back
    planes[h * w:h * w * 5 // 4] = cbcr[..., 0].reshape(-1)
    planes[h * w * 5 // 4:] = cbcr[..., 1].reshape(-1)
    return out
