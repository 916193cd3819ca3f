"""``stablestyle make-clip IMAGE [IMAGE...] -o FOLDER``: a clip with exact flow from still images.

A virtual camera pans, zooms and rotates over the first image while
foreground patches cut from the images move over it
(:mod:`stablestyle.synthetic`).  The folder gets the MPI Sintel layout
(frames, forward flow, occlusions) plus the backward flow and validity masks
that the instability evaluation reads (``load_ground_truth``).
"""

from __future__ import annotations

import argparse
import re

HELP = "render a clip with exact optical flow and occlusions from still images (Sintel-like folder)"


MAX_SIDE = 8192
#: Seeds accepted by ``--seed`` (numpy's generators take non-negative integers; 32 bits are plenty).
MAX_SEED = 2**32
#: Memory a clip may take while it is rendered (frames, both flows, validity masks), in bytes.
MAX_CLIP_BYTES = 4 << 30
#: Bytes per pixel per frame held in memory: RGB uint8, two float32 flows, one bool mask.
CLIP_BYTES_PER_PIXEL = 3 + 8 + 8 + 1


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("images", nargs="+", metavar="IMAGE",
                   help="RGB images: the first is the background, foreground patches are cut from the others "
                        "(or from the first when there is only one)")
    p.add_argument("-o", "--output", required=True, metavar="FOLDER",
                   help="output folder to create, a name without suffix (its parent must exist)")
    p.add_argument("--frames", type=int, default=30, help="number of frames (>= 2; default 30)")
    p.add_argument("--size", default="480x270", help="frame size WIDTHxHEIGHT in pixels (default 480x270)")
    p.add_argument("--foregrounds", type=int, default=2, help="number of moving foreground patches (default 2)")
    p.add_argument("--seed", type=int, default=0,
                   help="random seed, 0 .. 2**32-1: the same seed and images give the same clip (default 0)")
    p.add_argument("--speed", type=float, default=None,
                   help="largest camera pan in pixels per frame (default from MotionConfig: 4)")
    p.add_argument("--fg-speed", type=float, default=None,
                   help="largest foreground speed in pixels per frame (default from MotionConfig: 6)")
    p.add_argument("--overwrite", action="store_true", help="replace FOLDER if it is an existing clip folder")
    p.add_argument("--quiet", action="store_true", help="no progress bar or info messages (warnings still show)")


def parse_size(text: str) -> tuple[int, int]:
    """``"480x270"`` -> ``(480, 270)``; anything else is a :class:`UserError`."""
    from ..errors import UserError
    from ..video import MIN_SIDE

    match = re.fullmatch(r"\s*(\d+)\s*[xX]\s*(\d+)\s*", text)
    if not match:
        raise UserError(f"--size must be WIDTHxHEIGHT in pixels, e.g. 480x270; got {text!r}")
    width, height = int(match.group(1)), int(match.group(2))
    if not (MIN_SIDE <= width <= MAX_SIDE and MIN_SIDE <= height <= MAX_SIDE):
        raise UserError(f"--size sides must be {MIN_SIDE}..{MAX_SIDE} pixels, got {width}x{height}")
    return width, height


def check_clip_memory(frames: int, size: tuple[int, int]) -> None:
    """:class:`UserError` when ``frames`` frames of ``size`` would need more than :data:`MAX_CLIP_BYTES`."""
    from ..errors import UserError

    need = frames * size[0] * size[1] * CLIP_BYTES_PER_PIXEL
    if need > MAX_CLIP_BYTES:
        raise UserError(f"--frames {frames} at --size {size[0]}x{size[1]} needs about {need / 2**30:.1f} GiB of "
                        f"memory (at most {MAX_CLIP_BYTES / 2**30:g} GiB); use fewer frames or a smaller size")


def check_output_name(output: str) -> None:
    """:class:`UserError` when ``-o`` names a video or image file: make-clip writes a folder."""
    from pathlib import Path

    from ..errors import UserError
    from ..video import IMAGE_SUFFIXES, VIDEO_FILE_SUFFIXES

    path = Path(output)
    if path.suffix.lower() in (*VIDEO_FILE_SUFFIXES, *IMAGE_SUFFIXES, ".gif"):
        raise UserError(f"-o {output}: make-clip writes a folder (frames/, flow/, ... and clip.json), not a "
                        f"{'video' if path.suffix.lower() in VIDEO_FILE_SUFFIXES else 'image'} file; give a folder "
                        f"name without suffix, e.g. -o {path.with_suffix('')}")


def run(args: argparse.Namespace) -> int:
    from dataclasses import replace
    from pathlib import Path

    import numpy as np

    from ..errors import UserError
    from ..synthetic import MotionConfig, check_clip_folder, render_clip, save_clip
    from ..video import read_image

    size = parse_size(args.size)
    if args.frames < 2:
        raise UserError(f"--frames must be at least 2 (a clip needs motion between frames), got {args.frames}")
    check_clip_memory(args.frames, size)
    if args.foregrounds < 0:
        raise UserError(f"--foregrounds must be 0 or more, got {args.foregrounds}")
    if not 0 <= args.seed < MAX_SEED:
        raise UserError(f"--seed must be a whole number from 0 to {MAX_SEED - 1}, got {args.seed}")
    check_output_name(args.output)
    motion = MotionConfig()
    if args.speed is not None:
        motion = replace(motion, max_speed=args.speed)
    if args.fg_speed is not None:
        motion = replace(motion, fg_max_speed=args.fg_speed)
    check_clip_folder(args.output, args.overwrite)

    images = [read_image(path) for path in args.images]
    sources = list(range(1, len(images))) or [0]
    fg_index = [sources[k % len(sources)] for k in range(args.foregrounds)]
    clip = render_clip(images[0], args.frames, size, rng=np.random.default_rng(args.seed), motion=motion,
                       foregrounds=[images[i] for i in fg_index], quiet=args.quiet)
    provenance = {
        "command": "stablestyle make-clip",
        "seed": args.seed,
        "sources": {"background": str(args.images[0]), "foregrounds": [str(args.images[i]) for i in fg_index]},
    }
    save_clip(clip, args.output, overwrite=args.overwrite, provenance=provenance, quiet=args.quiet)
    valid = float(clip.valid_bw[1:].mean())
    megabytes = sum(f.stat().st_size for f in Path(args.output).rglob("*") if f.is_file()) / 2 ** 20
    print(f"made {args.frames} frames at {size[0]}x{size[1]} with exact flow -> {args.output} "
          f"({100 * valid:.1f}% of pixels valid for the backward flow; {megabytes:.1f} MB, the .flo files "
          "uncompressed)")
    return 0
