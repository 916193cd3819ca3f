"""Lenient loading of training photos: find them, convert them, skip the bad ones.

Training is lenient where stylisation input is strict
(:func:`stablestyle.video.read_image` rejects greyscale or transparent
images): a photo collection of thousands of files always has a few odd ones,
and one of them must not stop a run of hours.  Greyscale, palette, CMYK and
16-bit images are converted to RGB, transparent ones composited over white;
images whose short side is at least ``crop / 2`` but below ``crop`` are
enlarged to ``crop``; smaller or unreadable ones are skipped, and the skips
are counted in one warning.
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import UserError
from ..runtime import progress

log = logging.getLogger(__name__)

__all__ = ["IMAGE_EXTENSIONS", "BadImage", "ImageScan", "find_images", "load_training_image", "scan_images"]

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".webp")
"""Suffixes collected from folders (case-insensitive); files named explicitly are tried whatever their suffix."""


class BadImage(Exception):
    """A training image that cannot be used; ``reason`` is ``"unreadable"`` or ``"too small"``."""

    def __init__(self, path: Path, reason: str, detail: str):
        super().__init__(f"{path}: {reason} ({detail})")
        self.path, self.reason, self.detail = path, reason, detail


@dataclass
class ImageScan:
    """Result of :func:`scan_images`.

    Attributes:
        usable: images to train on, in a stable (sorted) order.
        skipped: reason (``"unreadable"``, ``"too small"``) -> skipped files.
        converted: usable images that were not RGB (converted when loaded).
        upscaled: usable images enlarged to the crop size when loaded.
    """

    usable: list[Path] = field(default_factory=list)
    skipped: dict[str, list[Path]] = field(default_factory=dict)
    converted: list[Path] = field(default_factory=list)
    upscaled: list[Path] = field(default_factory=list)

    @property
    def num_skipped(self) -> int:
        return sum(len(v) for v in self.skipped.values())


def find_images(paths: Iterable[str | os.PathLike]) -> list[Path]:
    """Image files among ``paths``: files as given, folders searched recursively for :data:`IMAGE_EXTENSIONS`.

    Hidden files and folders (``.name``) are ignored.  The result is sorted
    per argument and free of duplicates.

    Raises:
        UserError: a path does not exist.
    """
    found: list[Path] = []
    seen: set[Path] = set()
    for arg in paths:
        path = Path(arg)
        if path.is_dir():
            files = sorted(
                p for p in path.rglob("*")
                if p.suffix.lower() in IMAGE_EXTENSIONS and p.is_file()
                and not any(part.startswith(".") for part in p.relative_to(path).parts)
            )
        elif path.is_file():
            files = [path]
        else:
            raise UserError(f"training images: {path} does not exist (give image files or folders of images)")
        for p in files:
            key = p.resolve()
            if key not in seen:
                seen.add(key)
                found.append(p)
    return found


def _to_rgb(img) -> tuple[np.ndarray, bool]:
    """A decoded Pillow image -> ``uint8 (H, W, 3)`` RGB and whether it had to be converted."""
    from PIL import Image

    mode = img.mode
    if mode == "RGB":
        return np.asarray(img, dtype=np.uint8), False
    if mode in ("I", "I;16", "I;16L", "I;16B", "I;16N", "F"):
        arr = np.asarray(img, dtype=np.float64)
        top = 65535.0 if mode.startswith("I;16") else max(float(arr.max()), 255.0)
        grey = np.clip(np.rint(arr * (255.0 / top)), 0, 255).astype(np.uint8)
        return np.repeat(grey[..., None], 3, axis=2), True
    has_alpha = "A" in mode or "a" in mode or (mode == "P" and "transparency" in img.info)
    if has_alpha:
        rgba = img.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return np.asarray(Image.alpha_composite(white, rgba).convert("RGB"), dtype=np.uint8), True
    return np.asarray(img.convert("RGB"), dtype=np.uint8), True


def _open(path: Path, crop: int, decode: bool) -> tuple[np.ndarray | None, bool, bool]:
    """``(pixels or None, converted, upscaled)``; raises :class:`BadImage`."""
    import cv2
    from PIL import Image, ImageOps

    try:
        with Image.open(path) as img:
            width, height = img.size
            short = min(width, height)
            if short < crop / 2:
                need = crop // 2 + crop % 2
                raise BadImage(path, "too small", f"{width}x{height}, need a short side of at least {need} px")
            if not decode:
                return None, img.mode != "RGB", short < crop
            # JPEG: decode at a reduced scale (1/2, 1/4, 1/8) that still keeps a short side >= 2 * crop.
            f = min(1.0, 2 * crop / short)
            img.draft("RGB", (math.ceil(width * f), math.ceil(height * f)))
            img = ImageOps.exif_transpose(img)
            img.load()
            rgb, converted = _to_rgb(img)
    except BadImage:
        raise
    # A photo collection holds every kind of broken file; Pillow signals them with many exception types
    # (OSError for truncation, SyntaxError, ValueError, DecompressionBombError, struct.error, ...).
    except Exception as exc:  # noqa: BLE001
        raise BadImage(path, "unreadable", f"{type(exc).__name__}: {exc}") from None
    h, w = rgb.shape[:2]
    upscaled = min(h, w) < crop
    if upscaled:
        scale = crop / min(h, w)
        size = (max(crop, round(w * scale)), max(crop, round(h * scale)))
        rgb = cv2.resize(rgb, size, interpolation=cv2.INTER_CUBIC)
    return np.ascontiguousarray(rgb), converted, upscaled


def load_training_image(path: str | os.PathLike, crop: int) -> np.ndarray:
    """A training photo as ``uint8 (H, W, 3)`` RGB with a short side of at least ``crop``.

    Non-RGB images are converted (see the module docstring); a short side in
    ``[crop / 2, crop)`` is enlarged (bicubic) to ``crop``; large JPEGs are
    decoded at a reduced scale that keeps the short side ``>= 2 * crop``.

    Raises:
        BadImage: unreadable, or a short side below ``crop / 2``.
    """
    return _open(Path(path), crop, decode=True)[0]


def scan_images(paths: Iterable[str | os.PathLike], crop: int, *, verify: bool = True,
                quiet: bool = True) -> ImageScan:
    """Find training images under ``paths`` and sort out the unusable ones, before training starts.

    Args:
        paths: image files and folders (searched recursively).
        crop: training crop side, pixels.
        verify: decode every image (finds truncated files; ~5 ms per photo).
            Without it only headers are read; files that turn out broken
            during training are then replaced by another image with a warning.
        quiet: hide the progress bar.

    Returns:
        :class:`ImageScan`; skips are logged as one counted warning.
    """
    files = find_images(paths)
    scan = ImageScan()
    for path in progress(files, total=len(files), desc="check images", unit="img", quiet=quiet):
        try:
            _, converted, upscaled = _open(path, crop, decode=verify)
        except BadImage as exc:
            scan.skipped.setdefault(exc.reason, []).append(path)
            log.debug("skipping training image %s", exc)
            continue
        scan.usable.append(path)
        if converted:
            scan.converted.append(path)
        if upscaled:
            scan.upscaled.append(path)
    if scan.num_skipped:
        counts = ", ".join(f"{len(v)} {reason}" for reason, v in sorted(scan.skipped.items()))
        examples = ", ".join(str(p) for v in scan.skipped.values() for p in v[:2])
        log.warning("skipped %d of %d training images (%s; crop %d needs a short side >= %d): e.g. %s",
                    scan.num_skipped, len(files), counts, crop, crop // 2 + crop % 2, examples)
    if scan.converted:
        log.warning("%d training images are not RGB (greyscale, transparent, palette, CMYK, 16-bit); "
                    "they are converted to RGB", len(scan.converted))
    if scan.upscaled:
        log.info("%d training images are smaller than the %d px crop and are enlarged", len(scan.upscaled), crop)
    return scan
