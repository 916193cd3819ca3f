"""How much each VGG layer weighs in the style term, raw and relative: ``python bench/layer_balance.py -o DIR``.

For each style (long side 256 px) and a few held-out photos (BSDS500 test, long side 256 px, as the
quality measure uses them): each style layer's raw Gram MSE between photo and style (Johnson et
al.'s normalisation, the objective before the relative terms) and its relative value (divided by
the style Gram's energy, :func:`stablestyle.losses.relative_style_loss`'s terms), with each
layer's share of the summed term.  With Caffe-scale VGG weights the raw term is carried by
relu1_2 / relu2_2 (colours, fine edges) and relu4_3 contributes almost nothing; the relative
term gives every layer a comparable share.  Also the activation scale of the VGG file
(:func:`stablestyle.models.vgg.activation_scale`).  Writes ``DIR/layer_balance.json``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    import torch

    from stablestyle.evaluate.quality_report import resize_long_side
    from stablestyle.losses import feature_energy, gram_matrix, style_loss
    from stablestyle.models import load_vgg16
    from stablestyle.models.vgg import activation_scale
    from stablestyle.paths import assets_dir
    from stablestyle.report import provenance
    from stablestyle.video import load_style_image, read_image, to_tensor

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--styles", default="scream,udnie,WomenHat")
    p.add_argument("--photos", type=int, default=3)
    p.add_argument("-o", "--out", required=True)
    args = p.parse_args(argv)
    assets = assets_dir(required=True)
    vgg = load_vgg16()
    photos = sorted((assets / "bsds500" / "test").glob("*.jpg"))[:args.photos]
    batch = [resize_long_side(to_tensor(read_image(ph)), 256) for ph in photos]
    report = {"command": "python bench/layer_balance.py " + " ".join(argv if argv is not None else sys.argv[1:]),
              "vgg_activation_scale": activation_scale(vgg), "photos": [ph.name for ph in photos], "styles": {}}
    with torch.no_grad():
        feats = [vgg(x) for x in batch]
        for name in args.styles.split(","):
            targets = {k: gram_matrix(v) for k, v in vgg(load_style_image(assets / "styles" / f"{name}.jpg", 256)).items()}
            raw = {k: sum(float(style_loss(f, targets, (k,))) for f in feats) / len(feats) for k in targets}
            rel = {k: raw[k] / float(feature_energy(targets[k])) for k in targets}
            report["styles"][name] = {
                "raw": raw, "raw_share": {k: v / sum(raw.values()) for k, v in raw.items()},
                "relative": rel, "relative_share": {k: v / sum(rel.values()) for k, v in rel.items()}}
    report["provenance"] = provenance()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "layer_balance.json").write_text(json.dumps(report, indent=1))
    for name, row in report["styles"].items():
        print(name, "raw share", {k: f"{v:.4f}" for k, v in row["raw_share"].items()},
              "relative share", {k: f"{v:.3f}" for k, v in row["relative_share"].items()})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
