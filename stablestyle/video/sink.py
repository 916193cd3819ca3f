"""Writing frames: :func:`check_output_path` (before any work), :func:`open_sink` and :class:`FrameSink`:
H.264 video through PyAV, a single image or a folder of numbered PNG frames, always under a temporary
name that is renamed only when writing finished cleanly.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
from collections.abc import Iterable
from fractions import Fraction
from pathlib import Path

import numpy as np

from ..atomic import durable_replace, publish_folder, temp_beside
from ..errors import UserError
from .audio import AudioCopy, open_audio
from .convert import rgb_to_yuv420p
from .decode import import_av
from .formats import (DEFAULT_PRESET, ENCODER_THREADS, FRAME_PATTERN, OUTPUT_IMAGE_SUFFIXES, VIDEO_SUFFIXES,
                      X264_PRESETS, check_frame, frame_rate)
from .images import pil_format, save_pil

log = logging.getLogger(__name__)

_CONTAINER_FORMATS = {".mp4": "mp4", ".mov": "mov", ".mkv": "matroska"}


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
        self._audio: AudioCopy | None = None
        self._done = False
        self._tmp = temp_beside(path, folder=self.kind == "frames")
        try:
            if self.kind == "video":
                av = self._av = import_av()
                options = {"movflags": "+faststart"} if path.suffix.lower() in (".mp4", ".mov") else {}
                self._container = av.open(str(self._tmp), "w", format=_CONTAINER_FORMATS[path.suffix.lower()],
                                          options=options)
                if audio_from is not None:
                    self._audio = open_audio(av, self._container, audio_from, path)
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

    # -- writing -------------------------------------------------------------------------
    def write(self, frame: np.ndarray) -> None:
        """Append one ``uint8`` ``(H, W, 3)`` RGB frame (all frames must have one size)."""
        if self._done:
            raise ValueError(f"{self.path}: the sink is closed")
        check_frame(frame)
        if self._frame_shape is None:
            self._start(frame)
        elif frame.shape != self._frame_shape:
            raise ValueError(f"frame {self.num_written} has shape {frame.shape}, the first had {self._frame_shape}")
        if self.kind == "video":
            self._write_video(frame)
        elif self.kind == "frames":
            save_pil(frame, self._tmp / FRAME_PATTERN.format(self.num_written + 1), "PNG")
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
        if self._audio is not None:
            self._audio.add_stream()

    def _write_video(self, frame: np.ndarray) -> None:
        if any(self._pad):
            frame = np.pad(frame, ((0, self._pad[0]), (0, self._pad[1]), (0, 0)), mode="edge")
        vf = self._av.VideoFrame.from_ndarray(rgb_to_yuv420p(frame), format="yuv420p")
        vf.pts = self.num_written
        for packet in self._stream.encode(vf):
            self._container.mux(packet)
        if self._audio is not None:
            self._audio.mux_until((self.num_written + 1) / self.rate)

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
                save_pil(self._image, self._tmp, pil_format(self.path))
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
        if self._audio is not None:
            self._audio.close()
            self._audio = None

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
