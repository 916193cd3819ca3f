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
any output exists (:mod:`stablestyle.evaluate.plan`); the report folder is assembled under a temporary name and
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
from pathlib import Path

import numpy as np
import torch

from ..atomic import publish_folder, temp_beside, write_text_atomic
from .clips import Clip, clip_instability, clip_warping_error
from .methods import Process, make_method
from .metrics import Speed, measure_stream, perceptual_losses
from .plan import EvalConfig, Job, Plan, check_config, plan_evaluation, trained_style_paths

log = logging.getLogger(__name__)

__all__ = ["EvalConfig", "run_evaluation", "trained_style_paths", "RESULTS_FORMAT", "DEFINITIONS"]

RESULTS_FORMAT = "stablestyle-evaluation"
RESULTS_FORMAT_VERSION = 1
REPORT_FILES = ("results.json", "results.md", "instability_over_time.png", "instability_vs_style.png")

DEFINITIONS = {
    "instability": "mean over frames t >= 1 of (1 / 3HW) sum c (y_t - warp(y_{t-1}))^2, frames in [0, 1], "
                   "c = reliability mask (Gupta et al. 2017; the training temporal loss); ground-truth flow "
                   "where the clip has it, else flow estimated on the input",
    "warping error": "mean over frames of sum_i M_i ||y_t(i) - warp(y_{t-1})(i)||^2 / sum_i M_i (RGB summed, "
                     "[0, 1] scale), flow estimated on the input, M = Ruder et al. 2016 mask (Lai et al. 2018)",
    "style loss": "mean over relu1_2..relu4_3 of the MSE between the Gram matrices (normalised by CHW) of the "
                  "output and the style image, each divided by the style Gram's energy (the training definition, "
                  "stablestyle.losses.relative_style_loss), mean over frames",
    "content loss": "MSE of relu3_3 features of output and input frame divided by the input features' energy "
                    "(stablestyle.losses.relative_content_loss), mean over frames",
    "fps (model)": "frames / time spent producing outputs, excluding decoding the input and encoding the output "
                   "(speed.fps_model; speed.fps_model_steady leaves out the first frame and its one-off warm-up)",
    "fps (file to file)": "frames / wall time of the whole loop: open, decode, method, H.264 encode, close",
}


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
    from ..analysis import load_style
    from ..losses import PerceptualLoss
    from ..models import load_vgg16
    from ..runtime import progress, resolve_device

    # ---- validate everything cheap first
    methods = check_config(config)
    device = resolve_device(config.device)
    plan = plan_evaluation(config, methods, device)
    vgg = load_vgg16(device=device)
    losses = {s.name: PerceptualLoss(vgg, load_style(s.path, config.style_size).to(device)) for s in plan.styles}

    # ---- run, in a staging folder beside the output
    # check_config vetted the output up front; publish_folder replaces it without checking again
    out = Path(config.output)
    stage = temp_beside(out, folder=True)
    try:
        (stage / "videos").mkdir()
        inputs_cache: dict[str, torch.Tensor] = {}
        runs = [_run_job(job, plan, stage, config.save_videos, losses[job.style.name], inputs_cache, device)
                for job in progress(plan.jobs, total=len(plan.jobs), desc="evaluate", unit="run",
                                    quiet=config.quiet)]
        if not config.save_videos:
            (stage / "videos").rmdir()
        results = _json_safe(_results(config, argv, device, plan, runs))
        _write_report(stage, results, runs)
        publish_folder(stage, out)
    except BaseException:
        shutil.rmtree(stage, ignore_errors=True)
        raise
    log.info("wrote %s", out)
    return results


def _run_job(job: Job, plan: Plan, stage: Path, save_videos: bool, loss, inputs_cache: dict, device) -> dict:
    """One method over one clip against one style: stylised file to file, timed, then scored."""
    from ..video import to_tensor

    clip, style = job.clip, job.style
    process = (job.model.process(plan.options) if job.model is not None
               else make_method(job.method, style.image, plan.options, clip.size))
    video_name = f"{clip.name}__{style.name}__{job.method}.mp4"
    outputs, speed = _stream(process, clip, stage / "videos" / video_name)
    if not save_videos:
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
    run = _score(job, to_tensor(outputs, device=device), inputs_cache[clip.name], loss, speed)
    run["video"] = f"videos/{video_name}" if save_videos else None
    return run


def _score(job: Job, y: torch.Tensor, inp: torch.Tensor, loss, speed: Speed) -> dict:
    """The run's entry in ``results.json``: instability, warping error, style / content loss, speed."""
    clip, style = job.clip, job.style
    inst = clip_instability(y, clip)
    warp = clip_warping_error(y, clip)
    perc = perceptual_losses(y, inp, loss)
    run = {
        "method": job.method,
        "kind": job.kind,
        "style": style.name,
        "clip": clip.name,
        "frames": int(y.shape[0]),
        "size": list(clip.size),
        "instability": _finite(inst.mean()),
        "instability_flow": clip.flow_source,
        "warping_error": _finite(warp.nanmean()),
        "style_loss": _finite(perc["style"].mean()),
        "content_loss": _finite(perc["content"].mean()),
        "speed": speed.as_dict(),
        "video": None,
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
    return run


def _results(config: EvalConfig, argv, device, plan: Plan, runs: list[dict]) -> dict:
    from ..report import provenance

    return {
        "format": RESULTS_FORMAT,
        "format_version": RESULTS_FORMAT_VERSION,
        "provenance": provenance(argv, device),
        "config": dataclasses.asdict(config),
        "definitions": DEFINITIONS,
        "clips": {c.name: {"path": str(c.path), "frames": len(c.frames), "size": list(c.size), "fps": c.fps,
                           "instability_flow": c.flow_source, "warping_error_flow": c.flow_method}
                  for c in plan.clips},
        "styles": {s.name: {"path": str(s.path), "sha256": s.sha256} for s in plan.styles},
        "methods": plan.method_order,
        "models": [m.describe() | {"style": plan.model_styles[id(m)].name} for m in plan.models],
        "runs": runs,
    }


def _write_report(stage: Path, results: dict, runs: list[dict]) -> None:
    from .plots import plot_instability_over_time, plot_instability_vs_style
    from .summary import results_markdown

    write_text_atomic(stage / "results.json", json.dumps(results, indent=2, allow_nan=False) + "\n")
    write_text_atomic(stage / "results.md", results_markdown(results))
    plot_instability_over_time(runs, stage / "instability_over_time.png")
    plot_instability_vs_style(runs, stage / "instability_vs_style.png")
