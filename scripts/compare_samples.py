"""Training runs' validation samples at the same steps, one row per step, one column per run, as one image.

Usage: python scripts/compare_samples.py NAME=RUN_DIR NAME=RUN_DIR --steps 500 1000 2000 -o OUT.png

Each run's ``samples/step_XXXXXXXX.png`` holds the validation frames over their stylized outputs; the
stylized half (the bottom) of each is kept and labelled ``NAME @ STEP``, so two recipes can be compared by
eye at equal training.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np


def _tile(run: Path, step: int, label: str) -> np.ndarray:
    from PIL import Image

    from stablestyle.demo import side_by_side

    path = run / "samples" / f"step_{step:08d}.png"
    if not path.is_file():
        raise SystemExit(f"error: {path} does not exist (the run samples every sample_every steps)")
    with Image.open(path) as img:
        img = img.convert("RGB")
        half = img.crop((0, img.height // 2, img.width, img.height))
        # runs with different crops sample at different sizes: show each at 128 px high
        half = half.resize((round(half.width * 128 / half.height), 128), Image.LANCZOS)
    return side_by_side([np.asarray(half)], [label])


def main(argv: list[str] | None = None) -> int:
    from PIL import Image

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("runs", nargs="+", metavar="NAME=RUN_DIR")
    p.add_argument("--steps", nargs="+", type=int, required=True)
    p.add_argument("-o", "--out", required=True)
    args = p.parse_args(argv)
    runs = []
    for spec in args.runs:
        name, _, folder = spec.partition("=")
        if not folder:
            print(f"error: give NAME=RUN_DIR, got {spec!r}", file=sys.stderr)
            return 2
        runs.append((name, Path(folder)))
    rows = [np.concatenate([_tile(folder, step, f"{name} @ {step}") for name, folder in runs], axis=1)
            for step in args.steps]
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.concatenate(rows, axis=0)).save(args.out)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
