"""``stablestyle webcam --model CKPT``: live stylization from a camera, with preview and recording.

Frames come from a camera through OpenCV (``cv2.VideoCapture``), or from a
video file, frame folder or image standing in for the camera
(:func:`stablestyle.video.open_source`, as ``stylize`` reads them), go through an inference backend
(:mod:`stablestyle.inference`, recurrent state kept across frames; the loop is
:func:`stablestyle.live.run_live`, the inputs :mod:`stablestyle.camera`) and are
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
import logging

from ..camera import MAX_CAMERA
from ..stability import add_stability_arguments
from .stylize import COMPILE_MODES, X264_PRESETS

HELP = "live stylization from a camera (or a video file standing in for one), with preview and recording"

log = logging.getLogger(__name__)

#: libx264 preset for ``--record``: recording shares the CPU with the network, so live runs default to a
#: fast one (``stylize`` keeps libx264's ``medium``; ``bench/encode_speed.py`` compares them).
LIVE_PRESET = "veryfast"


def add_arguments(p: argparse.ArgumentParser) -> None:
    src = p.add_mutually_exclusive_group()
    src.add_argument("--camera", type=int, default=None, metavar="N",
                     help=f"camera index for cv2.VideoCapture, 0 .. {MAX_CAMERA - 1} (default 0)")
    src.add_argument("--source", default=None, metavar="VIDEO",
                     help="a video file (or a frame folder or image) instead of a camera")
    p.add_argument("--model", required=True, help="checkpoint path or bundled model name")
    add_stability_arguments(p)
    p.add_argument("--record", default=None, metavar="OUT.mp4", help="also record the stylized frames (.mp4/.mov/.mkv)")
    p.add_argument("--overwrite", action="store_true", help="replace the --record file if it exists")
    p.add_argument("--preset", default=LIVE_PRESET, choices=X264_PRESETS, metavar="PRESET",
                   help=f"H.264 encoder speed for --record: ultrafast .. veryslow (default {LIVE_PRESET}: less CPU "
                        "than medium, which the network needs, at a slightly lower quality; docs/PERFORMANCE.md)")
    p.add_argument("--no-preview", action="store_true", help="no window (also automatic without a display)")
    p.add_argument("--max-size", type=int, default=640, help="shrink frames so the long side is at most this (640)")
    p.add_argument("--backend", default="torch", help="inference backend: torch or onnx")
    p.add_argument("--device", default="auto", help="auto, cpu or cuda")
    p.add_argument("--precision", default="auto",
                   help="auto (fp16 on a GPU; on a CPU bf16 where it is native (AVX-512 BF16 / AMX), else fp32), "
                        "fp32, fp16 or bf16")
    p.add_argument("--threads", type=int, default=None, help="CPU threads for inference")
    p.add_argument("--compile", nargs="?", const="default", default=None, choices=COMPILE_MODES, metavar="MODE",
                   help="torch.compile the network (whether it pays depends on the device, net and precision: "
                        "docs/PERFORMANCE.md); the first frames wait for compiling")
    p.add_argument("--max-frames", type=int, default=None, help="stop after this many frames")
    p.add_argument("--scene-cuts", choices=("auto", "off"), default="auto",
                   help="auto (default): restart the recurrent state where the picture cuts to another scene "
                        "(a --source with edits, a camera switched to another view); off: never")


def run(args: argparse.Namespace) -> int:
    import cv2

    from ..camera import open_input
    from ..errors import UserError
    from ..live import run_live
    from ..runtime import resolve_device
    from ..scenecut import SceneCutDetector, describe_cuts

    _check_options(args)
    device = resolve_device(args.device)
    capture = open_input(cv2, args.camera, args.source, args.max_size)  # before the model: fails at once
    preview = False
    try:
        backend = _backend(args, device)
        preview = _preview(cv2, args)
        if not preview and args.record is None:
            log.info("no preview and no --record: frames are stylized and discarded (a speed check)")
        sink_cm = (_open_record(args, capture.fps) if args.record is not None else contextlib.nullcontext())
        with sink_cm as sink:
            detector = SceneCutDetector() if args.scene_cuts == "auto" else None
            count, seconds, stopped = run_live(cv2, capture.frames(), backend, sink, args.max_frames, preview,
                                               detector.update if detector else None)
        if count == 0:
            raise UserError(f"{capture.what} gave no frames")
    finally:
        capture.close()
        if preview:
            cv2.destroyAllWindows()
    if capture.ended_early:
        kept = f"; {args.record} holds the {count} frames before it" if args.record else ""
        log.warning("%s%s", capture.ended_early, kept)
        stopped = stopped or "source ended early"
    saved = f"; recorded to {args.record}" if args.record else ""
    print(f"{count} frames from {capture.what} in {seconds:.1f} s ({count / max(seconds, 1e-9):.1f} frames/s)"
          f"{', ' + stopped if stopped else ''}{saved}")
    if detector is not None and detector.cuts:
        log.info(describe_cuts(detector.cuts))
    return 0


def _check_options(args: argparse.Namespace) -> None:
    """Every cheap check of the options, before a camera or a model is opened."""
    from ..camera import check_camera_index
    from ..errors import UserError
    from ..runtime import check_at_least
    from ..video import check_max_size, check_output_path, output_kind

    check_max_size(args.max_size, "--max-size")
    for name in ("max_frames", "threads"):
        check_at_least("--" + name.replace("_", "-"), getattr(args, name))
    if args.camera is not None:
        check_camera_index(args.camera)
    if args.record is not None:
        if output_kind(args.record) != "video":
            raise UserError(f"--record {args.record}: give a video file name ending in .mp4, .mov or .mkv")
        check_output_path(args.record, [args.source] if args.source else [], args.overwrite)
    if str(args.model).lower().endswith(".onnx") and args.backend != "onnx":
        raise UserError(f"--model {args.model} is an ONNX file; run it with --backend onnx")
    if str(args.model).lower().endswith(".onnx") and args.stability is not None:
        raise UserError(f"--stability mixes two checkpoints; --model {args.model} is an ONNX file (export the "
                        "model at the stability you want: stablestyle export --stability S)")
    if str(args.model).lower().endswith(".onnx") and args.edge_margin is not None:
        raise UserError(f"--edge-margin is fixed inside the exported {args.model}; export it again with "
                        "stablestyle export --edge-margin PX")


def _backend(args: argparse.Namespace, device):
    """The inference backend of ``--model`` (a checkpoint, a bundled name or an ``.onnx`` file)."""
    from ..checkpoint import describe_net
    from ..inference import make_backend
    from ..live import live_precision
    from ..stability import load_at_stability

    if str(args.model).lower().endswith(".onnx"):
        model, desc = args.model, args.model
    else:
        model, meta = load_at_stability(args.model, args.stability, perframe=args.perframe_model,
                                        edge_margin=args.edge_margin)
        desc = f"{meta['path']} ({describe_net(meta['model'])})"
    backend = make_backend(args.backend, model, device=device,
                           precision=live_precision(args.precision, args.backend, device),
                           threads=args.threads, compile=args.compile or False)
    info = backend.describe()
    log.info("model %s: %s %s on %s", desc, info.get("backend", args.backend), info.get("precision"),
             info.get("device"))
    log.debug("backend %s", info)
    return backend


def _preview(cv2, args: argparse.Namespace) -> bool:
    """Whether a preview window opened (never with ``--no-preview``; without a display, a log line says why)."""
    from ..live import preview_unavailable

    if args.no_preview:
        return False
    reason = preview_unavailable(cv2)
    if reason is not None:
        log.info("preview off: %s (use --no-preview to silence this)", reason)
    return reason is None


def _open_record(args: argparse.Namespace, fps: float):
    from ..video import open_sink

    return open_sink(args.record, fps, overwrite=args.overwrite, preset=args.preset)
