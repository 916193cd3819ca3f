"""What the I/O layer accepts: file suffixes, encoder settings, size limits, and the checks of sizes,
frame rates and frames that every reader and writer shares.

The bottom of :mod:`stablestyle.video`: it imports no other module of the package.
"""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np

from ..errors import UserError

VIDEO_SUFFIXES = (".mp4", ".mov", ".mkv")
"""Output video containers (H.264 inside); any file PyAV opens can be read."""
VIDEO_FILE_SUFFIXES = (".mp4", ".m4v", ".mov", ".mkv", ".webm", ".avi", ".3gp", ".3g2", ".mts", ".m2ts", ".ts",
                       ".flv", ".wmv", ".mpg", ".mpeg", ".ogv")
"""Suffixes that name a video file (input side): an unreadable one is reported as possibly truncated."""
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")
"""Still images read with Pillow (single images and the frames of a frame folder)."""
OUTPUT_IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")
MIN_SIDE = 16
"""Smallest frame side accepted: below this the network's downsampling leaves nothing."""
#: Largest image side that a size option accepts (16K video is 15360 wide); larger values are typos that
#: would ask for gigabytes of memory.
MAX_SIDE = 16384
DEFAULT_FPS = 25.0
"""Frame rate assumed for frame folders and images when none is given."""
X264_PRESETS = ("ultrafast", "superfast", "veryfast", "faster", "fast", "medium", "slow", "slower", "veryslow")
"""libx264 speed presets, fastest (largest files) first."""
DEFAULT_PRESET = "medium"
"""libx264's own default (``bench/encode_speed.py`` compares the presets' speed and file size)."""
ENCODER_THREADS = ("frame", "slice")
"""How libx264 spreads over the CPU's cores: ``frame`` pipelines whole frames (the most frames/s on many
cores; docs/PERFORMANCE.md), ``slice`` cuts each frame into slices (a frame comes out sooner; PyAV's default)."""
FRAME_PATTERN = "frame_{:05d}.png"
"""Names of the frames that a folder sink writes (1-based)."""


def check_max_size(max_size: int | None, name: str = "max size") -> None:
    """:class:`UserError` unless ``max_size`` is ``None`` or a whole number of pixels >= :data:`MIN_SIDE`.

    Commands pass the option's name (``"--max-size"``) and call this before any slow work.
    """
    if max_size is not None and (isinstance(max_size, bool) or not isinstance(max_size, int) or max_size < MIN_SIDE):
        raise UserError(f"{name} must be a whole number of pixels >= {MIN_SIDE} (the long side of the frames), "
                        f"got {max_size!r}")


def check_side(value: object, name: str, low: int = MIN_SIDE, high: int = MAX_SIDE) -> None:
    """:class:`UserError` unless ``value`` is a whole number of pixels in ``low..high`` (``name``: the option)."""
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise UserError(f"{name} must be a whole number of pixels from {low} to {high}, got {value!r}")


def check_fps(fps: float | Fraction) -> None:
    """:class:`UserError` unless ``fps`` is a finite positive number (``int``, ``float`` or ``Fraction``)."""
    if isinstance(fps, bool) or not isinstance(fps, (int, float, Fraction)) or not math.isfinite(fps) or fps <= 0:
        raise UserError(f"frame rate must be a positive number of frames per second, got {fps!r}")


def check_tiny(size: tuple[int, int], what: str) -> None:
    """:class:`UserError` naming ``what`` when a side of ``size`` ``(W, H)`` is below :data:`MIN_SIDE`."""
    if min(size) < MIN_SIDE:
        raise UserError(f"{what} is {size[0]}x{size[1]} pixels; frames need at least {MIN_SIDE} pixels a side")


def frame_rate(fps: float | Fraction) -> Fraction:
    """Exact rate for a time base: NTSC rates (29.97 -> 30000/1001, 23.976, 59.94) and plain fractions.

    ``Fraction`` input is kept as is.
    """
    check_fps(fps)
    if isinstance(fps, Fraction):
        return fps
    ntsc = round(fps * 1.001)
    if ntsc > 0 and abs(fps - ntsc * 1000 / 1001) < 5e-3 and abs(fps - ntsc) > 5e-3:
        return Fraction(ntsc * 1000, 1001)
    return Fraction(fps).limit_denominator(1001)


def check_frame(frame: np.ndarray) -> None:
    """``ValueError`` unless ``frame`` is ``uint8`` ``(H, W, 3)`` numpy (a caller's bug, not the user's)."""
    if not isinstance(frame, np.ndarray) or frame.dtype != np.uint8 or frame.ndim != 3 or frame.shape[2] != 3:
        desc = f"{frame.dtype} {frame.shape}" if isinstance(frame, np.ndarray) else type(frame).__name__
        raise ValueError(f"frames must be uint8 numpy arrays of shape (H, W, 3), got {desc}")
