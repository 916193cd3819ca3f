"""Live stylization: frames from a camera through a backend to a preview window and / or a recording.

Owns :func:`run_live` (the capture -> stylize -> show / record loop, stopped by the input's end, a
frame limit, a quit key or Ctrl-C), the preview (:func:`preview_unavailable`, :func:`draw_fps`) and
:func:`live_precision` (what ``auto`` precision means for live video).  OpenCV is passed in as
``cv2``; the inputs come from :mod:`stablestyle.camera`.
"""

from __future__ import annotations

import itertools
import logging
import os
import sys
import time
from collections.abc import Iterator

import numpy as np

log = logging.getLogger(__name__)

WINDOW = "stablestyle"
#: Smoothing of the displayed frame rate (exponential moving average weight of the newest frame).
FPS_SMOOTHING = 0.1
QUIT_KEYS = (ord("q"), ord("Q"), 27)  # q, Q, Esc


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


def live_precision(precision: str, backend: str, device) -> str:
    """``precision`` for live video: ``auto`` on a CPU with native bf16 means bf16 (the outputs stay within
    0.02 of fp32); ``stylize`` and ``evaluate`` keep fp32 so files and figures do not depend on the machine."""
    from .inference import bf16_is_native

    if precision == "auto" and bf16_is_native(backend, device):
        return "bf16"
    return precision


def _run(backend, frames, restart):
    """``backend.run(frames)``, with ``restart`` only when set (a backend without scene-cut support still runs)."""
    return backend.run(frames) if restart is None else backend.run(frames, restart)


def run_live(cv2, frames: Iterator[np.ndarray], backend, sink, max_frames: int | None,
             preview: bool, restart=None) -> tuple[int, float, str]:
    """Capture -> stylize -> show / record until the input ends, ``max_frames``, a quit key or Ctrl-C.

    ``frames``: RGB ``uint8`` ``(H, W, 3)`` frames; ``sink``: an open video sink or ``None``;
    ``preview``: show each frame, with the smoothed frame rate, in :data:`WINDOW`; ``restart``: as in
    :meth:`stablestyle.inference.Backend.run` (scene cuts).  Returns
    ``(frames, seconds, why it stopped early or "")``.  Ctrl-C is caught here, so the caller's
    recording context still closes normally.
    """
    count, fps, why = 0, 0.0, ""
    start = last = time.perf_counter()
    try:
        for out in _run(backend, itertools.islice(frames, max_frames), restart):
            count += 1
            now = time.perf_counter()
            instant = 1.0 / max(now - last, 1e-9)
            fps = instant if count == 1 else (1 - FPS_SMOOTHING) * fps + FPS_SMOOTHING * instant
            last = now
            if sink is not None:
                sink.write(out)
            if preview:
                cv2.imshow(WINDOW, draw_fps(cv2, cv2.cvtColor(out, cv2.COLOR_RGB2BGR), fps))
                if (cv2.waitKey(1) & 0xFF) in QUIT_KEYS:
                    why = "stopped by key"
                    break
    except KeyboardInterrupt:
        why = "stopped by Ctrl-C"
        log.info("Ctrl-C: stopping after %d frames%s", count, "; finishing the recording" if sink else "")
    return count, time.perf_counter() - start, why
