"""The torch backend's CUDA-only paths: CUDA-graph replay and streaming through pinned host buffers.

Owns :class:`CudaGraphs` (one captured graph per input shape, inputs copied into static
buffers) and :func:`stream_pinned` (a clip's frames through the GPU with asynchronous copies,
overlapping frame ``t``'s GPU work with handing out frame ``t-1``).  Both are driven by
:class:`stablestyle.inference.torch_backend.TorchBackend`; nothing here is used on a CPU.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator

import numpy as np
import torch

from .frames import quantize

log = logging.getLogger(__name__)

#: CUDA-graph warm-up iterations on a side stream before capture (cudnn.benchmark autotuning,
#: allocator warm-up), as the PyTorch CUDA-graphs notes recommend.
GRAPH_WARMUP = 3

#: ``call(x, prev) -> out``: one network call (autocast and dtype handling included).
NetCall = Callable[[torch.Tensor, "torch.Tensor | None"], torch.Tensor]
#: ``step(x, state) -> (out, state)``: a backend's step.
Step = Callable[[torch.Tensor, "torch.Tensor | None"], "tuple[torch.Tensor, torch.Tensor | None]"]


class CudaGraphs:
    """Replays ``call`` as CUDA graphs: one capture per input shape, inputs copied into static buffers.

    ``recurrent``: ``call`` takes the previous output as ``prev`` (``None`` state: the frame is its
    own previous output, as the network does at a clip's start).
    """

    def __init__(self, call: NetCall, device: torch.device, recurrent: bool) -> None:
        self.call, self.device, self.recurrent = call, device, recurrent
        self._graphs: dict[tuple, tuple] = {}  # shape -> (graph, static frame, static prev, static out)

    @property
    def shapes(self) -> list[tuple]:
        """The input shapes captured so far."""
        return list(self._graphs)

    def step(self, x: torch.Tensor, state: torch.Tensor | None) -> torch.Tensor:
        key = tuple(x.shape)
        if key not in self._graphs:
            self._graphs[key] = self._capture(x)
        graph, static_x, static_prev, static_out = self._graphs[key]
        static_x.copy_(x)
        if self.recurrent:
            static_prev.copy_(x if state is None else state)  # state None: the frame is its own previous output
        graph.replay()
        return static_out.clone()  # the next replay overwrites static_out

    def _capture(self, x: torch.Tensor) -> tuple:
        static_x = x.clone()
        static_prev = x.clone() if self.recurrent else None
        side = torch.cuda.Stream(self.device)
        side.wait_stream(torch.cuda.current_stream(self.device))
        with torch.cuda.stream(side):
            for _ in range(GRAPH_WARMUP):
                self.call(static_x, static_prev)
        torch.cuda.current_stream(self.device).wait_stream(side)
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            static_out = self.call(static_x, static_prev)
        log.debug("captured a CUDA graph for input shape %s", tuple(x.shape))
        return graph, static_x, static_prev, static_out


class _PinnedRing:
    """Two page-locked ``uint8`` frames each way, and an event per input buffer that says when it is free."""

    def __init__(self, shape: tuple[int, ...]) -> None:
        self.inputs = [torch.empty(shape, dtype=torch.uint8, pin_memory=True) for _ in range(2)]
        self.outputs = [torch.empty(shape, dtype=torch.uint8, pin_memory=True) for _ in range(2)]
        self.uploaded: list[torch.cuda.Event | None] = [None, None]

    def upload(self, slot: int, frame: np.ndarray, device: torch.device) -> torch.Tensor:
        """``frame`` onto the device through buffer ``slot``, as float channels-last ``(1, 3, H, W)``."""
        if self.uploaded[slot] is not None:
            self.uploaded[slot].synchronize()  # the upload from this buffer two frames ago has finished
        # numpy, not torch's copy_: torch spreads a host copy over its OpenMP pool, whose threads then
        # spin-wait, taking the cores the decoder and x264 run on (docs/PERFORMANCE.md)
        np.copyto(self.inputs[slot].numpy(), frame)
        x = self.inputs[slot].to(device, non_blocking=True)
        self.uploaded[slot] = torch.cuda.Event(blocking=True)
        self.uploaded[slot].record()
        return x.permute(2, 0, 1)[None].float().div_(255.0)  # the same as frames_to_tensor

    def download(self, slot: int, out: torch.Tensor) -> tuple[torch.Tensor, torch.cuda.Event]:
        """Start copying ``out`` (quantised) into buffer ``slot``; the event says when it has arrived."""
        self.outputs[slot].copy_(quantize(out)[0], non_blocking=True)
        done = torch.cuda.Event(blocking=True)
        done.record()
        return self.outputs[slot], done


def _hand_out(pending: tuple[torch.Tensor, torch.cuda.Event]) -> np.ndarray:
    pending[1].synchronize()
    return pending[0].numpy().copy()


@torch.inference_mode()
def stream_pinned(frames: Iterable[np.ndarray], step: Step, device: torch.device,
                  restart: Callable[[np.ndarray], bool] | None = None) -> Iterator[np.ndarray]:
    """Like :meth:`Backend.run` on a CUDA device, overlapping frame ``t``'s GPU work with handing out ``t-1``.

    Host-side buffers are pinned (page-locked) rings of two so copies are
    asynchronous; an event per buffer says when it may be reused / read.
    The events are blocking: waiting on one sleeps instead of spinning a
    core, which the decoder and the encoder need.  A change of frame size
    starts a new clip (the state is reset, with a log line), and so does a
    frame for which ``restart(frame)`` is true (a scene cut).
    """
    state, shape, ring = None, None, None
    pending: tuple[torch.Tensor, torch.cuda.Event] | None = None
    for i, frame in enumerate(frames):
        slot = i % 2
        if frame.shape != shape:
            if pending is not None:  # hand out the last frame of the old size before reallocating
                yield _hand_out(pending)
                pending = None
            if shape is not None:
                log.info("frame size changed from %s to %s; restarting the recurrent state", shape, frame.shape)
            state, shape, ring = None, frame.shape, _PinnedRing(frame.shape)
        if restart is not None and restart(frame):
            state = None
        x = ring.upload(slot, frame, device)
        out, state = step(x, state)
        done = ring.download(slot, out)
        if pending is not None:
            yield _hand_out(pending)
        pending = done
    if pending is not None:
        yield _hand_out(pending)
