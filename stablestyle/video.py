"""Video and image I/O: the only place where ``uint8`` frames become float tensors.

Frames outside this module are ``uint8`` RGB numpy arrays of shape ``(H, W, 3)``;
inside the package they are ``float32`` tensors in ``[0, 1]`` (see
:mod:`stablestyle`).  :func:`to_tensor` and :func:`to_uint8` are the only two
conversions between them.

Reading: :func:`open_source` streams frames from a video file (anything PyAV
opens), a folder of numbered frames (``frame_0001.png``; natural sort, as in
MPI Sintel) or a single image.  Writing: :func:`open_sink` writes H.264 video
(``.mp4`` / ``.mov`` / ``.mkv``), a single image (``.png`` / ``.jpg``) or a
folder of numbered PNG frames (a path without suffix), always under a temporary
name in the output folder that is renamed only when writing finished cleanly.
Commands call :func:`check_output_path` before doing any work, so a user
mistake in the output path costs nothing.
"""

from __future__ import annotations

import logging
import math
import os
import re
import shutil
from collections.abc import Iterable, Iterator, Sequence
from fractions import Fraction
from pathlib import Path

import cv2
import numpy as np
import torch
from PIL import Image, ImageOps, UnidentifiedImageError

from .atomic import atomic_path, durable_replace, publish_folder, temp_beside
from .errors import UserError, first_line
from .inputs import check_input_file

log = logging.getLogger(__name__)

VIDEO_SUFFIXES = (".mp4", ".mov", ".mkv")
"""Output video containers (H.264 inside); any file PyAV opens can be read."""
VIDEO_FILE_SUFFIXES = (".mp4", ".m4v", ".mov", ".mkv", ".webm", ".avi", ".3gp", ".3g2", ".mts", ".m2ts", ".ts",
                       ".flv", ".wmv", ".mpg", ".mpeg", ".ogv")
"""Suffixes that name a video file (input side): an unreadable one is reported as possibly truncated."""
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")
"""Still images read with Pillow (single images and the frames of a frame folder)."""
OUTPUT_IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")
MIN_SIDE = 16
#: Largest image side that a size option accepts (16K video is 15360 wide); larger values are typos that
#: would ask for gigabytes of memory.
MAX_SIDE = 16384
"""Smallest frame side accepted: below this the network's downsampling leaves nothing."""
DEFAULT_FPS = 25.0
"""Frame rate assumed for frame folders and images when none is given."""
X264_PRESETS = ("ultrafast", "superfast", "veryfast", "faster", "fast", "medium", "slow", "slower", "veryslow")
"""libx264 speed presets, fastest (largest files) first."""
DEFAULT_PRESET = "medium"
"""libx264's own default.  1080p on this project's 2-core CPU: medium 17, veryfast 30, ultrafast 50 frames/s
(``bench/encode_speed.py``)."""
ENCODER_THREADS = ("frame", "slice")
"""How libx264 spreads over the CPU's cores: ``frame`` pipelines whole frames (the most frames/s: at 1920x1080
on a 16-core machine veryfast ran at 110 frames/s against 70 with ``slice``, medium 57 against 41; see
docs/PERFORMANCE.md), ``slice`` cuts each frame into slices (a frame comes out sooner; PyAV's default)."""
FRAME_PATTERN = "frame_{:05d}.png"
"""Names of the frames that a folder sink writes (1-based)."""

_CONTAINER_FORMATS = {".mp4": "mp4", ".mov": "mov", ".mkv": "matroska"}
_RGB_HINT = "convert it first, e.g. with Pillow: Image.open(p).convert('RGB').save(q)"


def _pyav():
    """PyAV, imported on first use, so that frame folders and images are read and written without it."""
    try:
        import av
    except ImportError as exc:
        raise UserError(f"video files need PyAV, which does not import here ({exc}); pip install av, "
                        "or give a folder of frames") from None
    return av


# ----------------------------------------------------------------------------- conversions

def to_tensor(frames: np.ndarray | Sequence[np.ndarray], *, device: torch.device | str | None = None,
              dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """``uint8`` RGB frames -> float tensor in ``[0, 1]``.

    ``(H, W, 3)`` -> ``(1, 3, H, W)``; ``(T, H, W, 3)`` or a sequence of
    ``(H, W, 3)`` frames -> ``(T, 3, H, W)``.  With ``device`` the ``uint8``
    data moves first (4x less to transfer) and is converted there.  The input
    array is never modified.
    """
    if not isinstance(frames, np.ndarray):
        frames = np.stack([np.asarray(f) for f in frames])
    if frames.dtype != np.uint8:
        raise ValueError(f"to_tensor expects uint8 frames, got {frames.dtype}")
    if frames.ndim == 3 and frames.shape[-1] == 3:
        frames = frames[None]
    if frames.ndim != 4 or frames.shape[-1] != 3:
        raise ValueError(f"to_tensor expects (H, W, 3) or (T, H, W, 3) frames, got shape {frames.shape}")
    if not frames.flags.writeable:  # torch.from_numpy warns on read-only arrays (PyAV, Pillow buffers)
        frames = frames.copy()
    t = torch.from_numpy(np.ascontiguousarray(frames))
    if device is not None:
        t = t.to(device)
    return t.permute(0, 3, 1, 2).to(dtype).div_(255.0).contiguous()


def to_uint8(image: torch.Tensor) -> np.ndarray:
    """Float image ``(3, H, W)`` or ``(1, 3, H, W)`` in ``[0, 1]`` -> ``uint8`` ``(H, W, 3)`` numpy.

    Values are clamped to ``[0, 1]`` and rounded to the nearest level; NaN
    becomes 0.  Works for any float dtype (fp16 / bf16 are computed in fp32)
    and device (the ``uint8`` result is what crosses to the CPU).
    """
    if not isinstance(image, torch.Tensor):
        raise TypeError(f"to_uint8 expects a torch.Tensor, got {type(image).__name__}")
    if image.ndim == 4 and image.shape[0] == 1:
        image = image[0]
    if image.ndim != 3 or image.shape[0] != 3:
        raise ValueError(f"to_uint8 expects (3, H, W) or (1, 3, H, W), got shape {tuple(image.shape)}")
    x = image.detach().float().nan_to_num(0.0).clamp(0.0, 1.0).mul(255.0).round().to(torch.uint8)
    return x.permute(1, 2, 0).contiguous().cpu().numpy()


def resized_size(size: tuple[int, int], max_size: int | None) -> tuple[int, int]:
    """``(W, H)`` scaled so that the long side is at most ``max_size`` (aspect kept, never enlarged)."""
    w, h = size
    if max_size is None or max(w, h) <= max_size:
        return (w, h)
    scale = max_size / max(w, h)
    return (max(1, round(w * scale)), max(1, round(h * scale)))


def _resize(frame: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Area-interpolated resize of ``(H, W, 3)`` ``uint8`` to ``size = (W, H)`` (no-op when equal)."""
    if (frame.shape[1], frame.shape[0]) == size:
        return frame
    return cv2.resize(frame, size, interpolation=cv2.INTER_AREA)


def shrink_frame(frame: np.ndarray, max_size: int | None) -> np.ndarray:
    """``(H, W, 3)`` ``uint8`` shrunk (area interpolation) so its long side is at most ``max_size``, as
    :func:`open_source` does; the frame itself when it is small enough."""
    return _resize(frame, resized_size((frame.shape[1], frame.shape[0]), max_size))


def natural_key(name: str) -> list:
    """Sort key that orders ``frame_2`` before ``frame_10`` (digit runs compare as numbers)."""
    return [int(tok) if tok.isdigit() else tok.lower() for tok in re.split(r"(\d+)", name)]


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


def _check_fps(fps: float | Fraction) -> None:
    if isinstance(fps, bool) or not isinstance(fps, (int, float, Fraction)) or not math.isfinite(fps) or fps <= 0:
        raise UserError(f"frame rate must be a positive number of frames per second, got {fps!r}")


def _check_tiny(size: tuple[int, int], what: str) -> None:
    if min(size) < MIN_SIDE:
        raise UserError(f"{what} is {size[0]}x{size[1]} pixels; frames need at least {MIN_SIDE} pixels a side")


def frame_rate(fps: float | Fraction) -> Fraction:
    """Exact rate for a time base: NTSC rates (29.97 -> 30000/1001, 23.976, 59.94) and plain fractions.

    ``Fraction`` input is kept as is.
    """
    _check_fps(fps)
    if isinstance(fps, Fraction):
        return fps
    ntsc = round(fps * 1.001)
    if ntsc > 0 and abs(fps - ntsc * 1000 / 1001) < 5e-3 and abs(fps - ntsc) > 5e-3:
        return Fraction(ntsc * 1000, 1001)
    return Fraction(fps).limit_denominator(1001)


# ----------------------------------------------------------------------------- images

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
    _check_tiny((rgb.shape[1], rgb.shape[0]), f"image {path}")
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
    _check_frame(img)
    fmt = _pil_format(path)
    if not path.parent.is_dir():
        raise UserError(f"output folder {path.parent} does not exist; create it first")
    with atomic_path(path) as tmp:
        _save_pil(img, tmp, fmt)


def _pil_format(path: Path) -> str:
    suffix = path.suffix.lower()
    if suffix not in IMAGE_SUFFIXES:
        raise UserError(f"{path}: unknown image type {suffix!r}; valid: {', '.join(IMAGE_SUFFIXES)}")
    return {".jpg": "JPEG", ".jpeg": "JPEG", ".tif": "TIFF"}.get(suffix, suffix[1:].upper())


def _save_pil(img: np.ndarray, path: Path, fmt: str) -> None:
    options = {"quality": 95} if fmt in ("JPEG", "WEBP") else {}
    Image.fromarray(img, "RGB").save(path, format=fmt, **options)


def _check_frame(frame: np.ndarray) -> None:
    if not isinstance(frame, np.ndarray) or frame.dtype != np.uint8 or frame.ndim != 3 or frame.shape[2] != 3:
        desc = f"{frame.dtype} {frame.shape}" if isinstance(frame, np.ndarray) else type(frame).__name__
        raise ValueError(f"frames must be uint8 numpy arrays of shape (H, W, 3), got {desc}")


# ----------------------------------------------------------------------------- sources

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
            container, frames = _open_decoder(self.path)
            self._open_containers.add(container)
            first = None
        count = 0
        try:
            if first is None:
                first = _next_frame(frames, self.path, 0)
            frame = first
            while frame is not None:
                yield _resize(frame, self.size)
                count += 1
                if self._closed:  # closed while this iterator was paused: PyAV must not touch the freed file
                    raise ValueError(f"{self.path}: the frame source was closed during iteration")
                frame = _next_frame(frames, self.path, count)
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
            yield _resize(frame, self.size)


def _open_input(av, path: Path):
    """``av.open`` for reading; tags that are not UTF-8 are skipped, not an error (PyAV < 19 needs telling)."""
    try:
        return av.open(str(path), metadata_errors="ignore")
    except TypeError as exc:  # PyAV 19 dropped the argument
        if "metadata_errors" not in str(exc):
            raise
        return av.open(str(path))


def _open_decoder(path: Path):
    """Open ``path`` with PyAV: ``(container, iterator of RGB uint8 frames)`` (display rotation applied)."""
    av = _pyav()
    try:
        container = _open_input(av, path)
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


def _next_frame(frames: Iterator[np.ndarray], path: Path, index: int) -> np.ndarray | None:
    """Next decoded frame or ``None`` at the end; decoder errors become a :class:`UserError`."""
    try:
        return next(frames)
    except StopIteration:
        if index == 0:
            raise UserError(f"{path}: no frame could be decoded (empty or truncated video)") from None
        return None
    except Exception as exc:
        if not isinstance(exc, (_pyav().FFmpegError, OSError)):  # PyAV looked up here, off the per-frame path
            raise
        raise UserError(f"{path}: video is corrupt or truncated; decoding failed after {index} frames "
                        f"({exc})") from None


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
        _check_fps(fps)
    if not path.exists():
        raise UserError(f"{path} does not exist; give a video file, a folder of frames or an image")
    check_input_file(path, "input")
    if path.is_dir():
        source = _open_frames(path, max_size, fps)
    elif path.suffix.lower() in IMAGE_SUFFIXES:
        source = _open_image(path, max_size, fps)
    else:
        source = _open_video(path, max_size, fps)
    _check_tiny(source.size, f"{path} resized to max size {max_size}" if max_size else str(path))
    log.debug("opened %r", source)
    return source


def _open_video(path: Path, max_size: int | None, fps: float | None) -> FrameSource:
    try:
        container, frames = _open_decoder(path)
    except UserError:
        if _is_image(path):  # an image with a surprising suffix
            return _open_image(path, max_size, fps)
        raise
    try:
        stream = container.streams.video[0]
        _check_complete(stream, path)
        first = _next_frame(frames, path, 0)
        full = (first.shape[1], first.shape[0])
        _check_tiny(full, f"video {path}")
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


def _check_complete(stream, path: Path) -> None:
    """Truncated-file check: the container's sample index must not point past the end of the file.

    A cut-off MP4 / MOV with its index at the front otherwise decodes the
    frames that are there and stops without any error.
    """
    end = max((entry.pos + entry.size for entry in stream.index_entries), default=0)
    size = path.stat().st_size
    if end > size:
        raise UserError(f"{path}: video is truncated (the file has {size} bytes, its index needs {end}); "
                        "copy or export it again")


def _is_image(path: Path) -> bool:
    try:
        with Image.open(path):
            return True
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError):
        return False


def _open_image(path: Path, max_size: int | None, fps: float | None) -> FrameSource:
    img = read_image(path)
    size = resized_size((img.shape[1], img.shape[0]), max_size)
    return FrameSource(path, "image", rate=frame_rate(fps or DEFAULT_FPS), size=size, num_frames=1,
                       has_audio=False, first=_resize(img, size))


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
    _check_tiny((first.shape[1], first.shape[0]), f"frame {files[0]}")
    size = resized_size((first.shape[1], first.shape[0]), max_size)
    return FrameSource(path, "frames", rate=frame_rate(fps or DEFAULT_FPS), size=size, num_frames=len(files),
                       has_audio=False, files=files)


# ----------------------------------------------------------------------------- sinks

def output_kind(path: str | os.PathLike) -> str:
    """What :func:`open_sink` writes for ``path``: ``"video"``, ``"image"`` or ``"frames"`` (no suffix)."""
    suffix = Path(path).suffix.lower()
    name = Path(path).name
    if name.lower() in (*VIDEO_SUFFIXES, *OUTPUT_IMAGE_SUFFIXES):  # Path(".mp4").suffix is "": a hidden folder
        raise UserError(f"output {path} has no name before its suffix {name}; give a name such as out{name}")
    if suffix in VIDEO_SUFFIXES:
        return "video"
    if suffix in OUTPUT_IMAGE_SUFFIXES:
        return "image"
    if suffix == "":
        return "frames"
    raise UserError(f"{path}: unknown output type {suffix!r}; valid: {', '.join(VIDEO_SUFFIXES)} (H.264 video), "
                    f"{', '.join(OUTPUT_IMAGE_SUFFIXES)} (one image) or a path without suffix (frame folder)")


def same_path(a: str | os.PathLike, b: str | os.PathLike) -> bool:
    """True when ``a`` and ``b`` both exist and are the same file (links and relative spellings included)."""
    try:
        return os.path.exists(a) and os.path.exists(b) and os.path.samefile(a, b)
    except OSError:
        return False


def _is_frame_folder(path: Path) -> bool:
    """True when ``path`` holds nothing but frames as a folder sink writes them."""
    return all(re.fullmatch(r"frame_\d+\.png", p.name) and p.is_file() for p in path.iterdir())


def check_output_path(out: str | os.PathLike, inputs: Iterable[str | os.PathLike] = (),
                      overwrite: bool = False) -> Path:
    """Validate an output path before any work; returns it as a :class:`Path`.

    Raises :class:`UserError` when the suffix is not one :func:`open_sink`
    writes, the output folder is missing, the output is (or, for a frame
    folder, contains) one of ``inputs``, or the output exists and
    ``overwrite`` is false.  An existing folder is only replaced when it holds
    nothing but ``frame_*.png`` files.
    """
    out = Path(out)
    kind = output_kind(out)
    if not out.parent.is_dir():
        raise UserError(f"output folder {out.parent} does not exist; create it first")
    resolved = out.resolve()
    for inp in inputs:
        if inp is None:
            continue
        inp = Path(inp)
        if same_path(out, inp) or resolved == inp.resolve():
            raise UserError(f"output {out} is also an input; choose another output path")
        if kind == "frames" and resolved in inp.resolve().parents:
            raise UserError(f"output folder {out} contains the input {inp}; choose another output path")
    if out.exists() or out.is_symlink():
        if kind == "frames" and not out.is_dir():
            raise UserError(f"output {out} is a file but a path without suffix means a frame folder")
        if kind != "frames" and out.is_dir():
            raise UserError(f"output {out} is a folder; give a file name ending in {', '.join(VIDEO_SUFFIXES)}")
        if not overwrite:
            raise UserError(f"output {out} already exists; pass --overwrite to replace it")
        if kind == "frames" and not _is_frame_folder(out):
            raise UserError(f"refusing to replace {out}: it holds files other than frame_*.png; "
                            "choose a new folder name")
    return out


class FrameSink:
    """Writes ``uint8`` ``(H, W, 3)`` RGB frames to a video, an image or a frame folder.

    Built by :func:`open_sink`; use it as a context manager.  Everything goes
    to a temporary name in the output folder (``.name.tmp-XXXX.mp4``); a clean
    exit renames it to ``path``, an exception deletes it.  Attributes:
    ``path``, ``kind``, ``rate`` (``Fraction``), ``fps``, ``num_written`` and
    ``size`` (``(W, H)`` of the stored frames once the first one is written;
    for H.264 odd sides are padded by one replicated row / column, since
    yuv420p needs even sizes).
    """

    def __init__(self, path: Path, rate: Fraction, *, audio_from: Path | None, overwrite: bool, crf: int,
                 preset: str, threads: str = ENCODER_THREADS[0]):
        self.path = path
        self.kind = output_kind(path)
        self.rate = rate
        self.fps = float(rate)
        self.overwrite = overwrite
        self.crf = crf
        self.preset = preset
        self.threads = threads
        self.size: tuple[int, int] | None = None
        self.num_written = 0
        self._frame_shape: tuple[int, ...] | None = None
        self._image: np.ndarray | None = None
        self._av = None  # PyAV, for video files only
        self._container = None
        self._stream = None
        self._pad = (0, 0)
        self._audio_in = None
        self._audio_packets: Iterator | None = None
        self._audio_out = None
        self._audio_offset = 0
        self._pending = None
        self._done = False
        self._tmp = temp_beside(path, folder=self.kind == "frames")
        try:
            if self.kind == "video":
                av = self._av = _pyav()
                options = {"movflags": "+faststart"} if path.suffix.lower() in (".mp4", ".mov") else {}
                self._container = av.open(str(self._tmp), "w", format=_CONTAINER_FORMATS[path.suffix.lower()],
                                          options=options)
                if audio_from is not None:
                    self._open_audio(audio_from)
            elif audio_from is not None:
                log.info("%s is not a video file: the audio of %s is not copied", path, audio_from)
        except BaseException:
            self.abort()
            raise

    def __repr__(self) -> str:
        return f"FrameSink({str(self.path)!r}, kind={self.kind!r}, fps={self.fps:g}, written={self.num_written})"

    def __enter__(self) -> FrameSink:
        return self

    def __exit__(self, exc_type, exc, tb) -> bool:
        if exc_type is not None:
            self.abort()
            return False
        self.close()
        return False

    # -- audio ---------------------------------------------------------------------------
    def _open_audio(self, audio_from: Path) -> None:
        try:
            container = _open_input(self._av, audio_from)
        except (self._av.FFmpegError, OSError) as exc:
            raise UserError(f"{audio_from}: cannot read its audio ({exc})") from None
        if not container.streams.audio:
            log.debug("%s has no audio stream; writing video only", audio_from)
            container.close()
            return
        stream = container.streams.audio[0]
        codec = stream.codec_context.name
        if codec not in self._container.supported_codecs:
            log.warning("audio of %s (%s) cannot be copied into %s without re-encoding; writing video only "
                        "(use .mkv to keep it)", audio_from, codec, self.path.suffix)
            container.close()
            return
        self._audio_in = container
        # Keep audio in step with the video: the first video frame of ``audio_from`` lands at t = 0.
        video = container.streams.video[0] if container.streams.video else None
        start = float(video.start_time * video.time_base) if video is not None and video.start_time else 0.0
        self._audio_offset = round(start / stream.time_base)
        self._audio_packets = iter(container.demux(stream))

    def _mux_audio_until(self, seconds: float) -> None:
        """Copy (remux, no re-encode) the audio packets that start before ``seconds``."""
        while self._audio_packets is not None:
            if self._pending is None:
                try:
                    packet = next(self._audio_packets)
                except StopIteration:
                    self._audio_packets = None
                    return
                except (self._av.FFmpegError, OSError) as exc:
                    log.warning("stopped copying audio: %s", exc)
                    self._audio_packets = None
                    return
                if packet.pts is None or packet.size == 0:
                    continue
                packet.pts -= self._audio_offset
                if packet.dts is not None:
                    packet.dts -= self._audio_offset
                if packet.pts < 0:
                    continue
                self._pending = packet
            packet = self._pending
            if float(packet.pts * packet.time_base) >= seconds:
                return
            packet.stream = self._audio_out
            self._container.mux(packet)
            self._pending = None

    # -- writing -------------------------------------------------------------------------
    def write(self, frame: np.ndarray) -> None:
        """Append one ``uint8`` ``(H, W, 3)`` RGB frame (all frames must have one size)."""
        if self._done:
            raise ValueError(f"{self.path}: the sink is closed")
        _check_frame(frame)
        if self._frame_shape is None:
            self._start(frame)
        elif frame.shape != self._frame_shape:
            raise ValueError(f"frame {self.num_written} has shape {frame.shape}, the first had {self._frame_shape}")
        if self.kind == "video":
            self._write_video(frame)
        elif self.kind == "frames":
            _save_pil(frame, self._tmp / FRAME_PATTERN.format(self.num_written + 1), "PNG")
        else:
            if self.num_written:
                raise UserError(f"{self.path} is a single image but more than one frame was given; "
                                "write to a video (.mp4) or a frame folder (a path without suffix)")
            self._image = frame.copy()
        self.num_written += 1

    def _start(self, frame: np.ndarray) -> None:
        self._frame_shape = frame.shape
        h, w = frame.shape[:2]
        self.size = (w, h)
        if self.kind != "video":
            return
        self._pad = (h % 2, w % 2)
        if any(self._pad):
            self.size = (w + w % 2, h + h % 2)
            log.info("%s: padding %dx%d frames to %dx%d (H.264 yuv420p needs even sizes)",
                     self.path, w, h, *self.size)
        stream = self._container.add_stream("libx264", rate=self.rate)
        stream.width, stream.height = self.size
        stream.pix_fmt = "yuv420p"
        stream.options = {"crf": str(self.crf), "preset": self.preset}
        stream.codec_context.thread_type = self.threads.upper()
        stream.codec_context.thread_count = 0  # x264 picks (1.5 threads a core), as FFmpeg's command line does
        self._stream = stream
        if self._audio_in is not None:
            self._audio_out = self._container.add_stream_from_template(self._audio_in.streams.audio[0])

    def _write_video(self, frame: np.ndarray) -> None:
        if any(self._pad):
            frame = np.pad(frame, ((0, self._pad[0]), (0, self._pad[1]), (0, 0)), mode="edge")
        vf = self._av.VideoFrame.from_ndarray(rgb_to_yuv420p(frame), format="yuv420p")
        vf.pts = self.num_written
        for packet in self._stream.encode(vf):
            self._container.mux(packet)
        self._mux_audio_until((self.num_written + 1) / self.rate)

    def close(self) -> None:
        """Finish writing and move the result to ``path``; no frames written -> :class:`UserError`."""
        if self._done:
            return
        try:
            if self.num_written == 0:
                raise UserError(f"no frames were written to {self.path}; the input gave no frames")
            if self.kind == "video":
                for packet in self._stream.encode(None):
                    self._container.mux(packet)
                self._container.close()
                self._container = None
            elif self.kind == "image":
                _save_pil(self._image, self._tmp, _pil_format(self.path))
            self._close_audio()
            self._publish()
        except BaseException:
            self.abort()
            raise
        self._done = True
        log.debug("wrote %d frame%s to %s", self.num_written, "s" * (self.num_written != 1), self.path)

    def _publish(self) -> None:
        """Rename the finished temporary file / folder to ``path``."""
        if self.path.exists() and not self.overwrite:
            raise UserError(f"output {self.path} appeared while writing; pass --overwrite to replace it")
        if self.kind == "frames":
            publish_folder(self._tmp, self.path)
        else:
            durable_replace(self._tmp, self.path)

    def _close_audio(self) -> None:
        if self._audio_in is not None:
            self._audio_in.close()
            self._audio_in = None
        self._audio_packets = None

    def abort(self) -> None:
        """Stop writing and delete the temporary output; ``path`` is left as it was."""
        self._done = True
        if self._container is not None:
            try:
                self._container.close()
            except (self._av.FFmpegError, OSError):  # the file is deleted anyway
                pass
            self._container = None
        self._close_audio()
        _remove(self._tmp)


#: BT.601 limited-range chroma rows (Cb, Cr) of full-range RGB, with the +128 offset, for ``cv2.transform``.
_RGB_TO_CBCR = np.array([[-37.797, -74.203, 112.0, 128 * 255], [112.0, -93.786, -18.214, 128 * 255]]) / 255


def rgb_to_yuv420p(frame: np.ndarray) -> np.ndarray:
    """``uint8`` ``(H, W, 3)`` RGB (even ``H``, ``W``) to planar yuv420p, ``(H * 3 // 2, W)``, as PyAV takes it.

    BT.601 limited range with each chroma sample the mean of its 2x2 block: what FFmpeg's swscale writes
    with area interpolation (within 1 level), which x264 then encodes ~0.15 dB better than swscale's
    default bilinear (and OpenCV's ``COLOR_RGB2YUV_I420`` ~0.3 dB worse).  A third of swscale's time
    (3.3 vs 8.6 ms at 1920x1080 here), and OpenCV releases the GIL, so the encoder thread keeps up with
    a GPU (docs/PERFORMANCE.md).
    """
    h, w = frame.shape[:2]
    if h % 2 or w % 2:
        raise ValueError(f"yuv420p needs even sides, got {w}x{h}")
    frame = np.ascontiguousarray(frame)
    out = cv2.cvtColor(frame, cv2.COLOR_RGB2YUV_I420)  # its luma is swscale's; its chroma is point-sampled
    cbcr = cv2.transform(cv2.resize(frame, (w // 2, h // 2), interpolation=cv2.INTER_AREA), _RGB_TO_CBCR)
    planes = out.reshape(-1)  # Y, then the U and V planes, each (H / 2) x (W / 2), back to back
    planes[h * w:h * w * 5 // 4] = cbcr[..., 0].reshape(-1)
    planes[h * w * 5 // 4:] = cbcr[..., 1].reshape(-1)
    return out


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


def open_sink(path: str | os.PathLike, fps: float | Fraction, *, audio_from: str | os.PathLike | None = None,
              overwrite: bool = False, crf: int = 18, preset: str = DEFAULT_PRESET,
              threads: str = ENCODER_THREADS[0]) -> FrameSink:
    """Open ``path`` for writing frames; use the result as a context manager.

    ``.mp4`` / ``.mov`` / ``.mkv``: H.264 (libx264, yuv420p, constant rate
    factor ``crf``, 0 = lossless luma .. 51; ``preset`` one of
    :data:`X264_PRESETS`, trading encoding speed for file size; ``threads``
    one of :data:`ENCODER_THREADS`) at exactly
    ``fps`` (a ``Fraction``; floats near NTSC rates become ``30000/1001`` etc.).
    ``.png`` / ``.jpg`` / ``.jpeg``: one image.  No suffix: a folder of
    ``frame_00001.png`` ....  With ``audio_from`` (a video with audio) the
    audio packets are copied without re-encoding, up to the end of the video.
    Checks the path with :func:`check_output_path` (``audio_from`` counts as
    an input).
    """
    path = check_output_path(path, [audio_from] if audio_from is not None else [], overwrite)
    rate = frame_rate(fps)
    if isinstance(crf, bool) or not isinstance(crf, int) or not 0 <= crf <= 51:
        raise UserError(f"crf must be a whole number from 0 (best) to 51 (smallest), got {crf!r}")
    if preset not in X264_PRESETS:
        raise UserError(f"unknown H.264 preset {preset!r}; valid: {', '.join(X264_PRESETS)}")
    if threads not in ENCODER_THREADS:
        raise UserError(f"unknown encoder threading {threads!r}; valid: {', '.join(ENCODER_THREADS)}")
    if audio_from is not None:
        audio_from = Path(audio_from)
        if not audio_from.is_file():
            raise UserError(f"{audio_from} does not exist (asked to copy its audio)")
    return FrameSink(path, rate, audio_from=audio_from, overwrite=overwrite, crf=crf, preset=preset,
                     threads=threads)
