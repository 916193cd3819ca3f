"""Inference backends for the transformation network, and runners built on them.

One interface, several engines (a small registry, :data:`BACKENDS`):

* ``"torch"`` -- eager PyTorch.  On CUDA: fp16 / bf16 autocast, channels-last
  tensors, ``cudnn.benchmark``, optional ``torch.compile`` and CUDA graphs
  (static shapes, captured after a warm-up), pinned host buffers with
  non-blocking copies, and uint8 quantisation on the GPU so only a quarter
  of the bytes cross back.  On CPU: fp32, or bf16 when asked, with
  ``torch.set_num_threads``; instance norms run as group norms
  (:class:`GroupInstanceNorm2d`, native channels-last kernels).  CPU bf16
  casts the whole net (weights and activations, instance norm included)
  instead of using autocast: autocast keeps instance norm in fp32 and
  converts every layer's activations there and back, which cost 45% of the
  small net's time (40 against 22 frames/s, the same accuracy;
  docs/PERFORMANCE.md).  On both devices two rewrites that keep the
  function give the convolutions shapes their kernels run faster: the thin
  9x9 layers split into output phases (:class:`PhaseSplitConv2d`) and the
  upsampling layers computed at the low resolution
  (:class:`SubpixelUpsampleConv`).
* ``"onnx"`` -- onnxruntime on a graph from :mod:`stablestyle.export` (CPU
  execution provider; the CUDA one when the device is CUDA and the
  installed onnxruntime has it).  The recurrent state is an explicit graph
  input ``prev`` / output ``out``.

:func:`make_backend` builds one; every backend has

* ``step(frame, state) -> (out, state)``: ``frame`` is a ``uint8`` ``(H, W, 3)``
  RGB array or a float tensor ``(B, 3, H, W)`` in ``[0, 1]``; ``out`` is a
  float tensor ``(B, 3, H, W)`` in ``(0, 1)`` on ``backend.device`` (CPU for
  onnx) in the compute dtype; ``state`` is ``None`` at a clip's start and
  afterwards whatever ``step`` returned (for recurrent nets the previous
  output, a ``(B, 3, H, W)`` tensor; ``None`` for per-frame nets);
* ``run(frames) -> iterator of uint8 (H, W, 3) frames`` for one clip, the
  state kept in a local variable of the call.

Runners: :func:`run_pipelined` (decode / inference / encode in three threads
with bounded queues, so the accelerator does not wait for the CPU) and
:func:`stylize_streams` / :func:`stylize_many` (several *independent* inputs
batched into one network call per step, each with its own recurrent state).
:func:`conv_flops` counts the network's arithmetic for the benchmarks.

Global settings touched (documented because they outlive the backend):
``torch.backends.cudnn.benchmark = True`` on CUDA, and
``torch.set_num_threads(threads)`` when ``threads`` is given.
"""

from __future__ import annotations

import contextlib
import copy
import itertools
import logging
import os
import queue
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .errors import UserError
from .export import INPUT_FRAME, INPUT_PREV, OUTPUT

log = logging.getLogger(__name__)

PRECISIONS = ("auto", "fp32", "fp16", "bf16")
_DTYPES = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}
#: ``compile=`` strings passed to ``torch.compile`` as ``mode``; any other string is a ``backend``
#: name (e.g. ``"eager"`` / ``"aot_eager"``, which check graph capture without a C++ compiler).
COMPILE_MODES = ("default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs")
#: CUDA-graph warm-up iterations on a side stream before capture (cudnn.benchmark autotuning,
#: allocator warm-up), as the PyTorch CUDA-graphs notes recommend.
GRAPH_WARMUP = 3


# ----------------------------------------------------------------------------- small pure helpers

def resolve_precision(precision: str, device: torch.device | str) -> str:
    """``"auto"`` -> ``"fp16"`` on CUDA, ``"fp32"`` elsewhere; checks the name and what the device supports.

    fp16 on CPU is refused (CPU kernels for it are slow); use bf16 there.
    """
    device = torch.device(device)
    if precision not in PRECISIONS:
        raise UserError(f"unknown precision {precision!r}; valid: {', '.join(PRECISIONS)}")
    if precision == "auto":
        return "fp16" if device.type == "cuda" else "fp32"
    if precision == "fp16" and device.type != "cuda":
        raise UserError("fp16 needs a CUDA device; on CPU use --precision fp32 or bf16")
    if precision == "bf16" and device.type == "cuda" and not torch.cuda.is_bf16_supported():
        raise UserError("this GPU does not support bf16; use --precision fp16 or fp32")
    return precision


def cpu_has_native_bf16() -> bool | None:
    """Whether this CPU computes bf16 natively (AVX-512 BF16 or AMX); ``None`` when torch cannot tell.

    Without it PyTorch emulates bf16 and ``precision="bf16"`` is slower than fp32.
    """
    import platform

    if platform.machine().lower() not in ("x86_64", "amd64", "i386", "i686"):
        return None  # torch's helpers test x86 features only (ARM CPUs may have bf16 too)
    try:
        return bool(torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported())
    except AttributeError:  # private helpers: absent from some torch builds
        return None


def bf16_is_native(backend: str, device: torch.device) -> bool:
    """Whether ``backend`` on ``device`` would run bf16 natively: the torch backend on a CPU with
    :func:`cpu_has_native_bf16` (where bf16 is worth choosing, or suggesting, over fp32)."""
    return backend == "torch" and device.type == "cpu" and bool(cpu_has_native_bf16())


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


def _as_input(frame, device: torch.device) -> torch.Tensor:
    """A step's ``frame`` argument as float ``(B, 3, H, W)`` on ``device``."""
    if isinstance(frame, np.ndarray):
        return frames_to_tensor(frame, device)
    if isinstance(frame, torch.Tensor):
        if frame.ndim != 4 or frame.shape[1] != 3 or not frame.is_floating_point():
            raise ValueError(f"frame tensors must be float (B, 3, H, W), got {frame.dtype} {tuple(frame.shape)}")
        return frame.to(device, non_blocking=True)
    raise TypeError(f"frame must be a uint8 numpy array or a float tensor, got {type(frame).__name__}")


# ----------------------------------------------------------------------------- rewrites that keep the function

#: Convolutions that :func:`split_thin_convs` rewrites: stride 1, kernel >= 5, and fewer output channels
#: than one AVX-512 register holds in fp32 (16).  In this network: the 9x9 ``deconv3`` (to RGB) and, for
#: widths < 0.5, the 9x9 ``conv1``.
SPLIT_MIN_KERNEL, SPLIT_MAX_OUT_CHANNELS = 5, 15
#: On CUDA the limit is wider: tensor-core convolutions want many output channels (implicit GEMM's N), and
#: both 9x9 layers have few (3 and 32 at width 1.0; the 9x9 to RGB took 1.36-1.50 ms of a 5.5 ms frame at
#: 1080p on an H100, the 6-to-32 one 0.73 ms: torch.compile's autotuning log,
#: reports/bench/gpu_h100_autotune_convs.md).
SPLIT_MAX_OUT_CHANNELS_CUDA = 32


class PhaseSplitConv2d(nn.Module):
    """A stride-1 ``k x k`` convolution computed as ``s x s`` output phases in one strided convolution.

    Output pixel ``(s i + a, s j + b)`` of the original convolution is output
    ``(i, j)`` of a stride-``s`` convolution whose ``(k+s-1)^2`` kernel holds
    the original kernel shifted by ``(a, b)``; the ``s^2`` phases become
    ``s^2`` times the output channels and :func:`torch.nn.functional.pixel_shuffle`
    puts them back in place.  The result is the same (up to summation order);
    the arithmetic grows by ``((k+s-1)/k)^2`` (1.23x for ``k=9, s=2``) but a
    CPU convolution with 3 or 8 output channels wastes most of each SIMD
    register, and with ``4x`` the channels the whole width-0.25 network runs
    1.2-1.4x faster on one CPU thread (``bench/cpu_variants.py``; see
    docs/PERFORMANCE.md).
    Frames whose output size is not a multiple of ``s`` use the original conv.
    Input: ``(B, C_in, H + k - 1, W + k - 1)`` (already padded, as the
    network's ``ConvLayer`` does); output ``(B, C_out, H, W)``.
    """

    def __init__(self, conv: nn.Conv2d, phases: int = 2) -> None:
        super().__init__()
        c_out, c_in, k, k2 = conv.weight.shape
        if conv.stride != (1, 1) or conv.groups != 1 or conv.dilation != (1, 1) or conv.padding != (0, 0) \
                or k != k2 or conv.padding_mode != "zeros":
            raise ValueError("PhaseSplitConv2d needs a square, unpadded, stride-1, ungrouped Conv2d")
        s, big = phases, k + phases - 1
        weight = conv.weight.detach()
        split = weight.new_zeros(c_out, s, s, c_in, big, big)
        for a in range(s):
            for b in range(s):
                split[:, a, b, :, a:a + k, b:b + k] = weight
        self.conv = conv
        self.phases, self.kernel = s, k
        self.register_buffer("split_weight", split.reshape(c_out * s * s, c_in, big, big))
        bias = conv.bias.detach().repeat_interleave(s * s) if conv.bias is not None else None
        self.register_buffer("split_bias", bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s, k = self.phases, self.kernel
        if (x.shape[-2] - k + 1) % s or (x.shape[-1] - k + 1) % s:
            return self.conv(x)
        return F.pixel_shuffle(F.conv2d(x, self.split_weight, self.split_bias, stride=s), s)


def split_thin_convs(net: nn.Module, phases: int = 2, max_out_channels: int = SPLIT_MAX_OUT_CHANNELS) -> list[str]:
    """Replace (in place) every qualifying ``nn.Conv2d`` of ``net`` by a :class:`PhaseSplitConv2d`.

    Qualifying: stride 1, square kernel >= :data:`SPLIT_MIN_KERNEL`, at most
    ``max_out_channels`` output channels (:data:`SPLIT_MAX_OUT_CHANNELS` for CPU
    kernels, :data:`SPLIT_MAX_OUT_CHANNELS_CUDA` for GPU ones), no padding /
    groups / dilation.  Returns the names of the replaced modules.
    """
    def thin(m: nn.Module) -> bool:
        return (isinstance(m, nn.Conv2d) and m.stride == (1, 1) and m.groups == 1 and m.dilation == (1, 1)
                and m.padding == (0, 0) and m.padding_mode == "zeros"
                and m.kernel_size[0] == m.kernel_size[1] >= SPLIT_MIN_KERNEL and m.out_channels <= max_out_channels)

    return _replace_children(net, thin, lambda conv: PhaseSplitConv2d(conv, phases))


def _replace_children(net: nn.Module, match: Callable[[nn.Module], bool],
                      replace: Callable[[nn.Module], nn.Module]) -> list[str]:
    """Put ``replace(child)`` in place of every submodule of ``net`` that ``match``-es (in place); returns
    the replaced modules' names.  The rewrites below share it."""
    replaced = []
    for parent_name, parent in list(net.named_modules()):
        for name, child in list(parent.named_children()):
            if match(child):
                setattr(parent, name, replace(child))
                replaced.append(f"{parent_name}.{name}" if parent_name else name)
    return replaced


class SubpixelUpsampleConv(nn.Module):
    """Nearest x2 upsampling, reflection padding 1 and a 3x3 convolution, computed at the low resolution.

    The network's :class:`~stablestyle.models.transformer.UpsampleConvLayer`
    builds the 4x larger upsampled (and padded) map and convolves it.  Each
    output pixel ``(2i + a, 2j + b)`` only sees low-resolution pixels around
    ``(i, j)``: reflection-padding a nearest-upsampled map by one pixel equals
    upsampling the map padded by one pixel with edge replication, and along each
    axis the three taps fall on two low-resolution pixels (phase 0: ``w0`` and
    ``w1 + w2``; phase 1: ``w0 + w1`` and ``w2``).  So one 3x3 convolution of
    the edge-padded low-resolution map with ``4 x C_out`` channels (one kernel
    per output phase, folded from the original) followed by
    :func:`torch.nn.functional.pixel_shuffle` gives the same output (up to
    summation order), with the same arithmetic, without the upsampled
    intermediate, and with 4x the output channels per convolution (tensor-core
    convolutions want many).  Input ``(B, C_in, h, w)``, output ``(B, C_out, 2h, 2w)``.
    """

    #: ``_FOLD[a][t, i]``: 1 where tap ``i`` of the original kernel lands on low-resolution offset ``t``
    #: for output phase ``a``.
    _FOLD = ((
        (1.0, 0.0, 0.0), (0.0, 1.0, 1.0), (0.0, 0.0, 0.0)), (
        (0.0, 0.0, 0.0), (1.0, 1.0, 0.0), (0.0, 0.0, 1.0)))

    def __init__(self, layer: nn.Module) -> None:
        super().__init__()
        conv, pad = getattr(layer, "conv2d", None), getattr(layer, "pad", None)
        if (not isinstance(conv, nn.Conv2d) or not isinstance(pad, nn.ReflectionPad2d)
                or tuple(pad.padding) != (1, 1, 1, 1) or conv.kernel_size != (3, 3) or conv.stride != (1, 1)
                or conv.padding != (0, 0) or conv.dilation != (1, 1) or conv.groups != 1):
            raise ValueError("SubpixelUpsampleConv needs an upsample layer with ReflectionPad2d(1) and an "
                             "unpadded, stride-1, ungrouped 3x3 Conv2d")
        weight = conv.weight.detach()
        fold = weight.new_tensor(self._FOLD)  # (phase, t, i)
        # (C_out, a, b, C_in, t_y, t_x) = sum_ij fold[a, t_y, i] * W[o, c, i, j] * fold[b, t_x, j]
        folded = torch.einsum("ayi,ocij,bxj->oabcyx", fold, weight, fold)
        self.register_buffer("weight", folded.reshape(4 * conv.out_channels, conv.in_channels, 3, 3).contiguous())
        self.register_buffer("bias", conv.bias.detach().repeat_interleave(4) if conv.bias is not None else None)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # edge replication by concatenation: F.pad(mode="replicate") (or clamped indexing) between two
        # pixel shuffles fails in torch.compile's index simplification ("vr must not be None", torch 2.13)
        x = torch.cat([x[:, :, :1], x, x[:, :, -1:]], dim=2)
        x = torch.cat([x[:, :, :, :1], x, x[:, :, :, -1:]], dim=3)
        return F.pixel_shuffle(F.conv2d(x, self.weight, self.bias), 2)


def subpixel_upsample_convs(net: nn.Module) -> list[str]:
    """Replace (in place) every upsample-then-conv layer of ``net`` by a :class:`SubpixelUpsampleConv`.

    Returns the names of the replaced modules (``deconv1``, ``deconv2`` in a
    :class:`~stablestyle.models.TransformerNet`).
    """
    from .models.transformer import UpsampleConvLayer

    return _replace_children(net, lambda m: isinstance(m, UpsampleConvLayer), SubpixelUpsampleConv)


#: Below this many channels CPU bf16 ``group_norm`` on channels-last tensors takes a slow path (5.3 ms
#: against instance norm's 1.0 ms for 8 channels at 640x360, ``bench/norm_kernels.py``); those layers keep
#: ``instance_norm``.
GROUP_NORM_MIN_BF16_CHANNELS = 16


class GroupInstanceNorm2d(nn.Module):
    """Affine instance norm computed as ``group_norm`` with one group per channel (the same function).

    PyTorch's CPU ``instance_norm`` reshapes its input to ``(1, B*C, H, W)`` for
    a batch norm, which copies channels-last tensors twice and made it the
    network's most expensive op here; ``group_norm`` has a native
    channels-last kernel, and the whole net ran 1.4-1.9x faster with it on two CPU
    threads (``bench/cpu_variants.py``'s ``instance-norm`` variants; docs/PERFORMANCE.md).
    bf16 inputs with fewer than :data:`GROUP_NORM_MIN_BF16_CHANNELS` channels still go
    through ``instance_norm``.
    """

    def __init__(self, norm: nn.InstanceNorm2d) -> None:
        super().__init__()
        if not norm.affine or norm.track_running_stats:
            raise ValueError("GroupInstanceNorm2d needs an affine InstanceNorm2d without running stats")
        self.num_features, self.eps = norm.num_features, norm.eps
        self.weight, self.bias = norm.weight, norm.bias

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dtype == torch.bfloat16 and self.num_features < GROUP_NORM_MIN_BF16_CHANNELS:
            return F.instance_norm(x, weight=self.weight, bias=self.bias, eps=self.eps)
        return F.group_norm(x, self.num_features, self.weight, self.bias, self.eps)


def group_instance_norms(net: nn.Module) -> list[str]:
    """Replace (in place) every affine ``nn.InstanceNorm2d`` of ``net`` by a :class:`GroupInstanceNorm2d`.

    The parameters are shared, not copied.  Returns the names of the replaced modules.
    """
    return _replace_children(
        net, lambda m: isinstance(m, nn.InstanceNorm2d) and m.affine and not m.track_running_stats,
        GroupInstanceNorm2d)


# ----------------------------------------------------------------------------- registry

class Backend:
    """Common interface; see the module docstring.  Build with :func:`make_backend`.

    Attributes: ``name``, ``device`` (where ``step`` returns tensors),
    ``precision`` (resolved: fp32 / fp16 / bf16), ``recurrent``.
    """

    name = "?"

    def __init__(self, device: torch.device, precision: str, recurrent: bool) -> None:
        self.device = device
        self.precision = precision
        self.recurrent = recurrent

    def step(self, frame, state=None) -> tuple[torch.Tensor, torch.Tensor | None]:
        raise NotImplementedError

    def run(self, frames: Iterable[np.ndarray]) -> Iterator[np.ndarray]:
        """Stylize one clip: ``uint8`` ``(H, W, 3)`` frames in, ``uint8`` frames out, in order.

        The recurrent state lives in this call; a change of frame size
        starts a new clip (the state is reset, with a log line).
        """
        state, shape = None, None
        for frame in frames:
            if frame.shape != shape:
                if shape is not None:
                    log.info("frame size changed from %s to %s; restarting the recurrent state", shape, frame.shape)
                state, shape = None, frame.shape
            out, state = self.step(frame, state)
            yield quantize(out)[0].cpu().numpy()

    def describe(self) -> dict:
        """Settings in effect (for benchmark JSON and logs)."""
        return {"backend": self.name, "device": str(self.device), "precision": self.precision,
                "recurrent": self.recurrent}


BACKENDS: dict[str, type[Backend]] = {}


def register_backend(name: str) -> Callable[[type[Backend]], type[Backend]]:
    """Class decorator: make a :class:`Backend` subclass available to :func:`make_backend` as ``name``."""
    def decorate(cls: type[Backend]) -> type[Backend]:
        cls.name = name
        BACKENDS[name] = cls
        return cls
    return decorate


def make_backend(name: str, model, *, device: torch.device | str = "cpu", precision: str = "auto",
                 threads: int | None = None, channels_last: bool = True, compile: bool | str = False,
                 cuda_graphs: bool = False, split_convs: bool | None = None,
                 group_norms: bool | None = None, subpixel: bool | None = None) -> Backend:
    """Build the inference backend ``name`` (one of :data:`BACKENDS`) for ``model``.

    Args:
        model: a :class:`~stablestyle.models.TransformerNet` (it is copied, never
            modified); the onnx backend also takes the path of an ``.onnx`` file
            written by ``stablestyle export``.
        device: ``torch.device`` or a name for :func:`stablestyle.runtime.resolve_device`.
        precision: ``auto`` (fp16 on CUDA, fp32 on CPU), ``fp32``, ``fp16`` (CUDA) or ``bf16``.
        threads: CPU threads (``torch.set_num_threads`` / onnxruntime ``intra_op_num_threads``);
            ``None`` keeps the library's default.
        channels_last: NHWC memory layout (torch backend).
        compile: ``torch.compile`` the net (torch backend): ``True``, a mode from
            :data:`COMPILE_MODES`, or a torch.compile backend name.  Compiling takes ~25 s on
            CPU (first frames); dynamo caches code per process, so many compiled backends in one
            process can reach its recompile limit (later ones then run eagerly, with a warning).
        cuda_graphs: capture the net in a CUDA graph per input shape (torch backend, CUDA only).
        split_convs: compute thin large-kernel convolutions as strided phases
            (:class:`PhaseSplitConv2d`; same outputs, faster kernels); ``None`` = on.  On CUDA it
            takes the 9x9 layers with up to :data:`SPLIT_MAX_OUT_CHANNELS_CUDA` outputs.  For the
            onnx backend it applies when it exports the network itself.
        group_norms: run instance norms as ``group_norm`` (:class:`GroupInstanceNorm2d`; the same
            function, faster CPU kernels; torch backend); ``None`` = on CPU only.
        subpixel: compute the upsampling convolutions at the low resolution
            (:class:`SubpixelUpsampleConv`; the same function; torch backend); ``None`` = on, except
            on a CPU with ``compile`` (Inductor's CPU code for it ran 0.59-0.86x as fast).  Both
            rewrites together, 1080p fp16 compiled: on an H100 1.22x (width 1.0) and 1.53x (width
            0.5), none at width 0.25 in its one A/B (there ``reduce-overhead``'s CUDA graphs helped);
            on an H200 1.23x to 1.6x;
            the sub-pixel layers on a CPU, eager, 640x360, two threads, interleaved A/B:
            1.07-1.08x fp32, 1.01-1.02x bf16 (``bench/cpu_variants.py``; docs/PERFORMANCE.md).
    """
    if name not in BACKENDS:
        raise UserError(f"unknown backend {name!r}; valid: {', '.join(sorted(BACKENDS))}")
    if isinstance(device, str):
        from .runtime import resolve_device

        device = resolve_device(device)
    if threads is not None and (isinstance(threads, bool) or not isinstance(threads, int) or threads < 1):
        raise UserError(f"threads must be a positive whole number, got {threads!r}")
    if split_convs is None:
        split_convs = True
    if subpixel is None:
        subpixel = not (device.type == "cpu" and compile)
    if group_norms is None:
        group_norms = device.type == "cpu"
    if name == "onnx" and precision == "auto":
        precision = "fp32"  # the onnx backend runs fp32 graphs only
    extra = {"group_norms": bool(group_norms), "subpixel": bool(subpixel)} if name == "torch" else {}
    return BACKENDS[name](model, device=device, precision=resolve_precision(precision, device), threads=threads,
                          channels_last=channels_last, compile=compile, cuda_graphs=cuda_graphs,
                          split_convs=bool(split_convs), **extra)


# ----------------------------------------------------------------------------- torch

@register_backend("torch")
class TorchBackend(Backend):
    """Eager PyTorch (see the module docstring for the CUDA / CPU settings)."""

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
            if cpu_has_native_bf16() is False:
                log.warning("this CPU has no native bf16 (AVX-512 BF16 / AMX): bf16 is emulated and likely slower "
                            "than fp32 here; drop --half / --precision bf16")
        if device.type == "cuda":
            torch.backends.cudnn.benchmark = True
        if threads is not None:
            torch.set_num_threads(threads)
        self.threads = threads
        self.net = net
        self.compile = compile
        self._forward = net
        if compile:
            kwargs = {"dynamic": False}
            if isinstance(compile, str):
                kwargs["mode" if compile in COMPILE_MODES else "backend"] = compile
            self._forward = torch.compile(net, **kwargs)
            log.info("torch.compile: the first frame waits for compiling (~15-25 s on a CPU, minutes with "
                     "max-autotune); the frame rate counts that wait")
        self.cuda_graphs = bool(cuda_graphs)
        self._graphs: dict[tuple, tuple] = {}  # shape -> (graph, static frame, static prev, static out)
        self._compiled_graphs = compile in ("reduce-overhead", "max-autotune") and device.type == "cuda"
        self._dtype = _DTYPES[precision]

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
        x = _as_input(frame, self.device)
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
        if self.cuda_graphs:
            out = self._graph_step(x, state)
        elif self._compiled_graphs:
            # torch.compile's own CUDA graphs (reduce-overhead, max-autotune) write every output into one
            # static buffer, which the next replay overwrites: the output doubles as the next frame's state
            # and is handed out after that replay, so it is copied (on the H200: "accessing tensor output of
            # CUDAGraphs that has been overwritten by a subsequent run" without it)
            torch.compiler.cudagraph_mark_step_begin()
            out = self._call(x, state if self.recurrent else None).clone()
        else:
            out = self._call(x, state if self.recurrent else None)
        return out, (out if self.recurrent else None)

    # -- CUDA graphs: one capture per input shape; inputs copied into static buffers -----------
    def _graph_step(self, x: torch.Tensor, state: torch.Tensor | None) -> torch.Tensor:
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
                self._call(static_x, static_prev)
        torch.cuda.current_stream(self.device).wait_stream(side)
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            static_out = self._call(static_x, static_prev)
        log.debug("captured a CUDA graph for input shape %s", tuple(x.shape))
        return graph, static_x, static_prev, static_out

    # -- streaming on CUDA: pinned buffers, non-blocking copies, one frame in flight -------------
    def run(self, frames: Iterable[np.ndarray]) -> Iterator[np.ndarray]:
        if self.device.type != "cuda":
            yield from super().run(frames)
            return
        yield from self._run_cuda(frames)

    @torch.inference_mode()
    def _run_cuda(self, frames: Iterable[np.ndarray]) -> Iterator[np.ndarray]:
        """Like :meth:`Backend.run`, overlapping frame ``t``'s GPU work with handing out frame ``t-1``.

        Host-side buffers are pinned (page-locked) rings of two so copies are
        asynchronous; an event per buffer says when it may be reused / read.
        The events are blocking: waiting on one sleeps instead of spinning a
        core, which the decoder and x264 need (x264 alone took ~5 cores for
        60 frames/s of 1080p at veryfast on the H200 machine).
        """
        state, shape = None, None
        pinned_in = pinned_out = None
        in_events = [None, None]
        pending: tuple[torch.Tensor, torch.cuda.Event] | None = None
        for i, frame in enumerate(frames):
            slot = i % 2
            if frame.shape != shape:
                if pending is not None:  # hand out the last frame of the old size before reallocating
                    pending[1].synchronize()
                    yield pending[0].numpy().copy()
                    pending = None
                if shape is not None:
                    log.info("frame size changed from %s to %s; restarting the recurrent state", shape, frame.shape)
                state, shape = None, frame.shape
                pinned_in = [torch.empty(frame.shape, dtype=torch.uint8, pin_memory=True) for _ in range(2)]
                pinned_out = [torch.empty(frame.shape, dtype=torch.uint8, pin_memory=True) for _ in range(2)]
                in_events = [None, None]
            if in_events[slot] is not None:
                in_events[slot].synchronize()  # the upload from this buffer two frames ago has finished
            # numpy, not torch's copy_: torch spreads a host copy over its OpenMP pool, whose threads then
            # spin-wait, taking the cores the decoder and x264 run on (docs/PERFORMANCE.md)
            np.copyto(pinned_in[slot].numpy(), frame)
            x = pinned_in[slot].to(self.device, non_blocking=True)
            in_events[slot] = torch.cuda.Event(blocking=True)
            in_events[slot].record()
            x = x.permute(2, 0, 1)[None].float().div_(255.0)  # channels-last (1, 3, H, W), same as frames_to_tensor
            out, state = self.step(x, state)
            pinned_out[slot].copy_(quantize(out)[0], non_blocking=True)
            done = torch.cuda.Event(blocking=True)
            done.record()
            if pending is not None:
                pending[1].synchronize()
                yield pending[0].numpy().copy()
            pending = (pinned_out[slot], done)
        if pending is not None:
            pending[1].synchronize()
            yield pending[0].numpy().copy()


# ----------------------------------------------------------------------------- onnxruntime

@register_backend("onnx")
class OnnxBackend(Backend):
    """onnxruntime on an exported graph (inputs ``frame`` [, ``prev``], output ``out``; fp32).

    Given a network, the backend exports it itself, lazily, with *static*
    shapes at the first frame's size (onnxruntime optimises static graphs
    better), and exports again for a new size; with ``split_convs`` the thin
    9x9 convolutions are exported phase-split (:class:`PhaseSplitConv2d`;
    onnxruntime CPU, width 0.25 at 640x360: 131.7 -> 95.5 ms a frame, one
    thread, ``bench/cpu_variants.py``).  Given an ``.onnx`` path it
    runs that file as is (a static export accepts only its own size).
    """

    def __init__(self, model, *, device: torch.device, precision: str, threads: int | None,
                 channels_last: bool, compile: bool | str, cuda_graphs: bool, split_convs: bool) -> None:
        try:
            import onnxruntime as ort
        except ImportError:
            raise UserError("the onnx backend needs onnxruntime: pip install 'stablestyle[onnx]'") from None
        if precision != "fp32":
            raise UserError(f"the onnx backend runs fp32 only (asked for {precision}); use --backend torch for "
                            "fp16/bf16, or --precision fp32")
        if compile or cuda_graphs:
            raise UserError("--compile and --cuda-graphs are for --backend torch (torch.compile and CUDA graphs are "
                            "torch-backend options)")
        self._ort = ort
        available = ort.get_available_providers()
        if device.type == "cuda":
            if "CUDAExecutionProvider" not in available:
                raise UserError(f"this onnxruntime has no CUDA execution provider (it has {', '.join(available)}); "
                                "install onnxruntime-gpu or use --device cpu")
            self.providers = ["CUDAExecutionProvider", "CPUExecutionProvider"]
        else:
            self.providers = ["CPUExecutionProvider"]
        self.threads = threads
        self.split_convs = bool(split_convs) and isinstance(model, nn.Module)
        self._sessions: dict[tuple, object] = {}
        if isinstance(model, nn.Module):
            self.net = copy.deepcopy(model).float().eval().cpu()
            self.path = None
            recurrent = bool(getattr(model, "recurrent", False))
        elif isinstance(model, (str, os.PathLike)):
            self.net = None
            self.path = Path(model)
            if self.path.suffix.lower() != ".onnx" or not self.path.is_file():
                raise UserError(f"{self.path}: the onnx backend needs an existing .onnx file "
                                "(write one with `stablestyle export`) or a loaded network")
            session = self._new_session(str(self.path))
            self._sessions[None] = session
            recurrent = INPUT_PREV in [i.name for i in session.get_inputs()]
        else:
            raise UserError(f"the onnx backend needs a network or an .onnx path, got {type(model).__name__}")
        # outputs come back as host numpy arrays (no IO binding), so step() returns CPU tensors
        super().__init__(torch.device("cpu"), "fp32", recurrent)
        self.execution_device = device

    def describe(self) -> dict:
        return {**super().describe(), "providers": self.providers, "threads": self.threads,
                "split_convs": self.split_convs, "execution_device": str(self.execution_device)}

    def _new_session(self, model_path_or_bytes):
        ort = self._ort
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.log_severity_level = 3
        if self.threads is not None:
            options.intra_op_num_threads = self.threads
        try:
            session = ort.InferenceSession(model_path_or_bytes, options, providers=self.providers)
        except Exception as exc:  # onnxruntime raises its own Fail / InvalidGraph types
            where = self.path if self.path is not None else "the exported network"
            raise UserError(f"{where}: onnxruntime cannot load it ({type(exc).__name__}: {exc})") from None
        if session.get_providers()[0] != self.providers[0]:
            raise UserError(f"onnxruntime could not start {self.providers[0]} (it fell back to "
                            f"{session.get_providers()[0]}); check the CUDA/cuDNN install or use --device cpu")
        return session

    def _session(self, shape: tuple[int, ...]):
        if self.net is None:
            return self._sessions[None]
        if shape not in self._sessions:
            from .export import OnnxExportConfig, onnx_bytes

            batch, _, height, width = shape
            data = onnx_bytes(self.net, OnnxExportConfig(height=height, width=width, dynamic=batch != 1,
                                                         split_convs=self.split_convs))
            self._sessions[shape] = self._new_session(data)
            log.debug("exported the network to ONNX for input shape %s", shape)
        return self._sessions[shape]

    def step(self, frame, state=None):
        x = _as_input(frame, torch.device("cpu")).float().contiguous().numpy()
        feeds = {INPUT_FRAME: x}
        if self.recurrent:
            prev = x if state is None else state.detach().float().cpu().contiguous().numpy()
            if prev.shape != x.shape:
                raise ValueError(f"recurrent state has shape {prev.shape} but the frame has {x.shape}; "
                                 "pass state=None to start a new clip")
            feeds[INPUT_PREV] = prev
        session = self._session(x.shape)
        try:
            (out,) = session.run([OUTPUT], feeds)
        except Exception as exc:  # e.g. a static export given another frame size
            if self.path is None:
                raise
            expected = [i.shape for i in session.get_inputs()]
            raise UserError(f"{self.path} cannot run a {x.shape} input (it takes {expected}); export it with "
                            f"--dynamic or with this --height/--width ({type(exc).__name__})") from None
        out = torch.from_numpy(out)
        return out, (out if self.recurrent else None)


# ----------------------------------------------------------------------------- pipelined file-to-file

@dataclass
class PipelineStats:
    """What :func:`run_pipelined` measured: frames written, wall seconds, and where inference waited.

    ``decode_wait_s``: time the inference loop waited for decoded frames
    (decoding is the bottleneck when large); ``encode_wait_s``: time it waited
    for room in the encode queue (encoding is the bottleneck);
    ``first_frame_s``: time until the network handed out its first frame
    (decoding it, and ``torch.compile``'s compiling), ``None`` without frames;
    ``decode_s`` / ``encode_s``: time the decoder thread spent getting frames
    from the source / the encoder thread in ``sink.write`` (a stage's time per
    frame: the rate it allows on its own, GIL waits and CPU contention included).
    """

    frames: int
    seconds: float
    decode_wait_s: float
    encode_wait_s: float
    first_frame_s: float | None = None
    decode_s: float = 0.0
    encode_s: float = 0.0

    @property
    def fps(self) -> float:
        return self.frames / self.seconds if self.seconds > 0 else 0.0

    @property
    def fps_after_first(self) -> float | None:
        """Frames/s from the first frame on: the steady rate once compiling / warm-up is over."""
        if self.first_frame_s is None or self.frames < 2 or self.seconds <= self.first_frame_s:
            return None
        return (self.frames - 1) / (self.seconds - self.first_frame_s)

    def held_up_by(self, share: float = 0.25) -> str | None:
        """``"encode"`` / ``"decode"`` when inference waited on that stage for at least ``share`` of the run.

        Only a stage on cores of its own shows as waiting (a GPU run: on the H200 the network waited for x264
        for 30-46% of the run); where the network and the encoder share a few CPU cores each slows the other
        and neither waits much, so this says nothing there.
        """
        waits = {"encode": self.encode_wait_s, "decode": self.decode_wait_s}
        stage = max(waits, key=waits.get)
        return stage if self.seconds > 0 and waits[stage] >= share * self.seconds else None


_END = object()
_POLL_S = 0.05


class _Stopped(Exception):
    """Another stage failed or the run was interrupted."""


def _put(q: queue.Queue, item, stop: threading.Event) -> None:
    while True:
        if stop.is_set():
            raise _Stopped
        try:
            q.put(item, timeout=_POLL_S)
            return
        except queue.Full:
            continue


def _get(q: queue.Queue, stop: threading.Event):
    while True:
        if stop.is_set():
            raise _Stopped
        try:
            return q.get(timeout=_POLL_S)
        except queue.Empty:
            continue


def run_pipelined(source: Iterable[np.ndarray], sink, backend: Backend, *, queue_size: int = 8,
                  total: int | None = None, quiet: bool = True,
                  switch_interval: float | None = None) -> PipelineStats:
    """Stylize ``source`` into ``sink`` with decode, inference and encode in separate threads.

    Args:
        source: iterable of ``uint8`` ``(H, W, 3)`` frames (e.g. :func:`stablestyle.video.open_source`),
            iterated in a decoder thread.
        sink: object with ``write(frame)`` (e.g. an open :func:`stablestyle.video.open_sink`), called
            from an encoder thread in frame order; the caller opens and closes it.
        backend: runs in the calling thread (``backend.run``, one clip, frame-sequential).
        queue_size: frames buffered between stages (bounded, so memory stays flat).
        total, quiet: progress bar length / silence (:func:`stablestyle.runtime.progress`).
        switch_interval: the interpreter's thread switch interval (seconds, :func:`sys.setswitchinterval`)
            during the run, restored afterwards; ``None`` keeps it (5 ms by default).  A shorter one
            hands the GIL sooner to a thread coming back from C code (the encoder, the decoder) while
            the inference thread runs Python.

    The first error in any stage stops all three and is re-raised here (so a
    sink used as a context manager discards its partial output); Ctrl-C in
    the calling thread stops the workers too.
    """
    from .runtime import progress

    if isinstance(queue_size, bool) or not isinstance(queue_size, int) or queue_size < 1:
        raise ValueError(f"queue_size must be a positive integer, got {queue_size!r}")
    if switch_interval is not None and not switch_interval > 0:
        raise ValueError(f"switch_interval must be a positive number of seconds, got {switch_interval!r}")
    stop = threading.Event()
    errors: list[BaseException] = []
    decoded: queue.Queue = queue.Queue(maxsize=queue_size)
    encoded: queue.Queue = queue.Queue(maxsize=queue_size)
    waits = {"decode": 0.0, "encode": 0.0}
    busy = {"decode": 0.0, "encode": 0.0}
    written = [0]
    first_frame_s = None

    def fail(exc: BaseException) -> None:
        errors.append(exc)
        stop.set()

    def timed(totals: dict, key: str, get: Callable):
        t0 = time.perf_counter()
        item = get()
        totals[key] += time.perf_counter() - t0
        return item

    def decode() -> None:
        try:
            frames = iter(source)
            while (frame := timed(busy, "decode", lambda: next(frames, _END))) is not _END:
                _put(decoded, frame, stop)
            _put(decoded, _END, stop)
        except _Stopped:
            pass
        except BaseException as exc:  # noqa: BLE001 -- handed to the calling thread
            fail(exc)

    def encode() -> None:
        try:
            while (frame := _get(encoded, stop)) is not _END:
                timed(busy, "encode", lambda: sink.write(frame))
                written[0] += 1
        except _Stopped:
            pass
        except BaseException as exc:  # noqa: BLE001 -- handed to the calling thread
            fail(exc)

    def inputs() -> Iterator[np.ndarray]:
        while (frame := timed(waits, "decode", lambda: _get(decoded, stop))) is not _END:
            yield frame

    workers = [threading.Thread(target=decode, name="stablestyle-decode", daemon=True),
               threading.Thread(target=encode, name="stablestyle-encode", daemon=True)]
    previous_interval = sys.getswitchinterval()
    if switch_interval is not None:
        sys.setswitchinterval(switch_interval)
    start = time.perf_counter()
    for w in workers:
        w.start()
    try:
        for out in progress(backend.run(inputs()), total=total, desc="stylize", unit="frame", quiet=quiet):
            t0 = time.perf_counter()
            if first_frame_s is None:
                first_frame_s = t0 - start
            _put(encoded, out, stop)
            waits["encode"] += time.perf_counter() - t0
        _put(encoded, _END, stop)
        workers[1].join()
    except _Stopped:
        pass
    except BaseException:
        stop.set()
        raise
    finally:
        stop.set()  # the encoder has drained (or failed): release a decoder blocked on a full queue
        for w in workers:
            w.join()
        sys.setswitchinterval(previous_interval)
    if errors:
        raise errors[0]
    return PipelineStats(frames=written[0], seconds=time.perf_counter() - start,
                         decode_wait_s=waits["decode"], encode_wait_s=waits["encode"], first_frame_s=first_frame_s,
                         decode_s=busy["decode"], encode_s=busy["encode"])


# ----------------------------------------------------------------------------- batching independent streams

def stylize_streams(sources: Sequence[Iterable[np.ndarray]], backend: Backend, *,
                    max_batch: int = 8) -> Iterator[tuple[int, np.ndarray]]:
    """Stylize several independent clips together: one network call per step for up to ``max_batch`` of them.

    At each step the next frame of every unfinished clip is taken; clips whose
    frames have the same size are stacked into one batch, and each keeps its
    own recurrent state (row ``i`` of the batch's ``prev`` is clip ``i``'s
    previous output, or its frame at the clip's start), so the result equals
    running each clip alone.  A single clip is simply frame-sequential.

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
        groups: dict[tuple, list[int]] = {}
        for i, frame in current.items():
            groups.setdefault(frame.shape, []).append(i)
        for shape, members in groups.items():
            for lo in range(0, len(members), max_batch):
                ids = members[lo:lo + max_batch]
                x = frames_to_tensor(np.stack([current[i] for i in ids]), backend.device)
                prev = None
                if backend.recurrent:
                    rows = []
                    for row, i in enumerate(ids):
                        s = states[i]
                        if s is not None and tuple(s.shape[-2:]) != tuple(x.shape[-2:]):
                            log.info("clip %d changed frame size; restarting its recurrent state", i)
                            s = None
                        rows.append(x[row:row + 1] if s is None else s.to(x.dtype))
                    prev = torch.cat(rows)
                out, _ = backend.step(x, prev)
                frames = quantize(out).cpu().numpy()
                for row, i in enumerate(ids):
                    if backend.recurrent:
                        states[i] = out[row:row + 1]
                    yield i, frames[row]


def stylize_many(inputs: Sequence[str | os.PathLike], outputs: Sequence[str | os.PathLike], backend: Backend, *,
                 max_size: int | None = None, max_batch: int = 8, max_frames: int | None = None,
                 overwrite: bool = False, keep_audio: bool = True, preset: str = "medium",
                 quiet: bool = True) -> list[int]:
    """Stylize several video files at once (see :func:`stylize_streams`); returns frames written per file.

    Every output path is checked before any work; outputs are written
    atomically (an error leaves none of them behind).  ``max_frames`` stops
    each input after that many frames; ``preset``: the H.264 encoder's
    (:func:`stablestyle.video.open_sink`).
    """
    from .runtime import progress
    from .video import check_output_path, open_sink, open_source

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
        for i, frame in progress(stylize_streams(streams, backend, max_batch=max_batch), total=total,
                                 desc="stylize", unit="frame", quiet=quiet):
            sinks[i].write(frame)
        return [s.num_written for s in sinks]


# ----------------------------------------------------------------------------- arithmetic count

def conv_flops(model: nn.Module, height: int, width: int, batch: int = 1) -> dict[str, int]:
    """Floating-point operations of every ``nn.Conv2d`` in one forward pass at ``height x width``.

    Per convolution: ``2 * C_out * H_out * W_out * (C_in / groups) * k_h * k_w``
    (a multiply and an add per weight per output pixel; the bias adds,
    instance norms, pads, upsampling and the sigmoid are not counted -- they
    are < 1% of the total for this network).  Sizes come from forward hooks
    on a ``meta``-device copy, so nothing is computed and any size is cheap.

    Returns ``{module name: flops}`` plus ``"total"``, for ``batch`` frames.
    """
    net = copy.deepcopy(model).to("meta")
    counts: dict[str, int] = {}
    handles = []
    for name, module in net.named_modules():
        if isinstance(module, nn.Conv2d):
            def hook(mod, _inputs, output, name=name):
                _, c_out, h_out, w_out = output.shape
                k_h, k_w = mod.kernel_size
                per_batch = 2 * c_out * h_out * w_out * (mod.in_channels // mod.groups) * k_h * k_w
                counts[name] = counts.get(name, 0) + per_batch * output.shape[0]
            handles.append(module.register_forward_hook(hook))
    try:
        with torch.no_grad():
            net(torch.empty(batch, 3, height, width, device="meta"))
    finally:
        for h in handles:
            h.remove()
    counts["total"] = sum(counts.values())
    return counts
