"""``stablestyle evaluate``: methods x styles x clips -> ``results.json``, ``results.md`` and plots.

For every clip, style and method the clip is stylised file to file (decode ->
method -> H.264 encode, timed, see :func:`~stablestyle.evaluate.metrics.measure_stream`)
and the outputs are scored:

* **instability** (Gupta et al. 2017): :func:`~stablestyle.evaluate.metrics.instability`
  with ground-truth flow when the clip has it, else flow estimated on the input;
* **warping error** (Lai et al. 2018): flow estimated on the input, Ruder mask;
* **style / content loss**: the training losses (:class:`stablestyle.losses.PerceptualLoss`,
  VGG-16) against the style image (resized like training, ``style_size``) and the input frames;
* **speed**: frames/s of the method alone and of the whole file-to-file loop.

Trained networks (``--model NAME=CKPT``) have a fixed style: each is scored
against the ``--style`` whose sha256 matches the checkpoint's
``style_sha256`` (or the only ``--style`` when none matches, with a warning).
Style-conditioned methods (``input``, ``gatys``, ``ruder``) run for every
style.

Everything is validated (paths, methods, checkpoints, clips, styles) before
any output exists; the report folder is assembled under a temporary name and
renamed into place at the end, so a failed or interrupted run leaves nothing.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import logging
import math
import shutil
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from ..atomic import check_output_folder, publish_folder, temp_beside, write_text_atomic
from ..errors import UserError
from ..runtime import check_at_least
from .clips import Clip, clip_instability, clip_warping_error, load_clip
from .methods import MethodOptions, ModelMethod, Process, check_method_name, load_model_method, make_method
from .metrics import Speed, measure_stream, perceptual_losses

log = logging.getLogger(__name__)

__all__ = ["EvalConfig", "run_evaluation", "RESULTS_FORMAT", "DEFINITIONS"]

RESULTS_FORMAT = "stablestyle-evaluation"
RESULTS_FORMAT_VERSION = 1
REPORT_FILES = ("results.json", "results.md", "instability_over_time.png", "instability_vs_style.png")

DEFINITIONS = {
    "instability": "mean over frames t >= 1 of (1 / 3HW) sum c (y_t - warp(y_{t-1}))^2, frames in [0, 1], "
                   "c = reliability mask (Gupta et al. 2017; the training temporal loss); ground-truth flow "
                   "where the clip has it, else flow estimated on the input",
    "warping error": "mean over frames of sum_i M_i ||y_t(i) - warp(y_{t-1})(i)||^2 / sum_i M_i (RGB summed, "
                     "[0, 1] scale), flow estimated on the input, M = Ruder et al. 2016 mask (Lai et al. 2018)",
    "style loss": "sum over relu1_2..relu4_3 of the MSE between Gram matrices (normalised by CHW) of the "
                  "output and the style image (Johnson et al. 2016; the training definition), mean over frames",
    "content loss": "MSE of relu3_3 features of output and input frame, mean over frames",
    "fps (model)": "frames / time spent producing outputs, excluding decoding the input and encoding the output "
                   "(speed.fps_model; speed.fps_model_steady leaves out the first frame and its one-off warm-up)",
    "fps (file to file)": "frames / wall time of the whole loop: open, decode, method, H.264 encode, close",
}


@dataclass
class EvalConfig:
    """Settings of one evaluation (saved in ``results.json``).

    ``methods``: style-conditioned method names (``input``, ``gatys``,
    ``ruder``; commas allowed); ``models``: ``NAME=CKPT`` trained networks.
    ``max_size`` (long side, px) and ``max_frames`` shrink the clips;
    ``iterations`` / ``size`` configure the optimisation baselines (``size``
    ``None`` = the clip's long side); ``style_size`` is the long side of the
    style image for the style-loss targets (training's default, 256).
    """

    clips: list[str]
    output: str
    styles: list[str] = field(default_factory=list)
    methods: list[str] = field(default_factory=list)
    models: list[str] = field(default_factory=list)
    max_size: int | None = None
    max_frames: int | None = None
    flow: str = "dis"
    iterations: int = 100
    size: int | None = None
    style_size: int | None = 256
    device: str = "auto"
    half: bool | None = None
    save_videos: bool = True
    overwrite: bool = False
    quiet: bool = False


@dataclass
class _Style:
    name: str
    path: Path
    image: np.ndarray  # uint8, as stored (the optimisation baselines resize it themselves)
    sha256: str


@dataclass
class _Job:
    method: str
    kind: str  # "network" or "style-conditioned"
    style: _Style
    clip: Clip
    model: ModelMethod | None = None


def _unique(names: Sequence[str]) -> list[str]:
    """Names made unique by suffixing ``-2``, ``-3`` ... to repeats."""
    seen: dict[str, int] = {}
    out = []
    for name in names:
        seen[name] = seen.get(name, 0) + 1
        out.append(name if seen[name] == 1 else f"{name}-{seen[name]}")
    return out


def _load_styles(paths: Sequence[str]) -> list[_Style]:
    from ..checkpoint import file_sha256
    from ..video import read_image

    styles = []
    names = _unique([Path(p).stem for p in paths])
    for name, p in zip(names, paths):
        path = Path(p)
        if path.is_dir():
            raise UserError(f"--style {path} is a folder; give a style image file (repeat --style for several)")
        if not path.is_file():
            raise UserError(f"style image {path}: no such file")
        styles.append(_Style(name=name, path=path, image=read_image(path), sha256=file_sha256(path)))
    return styles


def trained_style_paths(models: Sequence[ModelMethod]) -> list[str]:
    """The style images ``models`` were trained on, found by the name their checkpoints record.

    Looked for at the recorded path and in ``$STABLESTYLE_ASSETS/styles``; a
    file counts only if its sha256 is the one in the checkpoint; one image per
    hash.  Raises a :class:`UserError` saying, per model, why none was found.
    """
    from ..checkpoint import file_sha256
    from ..paths import assets_dir

    assets = assets_dir()
    found: list[str] = []
    hashes: set[str] = set()
    problems: list[str] = []
    for model in models:
        recorded = (model.meta.get("config") or {}).get("style")
        if not recorded or not model.style_sha256:
            problems.append(f"{model.name} records no style {'image' if not recorded else 'hash'}")
            continue
        candidates = [Path(recorded).expanduser()]
        if assets is not None:
            candidates.append(assets / "styles" / Path(recorded).name)
        existing = [c for c in candidates if c.is_file()]
        hit = next((c for c in existing if file_sha256(c) == model.style_sha256), None)
        if hit is None:
            where = " or ".join(str(c) for c in candidates)
            why = "differs from the image it was trained on" if existing else "not found"
            problems.append(f"{model.name}: {where} {why}")
        elif model.style_sha256 not in hashes:  # one image per style, wherever each model found it
            hashes.add(model.style_sha256)
            found.append(str(hit))
    if problems:
        hint = "" if assets is not None else "; or set STABLESTYLE_ASSETS to a folder whose styles/ holds them"
        raise UserError(f"no --style given and the models' style images are not at hand ({'; '.join(problems)}); "
                        f"pass --style IMG{hint}")
    return found


def _style_for_model(model: ModelMethod, styles: Sequence[_Style]) -> _Style:
    matches = [s for s in styles if model.style_sha256 and s.sha256 == model.style_sha256]
    if matches:
        return matches[0]
    if len(styles) == 1:
        log.warning("model %s (%s) was not trained on %s (style hashes differ); scoring it against that style "
                    "anyway", model.name, model.checkpoint, styles[0].path)
        return styles[0]
    raise UserError(f"model {model.name}={model.checkpoint} was trained on a style image that matches none of "
                    f"--style {', '.join(str(s.path) for s in styles)} (sha256 {model.style_sha256}); pass the "
                    "style image it was trained with")


def _split_methods(values: Sequence[str]) -> list[str]:
    out: list[str] = []
    for value in values:
        for name in value.split(","):
            name = name.strip()
            if name and name not in out:
                out.append(name)
    return out


def _resize_outputs(outputs: list[np.ndarray], size: tuple[int, int]) -> list[np.ndarray]:
    import cv2

    return [f if (f.shape[1], f.shape[0]) == size else cv2.resize(f, size, interpolation=cv2.INTER_AREA)
            for f in outputs]


def _finite(x: float) -> float | None:
    return float(x) if math.isfinite(float(x)) else None


def _json_safe(obj):
    """``obj`` with non-finite floats (an instant method's infinite fps, an empty mask's nan) as ``None``."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: _json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_json_safe(v) for v in obj]
    return obj


def _as_list(t: torch.Tensor) -> list[float | None]:
    return [_finite(v) for v in t.detach().cpu().double().tolist()]


def _stream(process: Process, clip: Clip, video: Path) -> tuple[list[np.ndarray], Speed]:
    """Stylise ``clip`` from its file to ``video``, timing model, decode and encode (see :class:`Speed`)."""
    from ..video import open_sink, open_source

    start = time.perf_counter()
    with open_source(clip.path, max_size=clip.max_size) as source:
        sink = open_sink(video, source.fps, overwrite=True)
        try:
            outputs, speed = measure_stream(process, itertools.islice(source, clip.max_frames), sink.write)
            t0 = time.perf_counter()
            sink.close()  # flushes the encoder: part of the encode time
            speed.encode_seconds += time.perf_counter() - t0
        except BaseException:
            sink.abort()
            raise
    speed.total_seconds = time.perf_counter() - start
    return outputs, speed


def run_evaluation(config: EvalConfig, argv: Sequence[str] | None = None) -> dict:
    """Run the evaluation of ``config`` and write its report folder; returns the results dict.

    Raises:
        UserError: any bad input (missing clip / style / checkpoint, unknown
            method, existing output without ``overwrite``), before output exists.
    """
    from ..losses import PerceptualLoss
    from ..models import load_vgg16
    from ..report import provenance
    from ..runtime import progress, resolve_device
    from ..video import to_tensor
    from ..analysis import load_style
    from .plots import plot_instability_over_time, plot_instability_vs_style
    from .summary import results_markdown

    # ---- validate everything cheap first
    out = Path(config.output)
    check_output_folder(out, config.overwrite, marker="results.json", what="an evaluation folder", noun="report",
                        inputs=[*config.clips, *config.styles])
    for name, value in (("--max-frames", config.max_frames),):
        check_at_least(name, value, 2)
    for name, value in (("--max-size", config.max_size), ("--iterations", config.iterations),
                        ("--size", config.size), ("--style-size", config.style_size)):
        check_at_least(name, value, 16 if "size" in name else 1)
    if not config.clips:
        raise UserError("no clips given; pass video files, frame folders or ground-truth clip folders")
    methods = _split_methods(config.methods)
    for name in methods:
        check_method_name(name)
    if not methods and not config.models:
        raise UserError("nothing to evaluate: give --method (input, gatys, ruder) and/or --model NAME=CKPT")
    if not config.styles and not config.models:
        raise UserError("no --style given: style losses (and the gatys / ruder baselines) need the style image(s)")
    device = resolve_device(config.device)
    models = [load_model_method(spec) for spec in config.models]
    style_paths = list(config.styles)
    if not style_paths:
        style_paths = trained_style_paths(models)
        log.info("no --style: using the style image%s the models were trained on: %s",
                 "s" * (len(style_paths) > 1), ", ".join(style_paths))
    styles = _load_styles(style_paths)
    model_names = [m.name for m in models]
    model_styles = {id(m): _style_for_model(m, styles) for m in models}
    pairs = [(m.name, model_styles[id(m)].name) for m in models]
    clash = sorted({f"{name} (style {style})" for name, style in pairs if pairs.count((name, style)) > 1})
    if clash:
        raise UserError(f"--model {', '.join(clash)} given twice for the same style; use distinct names")
    clip_names = _unique([Path(c).name if Path(c).is_dir() else Path(c).stem for c in config.clips])
    clips = [load_clip(c, max_size=config.max_size, max_frames=config.max_frames, flow_method=config.flow,
                       name=n) for c, n in zip(config.clips, clip_names)]
    options = MethodOptions(device=device, half=config.half, iterations=config.iterations, size=config.size,
                            flow_method=config.flow, quiet=True)

    for name in methods:  # option errors (e.g. --iterations for the baselines) surface before any work
        make_method(name, styles[0].image, options, clips[0].size)

    jobs: list[_Job] = []
    for clip in clips:
        for style in styles:
            jobs += [_Job(m, "style-conditioned", style, clip) for m in methods]
            jobs += [_Job(m.name, "network", style, clip, m) for m in models if model_styles[id(m)] is style]
    method_order = [*methods, *dict.fromkeys(model_names)]

    vgg = load_vgg16(device=device)
    losses = {s.name: PerceptualLoss(vgg, load_style(s.path, config.style_size).to(device)) for s in styles}

    # ---- run, in a staging folder beside the output
    # check_output_folder vetted ``out`` up front; publish_folder replaces it without checking again
    stage = temp_beside(out, folder=True)
    try:
        (stage / "videos").mkdir()
        runs = []
        inputs_cache: dict[str, torch.Tensor] = {}
        for job in progress(jobs, total=len(jobs), desc="evaluate", unit="run", quiet=config.quiet):
            clip, style = job.clip, job.style
            process = (job.model.process(options) if job.model is not None
                       else make_method(job.method, style.image, options, clip.size))
            video_name = f"{clip.name}__{style.name}__{job.method}.mp4"
            outputs, speed = _stream(process, clip, stage / "videos" / video_name)
            if not config.save_videos:
                (stage / "videos" / video_name).unlink()
            if len(outputs) != len(clip.frames):
                raise RuntimeError(f"method {job.method} returned {len(outputs)} frames for {len(clip.frames)} "
                                   f"inputs of clip {clip.name}")
            if any(f.shape != clip.frames[0].shape for f in outputs):
                log.warning("%s produced %dx%d frames for a %dx%d clip; resized to the clip for scoring",
                            job.method, outputs[0].shape[1], outputs[0].shape[0], *clip.size)
                outputs = _resize_outputs(outputs, clip.size)
            if clip.name not in inputs_cache:
                inputs_cache[clip.name] = to_tensor(clip.frames, device=device)
            inp = inputs_cache[clip.name]
            y = to_tensor(outputs, device=device)
            inst = clip_instability(y, clip)
            warp = clip_warping_error(y, clip)
            perc = perceptual_losses(y, inp, losses[style.name])
            run = {
                "method": job.method,
                "kind": job.kind,
                "style": style.name,
                "clip": clip.name,
                "frames": len(outputs),
                "size": list(clip.size),
                "instability": _finite(inst.mean()),
                "instability_flow": clip.flow_source,
                "warping_error": _finite(warp.nanmean()),
                "style_loss": _finite(perc["style"].mean()),
                "content_loss": _finite(perc["content"].mean()),
                "speed": speed.as_dict(),
                "video": f"videos/{video_name}" if config.save_videos else None,
                "instability_per_frame": _as_list(inst),
                "warping_error_per_frame": _as_list(warp),
                "style_loss_per_frame": _as_list(perc["style"]),
                "content_loss_per_frame": _as_list(perc["content"]),
            }
            if job.model is not None:
                run["checkpoint"] = job.model.checkpoint
            log.info("%s / %s / %s: instability %.3g, warping error %.3g, style %.4g, content %.4g, "
                     "%.1f fps model, %.1f fps file to file", job.method, style.name, clip.name,
                     run["instability"] or math.nan, run["warping_error"] or math.nan, run["style_loss"],
                     run["content_loss"], speed.fps_model, speed.fps_total)
            runs.append(run)
        if not config.save_videos:
            (stage / "videos").rmdir()

        results = {
            "format": RESULTS_FORMAT,
            "format_version": RESULTS_FORMAT_VERSION,
            "provenance": provenance(argv, device),
            "config": dataclasses.asdict(config),
            "definitions": DEFINITIONS,
            "clips": {c.name: {"path": str(c.path), "frames": len(c.frames), "size": list(c.size), "fps": c.fps,
                               "instability_flow": c.flow_source, "warping_error_flow": c.flow_method}
                      for c in clips},
            "styles": {s.name: {"path": str(s.path), "sha256": s.sha256} for s in styles},
            "methods": method_order,
            "models": [m.describe() | {"style": model_styles[id(m)].name} for m in models],
            "runs": runs,
        }
        results = _json_safe(results)
        write_text_atomic(stage / "results.json", json.dumps(results, indent=2, allow_nan=False) + "\n")
        write_text_atomic(stage / "results.md", results_markdown(results))
        plot_instability_over_time(runs, stage / "instability_over_time.png")
        plot_instability_vs_style(runs, stage / "instability_vs_style.png")
        publish_folder(stage, out)
    except BaseException:
        shutil.rmtree(stage, ignore_errors=True)
        raise
    log.info("wrote %s", out)
    return results
