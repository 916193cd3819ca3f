"""``stablestyle stylize INPUT [INPUT ...] -o OUTPUT --model CKPT``: stylize videos, frame folders or images.

One input: decoding, the network and encoding run in three threads
(:func:`stablestyle.inference.run_pipelined`).  Several inputs: ``OUTPUT`` is a
folder, and the inputs are stylized together, up to ``--batch`` frames of
different inputs per network call (:func:`stablestyle.inference.stylize_many`);
each keeps its own recurrent state.
"""

from __future__ import annotations

import argparse
import itertools
import logging
import time
from pathlib import Path

from ..stability import add_stability_arguments

HELP = "stylize video files, folders of frames or images"

log = logging.getLogger(__name__)

METHODS = ("network", "gatys", "ruder", "ruder-long")
#: libx264 presets (:data:`stablestyle.video.X264_PRESETS`, repeated here so ``--help`` needs no PyAV / torch).
X264_PRESETS = ("ultrafast", "superfast", "veryfast", "faster", "fast", "medium", "slow", "slower", "veryslow")
#: ``--compile`` modes (:data:`stablestyle.inference.COMPILE_MODES`, repeated here so ``--help`` needs no torch).
COMPILE_MODES = ("default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs")


#: Settings of the optimisation baselines (``--method gatys|ruder``), refused with ``--method network``.
OPTIM_DEFAULTS = {"iterations": 100, "size": 256, "flow": "dis"}


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("inputs", nargs="+", metavar="INPUT", help="video file, folder of numbered frames, or image")
    p.add_argument("-o", "--output", required=True,
                   help="output: .mp4/.mkv/.mov video, .png/.jpg image, or a folder name (numbered PNG frames); "
                        "with several inputs a folder that receives <input name>.mp4 (.png for images)")
    p.add_argument("--model", default=None,
                   help="checkpoint path or bundled model name (see `stablestyle models`); "
                        "defaults to the default bundled model")
    p.add_argument("--method", choices=METHODS, default="network",
                   help="network: the trained feed-forward net (real time); gatys / ruder / ruder-long: per-frame / "
                        "temporally constrained (short- or long-term, Ruder et al.) optimisation baselines "
                        "(slow, need --style)")
    p.add_argument("--style", default=None, help="style image, for --method gatys|ruder")
    p.add_argument("--iterations", type=int, default=None,
                   help=f"optimisation iterations per frame (gatys/ruder; default {OPTIM_DEFAULTS['iterations']})")
    p.add_argument("--size", type=int, default=None,
                   help=f"optimisation size, long side in px (gatys/ruder; default {OPTIM_DEFAULTS['size']}); "
                        "the result is resized back to the input's size")
    p.add_argument("--flow", default=None,
                   help=f"flow estimator for ruder: dis or deepflow (default {OPTIM_DEFAULTS['flow']})")
    p.add_argument("--max-size", type=int, default=None, help="resize input so the long side is at most this")
    p.add_argument("--max-frames", type=int, default=None, help="stop after this many frames")
    p.add_argument("--device", default="auto", help="auto, cpu or cuda")
    p.add_argument("--half", dest="half", action="store_true", default=None,
                   help="reduced precision (fp16 on GPU — the default there; bf16 on CPU)")
    p.add_argument("--no-half", dest="half", action="store_false", help="force fp32")
    p.add_argument("--backend", default="torch", help="inference backend for --method network: torch or onnx")
    p.add_argument("--threads", type=int, default=None,
                   help="CPU threads for inference (1 is fastest on a busy machine; see docs/PERFORMANCE.md)")
    p.add_argument("--compile", nargs="?", const="default", default=None, choices=COMPILE_MODES, metavar="MODE",
                   help="torch.compile the network (MODE: default, or reduce-overhead / max-autotune on a GPU; "
                        "pays off most on a GPU at HD sizes); the first frames wait for compiling (longest with "
                        "max-autotune)")
    p.add_argument("--cuda-graphs", action="store_true",
                   help="replay the network as CUDA graphs (GPU only; helps small frames, where launching kernels "
                        "costs more than computing them; --compile is the one for HD)")
    p.add_argument("--batch", type=int, default=8,
                   help="with several inputs: frames of different inputs per network call (default 8)")
    p.add_argument("--preset", default="medium", choices=X264_PRESETS, metavar="PRESET",
                   help="H.264 encoder speed: ultrafast .. veryslow (default medium); a faster preset encodes "
                        "faster with larger files, for when encoding sets the pace (docs/PERFORMANCE.md)")
    add_stability_arguments(p)
    p.add_argument("--scene-cuts", choices=("auto", "off"), default="auto",
                   help="auto (default): start the recurrent state afresh where a new shot begins (a cut in "
                        "edited footage), so one shot's stylization does not bleed into the next; off: never")
    p.add_argument("--overwrite", action="store_true", help="replace OUTPUT if it exists")
    p.add_argument("--quiet", action="store_true", help="no progress bar or info messages (warnings still show)")


def run(args: argparse.Namespace) -> int:
    from ..errors import UserError
    from ..runtime import check_at_least, resolve_device
    from ..video import check_max_size

    check_max_size(args.max_size, "--max-size")
    for name in ("max_frames", "iterations", "size", "threads", "batch"):
        check_at_least("--" + name.replace("_", "-"), getattr(args, name))
    device = resolve_device(args.device)
    if args.method != "network":
        if args.style is None:
            raise UserError(f"--method {args.method} needs --style STYLE_IMAGE")
        if (args.model is not None or args.backend != "torch" or args.compile or args.cuda_graphs
                or args.stability is not None or args.perframe_model is not None or args.edge_margin is not None):
            raise UserError(f"--model / --backend / --compile / --cuda-graphs / --stability / --edge-margin are "
                            f"for a trained "
                            f"network; --method "
                            f"{args.method} optimises each frame against --style instead (drop them, or use "
                            "--method network)")
        if len(args.inputs) > 1:
            raise UserError(f"--method {args.method} takes one input at a time")
        for name, default in OPTIM_DEFAULTS.items():
            if getattr(args, name) is None:
                setattr(args, name, default)
    else:
        if args.style is not None:
            raise UserError("--style is for --method gatys|ruder; a network's style is fixed by its --model")
        given = [f"--{name}" for name in OPTIM_DEFAULTS if getattr(args, name) is not None]
        if given:
            raise UserError(f"{' / '.join(given)} set the optimisation of --method gatys|ruder; a network needs "
                            "none (drop them, or pass --method gatys|ruder with --style)")
    if args.method == "network":  # the optimisation methods take one input; their hint would differ
        from ..inference.outputs import warn_if_not_a_sequence

        for inp in args.inputs:
            warn_if_not_a_sequence(inp, args.output)
    if len(args.inputs) > 1:
        return _many(args, device)

    from ..video import check_output_path

    check_output_path(args.output, args.inputs, args.overwrite)
    # Validate everything cheap (model, backend, style) before decoding a single frame.
    if args.method == "network":
        backend = _network_backend(args, device)
        return _one(args, lambda source, sink, total: _pipelined(source, sink, backend, total, args.quiet,
                                                                 args.preset, args.scene_cuts))
    frames_fn = _optimisation_method(args, device)
    return _one(args, lambda source, sink, total: _sequential(frames_fn(source), sink, total, args.quiet))


def _pipelined(source, sink, backend, total, quiet, preset, scene_cuts="auto") -> tuple[int, list[str]]:
    from ..advice import bottleneck_note, compile_note
    from ..inference import run_pipelined
    from ..scenecut import SceneCutDetector, describe_cuts

    detector = SceneCutDetector() if scene_cuts == "auto" else None
    stats = run_pipelined(source, sink, backend, total=total, quiet=quiet,
                          restart=detector.update if detector else None)
    notes = [describe_cuts(detector.cuts) if detector else "",
             bottleneck_note(stats, preset if sink.kind == "video" else None)]
    if getattr(backend, "compile", False):
        notes.append(compile_note(stats))
    return stats.frames, [n for n in notes if n]


def _sequential(frames, sink, total, quiet) -> tuple[int, list[str]]:
    from ..runtime import progress

    count = 0
    for frame in progress(frames, total=total, desc="stylize", unit="frame", quiet=quiet):
        sink.write(frame)
        count += 1
    return count, []


def _one(args, stylize) -> int:
    """One input into ``args.output``; ``stylize(frames, sink, total)`` writes them and returns the count and
    notes for after the summary (what held the run up, the rate after compiling)."""
    from ..video import open_sink, open_source

    (path,) = args.inputs
    start = time.perf_counter()
    with open_source(path, max_size=args.max_size) as source:
        total = source.num_frames
        if args.max_frames is not None and total is not None:
            total = min(total, args.max_frames)
        audio = path if source.has_audio else None
        with open_sink(args.output, source.fps, audio_from=audio, overwrite=args.overwrite,
                       preset=args.preset) as sink:
            count, notes = stylize(itertools.islice(source, args.max_frames), sink, total)
        width, height = source.size
    seconds = time.perf_counter() - start
    print(f"stylized {count} frame{'s' * (count != 1)} at {width}x{height} in {seconds:.1f} s "
          f"({count / max(seconds, 1e-9):.1f} frames/s, {args.method}) -> {Path(args.output)}")
    for note in notes:
        log.info(note)
    return 0


def _many(args, device) -> int:
    from ..inference import stylize_many
    from ..inference.outputs import check_output_folder, many_outputs
    from ..scenecut import SceneCutDetector, describe_cuts

    folder = Path(args.output)
    check_output_folder(folder)
    outputs = many_outputs(args.inputs, str(folder))
    backend = _network_backend(args, device)
    created = not folder.exists()
    folder.mkdir(exist_ok=True)
    start = time.perf_counter()
    try:
        detectors = [SceneCutDetector() if args.scene_cuts == "auto" else None for _ in args.inputs]
        counts = stylize_many(args.inputs, outputs, backend, max_size=args.max_size, max_batch=args.batch,
                              max_frames=args.max_frames, overwrite=args.overwrite, preset=args.preset,
                              quiet=args.quiet, restarts=[d.update if d else None for d in detectors])
    except BaseException:
        if created and not any(folder.iterdir()):  # leave no empty folder behind a failed run
            folder.rmdir()
        raise
    seconds = time.perf_counter() - start
    for out, count, detector in zip(outputs, counts, detectors):
        cuts = f" ({describe_cuts(detector.cuts)})" if detector and detector.cuts else ""
        print(f"stylized {count} frame{'s' * (count != 1)} -> {out}{cuts}")
    print(f"{len(outputs)} inputs, {sum(counts)} frames in {seconds:.1f} s "
          f"({sum(counts) / max(seconds, 1e-9):.1f} frames/s, up to {args.batch} per network call)")
    return 0


def _network_backend(args, device):
    from ..advice import native_bf16_note
    from ..inference import make_backend
    from ..bundled import DEFAULT_MODEL
    from ..checkpoint import describe_net
    from ..stability import load_at_stability
    from ..stylize import precision_for

    model, meta = load_at_stability(args.model or DEFAULT_MODEL, args.stability, perframe=args.perframe_model,
                                    edge_margin=args.edge_margin)
    log.info("model %s: %s, step %s, trained by stablestyle %s", meta["path"], describe_net({**meta["model"], "edge_margin": meta["edge_margin"]}),
             meta["step"], meta.get("version"))
    hint = native_bf16_note(args.backend, device) if args.half is None else None
    if hint:
        log.info(hint)
    # built before any frame is decoded, so a bad --backend / --threads fails with nothing written
    return make_backend(args.backend, model, device=device, precision=precision_for(device, args.half),
                        threads=args.threads, compile=args.compile or False, cuda_graphs=args.cuda_graphs)


def _optimisation_method(args, device):
    from ..baselines import OptimOptions, get_method
    from ..video import read_image

    method = get_method(args.method)
    style = read_image(args.style)
    options = OptimOptions(iterations=args.iterations, size=args.size, flow_method=args.flow)
    return lambda frames: method(frames, style, options=options, device=device, quiet=args.quiet)
