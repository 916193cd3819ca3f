"""``stablestyle webcam --model CKPT``: live stylization from a camera, with preview and recording.

Frames come from OpenCV (``cv2.VideoCapture``: a camera index, or a video
file standing in for the camera), go through an inference backend
(:mod:`stablestyle.backends`, recurrent state kept across frames) and are
shown in a window with the measured frame rate drawn on them, and/or
recorded to a video with :func:`stablestyle.video.open_sink` (atomic: the
file appears when recording ends).  ``q`` / Esc in the window or Ctrl-C in
the terminal stop cleanly: the recording is finalised, not lost.  Without a
display (no ``DISPLAY``, or an OpenCV build without GUI support) the
preview turns itself off with a log line.

The recording runs at the capture's nominal rate (a camera reporting none:
30 fps); when stylization is slower than the camera, it plays faster than
real time.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import sys
import time

from .stylize import COMPILE_MODES

HELP = "live stylization from a camera (or a video file standing in for one), with preview and recording"

log = logging.getLogger(__name__)

WINDOW = "stablestyle"
#: Frame rate assumed when the camera does not report a usable one.
FALLBACK_FPS = 30.0
#: Smoothing of the displayed frame rate (exponential moving average weight of the newest frame).
FPS_SMOOTHING = 0.1
QUIT_KEYS = (ord("q"), ord("Q"), 27)  # q, Q, Esc


def add_arguments(p: argparse.ArgumentParser) -> None:
    src = p.add_mutually_exclusive_group()
    src.add_argument("--camera", type=int, default=None, help="camera index for cv2.VideoCapture (default 0)")
    src.add_argument("--source", default=None, metavar="VIDEO", help="a video file instead of a camera")
    p.add_argument("--model", required=True, help="checkpoint path or bundled model name")
    p.add_argument("--record", default=None, metavar="OUT.mp4", help="also record the stylized frames (.mp4/.mov/.mkv)")
    p.add_argument("--overwrite", action="store_true", help="replace the --record file if it exists")
    p.add_argument("--no-preview", action="store_true", help="no window (also automatic without a display)")
    p.add_argument("--max-size", type=int, default=640, help="shrink frames so the long side is at most this (640)")
    p.add_argument("--backend", default="torch", help="inference backend: torch or onnx")
    p.add_argument("--device", default="auto", help="auto, cpu or cuda")
    p.add_argument("--precision", default="auto", help="auto (fp16 on GPU, fp32 on CPU), fp32, fp16 or bf16")
    p.add_argument("--threads", type=int, default=None, help="CPU threads for inference")
    p.add_argument("--compile", nargs="?", const="default", default=None, choices=COMPILE_MODES, metavar="MODE",
                   help="torch.compile the network (1.3-1.5x on a CPU; the first frames wait ~25 s for it)")
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


def _open_capture(cv2, args):
    from ..errors import UserError

    if args.source is not None and not os.path.isfile(args.source):
        raise UserError(f"{args.source} does not exist; --source takes a video file")
    target = args.source if args.source is not None else (0 if args.camera is None else args.camera)
    what = f"video {args.source}" if args.source is not None else f"camera {target}"
    level = cv2.utils.logging.getLogLevel()
    cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_ERROR)  # a missing camera is our one-line error
    try:
        cap = cv2.VideoCapture(target)
    finally:
        cv2.utils.logging.setLogLevel(level)
    if not cap.isOpened():
        cap.release()
        hint = ("check the index (--camera N), that no other program holds it, and the permissions of /dev/video*"
                if args.source is None else "OpenCV cannot read this file")
        raise UserError(f"cannot open {what}: {hint}")
    return cap, what


def run(args: argparse.Namespace) -> int:
    import cv2

    from ..backends import make_backend
    from ..checkpoint import load_checkpoint
    from ..errors import UserError
    from ..runtime import check_at_least, resolve_device
    from ..video import check_output_path, open_sink, output_kind, resized_size

    for name in ("max_size", "max_frames", "threads"):
        check_at_least("--" + name.replace("_", "-"), getattr(args, name))
    if args.record is not None:
        if output_kind(args.record) != "video":
            raise UserError(f"--record {args.record}: give a video file name ending in .mp4, .mov or .mkv")
        check_output_path(args.record, [args.source] if args.source else [], args.overwrite)
    device = resolve_device(args.device)
    if str(args.model).lower().endswith(".onnx"):
        if args.backend != "onnx":
            raise UserError(f"--model {args.model} is an ONNX file; run it with --backend onnx")
        model, desc = args.model, args.model
    else:
        model, meta = load_checkpoint(args.model)
        desc = f"{meta['path']} {meta['model']}"
    backend = make_backend(args.backend, model, device=device, precision=args.precision, threads=args.threads,
                           compile=args.compile or False)
    log.info("model %s on %s", desc, backend.describe())

    cap, what = _open_capture(cv2, args)
    preview = False
    try:
        fps_in = cap.get(cv2.CAP_PROP_FPS)
        if not 0 < fps_in <= 240:
            fps_in = FALLBACK_FPS
        if not args.no_preview:
            reason = preview_unavailable(cv2)
            preview = reason is None
            if not preview:
                log.info("preview off: %s (use --no-preview to silence this)", reason)
        if not preview and args.record is None:
            log.info("no preview and no --record: frames are stylized and discarded (a speed check)")
        sink_cm = (open_sink(args.record, fps_in, overwrite=args.overwrite) if args.record is not None
                   else contextlib.nullcontext())
        with sink_cm as sink:
            count, seconds, stopped = _loop(cv2, cap, backend, sink, args, preview, resized_size)
        if count == 0:
            raise UserError(f"{what} gave no frames")
    finally:
        cap.release()
        if preview:
            cv2.destroyAllWindows()
    saved = f"; recorded to {args.record}" if args.record else ""
    print(f"{count} frames from {what} in {seconds:.1f} s ({count / max(seconds, 1e-9):.1f} frames/s)"
          f"{', ' + stopped if stopped else ''}{saved}")
    return 0


def _loop(cv2, cap, backend, sink, args, preview: bool, resized_size) -> tuple[int, float, str]:
    """Capture -> stylize -> show / record until the input ends, ``--max-frames``, a quit key or Ctrl-C.

    Returns ``(frames, seconds, why it stopped early or "")``.  Ctrl-C is
    caught here, so the caller's recording context still closes normally.
    """
    def frames():
        read = 0
        while args.max_frames is None or read < args.max_frames:
            ok, bgr = cap.read()
            if not ok:
                return
            read += 1
            rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
            size = resized_size((rgb.shape[1], rgb.shape[0]), args.max_size)
            if size != (rgb.shape[1], rgb.shape[0]):
                rgb = cv2.resize(rgb, size, interpolation=cv2.INTER_AREA)
            yield rgb

    count, fps, why = 0, 0.0, ""
    start = last = time.perf_counter()
    try:
        for out in backend.run(frames()):
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
