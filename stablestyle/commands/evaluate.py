"""``stablestyle evaluate CLIP... --style IMG --model stable=CKPT --method input -o OUT``."""

from __future__ import annotations

import argparse
from pathlib import Path

HELP = "compare methods on clips: instability, warping error, style / content loss, speed (report folder)"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("clips", nargs="+", metavar="CLIP",
                   help="video file, folder of frames, or ground-truth clip folder (frames/ + flow_bw/ from "
                        "`stablestyle make-clip`, or Sintel frames with .flo files)")
    p.add_argument("-o", "--output", required=True,
                   help="report folder to create (results.json, results.md, plots, videos/)")
    p.add_argument("--style", action="append", default=[], metavar="IMG",
                   help="style image (repeatable); trained models are paired with the style they were trained on; "
                        "without --style, the models' own style images (found by the name their checkpoint "
                        "records, there or in $STABLESTYLE_ASSETS/styles, with the same sha256)")
    p.add_argument("--model", action="append", default=[], metavar="NAME=CKPT",
                   help="a trained network to evaluate under NAME, e.g. --model stable=runs/a/final.pt "
                        "--model perframe=runs/b/final.pt (checkpoint path or bundled model name; repeatable)")
    p.add_argument("--method", action="append", default=[], metavar="NAME",
                   help="style-conditioned method(s): input (the unstylised input, a reference), gatys, ruder "
                        "(repeatable or comma-separated)")
    p.add_argument("--max-size", type=int, default=None, help="resize clips so the long side is at most this")
    p.add_argument("--max-frames", type=int, default=None, help="use only the first N frames of each clip")
    p.add_argument("--flow", default="dis",
                   help="flow estimator on the input when a clip has no ground truth: dis (default) or deepflow")
    p.add_argument("--iterations", type=int, default=100,
                   help="optimisation iterations per frame (gatys/ruder; default 100)")
    p.add_argument("--size", type=int, default=None,
                   help="optimisation size, long side in px (gatys/ruder); default: the clip's size")
    p.add_argument("--style-size", type=int, default=256,
                   help="long side of the style image for the style-loss targets (training default 256)")
    p.add_argument("--device", default="auto", help="auto, cpu or cuda")
    p.add_argument("--half", dest="half", action="store_true", default=None,
                   help="reduced precision for networks (fp16 on GPU, the default there; bf16 on CPU)")
    p.add_argument("--no-half", dest="half", action="store_false", help="force fp32 networks")
    p.add_argument("--no-videos", dest="save_videos", action="store_false",
                   help="do not keep the stylised videos in the report folder (they are still encoded for timing)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing report folder")
    p.add_argument("--quiet", action="store_true", help="no progress bar or info messages (warnings still show)")
    p.add_argument("--stability", type=float, nargs="+", default=[], metavar="S",
                   help="score each stable --model at these positions of the stability dial (0 = its per-frame "
                        "twin, 1 = itself), named NAME@S")
    p.add_argument("--perframe-model", default=None, metavar="CKPT",
                   help="the per-frame twin for --stability (default: the bundled <style>-perframe, or the "
                        "checkpoint the stable model was warm-started from)")
    p.add_argument("--edge-margin", type=int, nargs="+", default=[], metavar="PX",
                   help="also score each --model at these edge margins (px of frame reflected outwards around "
                        "the net's input, cropped after), named NAME+mPX")


def run(args: argparse.Namespace) -> int:
    import sys

    from ..evaluate.runner import EvalConfig, run_evaluation

    config = EvalConfig(
        clips=list(args.clips), output=args.output, styles=list(args.style), methods=list(args.method),
        models=list(args.model), max_size=args.max_size, max_frames=args.max_frames, flow=args.flow,
        iterations=args.iterations, size=args.size, style_size=args.style_size, device=args.device,
        half=args.half, save_videos=args.save_videos, overwrite=args.overwrite, quiet=args.quiet,
        stability=list(args.stability), perframe_model=args.perframe_model, edge_margins=list(args.edge_margin),
    )
    # the command line as typed when the CLI recorded it, else the process's (see report.provenance)
    results = run_evaluation(config, argv=getattr(args, "_argv", None) or sys.argv)
    runs = len(results["runs"])
    print(f"evaluated {runs} run{'s' * (runs != 1)} ({', '.join(results['methods'])} x {len(results['styles'])} "
          f"style(s) x {len(results['clips'])} clip(s)) -> {Path(args.output) / 'results.md'}")
    return 0
