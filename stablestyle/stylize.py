"""Streaming stylization with a trained transformation network.

Frames go through the network one at a time; the recurrent state (the
previous stylized output, Gupta et al. 2017 Sec. 5) lives in a local variable
of :func:`stylize_frames`, so each call starts a clip afresh and nothing
leaks between inputs.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

import numpy as np
import torch

from .video import to_tensor, to_uint8


def inference_dtype(device: torch.device, half: bool | None) -> torch.dtype:
    """fp16 on CUDA unless ``half=False``; fp32 on CPU unless ``half=True`` (then bf16, CPU autocast's type)."""
    if device.type == "cuda":
        return torch.float32 if half is False else torch.float16
    return torch.bfloat16 if half else torch.float32


@torch.inference_mode()
def stylize_frames(
    model: torch.nn.Module,
    frames: Iterable[np.ndarray],
    *,
    device: torch.device | str = "cpu",
    half: bool | None = None,
) -> Iterator[np.ndarray]:
    """Stylize a clip frame by frame.

    Args:
        model: a :class:`~stablestyle.models.TransformerNet` (recurrent or per-frame).
        frames: uint8 RGB frames ``(H, W, 3)`` of one clip, in order.
        device: where the network runs; the model is moved there.
        half: reduced precision (fp16 on CUDA, bf16 on CPU); ``None`` = fp16 on CUDA, fp32 on CPU.

    Yields:
        uint8 RGB frames ``(H, W, 3)``, the same size as the inputs.
    """
    device = torch.device(device)
    dtype = inference_dtype(device, half)
    model = model.to(device=device, dtype=dtype).eval()
    if device.type == "cuda":
        model = model.to(memory_format=torch.channels_last)
        torch.backends.cudnn.benchmark = True
    state = None
    for frame in frames:
        x = to_tensor(frame).to(device=device, dtype=dtype, non_blocking=True)
        if device.type == "cuda":
            x = x.contiguous(memory_format=torch.channels_last)
        out, state = model(x, state)
        yield to_uint8(out[0])
