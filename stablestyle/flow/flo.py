"""Middlebury ``.flo`` optical-flow files.

Format (Baker et al., "A Database and Evaluation Methodology for Optical
Flow", IJCV 2011; ``flow-code/flowIO.cpp``), little-endian throughout:

* float32 magic ``202021.25`` (the bytes spell ``PIEH``),
* int32 width, int32 height,
* ``height * width * 2`` float32, row-major, ``(u, v)`` interleaved per pixel.

Flow arrays are numpy ``float32 (H, W, 2)`` in pixels, channel 0 = x (right),
1 = y (down).  Values ``>= 1e9`` mean "unknown" by Middlebury convention and are
passed through unchanged; NaN and infinite values are refused.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from ..atomic import atomic_path
from ..errors import UserError
from ..inputs import check_input_file

__all__ = ["read_flo", "write_flo", "FLO_MAGIC", "MAX_FLO_SIDE", "MAX_FLO_PIXELS"]

FLO_MAGIC = 202021.25
MAX_FLO_SIDE = 1 << 16  # larger than any real video frame; rejects garbage headers
#: At most 8K x 4K pixels (256 MiB of flow): a sparse file with a huge header is refused before allocating.
MAX_FLO_PIXELS = 8192 * 4096
_HEADER_BYTES = 12


def read_flo(path: str | os.PathLike) -> np.ndarray:
    """Read a ``.flo`` file into a ``float32 (H, W, 2)`` array (pixels).

    Raises:
        UserError: the file is missing, is not a ``.flo`` file (wrong magic),
            has an impossible size in its header, or is truncated / has
            trailing bytes.  The message names the file.
    """
    path = Path(path)
    if not path.is_file():
        if path.exists() and not path.is_dir():
            check_input_file(path, "flow file")
        what = "is a folder, not a file" if path.is_dir() else "does not exist"
        raise UserError(f"flow file {path} {what}")
    with open(path, "rb") as f:
        header = f.read(_HEADER_BYTES)
        if len(header) < _HEADER_BYTES:
            raise UserError(
                f"flow file {path} is truncated: {len(header)} bytes, a .flo header alone needs {_HEADER_BYTES}"
            )
        magic = np.frombuffer(header, dtype="<f4", count=1)[0]
        if magic != np.float32(FLO_MAGIC):
            raise UserError(
                f"flow file {path} is not a Middlebury .flo file: magic number {magic!r} "
                f"(bytes {header[:4]!r}), expected {FLO_MAGIC} (b'PIEH')"
            )
        width, height = (int(v) for v in np.frombuffer(header, dtype="<i4", count=2, offset=4))
        if not (0 < width <= MAX_FLO_SIDE and 0 < height <= MAX_FLO_SIDE):
            raise UserError(
                f"flow file {path} has an invalid size {width}x{height} in its header "
                f"(width and height must be 1..{MAX_FLO_SIDE}); the file is corrupt"
            )
        if width * height > MAX_FLO_PIXELS:
            raise UserError(f"flow file {path} claims {width}x{height} = {width * height} pixels, more than "
                            f"{MAX_FLO_PIXELS}; the file is corrupt")
        expected = _HEADER_BYTES + 8 * width * height
        actual = os.fstat(f.fileno()).st_size
        if actual < expected:
            raise UserError(
                f"flow file {path} is truncated: {actual} bytes, a {width}x{height} flow needs {expected}"
            )
        if actual > expected:
            raise UserError(
                f"flow file {path} has {actual - expected} unexpected trailing bytes after a {width}x{height} flow"
            )
        data = np.fromfile(f, dtype="<f4", count=2 * width * height)
    if not np.isfinite(data).all():
        raise UserError(f"flow file {path} holds {int((~np.isfinite(data)).sum())} NaN or infinite values; "
                        "the file is corrupt (unknown flow is written as 1e9 or more)")
    return data.reshape(height, width, 2).astype(np.float32)


def write_flo(path: str | os.PathLike, flow: np.ndarray) -> None:
    """Write ``flow`` (``(H, W, 2)``, pixels) to a ``.flo`` file atomically.

    The data go to a temporary file in the target folder that is renamed over
    ``path`` only when complete, so readers never see a partial file.

    Raises:
        UserError: ``flow`` is not ``(H, W, 2)`` / not numeric, its size is out
            of range, or the target folder does not exist.
    """
    path = Path(path)
    arr = np.asarray(flow)
    if arr.ndim != 3 or arr.shape[2] != 2:
        raise UserError(
            f"cannot write {path}: flow must be a (H, W, 2) array, got shape {arr.shape}"
            " (for a torch (1, 2, H, W) tensor use stablestyle.flow.flow_to_numpy first)"
        )
    if not (np.issubdtype(arr.dtype, np.floating) or np.issubdtype(arr.dtype, np.integer)):
        raise UserError(f"cannot write {path}: flow must be numeric, got dtype {arr.dtype}")
    height, width = arr.shape[:2]
    if not (0 < width <= MAX_FLO_SIDE and 0 < height <= MAX_FLO_SIDE) or width * height > MAX_FLO_PIXELS:
        raise UserError(f"cannot write {path}: size {width}x{height} outside 1..{MAX_FLO_SIDE} a side or over "
                        f"{MAX_FLO_PIXELS} pixels")
    header = np.array([FLO_MAGIC], dtype="<f4").tobytes() + np.array([width, height], dtype="<i4").tobytes()
    payload = np.ascontiguousarray(arr, dtype="<f4").tobytes()
    # keep_mode: overwriting a flow file keeps its permissions (a new one gets a plain open()'s).
    with atomic_path(path, keep_mode=True) as tmp, open(tmp, "wb") as f:
        f.write(header)
        f.write(payload)
