"""Do the models paint bands or stripes fixed to the frame's edges? ``python bench/band.py --model scream ...``.

For each model, on held-out photos (default: the first ``--photos`` of
``$STABLESTYLE_ASSETS/bsds500/test``, which training never sees) scaled to
``--size`` x ``--size``: the flip test of :mod:`stablestyle.evaluate.position`
(``|f(x) - flip(f(flip(x)))|`` per row for upside-down flips, per column for
left-right mirrors) and its ``edge_excess`` (outer eighths against the middle
half; about 1 without a position prior), and the same ratio for the outermost
``STRIPE_PX`` pixels (``*_stripe_excess``: a stripe a few pixels wide, such as
the reflection seam a ``--margin-in-training`` net marks, hardly moves the
eighths).  ``--edge-margin M ...`` measures
each model at each of those edge margins too (entries ``NAME+mM``; the
margin reflects the frame outwards before the net and crops after), and
``--style STYLE`` adds the upright outputs' content / style / total loss under
the training objective (``configs/style_weights.yaml``), so what a margin
does to the painting shows beside what it does to the edges.  Writes
``OUT/band.json`` (the command, each checkpoint's weights hash, both profiles
and ratios), with ``--plot`` the row and column profiles of every model, and
with ``--look`` the first photos' outputs of every entry, a row each.
"""

from __future__ import annotations

STRIPE_PX = 4

import argparse
import json
import sys
from pathlib import Path

#: Photos per row of ``--look``.
LOOK_PHOTOS = 3


def _photos(folder: Path, count: int, size: int):
    import torch
    import torch.nn.functional as F

    from stablestyle.errors import UserError
    from stablestyle.video import read_image, to_tensor

    files = sorted(folder.glob("*.jpg"))[:count]
    if not files:
        raise UserError(f"no .jpg photos in {folder}")
    batch = [F.interpolate(to_tensor([read_image(p)]), size=(size, size), mode="bilinear", align_corners=False,
                           antialias=True) for p in files]
    return files, torch.cat(batch).clamp(0, 1)


def _measure(spec: str, x, margins, loss=None):
    """``[(name, entry)]`` for one ``NAME[=CHECKPOINT]``: at its own margin, then at each of ``margins``."""
    import torch

    from stablestyle.checkpoint import file_sha256, load_checkpoint
    from stablestyle.evaluate.position import edge_excess, flip_difference_profile

    name, _, path = spec.partition("=")
    net, meta = load_checkpoint(path or name)
    net.eval()

    def stylize(t):
        with torch.no_grad():
            return net(t)[0].float().clamp(0, 1)  # state None: each photo a clip's first frame

    own = net.edge_margin
    results = []
    for margin in [None, *margins]:
        net.edge_margin = own if margin is None else margin
        entry = {"checkpoint": str(meta["path"]), "weights_sha256": file_sha256(meta["path"]),
                 "step": meta.get("step"), "edge_margin": net.edge_margin}
        for axis in ("rows", "cols"):
            profile = flip_difference_profile(stylize, x, axis)
            entry[f"{axis}_edge_excess"] = round(edge_excess(profile), 4)
            entry[f"{axis}_stripe_excess"] = round(edge_excess(profile, STRIPE_PX / len(profile)), 4)
            entry[f"{axis}_profile"] = [round(v, 5) for v in profile.tolist()]
        upright = stylize(x)
        if loss is not None:
            entry["objective"] = _objective(loss, upright, x)
        results.append((name if margin is None else f"{name}+m{margin}", entry, upright[:LOOK_PHOTOS]))
    return results


def _look(rows, x, path: Path) -> None:
    """The first photos, then each entry's upright outputs, one row each (``rows``: ``[(name, images)]``)."""
    import numpy as np
    from PIL import Image, ImageDraw

    from stablestyle.video import to_uint8

    lines = []
    for name, images in [("input", x[:LOOK_PHOTOS]), *rows]:
        line = np.concatenate([to_uint8(i) for i in images], 1)
        canvas = Image.fromarray(line)
        ImageDraw.Draw(canvas).text((4, 4), name, fill=(255, 255, 255), stroke_width=2, stroke_fill=(0, 0, 0))
        lines.append(np.asarray(canvas))
    Image.fromarray(np.concatenate(lines, 0)).save(path)


def _objective(loss, y, x) -> dict:
    """Mean content / style / tv / total of outputs ``y`` under ``loss = (PerceptualLoss, LossWeights)``."""
    import torch

    perceptual, weights = loss
    with torch.no_grad():
        terms = {k: v.mean() for k, v in perceptual.evaluate(y, x).items()}
    return {**{k: round(float(v), 5) for k, v in terms.items()}, "total": round(float(weights.total(terms)), 5)}


def _loss(style: str):
    """``(PerceptualLoss, LossWeights)`` of ``style`` as the quality measure uses them."""
    from stablestyle.analysis import load_style
    from stablestyle.evaluate.quality_report import load_style_weights
    from stablestyle.errors import UserError
    from stablestyle.losses import PerceptualLoss
    from stablestyle.models import load_vgg16
    from stablestyle.paths import assets_dir

    weights = load_style_weights(Path(__file__).resolve().parents[1] / "configs" / "style_weights.yaml")
    if style not in weights:
        raise UserError(f"--style {style}: configs/style_weights.yaml has {', '.join(weights)}")
    return PerceptualLoss(load_vgg16(), load_style(assets_dir(required=True) / "styles" / f"{style}.jpg", 256)), \
        weights[style]


def _plot(report: dict, path: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 3.6), sharey=True)
    for name, entry in report["models"].items():
        for ax, axis in zip(axes, ("rows", "cols")):
            ax.plot(entry[f"{axis}_profile"], label=f"{name} ({entry[f'{axis}_edge_excess']:.2f})")
    for ax, title in zip(axes, ("upside down: per row (0 = top)", "mirrored: per column (0 = left)")):
        ax.set_title(title, fontsize=10)
        ax.set_xlabel("pixel")
        ax.legend(fontsize=8)
    axes[0].set_ylabel("mean |f(x) - flip(f(flip x))|")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    from stablestyle.errors import UserError
    from stablestyle.paths import assets_dir
    from stablestyle.report import provenance

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", action="append", required=True, help="NAME or NAME=CHECKPOINT (repeatable)")
    p.add_argument("--photos", type=int, default=8, help="how many held-out photos (default 8)")
    p.add_argument("--photo-dir", default=None, help="default: $STABLESTYLE_ASSETS/bsds500/test")
    p.add_argument("--size", type=int, default=256, help="photos scaled to SIZE x SIZE px (default 256)")
    p.add_argument("--edge-margin", type=int, nargs="+", default=[], metavar="PX",
                   help="also measure every model at these edge margins (entries NAME+mPX)")
    p.add_argument("--style", default=None, help="add the objective's losses of this style (e.g. scream)")
    p.add_argument("--plot", action="store_true", help="also write OUT/band.png")
    p.add_argument("--look", action="store_true",
                   help=f"also write OUT/look.png: the first {LOOK_PHOTOS} photos and every entry's outputs")
    p.add_argument("-o", "--out", required=True, help="output folder")
    args = p.parse_args(argv)
    try:
        if args.photos < 1 or args.size < 32:
            raise UserError("--photos must be >= 1 and --size >= 32")
        if any(not 0 <= m <= 256 for m in args.edge_margin):
            raise UserError("--edge-margin takes pixels from 0 to 256")
        folder = Path(args.photo_dir) if args.photo_dir else assets_dir(required=True) / "bsds500" / "test"
        files, x = _photos(folder, args.photos, args.size)
        loss = _loss(args.style) if args.style else None
        measured = [m for spec in args.model for m in _measure(spec, x, args.edge_margin, loss)]
        report = {"size": args.size, "photos": [f.name for f in files], "style": args.style,
                  "models": {name: entry for name, entry, _ in measured}}
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    report["command"] = "python bench/band.py " + " ".join(argv if argv is not None else sys.argv[1:])
    report["provenance"] = provenance()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "band.json").write_text(json.dumps(report, indent=1) + "\n")
    if args.plot:
        _plot(report, out / "band.png")
    if args.look:
        _look([(name, images) for name, _, images in measured], x, out / "look.png")
    for name, entry in report["models"].items():
        total = f"   objective total {entry['objective']['total']:.4f}" if "objective" in entry else ""
        print(f"{name:24s} rows edge excess {entry['rows_edge_excess']:.3f}   cols {entry['cols_edge_excess']:.3f}"
              f"   stripes (outer {STRIPE_PX} px) rows {entry['rows_stripe_excess']:.3f} "
              f"cols {entry['cols_stripe_excess']:.3f}" + total)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
