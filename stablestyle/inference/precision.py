"""Compute precisions: the names a backend accepts, what ``auto`` means on a device, native CPU bf16.

Owns :data:`PRECISIONS`, :func:`resolve_precision`, :func:`cpu_has_native_bf16` and
:func:`bf16_is_native`; the backends and the commands' precision hints ask here.
"""

from __future__ import annotations

import torch

from ..errors import UserError

PRECISIONS = ("auto", "fp32", "fp16", "bf16")
DTYPES = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}


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

