"""Synthetic clips on disk: the MPI Sintel layout (Butler et al., ECCV 2012) plus our backward direction.

Owns :func:`save_clip` (atomic), :func:`check_clip_folder`, :func:`load_ground_truth` and
:class:`GroundTruthClip`.  The layout::

    frames/frame_0001.png ...          T frames, RGB
    flow/frame_0001.flo ...            Sintel: forward flow frame i -> i+1 (T-1 files)
    occlusions/frame_0001.png ...      Sintel: 255 = pixel of frame i not visible in i+1
    flow_bw/frame_0002.flo ...         ours: flow of frame i back to i-1 (T-1 files)
    valid_bw/frame_0002.png ...        ours: 255 = valid for flow_bw (visible in i-1)
    clip.json                          provenance (sources, seed, motion, conventions)
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .. import __version__
from ..atomic import check_output_folder, staged_folder
from ..errors import UserError
from ..runtime import progress
from .render import SyntheticClip

log = logging.getLogger(__name__)

FORMAT = "stablestyle-synthetic-clip"
FORMAT_VERSION = 1


@dataclass
class GroundTruthClip:
    """Frames with exact backward flow, as :func:`load_ground_truth` reads them.

    Attributes:
        frames: ``uint8 (T, H, W, 3)``.
        flow_bw: ``float32 (T, H, W, 2)``, index 0 zeros.
        valid_bw: ``float32 (T, H, W)`` in ``{0, 1}``, index 0 zeros.
        meta: the folder's ``clip.json`` (empty when absent).
        folder: where it was read from.
    """

    frames: np.ndarray
    flow_bw: np.ndarray
    valid_bw: np.ndarray
    meta: dict
    folder: Path


def _frame_name(i: int, suffix: str) -> str:
    return f"frame_{i:04d}{suffix}"


def _write_mask(path: Path, mask: np.ndarray) -> None:
    from PIL import Image

    Image.fromarray(mask.astype(np.uint8), "L").save(path, format="PNG")


def _read_mask(path: Path) -> np.ndarray:
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as img:
            return np.asarray(img.convert("L")) >= 128
    except (UnidentifiedImageError, OSError, ValueError) as exc:  # ValueError: a chunk past Pillow's limit
        raise UserError(f"{path}: not a readable mask image ({exc})") from None


def save_clip(clip: SyntheticClip, folder: str | os.PathLike, *, overwrite: bool = False,
              provenance: dict | None = None, quiet: bool = True) -> Path:
    """Write ``clip`` in the layout of the module docstring, atomically.

    Everything is written to a temporary folder beside ``folder`` that is
    renamed into place only when complete; an existing ``folder`` is replaced
    only with ``overwrite`` (and only when it looks like a clip folder).

    Args:
        clip: the clip.
        folder: output folder; its parent must exist.
        overwrite: replace an existing clip folder.
        provenance: extra plain data for ``clip.json`` (sources, seed, ...).
        quiet: hide the progress bar.

    Returns:
        ``folder`` as a :class:`Path`.
    """
    from ..flow import write_flo
    from ..video import write_image

    folder = Path(folder)
    check_clip_folder(folder, overwrite)
    with staged_folder(folder, overwrite=overwrite) as tmp:
        for sub in ("frames", "flow", "occlusions", "flow_bw", "valid_bw"):
            (tmp / sub).mkdir()
        num_frames = clip.num_frames
        for t in progress(range(num_frames), total=num_frames, desc="write", unit="frame", quiet=quiet):
            write_image(tmp / "frames" / _frame_name(t + 1, ".png"), clip.frames[t])
            if t == 0:
                continue
            # Sintel: flow/frame_i is frame i -> i+1 (1-based) = our flow_fw[i] (0-based t = i).
            write_flo(tmp / "flow" / _frame_name(t, ".flo"), clip.flow_fw[t])
            _write_mask(tmp / "occlusions" / _frame_name(t, ".png"), 255 * (clip.valid_fw[t] < 0.5))
            write_flo(tmp / "flow_bw" / _frame_name(t + 1, ".flo"), clip.flow_bw[t])
            _write_mask(tmp / "valid_bw" / _frame_name(t + 1, ".png"), 255 * (clip.valid_bw[t] >= 0.5))
        meta = {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "stablestyle_version": __version__,
            "num_frames": num_frames,
            "size": list(clip.size),
            "layout": {
                "frames": "frames/frame_%04d.png, 1-based, RGB",
                "flow": "flow/frame_%04d.flo: forward flow frame i -> i+1 (Sintel), on frame i's grid",
                "occlusions": "occlusions/frame_%04d.png: 255 = pixel of frame i not visible in frame i+1 (Sintel)",
                "flow_bw": "flow_bw/frame_%04d.flo: flow of frame i back to frame i-1, on frame i's grid",
                "valid_bw": "valid_bw/frame_%04d.png: 255 = pixel of frame i visible in frame i-1",
                "flow_units": "pixels; channel 0 = x (right), 1 = y (down)",
            },
            **clip.meta,
            **(provenance or {}),
        }
        (tmp / "clip.json").write_text(json.dumps(meta, indent=2, default=_json_default) + "\n")
    log.debug("wrote a %d-frame clip to %s", clip.num_frames, folder)
    return folder


def _json_default(value):
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def check_clip_folder(folder: str | os.PathLike, overwrite: bool = False) -> Path:
    """Check an output clip folder before any work (:func:`save_clip` checks again); returns it.

    Raises:
        UserError: its parent folder is missing, it is a file, it exists and
            ``overwrite`` is false, or it exists but holds something other than
            a clip (no ``clip.json``).
    """
    return check_output_folder(folder, overwrite, marker="clip.json", what="a clip folder", noun="clip")


_LAYOUT_HELP = (
    "expected a folder with frames/frame_0001.png ..., flow_bw/frame_0002.flo ... (flow of frame i back "
    "to i-1) and valid_bw/frame_0002.png ... (255 = valid), as `stablestyle make-clip` writes; Sintel's "
    "forward flow/ and occlusions/ alone are not enough"
)


def load_ground_truth(folder: str | os.PathLike) -> GroundTruthClip:
    """Read a clip folder's frames, exact backward flow and validity (see the module docstring).

    Raises:
        UserError: the folder or a required file is missing or unreadable, or
            sizes disagree; the message lists the expected layout.
    """
    from ..flow import read_flo
    from ..video import IMAGE_SUFFIXES, natural_key, read_image

    folder = Path(folder)
    if not folder.is_dir():
        raise UserError(f"{folder}: no such clip folder; {_LAYOUT_HELP}")
    frame_dir = folder / "frames"
    files = sorted((p for p in frame_dir.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES
                    and not p.name.startswith(".")), key=lambda p: natural_key(p.name)) if frame_dir.is_dir() else []
    if not files:
        raise UserError(f"{folder} has no frames/ images; {_LAYOUT_HELP}")
    if not (folder / "flow_bw").is_dir() or not (folder / "valid_bw").is_dir():
        missing = [d for d in ("flow_bw", "valid_bw") if not (folder / d).is_dir()]
        raise UserError(f"{folder} has no {' or '.join(missing)}/ folder; {_LAYOUT_HELP}")
    frames = np.stack([read_image(p) for p in files])
    num_frames, height, width = frames.shape[:3]
    flow_bw = np.zeros((num_frames, height, width, 2), np.float32)
    valid_bw = np.zeros((num_frames, height, width), np.float32)
    for t in range(1, num_frames):
        flo = folder / "flow_bw" / _frame_name(t + 1, ".flo")
        png = folder / "valid_bw" / _frame_name(t + 1, ".png")
        for path in (flo, png):
            if not path.is_file():
                raise UserError(f"{path} is missing ({num_frames} frames need flow_bw and valid_bw for frames "
                                f"2..{num_frames}); {_LAYOUT_HELP}")
        flow = read_flo(flo)
        mask = _read_mask(png)
        if flow.shape[:2] != (height, width) or mask.shape != (height, width):
            raise UserError(f"{flo} / {png} are {flow.shape[1]}x{flow.shape[0]} / {mask.shape[1]}x{mask.shape[0]} "
                            f"but the frames are {width}x{height}")
        flow_bw[t], valid_bw[t] = flow, mask
    meta = {}
    if (folder / "clip.json").is_file():
        try:
            meta = json.loads((folder / "clip.json").read_text())
        except (OSError, ValueError) as exc:
            raise UserError(f"{folder / 'clip.json'} is not valid JSON ({exc})") from None
    return GroundTruthClip(frames, flow_bw, valid_bw, meta, folder)
