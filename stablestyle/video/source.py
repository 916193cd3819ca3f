"""Reading frames: :func:`open_source` and :class:`FrameSource` for a video file (PyAV), a folder of
numbered frames or a single image; the playing order of a frame folder (:func:`frame_files`,
:func:`natural_key`, :func:`is_numbered_sequence`).
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Iterable, Iterator
from fractions import Fraction
from pathlib import Path

import numpy as np

from ..errors import UserError
from ..inputs import check_input_file
from .convert import resize, resized_size
from .decode import check_complete, next_frame, open_decoder
from .formats import DEFAULT_FPS, IMAGE_SUFFIXES, check_fps, check_max_size, check_tiny, frame_rate
from .images import is_image, read_image

log = logging.getLogger(__name__)


def natural_key(name: str) -> list:
    """Sort key that orders ``frame_2`` before ``frame_10`` (digit runs compare as numbers)."""
    return [int(tok) if tok.isdigit() else tok.lower() for tok in re.split(r"(\d+)", name)]


class FrameSource:
    """Frames of a video, a frame folder or an image; iterate for ``uint8`` ``(H, W, 3)`` RGB.

    Built by :func:`open_source`.  Attributes: ``path``, ``kind`` (``"video"``,
    ``"frames"`` or ``"image"``), ``fps`` (float), ``rate`` (the same as an
    exact ``Fraction``), ``size`` (``(W, H)`` after resizing), ``num_frames``
    (``None`` when the container does not say), ``has_audio``.  Frames are
    decoded lazily, one at a time; iterating again starts from the first
    frame.  Use it as a context manager (or call :meth:`close`) to release the
    video file.
    """

    def __init__(self, path: Path, kind: str, *, rate: Fraction, size: tuple[int, int],
                 num_frames: int | None, has_audio: bool,
                 files: list[Path] | None = None, first: np.ndarray | None = None):
        self.path = path
        self.kind = kind
        self.rate = rate
        self.fps = float(rate)
        self.size = size
        self.num_frames = num_frames
        self.has_audio = has_audio
        self._files = files
        self._first = first  # decoded first frame (video / image), reused by the first iteration
        self._decoder: tuple | None = None  # (container, frame iterator) primed at open, video only
        self._open_containers: set = set()
        self._closed = False

    def __repr__(self) -> str:
        return (f"FrameSource({str(self.path)!r}, kind={self.kind!r}, size={self.size}, fps={self.fps:g}, "
                f"num_frames={self.num_frames}, has_audio={self.has_audio})")

    def __enter__(self) -> FrameSource:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        """Close the video file(s); the source cannot be iterated afterwards."""
        self._closed = True
        for container in list(self._open_containers):
            container.close()
        self._open_containers.clear()
        self._decoder = None

    def __iter__(self) -> Iterator[np.ndarray]:
        if self._closed:
            raise ValueError(f"{self.path}: the frame source is closed")
        if self.kind == "video":
            return self._iter_video()
        if self.kind == "frames":
            return self._iter_frames()
        return iter([self._first])

    # -- video ---------------------------------------------------------------------------
    def _iter_video(self) -> Iterator[np.ndarray]:
        if self._decoder is not None:
            (container, frames), first = self._decoder, self._first
            self._decoder = None
        else:
            container, frames = open_decoder(self.path)
            self._open_containers.add(container)
            first = None
        count = 0
        try:
            if first is None:
                first = next_frame(frames, self.path, 0)
            frame = first
            while frame is not None:
                yield resize(frame, self.size)
                count += 1
                if self._closed:  # closed while this iterator was paused: PyAV must not touch the freed file
                    raise ValueError(f"{self.path}: the frame source was closed during iteration")
                frame = next_frame(frames, self.path, count)
        finally:
            container.close()
            self._open_containers.discard(container)
        if self.num_frames is not None and count < self.num_frames:
            log.warning("%s: decoded %d frames but the container lists %d (truncated file?)",
                        self.path, count, self.num_frames)

    # -- frame folder --------------------------------------------------------------------
    def _iter_frames(self) -> Iterator[np.ndarray]:
        first_size = None
        for file in self._files:
            frame = read_image(file)
            size = (frame.shape[1], frame.shape[0])
            if first_size is None:
                first_size = size
            elif size != first_size:
                raise UserError(f"{file} is {size[0]}x{size[1]} but the first frame of {self.path} is "
                                f"{first_size[0]}x{first_size[1]}; all frames of a folder (one clip) must have "
                                f"one size (separate photos: give them as separate inputs, {self.path}/*)")
            yield resize(frame, self.size)


def open_source(path: str | os.PathLike, max_size: int | None = None, fps: float | None = None) -> FrameSource:
    """Open a video file, a folder of numbered frames or a single image for reading.

    ``max_size`` shrinks frames (area interpolation) so that the long side is
    at most ``max_size`` pixels, keeping the aspect ratio; smaller frames are
    not enlarged.  ``fps`` sets the rate of frame folders and images (default
    :data:`DEFAULT_FPS`); for a video it overrides the container's rate (like
    ffmpeg's input ``-r``: same frames, new timing).  The first frame is decoded
    here, so unreadable input fails at once with a :class:`UserError` naming
    the path.
    """
    path = Path(path)
    check_max_size(max_size)
    if fps is not None:
        check_fps(fps)
    if not path.exists():
        raise UserError(f"{path} does not exist; give a video file, a folder of frames or an image")
    check_input_file(path, "input")
    if path.is_dir():
        source = _open_frames(path, max_size, fps)
    elif path.suffix.lower() in IMAGE_SUFFIXES:
        source = _open_image(path, max_size, fps)
    else:
        source = _open_video(path, max_size, fps)
    check_tiny(source.size, f"{path} resized to max size {max_size}" if max_size else str(path))
    log.debug("opened %r", source)
    return source


def _open_video(path: Path, max_size: int | None, fps: float | None) -> FrameSource:
    try:
        container, frames = open_decoder(path)
    except UserError:
        if is_image(path):  # an image with a surprising suffix
            return _open_image(path, max_size, fps)
        raise
    try:
        stream = container.streams.video[0]
        check_complete(stream, path)
        first = next_frame(frames, path, 0)
        full = (first.shape[1], first.shape[0])
        check_tiny(full, f"video {path}")
        rate = stream.average_rate or stream.guessed_rate
        if fps is not None:
            rate = frame_rate(fps)
        elif not rate:
            log.warning("%s does not state its frame rate; assuming %g fps", path, DEFAULT_FPS)
            rate = Fraction(DEFAULT_FPS)
        source = FrameSource(path, "video", rate=Fraction(rate), size=resized_size(full, max_size),
                             num_frames=stream.frames or None, has_audio=bool(container.streams.audio),
                             first=first)
    except BaseException:
        container.close()
        raise
    source._decoder = (container, frames)
    source._open_containers.add(container)
    return source


def _open_image(path: Path, max_size: int | None, fps: float | None) -> FrameSource:
    img = read_image(path)
    size = resized_size((img.shape[1], img.shape[0]), max_size)
    return FrameSource(path, "image", rate=frame_rate(fps or DEFAULT_FPS), size=size, num_frames=1,
                       has_audio=False, first=resize(img, size))


def frame_files(folder: str | os.PathLike) -> list[Path]:
    """The image files of a frame folder in playing order (natural sort; hidden files skipped)."""
    folder = Path(folder)
    return sorted((p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES
                   and not p.name.startswith(".") and p.is_file()), key=lambda p: natural_key(p.name))


def is_numbered_sequence(names: Iterable[str]) -> bool:
    """True when file names look like the frames of one clip: one prefix, a number, one suffix.

    ``frame_0001.png, frame_0002.png`` and ``00001.jpg, 00002.jpg`` do; ``beach.jpg, cat.jpg`` or
    ``IMG_1.jpg, DSC_2.jpg`` do not.  Fewer than two names count as a sequence.
    """
    names = list(names)
    if len(names) < 2:
        return True
    patterns = set()
    for name in names:
        stem, suffix = os.path.splitext(name)
        match = re.fullmatch(r"(.*?)(\d+)(\D*)", stem)
        if match is None:
            return False
        patterns.add((match.group(1).lower(), match.group(3).lower(), suffix.lower()))
        if len(patterns) > 1:
            return False
    return True


def _open_frames(path: Path, max_size: int | None, fps: float | None) -> FrameSource:
    files = frame_files(path)
    if not files:
        subdirs = sorted(p.name for p in path.iterdir() if p.is_dir() and not p.name.startswith("."))
        hint = f"; it has subfolders ({', '.join(subdirs[:5])}), pick one" if subdirs else ""
        raise UserError(f"{path} holds no frames (png/jpg files named like frame_0001.png){hint}")
    first = read_image(files[0])
    check_tiny((first.shape[1], first.shape[0]), f"frame {files[0]}")
    size = resized_size((first.shape[1], first.shape[0]), max_size)
    return FrameSource(path, "frames", rate=frame_rate(fps or DEFAULT_FPS), size=size, num_frames=len(files),
                       has_audio=False, files=files)
