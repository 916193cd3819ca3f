"""Live frame inputs: a camera through OpenCV, or a file standing in for one.

Owns :class:`Camera` (``cv2.VideoCapture``), :class:`StandIn` (a video file, frame folder or image
read with :func:`stablestyle.video.open_source`, as ``stylize`` reads them) and :func:`open_input`,
which picks one.  Importing it is cheap (OpenCV, PyAV and numpy are imported where used).  Both give RGB ``uint8`` ``(H, W, 3)`` frames shrunk to ``max_size``, a frame
rate for the recording (:func:`nominal_fps`), ``what`` (a name for messages), ``ended_early`` (why
the frames stopped before their end, or ``""``) and ``close()``.  OpenCV is passed in as ``cv2``,
so that nothing here imports it and tests can stand in for it.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

from .errors import UserError

if TYPE_CHECKING:
    import numpy as np

#: Frame rate assumed when the camera does not report a usable one.
FALLBACK_FPS = 30.0
#: Camera indices accepted (0 .. MAX_CAMERA - 1).  OpenCV crashes on negative indices and reads 200 and
#: up as an API preference (CAP_V4L = 200, ...) plus an index, so they are checked before it sees them.
MAX_CAMERA = 200


def nominal_fps(fps: float) -> float:
    """The input's frame rate for the recording; :data:`FALLBACK_FPS` where it reports none or nonsense."""
    return fps if 0 < fps <= 240 else FALLBACK_FPS


def check_camera_index(index: int) -> int:
    """``index`` when OpenCV can be given it as a camera index; else a :class:`UserError`."""
    if not 0 <= index < MAX_CAMERA:
        raise UserError(f"--camera must be a camera index from 0 to {MAX_CAMERA - 1} (0 is the first camera), "
                        f"got {index}")
    return index


class Camera:
    """Frames of a camera (``cv2.VideoCapture``) as RGB ``uint8``, shrunk to ``max_size``."""

    def __init__(self, cv2, index: int, max_size: int):
        self.cv2, self.max_size = cv2, max_size
        self.what = f"camera {index}"
        level = cv2.utils.logging.getLogLevel()
        cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_ERROR)  # a missing camera is our one-line error
        try:
            self.cap = cv2.VideoCapture(index)
        finally:
            cv2.utils.logging.setLogLevel(level)
        if not self.cap.isOpened():
            self.cap.release()
            raise UserError(f"cannot open {self.what}: check the index (--camera N), that no other program holds "
                            "it, and the permissions of /dev/video*")
        self.fps = nominal_fps(self.cap.get(cv2.CAP_PROP_FPS))
        self.ended_early = ""

    def frames(self) -> Iterator[np.ndarray]:
        from .video import shrink_frame

        cv2, read = self.cv2, 0
        while True:
            ok, bgr = self.cap.read()
            if not ok:
                if read:  # a camera does not end: it was unplugged or taken
                    self.ended_early = f"{self.what} stopped giving frames after {read} (unplugged?)"
                return
            read += 1
            yield shrink_frame(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), self.max_size)

    def close(self) -> None:
        self.cap.release()


class StandIn:
    """Frames of a file (video, frame folder or image) standing in for a camera.

    Opening checks the whole file as ``stylize`` does (missing, not a video, an index that points past
    the end); a decoding error part-way through a video ends the frames and is kept in ``ended_early``.
    """

    def __init__(self, path: str, max_size: int):
        from .video import open_source

        self.source = open_source(path, max_size=max_size)
        kind = "frame folder" if self.source.kind == "frames" else self.source.kind
        self.what = f"{kind} {path}"
        self.fps = nominal_fps(self.source.fps)
        self.ended_early = ""

    def frames(self) -> Iterator[np.ndarray]:
        read, it = 0, iter(self.source)
        while True:
            try:
                frame = next(it)
            except StopIteration:
                return
            except UserError as exc:  # a video damaged mid-stream: what came before is fine to keep
                if self.source.kind != "video":
                    raise  # a frame folder's bad frame is the user's to fix, as in `stylize`
                total = self.source.num_frames
                reason = " ".join(str(exc).split()).removeprefix(f"{self.source.path}: ")
                self.ended_early = (f"{self.what} ended early at frame {read} of {total if total else 'unknown'}:"
                                    f" {reason}")
                return
            read += 1
            yield frame

    def close(self) -> None:
        self.source.close()


def open_input(cv2, camera: int | None, source: str | None, max_size: int) -> Camera | StandIn:
    """``source`` when given, else camera ``camera`` (``None``: the first, 0)."""
    if source is not None:
        return StandIn(source, max_size)
    return Camera(cv2, 0 if camera is None else check_camera_index(camera), max_size)
