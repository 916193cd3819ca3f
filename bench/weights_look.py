"""What a style weight does to the optimisation, to choose it by looking: one photo, several weights.

``python bench/weights_look.py --style scream --photo 100007.jpg --weights 2 4 10 -o reports/objective/look``

L-BFGS from noise on the relative objective (content 1, tv 0.05, style as given; the quality measure's
:func:`stablestyle.evaluate.quality.optimization_curve`) for ``--iterations`` on a held-out BSDS500 test
photo at 256 px, the style image at 256 px (training's ``style_size``).  Writes ``OUT/<style>_<photo>.png``
(the photo, then one result per weight, left to right) and ``OUT/<style>_<photo>.json`` (each result's
content / style / tv terms and the command).  Per style, the chosen weight is the smallest whose result
visibly takes on the painting's strokes and palette (``configs/style_weights.yaml``).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np


def main(argv: list[str] | None = None) -> int:
    import torch
    from PIL import Image

    from stablestyle.analysis import load_style
    from stablestyle.evaluate.quality import optimization_curve
    from stablestyle.evaluate.quality_report import resize_long_side
    from stablestyle.losses import LossWeights, PerceptualLoss
    from stablestyle.models import load_vgg16
    from stablestyle.paths import assets_dir
    from stablestyle.video import read_image, to_tensor, to_uint8

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--style", default="scream")
    p.add_argument("--photo", default="100007.jpg", help="a file of bsds500/test")
    p.add_argument("--weights", nargs="+", type=float, default=[2.0, 4.0, 10.0])
    p.add_argument("--iterations", type=int, default=400)
    p.add_argument("-o", "--out", type=Path, required=True)
    args = p.parse_args(argv)
    assets = assets_dir(required=True)
    x = resize_long_side(to_tensor([read_image(assets / "bsds500" / "test" / args.photo)]), 256)  # as the measure
    img = to_uint8(x)
    loss = PerceptualLoss(load_vgg16(), load_style(assets / "styles" / f"{args.style}.jpg", 256))
    tiles, results = [img], []
    for weight in args.weights:
        y, curve = optimization_curve(loss, x, LossWeights(content=1, style=weight, tv=0.05),
                                      iterations=args.iterations)
        with torch.no_grad():
            terms = {k: float(v) for k, v in loss.evaluate(y, x).items()}
        results.append({"style_weight": weight, "final_total": curve[-1], **terms})
        print(results[-1], flush=True)
        tiles.append(to_uint8(y))
    args.out.mkdir(parents=True, exist_ok=True)
    stem = f"{args.style}_{Path(args.photo).stem}"
    Image.fromarray(np.concatenate(tiles, 1)).save(args.out / f"{stem}.png")
    command = "python bench/weights_look.py " + " ".join(sys.argv[1:] if argv is None else argv)
    (args.out / f"{stem}.json").write_text(json.dumps({"command": command, "results": results}, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
