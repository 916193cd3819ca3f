"""Interleaved A/B timing of CPU inference variants, printed as JSON (model-only, one frame size).

On a shared machine the load drifts during a run, so timing variant A for a
minute and then variant B compares two different machines.  Here every round
times a few frames of *each* variant in turn, and the per-frame times are
pooled per variant; the median and the minimum are reported.

Variants: backend (torch / onnx) x precision (fp32 / bf16, torch only) x
phase-split thin convolutions on / off (:class:`stablestyle.inference.rewrites.PhaseSplitConv2d`), with or
without the sub-pixel upsampling layers (:class:`stablestyle.inference.rewrites.SubpixelUpsampleConv`), instance
norm as group norm (:class:`stablestyle.inference.rewrites.GroupInstanceNorm2d`, the default) or as PyTorch's
``instance_norm``, plus channels-last off and ``torch.compile`` when asked.  Example::

    python bench/cpu_variants.py --width 0.25 --size 640x360 --threads 1 --rounds 6
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

import numpy as np
import torch

from stablestyle.inference import conv_flops, make_backend
from stablestyle.models import TransformerNet


def _variants(channels_first: bool, compile_: bool) -> dict[str, tuple[str, dict]]:
    """``{name: (backend kind, options)}`` of every variant to time."""
    variants = {}
    # "split": phase-split thin convs only; "split+subpixel": with the sub-pixel upsampling layers too (the
    # eager default since 2026-11-27); "plain": neither
    for tag, split, subpixel in (("split+subpixel", True, True), ("split", True, False), ("plain", False, False)):
        variants[f"torch fp32 {tag}"] = ("torch", dict(precision="fp32", split_convs=split, subpixel=subpixel))
        variants[f"torch bf16 {tag}"] = ("torch", dict(precision="bf16", split_convs=split, subpixel=subpixel))
        if not subpixel:  # the onnx backend exports the network without that rewrite
            variants[f"onnx fp32 {tag}"] = ("onnx", dict(precision="fp32", split_convs=split))
    # instance norm as PyTorch runs it (reshape + batch norm) against the group-norm rewrite the backend uses
    variants["torch fp32 split instance-norm"] = ("torch", dict(precision="fp32", group_norms=False, subpixel=False))
    variants["torch bf16 split instance-norm"] = ("torch", dict(precision="bf16", group_norms=False, subpixel=False))
    if channels_first:
        variants["torch fp32 split channels-first"] = ("torch", dict(precision="fp32", channels_last=False,
                                                                     subpixel=False))
        variants["torch bf16 split channels-first"] = ("torch", dict(precision="bf16", channels_last=False,
                                                                     subpixel=False))
    if compile_:
        variants["torch fp32 split compile"] = ("torch", dict(precision="fp32", compile=True))
        variants["torch bf16 split compile"] = ("torch", dict(precision="bf16", compile=True))
        # dynamo caches compiled code per code object (TransformerNet.forward), shared by every backend of the
        # process; interleaved compiled variants need more cache entries than the default limit of 8
        torch._dynamo.config.recompile_limit = 64
    return variants


def _time(net, variants: dict, x: torch.Tensor, threads: int, rounds: int, frames: int
          ) -> tuple[dict[str, list[float]], dict[str, float]]:
    """``(times, setup)``: seconds per frame of each variant over interleaved rounds, and each one's setup
    (export, compile, first calls) in seconds."""
    backends, states, times, setup = {}, {}, {}, {}
    for name, (kind, options) in variants.items():
        t0 = time.perf_counter()
        backends[name] = make_backend(kind, net, device="cpu", threads=threads, **options)
        _, states[name] = backends[name].step(x, None)  # export / compile / first-call costs
        _, states[name] = backends[name].step(x, states[name])
        setup[name] = round(time.perf_counter() - t0, 2)
        times[name] = []
    for _ in range(rounds):
        for name, backend in backends.items():
            for _ in range(frames):
                t0 = time.perf_counter()
                _, states[name] = backend.step(x, states[name])
                times[name].append(time.perf_counter() - t0)
    return times, setup


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--width", type=float, default=0.25)
    p.add_argument("--size", default="640x360", help="WxH")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--rounds", type=int, default=6)
    p.add_argument("--frames", type=int, default=3, help="frames per variant per round")
    p.add_argument("--channels-first", action="store_true", help="also time torch without channels-last")
    p.add_argument("--compile", action="store_true", help="also time torch.compile (inductor; slow to compile)")
    args = p.parse_args(argv)
    w, h = (int(v) for v in args.size.lower().split("x"))
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    net = TransformerNet(width=args.width).eval()
    variants = _variants(args.channels_first, args.compile)
    x = torch.rand(1, 3, h, w, generator=torch.Generator().manual_seed(0))
    load_before = os.getloadavg()
    times, setup = _time(net, variants, x, args.threads, args.rounds, args.frames)
    flops = conv_flops(net, h, w)["total"]
    results = {}
    for name, ts in times.items():
        median = float(np.median(ts))
        results[name] = {"fps_median": round(1 / median, 2), "ms_median": round(1000 * median, 1),
                         "ms_min": round(1000 * min(ts), 1), "frames": len(ts), "setup_s": setup[name],
                         "gflop_per_s_median": round(flops / median / 1e9, 1)}
    report = {"command": " ".join(["cpu_variants.py", *(argv if argv is not None else sys.argv[1:])]),
              "size": args.size, "width": args.width, "threads": args.threads,
              "gflop_per_frame": round(flops / 1e9, 3), "load_average_before": load_before,
              "load_average_after": os.getloadavg(), "results": results}
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
