"""The device's peak throughput for bench/stylize_speed.py: a measured dense matmul in each precision, and
NVIDIA's datasheet figure beside it for known GPUs (labelled as such, never used as a measurement)."""

from __future__ import annotations

import os
import time

import torch

from speed_timing import sync  # bench/ is on sys.path when the benches run as scripts

#: NVIDIA datasheet peaks in TFLOP/s (dense; tensor cores for fp16/bf16/tf32, CUDA cores for fp32).
#: Only used for labelled comparison; the bench always measures its own peak too.
DATASHEET_TFLOPS = {
    "H100 80GB HBM3": {"fp32": 67.0, "fp16": 989.4, "bf16": 989.4},  # H100 SXM5
    "H100 PCIe": {"fp32": 51.2, "fp16": 756.0, "bf16": 756.0},
    "H200": {"fp32": 67.0, "fp16": 989.4, "bf16": 989.4},
    "A100-SXM4-80GB": {"fp32": 19.5, "fp16": 312.0, "bf16": 312.0},
    "A100-SXM4-40GB": {"fp32": 19.5, "fp16": 312.0, "bf16": 312.0},
}


def measure_peak(device: torch.device, precision: str, threads: int | None) -> dict:
    """Best-of-N dense matmul throughput in TFLOP/s (``2 n^3`` flops per ``n x n`` product).

    On a CPU without native bf16 (no AVX-512 BF16 or AMX) bf16 is emulated, orders of magnitude slower: the
    product is then 512 wide, so the measurement takes seconds, not many minutes, and ``how`` says so."""
    from stablestyle.inference.precision import cpu_has_native_bf16

    dtype = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}[precision]
    emulated = device.type == "cpu" and precision == "bf16" and cpu_has_native_bf16() is False
    n = 8192 if device.type == "cuda" else 512 if emulated else 2048
    reps = 10
    a = torch.randn(n, n, device=device, dtype=dtype)
    b = torch.randn(n, n, device=device, dtype=dtype)
    a @ b
    sync(device)
    best = 0.0
    for _ in range(reps):
        t0 = time.perf_counter()
        a @ b
        sync(device)
        best = max(best, 2 * n ** 3 / (time.perf_counter() - t0) / 1e12)
    result = {"tflops": round(best, 3), "how": f"best of {reps} {n}x{n} {precision} matmuls, measured here"
              + (" (this CPU has no native bf16: emulated)" if emulated else "")}
    if device.type == "cpu":
        result["threads"] = threads or torch.get_num_threads()
    return result


def device_name(device: torch.device) -> str:
    """:func:`stablestyle.report.device_name`, with the CPU's count of logical CPUs."""
    from stablestyle.report import device_name as name

    return name(device) if device.type == "cuda" else f"{name(device)} ({os.cpu_count()} logical CPUs)"


def datasheet_peak(name: str) -> dict | None:
    for key, value in DATASHEET_TFLOPS.items():
        if key in name:
            return {"tflops": value, "source": f"NVIDIA datasheet for {key} (dense), not measured"}
    return None
