"""The app's limits (upload size, clip duration, frame size) and the checks an upload passes before it queues.

A visitor's file is checked the way the CLI checks an input (:func:`stablestyle.inputs.check_input_file`,
:func:`stablestyle.video.open_source`), so every bad file gets the CLI's one-line message, plus the two
limits the CLI does not have: the upload's size and the clip's duration.
"""

from __future__ import annotations

import math
import os
import re
from dataclasses import dataclass
from pathlib import Path

from ..errors import UserError


@dataclass(frozen=True)
class Limits:
    """What one visitor may ask of the server.

    Attributes:
        max_upload_mb: largest upload (video, image or checkpoint) in MiB.
        max_seconds: longest clip in seconds of video.
        max_size: long side, in pixels, the frames are resized to before stylizing.
        workers: jobs that run at once (the rest wait in a queue).
    """

    max_upload_mb: float = 200.0
    max_seconds: float = 20.0
    max_size: int = 360
    workers: int = max(1, os.cpu_count() or 1)

    @property
    def max_upload_bytes(self) -> int:
        return int(self.max_upload_mb * 1024 * 1024)

    def describe(self) -> str:
        """The limits in one sentence, as the page states them."""
        return (f"Uploads up to {self.max_upload_mb:g} MB; clips up to {self.max_seconds:g} s; frames resized to "
                f"{self.max_size} px on the long side; {self.workers} job(s) at a time, the rest wait in a queue.")

    def check(self) -> None:
        """A :class:`UserError` naming the flag when a limit is not a positive number."""
        from ..video import check_side

        for flag, value in (("--max-upload-mb", self.max_upload_mb), ("--max-seconds", self.max_seconds),
                            ("--workers", self.workers)):
            if not value > 0:
                raise UserError(f"{flag} must be positive, got {value}")
        check_side(self.max_size, "--max-size")


@dataclass(frozen=True)
class InputInfo:
    """What a checked input is: ``kind`` (``"video"`` or ``"image"``), frames (``None`` when the container
    does not say), frames per second, and the frame size after resizing."""

    kind: str
    frames: int | None
    fps: float
    size: tuple[int, int]


def for_visitor(exc: UserError, path: Path, name: str) -> UserError:
    """``exc`` with the server's temporary path of an upload (whole or cut short in a quoted detail) replaced
    by ``name``, the file's name on the visitor's machine."""
    text = str(exc).replace(str(path), name)
    return UserError(re.sub(r"'?/[^\s)']*stablestyle-app-[^\s)']*'?", name, text))


def check_upload_size(n_bytes: int | None, limits: Limits) -> None:
    """A :class:`UserError` for an upload without a length or above the size limit (checked before reading it)."""
    if n_bytes is None:
        raise UserError("the upload has no length; send the file itself")
    if n_bytes <= 0:
        raise UserError("the file is empty")
    if n_bytes > limits.max_upload_bytes:
        raise UserError(f"the file is {n_bytes / 2**20:.1f} MB; this server takes uploads up to "
                        f"{limits.max_upload_mb:g} MB (start it with a larger --max-upload-mb)")


def frame_budget(fps: float, limits: Limits) -> int:
    """The most frames a clip at ``fps`` may have within the duration limit."""
    return max(1, math.floor(limits.max_seconds * fps + 1e-6))


def check_input(path: Path, limits: Limits, name: str) -> InputInfo:
    """Open ``path`` (a visitor's video or image, called ``name`` in messages) as the CLI would and apply the
    duration limit; a :class:`UserError` with the CLI's message for every file that cannot be used."""
    from ..inputs import check_input_file
    from ..video import open_source

    check_input_file(path)
    try:
        with open_source(path, max_size=limits.max_size) as src:
            info = InputInfo(kind=src.kind, frames=src.num_frames, fps=src.fps, size=src.size)
    except UserError as exc:
        raise for_visitor(exc, path, name) from None
    if info.kind not in ("video", "image"):
        raise UserError(f"{name}: give a video or an image")
    if info.frames is not None and info.frames > frame_budget(info.fps, limits):
        raise UserError(f"{name} is {info.frames / info.fps:.1f} s long; this server takes clips up to "
                        f"{limits.max_seconds:g} s (cut it, or start the server with a larger --max-seconds)")
    return info
