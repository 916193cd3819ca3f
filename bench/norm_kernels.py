"""Instance norm against group norm (one group per channel) per layer shape, printed as JSON.

The two compute the same function; this times PyTorch's kernels for them on the
feature-map shapes of the transformation net at one frame size (the channels of
widths 0.25 and 0.5 at full, half and quarter resolution), in fp32 and bf16,
channels-last and channels-first.  It is the evidence behind
:class:`stablestyle.inference.rewrites.GroupInstanceNorm2d` and its
``GROUP_NORM_MIN_BF16_CHANNELS`` rule.  Example::

    python bench/norm_kernels.py --size 640x360 --threads 2
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F


def _median_ms(fn, x: torch.Tensor, repeats: int) -> float:
    for _ in range(3):
        fn(x)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn(x)
        times.append(time.perf_counter() - t0)
    return round(1000 * float(np.median(times)), 3)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--size", default="640x360", help="frame size WxH (default 640x360)")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--repeats", type=int, default=30, help="timed calls per case (median reported)")
    args = p.parse_args(argv)
    try:
        w, h = (int(v) for v in args.size.lower().split("x"))
    except ValueError:
        print(f"error: --size {args.size}: give WxH, e.g. 640x360", file=sys.stderr)
        return 2
    if w < 4 or h < 4 or args.threads < 1 or args.repeats < 1:
        print("error: --size sides must be >= 4, --threads and --repeats >= 1", file=sys.stderr)
        return 2
    torch.set_num_threads(args.threads)
    # (channels, downsampling) of the net's norms: width 0.25 has 8 / 16 / 32 channels, width 0.5 16 / 32 / 64
    shapes = [(8, 1), (16, 2), (32, 4), (16, 1), (32, 2), (64, 4)]
    results = []
    load_before = os.getloadavg()
    with torch.inference_mode():
        for dtype in (torch.float32, torch.bfloat16):
            for channels, down in shapes:
                x = torch.randn(1, channels, max(h // down, 1), max(w // down, 1)).to(dtype)
                weight, bias = torch.ones(channels, dtype=dtype), torch.zeros(channels, dtype=dtype)
                row = {"dtype": str(dtype).removeprefix("torch."), "channels": channels,
                       "height": x.shape[2], "width": x.shape[3]}
                for layout, t in (("channels_last", x.contiguous(memory_format=torch.channels_last)),
                                  ("channels_first", x.contiguous())):
                    row[f"instance_norm_ms_{layout}"] = _median_ms(
                        lambda a: F.instance_norm(a, weight=weight, bias=bias), t, args.repeats)
                    row[f"group_norm_ms_{layout}"] = _median_ms(
                        lambda a: F.group_norm(a, channels, weight, bias), t, args.repeats)
                results.append(row)
    report = {"command": " ".join(["norm_kernels.py", *(argv if argv is not None else sys.argv[1:])]),
              "size": f"{w}x{h}", "threads": args.threads, "torch": torch.__version__,
              "load_average_before": load_before, "load_average_after": os.getloadavg(), "results": results}
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
