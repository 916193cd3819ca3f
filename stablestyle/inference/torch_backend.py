"""The ``"torch"`` backend: the network in PyTorch, eager or compiled, on CPU or CUDA.

Owns :class:`TorchBackend` and :data:`COMPILE_MODES`.  On CUDA: fp16 / bf16
autocast, channels-last tensors, ``cudnn.benchmark``, optional
``torch.compile`` and CUDA graphs (:class:`~stablestyle.inference.cuda.CudaGraphs`:
static shapes, captured after a warm-up), pinned host buffers with
non-blocking copies and uint8 quantisation on the GPU so only a quarter of
the bytes cross back (:func:`~stablestyle.inference.cuda.stream_pinned`).  On
CPU: fp32, or bf16 when asked, with ``torch.set_num_threads``; instance
norms run as group norms (:class:`~stablestyle.inference.rewrites.GroupInstanceNorm2d`,
native channels-last kernels).  CPU bf16 casts the whole net (weights and
activations, instance norm included) instead of using autocast: autocast
keeps instance norm in fp32 and converts every layer's activations there and
back, which costs more than the bf16 arithmetic saves, at the same accuracy
(docs/PERFORMANCE.md).  On both devices the thin 9x9 convolutions are split
into output phases and the upsampling layers computed at the low resolution
(:mod:`stablestyle.inference.rewrites`).

Global settings touched (documented because they outlive the backend):
``torch.backends.cudnn.benchmark = True`` on CUDA, and
``torch.set_num_threads(threads)`` when ``threads`` is given.
"""

from __future__ import annotations

import contextlib
import copy
import logging
from collections.abc import Iterable, Iterator

import numpy as np
import torch
from torch import nn

from ..errors import UserError
from . import precision as _precision
from .backend import Backend, Restart, register_backend
from .cuda import CudaGraphs, stream_pinned
from .frames import as_input
from .rewrites import (
    SPLIT_MAX_OUT_CHANNELS,
    SPLIT_MAX_OUT_CHANNELS_CUDA,
    group_instance_norms,
    split_thin_convs,
    subpixel_upsample_convs,
)

log = logging.getLogger(__name__)

#: ``compile=`` strings passed to ``torch.compile`` as ``mode``; any other string is a ``backend``
#: name (e.g. ``"eager"`` / ``"aot_eager"``, which check graph capture without a C++ compiler).
COMPILE_MODES = ("default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs")


@register_backend("torch")
class TorchBackend(Backend):
    """Eager or compiled PyTorch (see the module docstring for the CUDA / CPU settings)."""

    def __init__(self, model, *, device: torch.device, precision: str, threads: int | None,
                 channels_last: bool, compile: bool | str, cuda_graphs: bool, split_convs: bool,
                 group_norms: bool = False, subpixel: bool = False) -> None:
        if not isinstance(model, nn.Module):
            raise UserError(f"the torch backend needs a network (a loaded checkpoint), got {type(model).__name__}; "
                            "an .onnx file runs with --backend onnx")
        if cuda_graphs and device.type != "cuda":
            raise UserError("CUDA graphs need a CUDA device")
        if cuda_graphs and compile:
            raise UserError("use either CUDA graphs or torch.compile (compile='reduce-overhead' captures graphs "
                            "itself), not both")
        super().__init__(device, precision, bool(getattr(model, "recurrent", False)))
        net = copy.deepcopy(model).eval().requires_grad_(False).to(device)
        limit = SPLIT_MAX_OUT_CHANNELS_CUDA if device.type == "cuda" else SPLIT_MAX_OUT_CHANNELS
        self.split_convs = split_thin_convs(net, max_out_channels=limit) if split_convs else []
        self.subpixel = subpixel_upsample_convs(net) if subpixel else []
        self.group_norms = group_instance_norms(net) if group_norms else []
        self.channels_last = bool(channels_last)
        if self.channels_last:
            net = net.to(memory_format=torch.channels_last)
        # CPU bf16: the whole net in bf16, no autocast (see the module docstring)
        self._cast_net = device.type == "cpu" and precision == "bf16"
        if self._cast_net:
            net = net.to(torch.bfloat16)
            if _precision.cpu_has_native_bf16() is False:
                log.warning("this CPU has no native bf16 (AVX-512 BF16 / AMX): bf16 is emulated and likely slower "
                            "than fp32 here; drop --half / --precision bf16")
        if device.type == "cuda":
            torch.backends.cudnn.benchmark = True
        if threads is not None:
            torch.set_num_threads(threads)
        self.threads = threads
        self.net = net
        self.compile = compile
        self._forward = _compiled(net, compile) if compile else net
        self.cuda_graphs = bool(cuda_graphs)
        self._graphs = CudaGraphs(self._call, device, self.recurrent) if self.cuda_graphs else None
        self._compiled_graphs = compile in ("reduce-overhead", "max-autotune") and device.type == "cuda"
        self._dtype = _precision.DTYPES[precision]

    def describe(self) -> dict:
        return {**super().describe(), "channels_last": self.channels_last, "compile": self.compile,
                "weights_dtype": str(next(self.net.parameters()).dtype).removeprefix("torch."),
                "cuda_graphs": self.cuda_graphs, "split_convs": self.split_convs, "subpixel": self.subpixel,
                "group_norms": len(self.group_norms),
                "threads": self.threads or torch.get_num_threads()}

    def _autocast(self, cache_enabled: bool = True):
        if self._dtype == torch.float32 or self._cast_net:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=self._dtype, cache_enabled=cache_enabled)

    def _call(self, x: torch.Tensor, prev: torch.Tensor | None) -> torch.Tensor:
        if self._cast_net:
            x = x.to(self._dtype)
            prev = prev.to(self._dtype) if prev is not None else None
        with self._autocast(cache_enabled=not self.cuda_graphs):
            out, _ = self._forward(x, prev)
        return out

    @torch.inference_mode()
    def step(self, frame, state=None):
        x = as_input(frame, self.device)
        fmt = torch.channels_last if self.channels_last else torch.contiguous_format
        if self.compile:
            # torch.compile guards on exact strides (also of size-1 dims: numpy's a[None] gives stride 0) and
            # on inference-mode-ness; a fresh copy makes every frame alike, so nothing recompiles (minutes with
            # max-autotune) when uint8 frames follow float tensors or a caller's tensor comes in
            x = torch.empty(x.shape, dtype=x.dtype, device=x.device, memory_format=fmt).copy_(x)
        else:
            x = x.contiguous(memory_format=fmt)
        if state is not None and state.device != self.device:
            state = state.to(self.device)
        if self.compile and self.recurrent and state is None:
            # the net takes the frame as its own previous output; passing it explicitly, in the dtype the
            # outputs have, lets a clip's first frame and the rest share one compiled graph
            state = x.to(self._dtype, copy=True)
        if self._graphs is not None:
            out = self._graphs.step(x, state)
        elif self._compiled_graphs:
            # torch.compile's own CUDA graphs (reduce-overhead, max-autotune) write every output into one
            # static buffer, which the next replay overwrites: the output doubles as the next frame's state
            # and is handed out after that replay, so it is copied ("accessing tensor output of
            # CUDAGraphs that has been overwritten by a subsequent run" without it)
            torch.compiler.cudagraph_mark_step_begin()
            out = self._call(x, state if self.recurrent else None).clone()
        else:
            out = self._call(x, state if self.recurrent else None)
        return out, (out if self.recurrent else None)

    def run(self, frames: Iterable[np.ndarray], restart: Restart | None = None) -> Iterator[np.ndarray]:
        """:meth:`Backend.run`; on CUDA streamed through pinned buffers (:func:`~.cuda.stream_pinned`)."""
        if self.device.type != "cuda":
            yield from super().run(frames, restart)
            return
        yield from stream_pinned(frames, self.step, self.device, restart)


def _compiled(net: nn.Module, compile: bool | str):
    """``torch.compile(net)`` with static shapes; a string ``compile`` is a mode of :data:`COMPILE_MODES`
    or else a torch.compile backend name."""
    kwargs = {"dynamic": False}
    if isinstance(compile, str):
        kwargs["mode" if compile in COMPILE_MODES else "backend"] = compile
    log.info("torch.compile: the first frame waits for compiling (seconds on a CPU, minutes with "
             "max-autotune); the frame rate counts that wait")
    return torch.compile(net, **kwargs)
