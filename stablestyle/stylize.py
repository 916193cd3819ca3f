"""Streaming stylization with a trained transformation network.

Frames go through the network one at a time; the recurrent state (the
previous stylized output, Gupta et al. 2017 Sec. 5) lives inside one call of
:func:`stylize_frames`, so each call starts a clip afresh and nothing leaks
between inputs.  The work is done by an inference backend of
:mod:`stablestyle.inference` (eager PyTorch by default; onnxruntime for
``backend="onnx"``), which owns the fast paths (reduced precision,
channels-last, CUDA graphs, pinned transfers).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

import numpy as np
import torch


def precision_for(device: torch.device, half: bool | None) -> str:
    """Backend precision for a ``--half`` flag: ``None`` = the backend's default (fp16 on CUDA, fp32 on
    CPU); ``True`` = fp16 on CUDA, bf16 on the CPU; ``False`` = fp32."""
    if half is None:
        return "auto"
    if not half:
        return "fp32"
    return "fp16" if device.type == "cuda" else "bf16"


def stylize_frames(
    model: torch.nn.Module,
    frames: Iterable[np.ndarray],
    *,
    device: torch.device | str = "cpu",
    half: bool | None = None,
    backend: str = "torch",
    threads: int | None = None,
    scene_cuts: str = "auto",
) -> Iterator[np.ndarray]:
    """Stylize one clip frame by frame.

    Args:
        model: a :class:`~stablestyle.models.TransformerNet` (recurrent or per-frame); never modified.
        frames: uint8 RGB frames ``(H, W, 3)`` of one clip, in order.
        device: where the network runs.
        half: reduced precision (see :func:`precision_for`).
        backend: a name of :data:`stablestyle.inference.BACKENDS` (``torch``, ``onnx``).
        threads: CPU threads for inference (``None``: the library default).
        scene_cuts: ``"auto"``: restart the recurrent state where a new shot starts
            (:class:`stablestyle.scenecut.SceneCutDetector`), so one shot's
            stylization does not bleed into the next; ``"off"``: carry it on.

    Yields:
        uint8 RGB frames ``(H, W, 3)``, the same size as the inputs.
    """
    from .inference import make_backend

    device = torch.device(device)
    runner = make_backend(backend, model, device=device, precision=precision_for(device, half), threads=threads)
    return runner.run(frames, cut_detector(scene_cuts))


def cut_detector(scene_cuts: str):
    """The ``restart`` callable for ``scene_cuts`` (``"auto"``: a fresh detector's ``update``; ``"off"``: None)."""
    from .scenecut import SCENE_CUT_MODES, SceneCutDetector

    if scene_cuts not in SCENE_CUT_MODES:
        raise ValueError(f"unknown scene_cuts {scene_cuts!r}; valid: {', '.join(SCENE_CUT_MODES)}")
    return SceneCutDetector().update if scene_cuts == "auto" else None
