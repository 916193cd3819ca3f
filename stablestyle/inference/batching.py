"""Several independent inputs through one network: frames of different clips batched per call.

Owns :func:`stylize_streams` (clips as iterables of frames) and :func:`stylize_many` (video
files in, video files out; ``stylize`` with several inputs).  Each clip keeps its own recurrent
state, so the result equals stylizing each clip alone.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import os
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path

import numpy as np
import torch

from ..errors import UserError
from ..runtime import progress
from .backend import Backend
from .frames import frames_to_tensor, quantize

log = logging.getLogger(__name__)


def stylize_streams(sources: Sequence[Iterable[np.ndarray]], backend: Backend, *,
                    max_batch: int = 8, restarts: Sequence | None = None) -> Iterator[tuple[int, np.ndarray]]:
    """Stylize several independent clips together: one network call per step for up to ``max_batch`` of them.

    At each step the next frame of every unfinished clip is taken; clips whose
    frames have the same size are stacked into one batch, and each keeps its
    own recurrent state (row ``i`` of the batch's ``prev`` is clip ``i``'s
    previous output, or its frame at the clip's start), so the result equals
    running each clip alone.  A single clip is simply frame-sequential.
    ``restarts[i](frame)`` (optional) true restarts clip ``i``'s state at
    that frame (a scene cut; :class:`stablestyle.scenecut.SceneCutDetector`).

    Yields ``(clip index, uint8 (H, W, 3) frame)``; each clip's frames come in order.
    """
    if isinstance(max_batch, bool) or not isinstance(max_batch, int) or max_batch < 1:
        raise ValueError(f"max_batch must be a positive integer, got {max_batch!r}")
    iterators = {i: iter(s) for i, s in enumerate(sources)}
    states: dict[int, torch.Tensor | None] = {i: None for i in iterators}
    while iterators:
        current: dict[int, np.ndarray] = {}
        for i, it in list(iterators.items()):
            frame = next(it, None)
            if frame is None:
                del iterators[i]
                states.pop(i, None)
            else:
                current[i] = frame
                if restarts is not None and restarts[i] is not None and restarts[i](frame):
                    states[i] = None
        groups: dict[tuple, list[int]] = {}
        for i, frame in current.items():
            groups.setdefault(frame.shape, []).append(i)
        for shape, members in groups.items():
            for lo in range(0, len(members), max_batch):
                ids = members[lo:lo + max_batch]
                x = frames_to_tensor(np.stack([current[i] for i in ids]), backend.device)
                prev = _batch_state(x, [states[i] for i in ids], ids) if backend.recurrent else None
                out, _ = backend.step(x, prev)
                frames = quantize(out).cpu().numpy()
                for row, i in enumerate(ids):
                    if backend.recurrent:
                        states[i] = out[row:row + 1]
                    yield i, frames[row]


def _batch_state(x: torch.Tensor, states: list[torch.Tensor | None], ids: list[int]) -> torch.Tensor:
    """The ``prev`` of batch ``x``: row ``r`` is clip ``ids[r]``'s previous output, or its frame at the
    clip's start (also when the clip changed frame size, which restarts its state)."""
    rows = []
    for row, (i, s) in enumerate(zip(ids, states)):
        if s is not None and tuple(s.shape[-2:]) != tuple(x.shape[-2:]):
            log.info("clip %d changed frame size; restarting its recurrent state", i)
            s = None
        rows.append(x[row:row + 1] if s is None else s.to(x.dtype))
    return torch.cat(rows)


def stylize_many(inputs: Sequence[str | os.PathLike], outputs: Sequence[str | os.PathLike], backend: Backend, *,
                 max_size: int | None = None, max_batch: int = 8, max_frames: int | None = None,
                 overwrite: bool = False, keep_audio: bool = True, preset: str = "medium",
                 quiet: bool = True, restarts: Sequence | None = None) -> list[int]:
    """Stylize several video files at once (see :func:`stylize_streams`); returns frames written per file.

    Every output path is checked before any work; outputs are written
    atomically (an error leaves none of them behind).  ``max_frames`` stops
    each input after that many frames; ``preset``: the H.264 encoder's
    (:func:`stablestyle.video.open_sink`); ``restarts``: one scene-cut
    callable (or None) per input, as in :func:`stylize_streams`.
    """
    from ..video import check_output_path, open_sink, open_source

    if len(inputs) != len(outputs):
        raise UserError(f"{len(inputs)} inputs but {len(outputs)} outputs; give one output per input")
    if len({Path(o).resolve() for o in outputs}) != len(outputs):
        raise UserError("two inputs would write to the same output; give distinct output paths")
    for out in outputs:
        check_output_path(out, inputs, overwrite)
    with contextlib.ExitStack() as stack:
        sources = [stack.enter_context(open_source(p, max_size=max_size)) for p in inputs]
        sinks = [stack.enter_context(open_sink(o, s.fps, audio_from=p if keep_audio and s.has_audio else None,
                                               overwrite=overwrite, preset=preset))
                 for p, o, s in zip(inputs, outputs, sources)]
        known = [s.num_frames if max_frames is None or s.num_frames is None else min(s.num_frames, max_frames)
                 for s in sources]
        total = sum(known) if all(n is not None for n in known) else None
        streams = [itertools.islice(s, max_frames) for s in sources]
        for i, frame in progress(stylize_streams(streams, backend, max_batch=max_batch, restarts=restarts), total=total,
                                 desc="stylize", unit="frame", quiet=quiet):
            sinks[i].write(frame)
        return [s.num_written for s in sinks]

