"""Training throughput of ``stablestyle train``'s step: ``python bench/train_throughput.py [options]``.

Times :meth:`stablestyle.training.Trainer.train_step` (forward of the unrolled
net, VGG-16 perceptual + temporal losses, backward, Adam) on real training
items (:class:`stablestyle.data.StillsDataset` clips rendered once from the
shared content photos and kept on the device, so data loading is excluded)
and prints one JSON object::

    {"device", "device_name", "width", "crop", "batch", "seq_len", "mode", "amp", "channels_last",
     "steps", "warmup", "seconds", "sequences_per_s", "images_per_s", "ms_per_step",
     "peak_memory_mb", "torch", "threads"}

``images_per_s`` counts frames through the transformation net
(``batch * seq_len`` per step).  Runs on CUDA when available (``--device``).
Needs the VGG-16 weights and assets (``STABLESTYLE_ASSETS``).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import torch


def main(argv: list[str] | None = None) -> int:
    from stablestyle.errors import UserError

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--device", default="auto")
    p.add_argument("--mode", default="stable", choices=("stable", "perframe"))
    p.add_argument("--width", type=float, default=1.0)
    p.add_argument("--crop", type=int, default=256)
    p.add_argument("--batch", type=int, default=4)
    p.add_argument("--seq-len", type=int, default=None, help="default 4 (stable) / 1 (perframe)")
    p.add_argument("--amp", default="auto", choices=("off", "bf16", "fp16", "auto"))
    p.add_argument("--channels-last", action="store_true")
    p.add_argument("--steps", type=int, default=5, help="timed steps")
    p.add_argument("--warmup", type=int, default=2, help="untimed steps first (cudnn autotune, allocator)")
    p.add_argument("--style", default=None, help="style image (default: $STABLESTYLE_ASSETS/styles/candy.jpg)")
    p.add_argument("--content", default=None, help="photo folder (default: $STABLESTYLE_ASSETS/content)")
    args = p.parse_args(argv)
    try:
        print(json.dumps(_measure(args)))
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


def _measure(args: argparse.Namespace) -> dict:
    from stablestyle.data import StillsDataset, find_images
    from stablestyle.paths import assets_dir
    from stablestyle.report import device_name
    from stablestyle.runtime import resolve_device
    from stablestyle.training import Trainer, TrainConfig

    assets = assets_dir(required=args.style is None or args.content is None)
    style = args.style or str(assets / "styles" / "candy.jpg")
    content = args.content or str(assets / "content")
    device = resolve_device(args.device)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
    with tempfile.TemporaryDirectory() as tmp:
        config = TrainConfig(style=style, content=[content], mode=args.mode, seq_len=args.seq_len, width=args.width,
                             crop=args.crop, batch=args.batch, amp=args.amp, channels_last=args.channels_last,
                             device=str(device), num_workers=0, out=str(Path(tmp) / "run"))
        photos = find_images([content])[: args.batch]
        data = StillsDataset(photos, config.sequence_length, config.crop)
        items = [data.get(i % len(data), 0) for i in range(args.batch)]
        batch = {k: torch.stack([it[k] for it in items]).to(device) for k in ("frames", "flow_bw", "mask")}
        trainer = Trainer(config, quiet=True, dataset=data)

        def sync() -> None:
            if device.type == "cuda":
                torch.cuda.synchronize(device)

        for _ in range(args.warmup):
            trainer.train_step(batch)
        sync()
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(device)
        start = time.perf_counter()
        for _ in range(args.steps):
            metrics = trainer.train_step(batch)
        float(metrics["total"])  # waits for the last step
        sync()
        seconds = time.perf_counter() - start
    seq_len = config.sequence_length
    amp = {None: "off", torch.bfloat16: "bf16", torch.float16: "fp16"}[trainer.amp_dtype]
    return {
        "device": device.type,
        "device_name": device_name(device),
        "width": args.width, "crop": args.crop, "batch": args.batch, "seq_len": seq_len, "mode": args.mode,
        "amp": amp, "channels_last": args.channels_last, "steps": args.steps, "warmup": args.warmup,
        "seconds": round(seconds, 4),
        "sequences_per_s": round(args.batch * args.steps / seconds, 3),
        "images_per_s": round(args.batch * seq_len * args.steps / seconds, 3),
        "ms_per_step": round(1000 * seconds / args.steps, 2),
        "peak_memory_mb": round(torch.cuda.max_memory_allocated(device) / 2**20, 1) if device.type == "cuda" else None,
        "torch": torch.__version__, "threads": torch.get_num_threads(),
    }


if __name__ == "__main__":
    sys.exit(main())
