"""``stablestyle webcam --model CKPT``: live stylization from a camera, with preview and recording.

Frames come from a camera through OpenCV (``cv2.VideoCapture``), or from a
video file, frame folder or image standing in for the camera
(:func:`stablestyle.video.open_source`, as ``stylize`` reads them), go through an inference backend
(:mod:`stablestyle.inference`, recurrent state kept across frames) and are
shown in a window with the measured frame rate drawn on them, and/or
recorded to a video with :func:`stablestyle.video.open_sink` (atomic: the
file appears when recording ends).  ``q`` / Esc in the window or Ctrl-C in
the terminal stop cleanly: the recording is finalised, not lost.  Without a
display (no ``DISPLAY``, or an OpenCV build without GUI support) the
preview turns itself off with a log line.

The recording runs at the capture's nominal rate (a camera reporting none:
30 fps); when stylization is slower than the camera, it plays faster than
real time.  A ``--source`` file that cannot be decoded to its end (damaged
or cut short mid-stream) keeps the recording of the frames before the damage
and logs a one-line warning saying where the source ended.
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import logging
import os
import sys
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING

from .stylize import COMPILE_MODES, X264_PRESETS

if TYPE_CHECKING:
    import numpy as np

HELP = "live stylization from a camera (or a video file standing in for one), with preview and recording"

log = logging.getLogger(__name__)

WINDOW = "stablestyle"
#: Frame rate assumed when the camera does not report a usable one.
FALLBACK_FPS = 30.0
#: Smoothing of the displayed frame rate (exponential moving average weight of the newest frame).
FPS_SMOOTHING = 0.1
QUIT_KEYS = (ord("q"), ord("Q"), 27)  # q, Q, Esc
#: libx264 preset for ``--record``: recording shares the CPU with the network, so live runs default to a
#: fast one (``stylize`` keeps libx264's ``medium``).  640x360, stylized frames, crf 18 on the 2-core CPU
#: (``bench/encode_speed.py``): 4.0 ms of CPU a frame against 11.4, 34.5 against 35.5 dB PSNR, 19% smaller.
LIVE_PRESET = "veryfast"
#: Camera indices accepted by ``--camera`` (0 .. MAX_CAMERA - 1).  OpenCV crashes on negative indices
#: and reads 200 and up as an API preference (CAP_V4L = 200, ...) plus an index, so they are checked
#: before it sees them.
MAX_CAMERA = 200


def add_arguments(p: argparse.ArgumentParser) -> None:
    src = p.add_mutually_exclusive_group()
    src.add_argument("--camera", type=int, default=None, metavar="N",
                     help=f"camera index for cv2.VideoCapture, 0 .. {MAX_CAMERA - 1} (default 0)")
    src.add_argument("--source", default=None, metavar="VIDEO",
                     help="a video file (or a frame folder or image) instead of a camera")
    p.add_argument("--model", required=True, help="checkpoint path or bundled model name")
    p.add_argument("--record", default=None, metavar="OUT.mp4", help="also record the stylized frames (.mp4/.mov/.mkv)")
    p.add_argument("--overwrite", action="store_true", help="replace the --record file if it exists")
    p.add_argument("--preset", default=LIVE_PRESET, choices=X264_PRESETS, metavar="PRESET",
                   help=f"H.264 encoder speed for --record: ultrafast .. veryslow (default {LIVE_PRESET}: a third of "
                        "medium's CPU time at 640x360, 1 dB lower PSNR, smaller files; docs/PERFORMANCE.md)")
    p.add_argument("--no-preview", action="store_true", help="no window (also automatic without a display)")
    p.add_argument("--max-size", type=int, default=640, help="shrink frames so the long side is at most this (640)")
    p.add_argument("--backend", default="torch", help="inference backend: torch or onnx")
    p.add_argument("--device", default="auto", help="auto, cpu or cuda")
    p.add_argument("--precision", default="auto",
                   help="auto (fp16 on a GPU; on a CPU bf16 where it is native (AVX-512 BF16 / AMX), else fp32), "
                        "fp32, fp16 or bf16")
    p.add_argument("--threads", type=int, default=None, help="CPU threads for inference")
    p.add_argument("--compile", nargs="?", const="default", default=None, choices=COMPILE_MODES, metavar="MODE",
                   help="torch.compile the network (on a 2-core CPU 0.8-1.3x, depending on net and precision: "
                        "docs/PERFORMANCE.md; the first frames wait ~25 s for it)")
    p.add_argument("--max-frames", type=int, default=None, help="stop after this many frames")


def preview_unavailable(cv2) -> str | None:
    """Why a preview window cannot open here, or ``None`` when it can (creates the window)."""
    if sys.platform.startswith("linux") and not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
        return "no DISPLAY is set"
    try:
        cv2.namedWindow(WINDOW, cv2.WINDOW_AUTOSIZE)
    except cv2.error as exc:
        first = str(exc).strip().splitlines()[-1] if str(exc).strip() else type(exc).__name__
        return f"this OpenCV build cannot open windows ({first})"
    return None


def draw_fps(cv2, frame_bgr, fps: float):
    """Write ``"NN.N fps"`` in the top-left corner of a BGR frame (in place; returns it)."""
    scale = max(0.4, frame_bgr.shape[0] / 720)
    org = (8, int(8 + 22 * scale))
    text = f"{fps:.1f} fps"
    cv2.putText(frame_bgr, text, org, cv2.FONT_HERSHEY_SIMPLEX, scale, (0, 0, 0), 4, cv2.LINE_AA)
    cv2.putText(frame_bgr, text, org, cv2.FONT_HERSHEY_SIMPLEX, scale, (255, 255, 255), 1, cv2.LINE_AA)
    return frame_bgr


def _nominal_fps(fps: float) -> float:
    """The input's frame rate for the recording; :data:`FALLBACK_FPS` where it reports none or nonsense."""
    return fps if 0 < fps <= 240 else FALLBACK_FPS


class _Camera:
    """Frames of a camera (``cv2.VideoCapture``) as RGB ``uint8``, shrunk to ``max_size``."""

    def __init__(self, cv2, index: int, max_size: int):
        from ..errors import UserError

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
        self.fps = _nominal_fps(self.cap.get(cv2.CAP_PROP_FPS))
        self.ended_early = ""

    def frames(self) -> Iterator[np.ndarray]:
        from ..video import shrink_frame

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


class _File:
    """Frames of a ``--source`` file (video, frame folder or image) through :func:`~stablestyle.video.open_source`.

    Opening checks the whole file as ``stylize`` does (missing, not a video, an index that points past
    the end); a decoding error part-way ends the frames and is kept in ``ended_early``.
    """

    def __init__(self, path: str, max_size: int):
        from ..video import open_source

        self.source = open_source(path, max_size=max_size)
        kind = "frame folder" if self.source.kind == "frames" else self.source.kind
        self.what = f"{kind} {path}"
        self.fps = _nominal_fps(self.source.fps)
        self.ended_early = ""

    def frames(self) -> Iterator[np.ndarray]:
        from ..errors import UserError

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


def _open_input(cv2, args) -> _Camera | _File:
    if args.source is not None:
        return _File(args.source, args.max_size)
    return _Camera(cv2, 0 if args.camera is None else args.camera, args.max_size)


def _live_precision(args: argparse.Namespace, device) -> str:
    """``--precision auto`` on a CPU with native bf16 means bf16 here: live video wants the 2-3x (the outputs
    stay within 0.02 of fp32); ``stylize`` and ``evaluate`` keep fp32 so files and figures do not depend on
    the machine."""
    from ..inference import bf16_is_native

    if args.precision == "auto" and bf16_is_native(args.backend, device):
        return "bf16"
    return args.precision


def run(args: argparse.Namespace) -> int:
    import cv2

    from ..inference import make_backend
    from ..checkpoint import describe_net, load_checkpoint
    from ..errors import UserError
    from ..runtime import check_at_least, resolve_device
    from ..video import check_max_size, check_output_path, open_sink, output_kind

    check_max_size(args.max_size, "--max-size")
    for name in ("max_frames", "threads"):
        check_at_least("--" + name.replace("_", "-"), getattr(args, name))
    if args.camera is not None and not 0 <= args.camera < MAX_CAMERA:
        raise UserError(f"--camera must be a camera index from 0 to {MAX_CAMERA - 1} (0 is the first camera), "
                        f"got {args.camera}")
    if args.record is not None:
        if output_kind(args.record) != "video":
            raise UserError(f"--record {args.record}: give a video file name ending in .mp4, .mov or .mkv")
        check_output_path(args.record, [args.source] if args.source else [], args.overwrite)
    device = resolve_device(args.device)
    onnx_file = str(args.model).lower().endswith(".onnx")
    if onnx_file and args.backend != "onnx":
        raise UserError(f"--model {args.model} is an ONNX file; run it with --backend onnx")

    capture = _open_input(cv2, args)  # before the model: a bad --source / --camera fails at once
    preview = False
    try:
        if onnx_file:
            model, desc = args.model, args.model
        else:
            model, meta = load_checkpoint(args.model)
            desc = f"{meta['path']} ({describe_net(meta['model'])})"
        backend = make_backend(args.backend, model, device=device, precision=_live_precision(args, device),
                               threads=args.threads, compile=args.compile or False)
        info = backend.describe()
        log.info("model %s: %s %s on %s", desc, info.get("backend", args.backend), info.get("precision"),
                 info.get("device"))
        log.debug("backend %s", info)
        if not args.no_preview:
            reason = preview_unavailable(cv2)
            preview = reason is None
            if not preview:
                log.info("preview off: %s (use --no-preview to silence this)", reason)
        if not preview and args.record is None:
            log.info("no preview and no --record: frames are stylized and discarded (a speed check)")
        sink_cm = (open_sink(args.record, capture.fps, overwrite=args.overwrite, preset=args.preset)
                   if args.record is not None else contextlib.nullcontext())
        with sink_cm as sink:
            count, seconds, stopped = _loop(cv2, capture.frames(), backend, sink, args, preview)
        if count == 0:
            raise UserError(f"{capture.what} gave no frames")
    finally:
        capture.close()
        if preview:
            cv2.destroyAllWindows()
    what = capture.what
    if capture.ended_early:
        kept = f"; {args.record} holds the {count} frames before it" if args.record else ""
        log.warning("%s%s", capture.ended_early, kept)
        stopped = stopped or "source ended early"
    saved = f"; recorded to {args.record}" if args.record else ""
    print(f"{count} frames from {what} in {seconds:.1f} s ({count / max(seconds, 1e-9):.1f} frames/s)"
          f"{', ' + stopped if stopped else ''}{saved}")
    return 0


def _loop(cv2, frames: Iterator[np.ndarray], backend, sink, args, preview: bool) -> tuple[int, float, str]:
    """Capture -> stylize -> show / record until the input ends, ``--max-frames``, a quit key or Ctrl-C.

    ``frames``: RGB ``uint8`` ``(H, W, 3)`` frames, already shrunk to ``--max-size``.  Returns
    ``(frames, seconds, why it stopped early or "")``.  Ctrl-C is caught here, so the caller's
    recording context still closes normally.
    """
    count, fps, why = 0, 0.0, ""
    start = last = time.perf_counter()
    try:
        for out in backend.run(itertools.islice(frames, args.max_frames)):
            count += 1
            now = time.perf_counter()
            instant = 1.0 / max(now - last, 1e-9)
            fps = instant if count == 1 else (1 - FPS_SMOOTHING) * fps + FPS_SMOOTHING * instant
            last = now
            if sink is not None:
                sink.write(out)
            if preview:
                view = draw_fps(cv2, cv2.cvtColor(out, cv2.COLOR_RGB2BGR), fps)
                cv2.imshow(WINDOW, view)
                if (cv2.waitKey(1) & 0xFF) in QUIT_KEYS:
                    why = "stopped by key"
                    break
    except KeyboardInterrupt:
        why = "stopped by Ctrl-C"
        log.info("Ctrl-C: stopping after %d frames%s", count, "; finishing the recording" if sink else "")
    return count, time.perf_counter() - start, why
