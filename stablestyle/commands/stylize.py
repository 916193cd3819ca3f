"""``stablestyle stylize INPUT -o OUTPUT --model CKPT``: stylize a video, frame folder or image."""

from __future__ import annotations

import argparse
import logging
import time
from pathlib import Path

HELP = "stylize a video file, a folder of frames or an image"

log = logging.getLogger(__name__)

METHODS = ("network", "gatys", "ruder")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("input", help="video file, folder of numbered frames, or image")
    p.add_argument("-o", "--output", required=True,
                   help="output: .mp4/.mkv/.mov video, .png/.jpg image, or a folder name (numbered PNG frames)")
    p.add_argument("--model", default=None,
                   help="checkpoint path or bundled model name (see `stablestyle models`); "
                        "defaults to the default bundled model")
    p.add_argument("--method", choices=METHODS, default="network",
                   help="network: the trained feed-forward net (real time); gatys / ruder: per-frame / "
                        "temporally constrained optimisation baselines (slow, need --style)")
    p.add_argument("--style", default=None, help="style image, for --method gatys|ruder")
    p.add_argument("--iterations", type=int, default=100, help="optimisation iterations per frame (gatys/ruder)")
    p.add_argument("--size", type=int, default=256, help="optimisation size, long side in px (gatys/ruder)")
    p.add_argument("--flow", default="dis", help="flow estimator for ruder: dis or deepflow")
    p.add_argument("--max-size", type=int, default=None, help="resize input so the long side is at most this")
    p.add_argument("--max-frames", type=int, default=None, help="stop after this many frames")
    p.add_argument("--device", default="auto", help="auto, cpu or cuda")
    p.add_argument("--half", dest="half", action="store_true", default=None,
                   help="reduced precision (fp16 on GPU — the default there; bf16 on CPU)")
    p.add_argument("--no-half", dest="half", action="store_false", help="force fp32")
    p.add_argument("--backend", default="torch", help="inference backend for --method network: torch or onnx")
    p.add_argument("--threads", type=int, default=None,
                   help="CPU threads for inference (1 is fastest on a busy machine; see docs/PERFORMANCE.md)")
    p.add_argument("--overwrite", action="store_true", help="replace OUTPUT if it exists")
    p.add_argument("--quiet", action="store_true", help="no progress bar")


def _limit(frames, max_frames):
    for i, frame in enumerate(frames):
        if max_frames is not None and i >= max_frames:
            return
        yield frame


def run(args: argparse.Namespace) -> int:
    from ..errors import UserError
    from ..runtime import check_at_least, progress, resolve_device
    from ..video import check_output_path, open_sink, open_source

    for name in ("max_size", "max_frames", "iterations", "size", "threads"):
        check_at_least("--" + name.replace("_", "-"), getattr(args, name))
    device = resolve_device(args.device)
    check_output_path(args.output, [args.input], args.overwrite)

    # Validate everything cheap (model, style) before decoding a single frame.
    if args.method == "network":
        if args.style is not None:
            raise UserError("--style is for --method gatys|ruder; a network's style is fixed by its --model")
        frames_fn = _network_method(args, device)
    else:
        if args.style is None:
            raise UserError(f"--method {args.method} needs --style STYLE_IMAGE")
        if args.model is not None or args.backend != "torch":
            raise UserError(f"--model / --backend choose a trained network; --method {args.method} optimises "
                            "each frame against --style instead (drop them, or use --method network)")
        frames_fn = _optimisation_method(args, device)

    start = time.perf_counter()
    with open_source(args.input, max_size=args.max_size) as source:
        total = source.num_frames
        if args.max_frames is not None and total is not None:
            total = min(total, args.max_frames)
        audio = args.input if source.has_audio else None
        count = 0
        with open_sink(args.output, source.fps, audio_from=audio, overwrite=args.overwrite) as sink:
            stream = frames_fn(_limit(source, args.max_frames))
            for frame in progress(stream, total=total, desc="stylize", unit="frame", quiet=args.quiet):
                sink.write(frame)
                count += 1
        width, height = source.size
    seconds = time.perf_counter() - start
    print(f"stylized {count} frames at {width}x{height} in {seconds:.1f} s "
          f"({count / max(seconds, 1e-9):.1f} frames/s, {args.method}) -> {Path(args.output)}")
    return 0


def _network_method(args, device):
    from ..backends import make_backend
    from ..bundled import DEFAULT_MODEL
    from ..checkpoint import load_checkpoint
    from ..stylize import precision_for

    model, meta = load_checkpoint(args.model or DEFAULT_MODEL)
    log.info("model %s: %s, step %s, trained by stablestyle %s", meta["path"], meta["model"], meta["step"],
             meta.get("version"))
    # built before any frame is decoded, so a bad --backend / --threads fails with nothing written
    runner = make_backend(args.backend, model, device=device, precision=precision_for(device, args.half),
                          threads=args.threads)
    return runner.run


def _optimisation_method(args, device):
    from ..baselines import OptimOptions, get_method
    from ..video import read_image

    method = get_method(args.method)
    style = read_image(args.style)
    options = OptimOptions(iterations=args.iterations, size=args.size, flow_method=args.flow)
    return lambda frames: method(frames, style, options=options, device=device, quiet=args.quiet)
