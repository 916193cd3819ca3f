"""PyAV, imported on first use (:func:`import_av`, for the sink and the audio copy too), and decoding:
opening a file for reading, the frame decoder, its errors and the truncated-file check.

Frame folders and images are read and written without PyAV.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np

from ..errors import UserError, first_line
from .formats import VIDEO_FILE_SUFFIXES


def import_av():
    """PyAV, imported on first use, so that frame folders and images are read and written without it."""
    try:
        import av
    except ImportError as exc:
        raise UserError(f"video files need PyAV, which does not import here ({exc}); pip install av, "
                        "or give a folder of frames") from None
    return av


def open_input(av, path: Path):
    """``av.open`` for reading; tags that are not UTF-8 are skipped, not an error (PyAV < 19 needs telling)."""
    try:
        return av.open(str(path), metadata_errors="ignore")
    except TypeError as exc:  # PyAV 19 dropped the argument
        if "metadata_errors" not in str(exc):
            raise
        return av.open(str(path))


def open_decoder(path: Path):
    """Open ``path`` with PyAV: ``(container, iterator of RGB uint8 frames)`` (display rotation applied)."""
    av = import_av()
    try:
        container = open_input(av, path)
    except (av.FFmpegError, OSError, UnicodeDecodeError) as exc:
        reason = first_line(str(exc)) or type(exc).__name__
        if path.suffix.lower() in VIDEO_FILE_SUFFIXES and isinstance(exc, av.InvalidDataError):
            # An MP4 / MOV whose index (moov atom) is at the end, cut short, fails here: the usual
            # unfinished copy or download.  FFmpeg cannot tell it from a file that is no video at all.
            raise UserError(f"{path}: cannot be read as a video: the file may be truncated or incomplete (e.g. a "
                            f"copy or download that did not finish; copy or export it again), or not a video or "
                            f"image at all ({reason})") from None
        raise UserError(f"{path}: not a video or image that can be read ({reason})") from None
    if not container.streams.video:
        container.close()
        raise UserError(f"{path} has no video stream (zero frames); give a video, a frame folder or an image")
    stream = container.streams.video[0]
    stream.thread_type = "AUTO"

    def frames() -> Iterator[np.ndarray]:
        for frame in container.decode(stream):
            rgb = frame.to_ndarray(format="rgb24")
            turns = round((frame.rotation or 0) / 90) % 4  # counter-clockwise quarter turns to display
            yield np.ascontiguousarray(np.rot90(rgb, turns)) if turns else rgb

    return container, frames()


def next_frame(frames: Iterator[np.ndarray], path: Path, index: int) -> np.ndarray | None:
    """Next decoded frame or ``None`` at the end; decoder errors become a :class:`UserError`."""
    try:
        return next(frames)
    except StopIteration:
        if index == 0:
            raise UserError(f"{path}: no frame could be decoded (empty or truncated video)") from None
        return None
    except Exception as exc:
        if not isinstance(exc, (import_av().FFmpegError, OSError)):  # PyAV looked up here, off the per-frame path
            raise
        raise UserError(f"{path}: video is corrupt or truncated; decoding failed after {index} frames "
                        f"({exc})") from None


def check_complete(stream, path: Path) -> None:
    """Truncated-file check: the container's sample index must not point past the end of the file.

    A cut-off MP4 / MOV with its index at the front otherwise decodes the
    frames that are there and stops without any error.
    """
    end = max((entry.pos + entry.size for entry in stream.index_entries), default=0)
    size = path.stat().st_size
    if end > size:
        raise UserError(f"{path}: video is truncated (the file has {size} bytes, its index needs {end}); "
                        "copy or export it again")
