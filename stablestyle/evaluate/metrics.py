"""Evaluation metrics: temporal instability, warping error, perceptual losses, speed.

All functions are pure: they take tensors and return tensors (or plain
numbers for timings) and follow their inputs' device and dtype (computed in at
least float32).  Clips are ``(T, 3, H, W)`` in ``[0, 1]`` (one clip, frames
along the batch axis); flow and masks are given per frame and aligned with
the frames:

* ``flow_bw[t]``: ``(2, H, W)`` pixels taking frame ``t`` back to ``t-1``
  (package convention), for ``t >= 1``;
* ``mask[t]``: ``(1, H, W)``, 1 where that correspondence is reliable
  (Ruder et al. 2016's occlusion / motion-boundary mask or a ground-truth
  occlusion map), on frame ``t``'s grid.

``flow_bw`` and ``mask`` may hold ``T`` entries (entry 0 is ignored: frame 0
has no predecessor) or ``T - 1`` entries (for ``t = 1 .. T-1``).

Units: frames in ``[0, 1]``, so instability and warping error are squared
intensity differences on the ``[0, 1]`` scale (multiply by ``255**2`` for
the 0-255 scale some papers use).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass

import numpy as np
import torch
from torch import Tensor

from ..flow import backward_warp
from ..losses import temporal_loss

__all__ = [
    "instability",
    "mean_instability",
    "warping_error",
    "warping_error_per_frame",
    "perceptual_losses",
    "Speed",
    "measure_stream",
]

#: Frames warped per batch: bounds memory on long clips without changing any value.
CHUNK = 16


def _check_clip(frames: Tensor, flow_bw: Tensor, mask: Tensor) -> tuple[Tensor, Tensor]:
    """Validate shapes; return ``(flow_bw, mask)`` for ``t = 1 .. T-1`` (``T - 1`` entries each)."""
    if not isinstance(frames, Tensor) or frames.dim() != 4 or frames.shape[1] != 3:
        shape = tuple(frames.shape) if isinstance(frames, Tensor) else type(frames).__name__
        raise ValueError(f"frames must be a (T, 3, H, W) tensor in [0, 1], got {shape}")
    t, _, h, w = frames.shape
    if t < 2:
        raise ValueError(f"a clip needs at least 2 frames for a temporal metric, got {t}")
    if flow_bw.dim() != 4 or flow_bw.shape[1] != 2 or flow_bw.shape[2:] != (h, w):
        raise ValueError(f"flow_bw must be (T, 2, {h}, {w}) or (T-1, 2, {h}, {w}), got {tuple(flow_bw.shape)}")
    if mask.dim() != 4 or mask.shape[1] != 1 or mask.shape[2:] != (h, w):
        raise ValueError(f"mask must be (T, 1, {h}, {w}) or (T-1, 1, {h}, {w}), got {tuple(mask.shape)}")
    out = []
    for name, x in (("flow_bw", flow_bw), ("mask", mask)):
        if x.shape[0] == t:
            x = x[1:]
        elif x.shape[0] != t - 1:
            raise ValueError(f"{name} has {x.shape[0]} entries for {t} frames; give {t} (entry 0 ignored) "
                             f"or {t - 1} (frames 1..{t - 1})")
        out.append(x)
    return out[0], out[1]


def _warped_pairs(frames: Tensor, flow_bw: Tensor, mask: Tensor) -> Iterator[tuple[Tensor, Tensor, Tensor]]:
    """Chunks of ``(y_t, warp(y_{t-1}, flow_bw_t), c_t)`` for ``t = 1 .. T-1``, in at least float32."""
    dtype = torch.promote_types(frames.dtype, torch.float32)
    for start in range(1, frames.shape[0], CHUNK):
        stop = min(start + CHUNK, frames.shape[0])
        cur = frames[start:stop].to(dtype)
        prev = frames[start - 1:stop - 1].to(dtype)
        flow = flow_bw[start - 1:stop - 1].to(device=frames.device, dtype=dtype)
        yield cur, backward_warp(prev, flow), mask[start - 1:stop - 1].to(device=frames.device, dtype=dtype)


def instability(frames: Tensor, flow_bw: Tensor, mask: Tensor) -> Tensor:
    """Per-frame temporal instability of a (stylised) clip.

    Gupta et al. 2017, Sec. 4 / Table 2 (and Ruder et al. 2016's temporal
    error): for ``t >= 1``::

        E_t = 1/D sum_k c_k (y_t - w(y_{t-1}))_k^2,   D = 3 H W

    with ``w`` backward warping by ``flow_bw_t`` and ``c`` the reliability
    mask.  This is exactly the training temporal loss
    (:func:`stablestyle.losses.temporal_loss`) evaluated on the outputs: the
    sum is divided by *all* ``3 H W`` entries, not by the mask sum, so masked
    (occluded) pixels count as zero error.

    Args:
        frames: ``(T, 3, H, W)`` outputs ``y`` in ``[0, 1]``, ``T >= 2``.
        flow_bw: ``(T, 2, H, W)`` (entry 0 ignored) or ``(T-1, 2, H, W)`` pixels,
            frame ``t -> t-1``; ground-truth flow where the clip has it.
        mask: ``(T, 1, H, W)`` or ``(T-1, 1, H, W)``, 1 = reliable.

    Returns:
        ``(T-1,)`` values for frames ``1 .. T-1`` in squared ``[0, 1]`` units,
        at least float32, on ``frames``' device.
    """
    flow_bw, mask = _check_clip(frames, flow_bw, mask)
    values = [temporal_loss(cur, warped, m, reduction="none") for cur, warped, m in
              _warped_pairs(frames, flow_bw, mask)]
    return torch.cat(values)


def mean_instability(frames: Tensor, flow_bw: Tensor, mask: Tensor) -> Tensor:
    """The clip's instability: the mean of :func:`instability` over frames ``1 .. T-1`` (a scalar)."""
    return instability(frames, flow_bw, mask).mean()


def warping_error_per_frame(frames: Tensor, flow_bw: Tensor, mask: Tensor) -> Tensor:
    """Per-frame warping error of Lai et al. 2018 (Learning Blind Video Temporal Consistency, Sec. 5.1).

    For ``t >= 1``::

        E_t = sum_i M_i ||V_t(i) - w(V_{t-1})(i)||^2 / sum_i M_i

    where ``i`` runs over pixels, ``||.||^2`` sums the 3 RGB channels and ``M``
    is the non-occlusion mask.  Unlike :func:`instability` the error is
    normalised by the number of *valid pixels*, so it does not shrink when
    much of the frame is occluded; the two differ by the factor
    ``3 * mean(M)``.  Lai et al. estimate the flow on the *input* video
    (FlowNet 2); this package uses DIS or DeepFlow and the Ruder et al. mask
    (see :mod:`stablestyle.evaluate.clips`).

    Args: as :func:`instability`.

    Returns:
        ``(T-1,)`` values in squared ``[0, 1]`` units summed over RGB; ``nan``
        for a frame whose mask is empty (no reliable pixel to judge it by).
    """
    flow_bw, mask = _check_clip(frames, flow_bw, mask)
    values = []
    for cur, warped, m in _warped_pairs(frames, flow_bw, mask):
        err = ((cur - warped).square().sum(1, keepdim=True) * m).flatten(1).sum(1)
        valid = m.flatten(1).sum(1)
        values.append(torch.where(valid > 0, err / valid.clamp_min(1e-12), torch.full_like(err, math.nan)))
    return torch.cat(values)


def warping_error(frames: Tensor, flow_bw: Tensor, mask: Tensor) -> Tensor:
    """The clip's warping error (Lai et al. 2018, Eq. 11): the mean of :func:`warping_error_per_frame`.

    Frames with an empty mask are left out of the mean; ``nan`` only when every
    mask is empty.  A scalar tensor.
    """
    per_frame = warping_error_per_frame(frames, flow_bw, mask)
    return per_frame.nanmean()


def perceptual_losses(outputs: Tensor, inputs: Tensor, loss: torch.nn.Module,
                      batch_size: int = 4) -> dict[str, Tensor]:
    """Style and content loss of each stylised frame (Gupta et al. 2017, Table 2).

    Uses the training definitions (:class:`stablestyle.losses.PerceptualLoss`):
    content = MSE of the VGG-16 content-layer features of output and input
    frame relative to the input features' energy; style = the mean over the
    style layers of the MSE between the output's Gram matrices and the style
    image's, each relative to the style Gram's energy.

    Args:
        outputs: ``(T, 3, H, W)`` stylised frames in ``[0, 1]``.
        inputs: ``(T, 3, H, W)`` the input frames they were made from.
        loss: a :class:`~stablestyle.losses.PerceptualLoss` holding the style
            targets (on the device the VGG runs on).
        batch_size: frames per VGG pass (memory only; values do not change).

    Returns:
        ``{"style": (T,), "content": (T,)}`` float32 on ``outputs``' device.
    """
    if outputs.shape != inputs.shape or outputs.dim() != 4:
        raise ValueError(f"outputs {tuple(outputs.shape)} and inputs {tuple(inputs.shape)} must both be "
                         "(T, 3, H, W)")
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    style, content = [], []
    for start in range(0, outputs.shape[0], batch_size):
        terms = loss.evaluate(outputs[start:start + batch_size], inputs[start:start + batch_size])
        style.append(terms["style"])
        content.append(terms["content"])
    return {"style": torch.cat(style), "content": torch.cat(content)}


@dataclass
class Speed:
    """Timings of one file-to-file run (seconds, from :func:`time.perf_counter`).

    ``model_seconds`` is the time spent producing output frames *excluding*
    reading / decoding the input and writing / encoding the output (for a
    network: upload, forward pass, download); ``first_frame_seconds`` is its
    share for the first frame, which also pays one-off costs (moving weights
    to the device, kernel selection, optimiser set-up); ``total_seconds`` is
    the whole loop from opening the input to closing the output.
    """

    frames: int
    model_seconds: float
    decode_seconds: float
    encode_seconds: float
    total_seconds: float
    first_frame_seconds: float = 0.0

    @property
    def fps_model(self) -> float:
        """Frames per second of the method alone (no decode / encode), all frames."""
        return self.frames / self.model_seconds if self.model_seconds > 0 else math.inf

    @property
    def fps_model_steady(self) -> float:
        """Like :attr:`fps_model` without the first frame (steady-state throughput); needs >= 2 frames."""
        if self.frames < 2:
            return self.fps_model
        rest = self.model_seconds - self.first_frame_seconds
        return (self.frames - 1) / rest if rest > 0 else math.inf

    @property
    def fps_total(self) -> float:
        """Frames per second of the whole file-to-file loop (decode + method + encode)."""
        return self.frames / self.total_seconds if self.total_seconds > 0 else math.inf

    def as_dict(self) -> dict:
        d = asdict(self)
        d["fps_model"] = self.fps_model
        d["fps_model_steady"] = self.fps_model_steady
        d["fps_total"] = self.fps_total
        return d


class _Timed:
    """Iterates ``items`` (``iter`` taken at the first ``next``), adding the time every ``next`` took,
    the final one that ends it included, to ``seconds``."""

    def __init__(self, items: Iterable, clock: Callable[[], float]) -> None:
        self._items, self._it, self._clock = items, None, clock
        self.seconds = 0.0

    def __iter__(self) -> _Timed:
        return self

    def __next__(self):
        if self._it is None:
            self._it = iter(self._items)
        t0 = self._clock()
        try:
            item = next(self._it)
        except StopIteration:
            self.seconds += self._clock() - t0
            raise
        self.seconds += self._clock() - t0
        return item


def measure_stream(
    process: Callable[[Iterable[np.ndarray]], Iterator[np.ndarray]],
    frames: Iterable[np.ndarray],
    write: Callable[[np.ndarray], None] | None = None,
    *,
    clock: Callable[[], float] = time.perf_counter,
) -> tuple[list[np.ndarray], Speed]:
    """Run ``process`` over ``frames``, timing the method apart from decoding and encoding.

    Methods are lazy iterators that pull input frames while producing
    outputs, so decode time is measured *inside* the input iterator and
    subtracted from the time spent waiting for each output; ``write`` (the
    encoder) is timed around each call.  ``total_seconds`` covers this call
    only: the caller adds opening the source and closing (flushing) the sink,
    see :meth:`Speed`.

    Args:
        process: ``frames -> output frames`` (uint8 ``(H, W, 3)`` each).
        frames: the input frames (typically a lazily decoding source).
        write: called on every output frame (e.g. ``sink.write``), or ``None``.
        clock: the timer (injected by tests).

    Returns:
        ``(outputs, speed)``: the output frames (kept for the metrics) and the timings.
    """
    inputs = _Timed(frames, clock)
    outputs: list[np.ndarray] = []
    encode = 0.0
    first = None
    start = clock()
    results = _Timed(process(inputs), clock)
    for out in results:
        if first is None:
            first = max(results.seconds - inputs.seconds, 0.0)
        outputs.append(out)
        if write is not None:
            t0 = clock()
            write(out)
            encode += clock() - t0
    total = clock() - start
    speed = Speed(frames=len(outputs), model_seconds=max(results.seconds - inputs.seconds, 0.0),
                  decode_seconds=inputs.seconds, encode_seconds=encode, total_seconds=total,
                  first_frame_seconds=first or 0.0)
    return outputs, speed
