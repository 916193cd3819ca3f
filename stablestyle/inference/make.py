"""Building a backend by name from the user's options: :func:`make_backend`.

Owns the defaults that depend on the device (which rewrites are on, what ``auto`` precision
means) and the checks of the options shared by every engine; importing it registers both
engines (:mod:`.torch_backend`, :mod:`.onnx_backend`) in :data:`~.backend.BACKENDS`.
"""

from __future__ import annotations

import torch

from ..errors import UserError
from . import onnx_backend, torch_backend  # noqa: F401 -- importing an engine registers it
from .backend import BACKENDS, Backend
from .precision import resolve_precision


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
            :data:`~.torch_backend.COMPILE_MODES`, or a torch.compile backend name.  The first frames wait for
            compiling; dynamo caches code per process, so many compiled backends in one
            process can reach its recompile limit (later ones then run eagerly, with a warning).
        cuda_graphs: capture the net in a CUDA graph per input shape (torch backend, CUDA only).
        split_convs: compute thin large-kernel convolutions as strided phases
            (:class:`~.rewrites.PhaseSplitConv2d`; same outputs, faster kernels); ``None`` = on.  On CUDA it
            takes the 9x9 layers with up to :data:`~.rewrites.SPLIT_MAX_OUT_CHANNELS_CUDA` outputs.  For the
            onnx backend it applies when it exports the network itself.
        group_norms: run instance norms as ``group_norm`` (:class:`~.rewrites.GroupInstanceNorm2d`; the same
            function, faster CPU kernels; torch backend); ``None`` = on CPU only.
        subpixel: compute the upsampling convolutions at the low resolution
            (:class:`~.rewrites.SubpixelUpsampleConv`; the same function; torch backend); ``None`` = on, except
            on a CPU with ``compile`` (Inductor's CPU code for it is slower there).  What the rewrites
            gain on each device is measured in docs/PERFORMANCE.md.
    """
    if name not in BACKENDS:
        raise UserError(f"unknown backend {name!r}; valid: {', '.join(sorted(BACKENDS))}")
    if isinstance(device, str):
        from ..runtime import resolve_device

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

