"""Still images: reading (RGB only, EXIF orientation applied, Pillow's decompression-bomb and text-chunk
limits reported as user errors), the one style-image loader, and atomic writing.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageOps, UnidentifiedImageError

from ..atomic import atomic_path
from ..errors import UserError, first_line
from ..inputs import check_input_file
from .convert import to_tensor
from .formats import IMAGE_SUFFIXES, check_frame, check_tiny

_RGB_HINT = "convert it first, e.g. with Pillow: Image.open(p).convert('RGB').save(q)"


def read_image(path: str | os.PathLike) -> np.ndarray:
    """Read an RGB image file as ``uint8`` ``(H, W, 3)``, with its EXIF orientation applied.

    Images with an alpha channel, a single channel (greyscale) or another
    colour model are rejected (:class:`UserError` saying how to convert them),
    as are images smaller than :data:`MIN_SIDE` pixels a side.  Palette images
    without transparency are expanded to RGB (lossless).
    """
    path = Path(path)
    if not path.exists():
        raise UserError(f"{path} does not exist")
    if path.is_dir():
        raise UserError(f"{path} is a folder, not an image file")
    check_input_file(path, "image")
    try:
        with Image.open(path) as img:
            img = ImageOps.exif_transpose(img)
            img.load()
            rgb = _as_rgb(img, path)
    except UserError:
        raise
    except (UnidentifiedImageError, Image.DecompressionBombError, OSError, SyntaxError, ValueError) as exc:
        # ValueError: a PNG text or ICC chunk that inflates past Pillow's limit (a decompression bomb)
        raise UserError(f"{path}: not an image Pillow can read ({first_line(str(exc))})") from None
    check_tiny((rgb.shape[1], rgb.shape[0]), f"image {path}")
    return rgb


def _as_rgb(img: Image.Image, path: Path) -> np.ndarray:
    mode = img.mode
    if mode == "P" and "transparency" not in img.info:
        img, mode = img.convert("RGB"), "RGB"
    if mode != "RGB":
        if "A" in mode or "a" in mode or mode == "P":
            what = f"has an alpha channel (mode {mode})"
        elif len(img.getbands()) == 1:
            what = f"has a single channel (mode {mode})"
        else:
            what = f"is in colour mode {mode}"
        raise UserError(f"{path} {what}; it must be RGB: {_RGB_HINT}")
    return np.array(img, dtype=np.uint8)


def load_style_image(path: str | os.PathLike, size: int | None) -> torch.Tensor:
    """A style image as ``(1, 3, h, w)`` float in ``[0, 1]``, long side resized to ``size``.

    Antialiased bilinear, aspect kept, enlarged or shrunk so the long side is
    ``size`` (short side at least 16; ``None``: as stored).  Training's style
    targets and the analysis / evaluation all load styles here, so every
    style is measured at the scale its network is trained at.
    """
    import torch.nn.functional as F

    image = to_tensor(read_image(path))
    if size is not None:
        h, w = image.shape[-2:]
        scale = size / max(h, w)
        new = (max(16, round(h * scale)), max(16, round(w * scale)))
        if new != (h, w):
            image = F.interpolate(image, size=new, mode="bilinear", align_corners=False,
                                  antialias=True).clamp_(0.0, 1.0)
    return image


def write_image(path: str | os.PathLike, img: np.ndarray) -> None:
    """Write ``uint8`` ``(H, W, 3)`` RGB to ``path`` (format from the suffix), atomically.

    The file appears complete or not at all: it is written under a temporary
    name in the same folder and renamed.  An existing file is replaced; call
    :func:`check_output_path` first where the user did not ask for that.
    """
    path = Path(path)
    check_frame(img)
    fmt = pil_format(path)
    if not path.parent.is_dir():
        raise UserError(f"output folder {path.parent} does not exist; create it first")
    with atomic_path(path) as tmp:
        save_pil(img, tmp, fmt)


def pil_format(path: Path) -> str:
    suffix = path.suffix.lower()
    if suffix not in IMAGE_SUFFIXES:
        raise UserError(f"{path}: unknown image type {suffix!r}; valid: {', '.join(IMAGE_SUFFIXES)}")
    return {".jpg": "JPEG", ".jpeg": "JPEG", ".tif": "TIFF"}.get(suffix, suffix[1:].upper())


def save_pil(img: np.ndarray, path: Path, fmt: str) -> None:
    options = {"quality": 95} if fmt in ("JPEG", "WEBP") else {}
    Image.fromarray(img, "RGB").save(path, format=fmt, **options)


def is_image(path: Path) -> bool:
    try:
        with Image.open(path):
            return True
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError):
        return False
