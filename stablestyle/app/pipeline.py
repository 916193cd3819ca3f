"""One visitor's job: the chosen model (and the per-frame one) over a clip or an image, and what the page shows.

A video goes through the demo's own code (:func:`stablestyle.demo.stylize_models`,
:func:`~stablestyle.demo.write_demo_folder`), so the page's videos, numbers and report are the CLI demo's:
``stylized.mp4`` (H.264 with the input's audio), ``side_by_side.mp4`` (input | per-frame | stable) and
``report.json`` with the instability of each, per frame pair and its mean.  An image gives ``stylized.png``
and ``side_by_side.png`` (one frame has no flicker to measure).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np

from ..errors import UserError
from .choice import models_for
from .limits import Limits, for_visitor, frame_budget

#: ``on_progress(stage, frames done, frames in all, frames/s or None)``; an exception it raises stops the job.
Progress = Callable[[str, int, int, "float | None"], None]


class Cancelled(Exception):
    """The visitor cancelled the job (or closed the page)."""


def run_job(source: Path, name: str, kind: str, style: str | Path, stability: str, out: Path, *,
            limits: Limits, fps: float, on_progress: Progress, device="cpu") -> dict:
    """Stylize ``source`` (called ``name`` on the page) into the new folder ``out``; returns the report.

    ``kind`` is ``"video"`` or ``"image"``; ``fps`` the video's frame rate (for the duration limit).
    """
    try:
        models, primary = models_for(style, stability)
        if kind == "image":
            return _run_image(source, name, models, primary, out, limits, on_progress, device)
        return _run_video(source, name, models, primary, out, limits, fps, on_progress, device)
    except UserError as exc:
        raise for_visitor(exc, source, name) from None


def _run_video(source: Path, name: str, models: dict, primary: str, out: Path, limits: Limits, fps: float,
               on_progress: Progress, device) -> dict:
    from ..demo import build_report, stylize_models, write_demo_folder
    from ..evaluate.clips import load_clip

    on_progress("decoding, estimating flow", 0, 0, None)
    clip = load_clip(source, max_size=limits.max_size, max_frames=max(2, frame_budget(fps, limits)), name=name)
    total = len(clip.frames)
    runs, input_instability = stylize_models(
        models, clip, device, quiet=True,
        on_frame=lambda label, done, rate: on_progress(f"{label} model", done, total, rate))
    report = build_report(Path(name), clip, runs, input_instability, None, device)
    report["primary"] = primary
    on_progress("writing the videos (H.264, with the input's audio)", total, total, None)
    write_demo_folder(out, source, clip, runs, report, overwrite=False, primary=primary)
    return report


def _run_image(source: Path, name: str, models: dict, primary: str, out: Path, limits: Limits,
               on_progress: Progress, device) -> dict:
    from ..atomic import staged_folder, write_text_atomic
    from ..demo import side_by_side
    from ..stylize import stylize_frames
    from ..video import open_source, write_image

    with open_source(source, max_size=limits.max_size) as src:
        frame = next(iter(src))
    outputs = {}
    for label, (_, model, _) in models.items():
        on_progress(f"{label} model", 0, 1, None)
        outputs[label] = next(iter(stylize_frames(model, [frame], device=device)))
    report = {"input": name, "frames": 1, "size": [frame.shape[1], frame.shape[0]],
              "side_by_side": ["input", *outputs], "primary": primary,
              "models": {k: {"name": str(v[0]), "network": v[2]["model"], "step": v[2]["step"]}
                         for k, v in models.items()}}
    with staged_folder(out) as stage:
        write_image(stage / "stylized.png", outputs[primary])
        write_image(stage / "side_by_side.png", side_by_side([frame, *outputs.values()], report["side_by_side"]))
        write_text_atomic(stage / "report.json", json.dumps(report, indent=2) + "\n")
    return report


def result_files(report: dict) -> dict[str, str]:
    """The downloadable files of a finished job, by role (``stylized``, ``side_by_side``, ``report``)."""
    suffix = ".png" if report.get("frames") == 1 else ".mp4"
    return {"stylized": f"stylized{suffix}", "side_by_side": f"side_by_side{suffix}", "report": "report.json"}


def plot_points(report: dict) -> dict[str, list[float]]:
    """Per-frame instability of every run, for the page's plot (empty for an image)."""
    return {k: [float(x) for x in np.asarray(v, dtype=float)] for k, v in report.get("instability_per_frame",
                                                                                          {}).items()}
