"""The demo: a clip stylized by a stable model and its per-frame baseline, and the report comparing them.

Owns :func:`run_demo` (both models over one clip; ``stylized.mp4``, ``side_by_side.mp4``,
``report.json`` and ``report.md`` written into a folder atomically), :func:`side_by_side`,
:func:`default_baseline` and the report's text (:func:`summary`, :func:`report_markdown`).
Instability is Gupta et al. 2017's metric with flow estimated on the input and Ruder et al.'s
reliability mask (:func:`stablestyle.evaluate.clips.clip_instability`).
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)


def side_by_side(columns: list[np.ndarray], labels: list[str]) -> np.ndarray:
    """Concatenate ``(H, W, 3)`` uint8 frames horizontally with a label burnt into each (top left)."""
    import cv2

    if len(columns) != len(labels):
        raise ValueError(f"{len(columns)} frames but {len(labels)} labels")
    tiles = []
    for frame, label in zip(columns, labels):
        tile = np.ascontiguousarray(frame).copy()
        scale = max(0.4, tile.shape[0] / 720)
        thick = max(1, round(2 * scale))
        org = (int(8 * scale) + 2, int(28 * scale) + 4)
        cv2.putText(tile, label, org, cv2.FONT_HERSHEY_SIMPLEX, scale, (0, 0, 0), thick + 2, cv2.LINE_AA)
        cv2.putText(tile, label, org, cv2.FONT_HERSHEY_SIMPLEX, scale, (255, 255, 255), thick, cv2.LINE_AA)
        tiles.append(tile)
    return np.concatenate(tiles, axis=1)


def default_baseline(model: str) -> str | None:
    """The bundled per-frame twin of a bundled model (``<style>-small`` compares with ``<style>-perframe``)."""
    from .stability import bundled_twin

    return bundled_twin(model)


def load_model(option: str, name: str, recurrent: bool):
    """``(model, meta)`` of ``name``; a :class:`UserError` unless it is recurrent (``True``) / per-frame."""
    from .checkpoint import load_checkpoint
    from .errors import UserError

    model, meta = load_checkpoint(name)
    if bool(meta["model"].get("recurrent", True)) != recurrent:
        if recurrent:
            raise UserError(f"{option} {name} is a per-frame (non-recurrent) model, but the demo's stable slot needs "
                            "a recurrent one (e.g. the default, scream); pass a per-frame model as --baseline")
        raise UserError(f"{option} {name} is a recurrent (stable) model, but the demo compares against a per-frame "
                        "one (e.g. scream-perframe); pass a stable model as --model")
    return model, meta


def _stylize(model, meta, name: str, frames: list[np.ndarray], device, quiet: bool, on_frame=None):
    from .runtime import progress
    from .stylize import stylize_frames

    start = time.perf_counter()
    out = []
    for frame in progress(stylize_frames(model, frames, device=device), total=len(frames),
                          desc=Path(str(name)).stem, unit="frame", quiet=quiet):
        out.append(frame)
        if on_frame is not None:
            on_frame(len(out), len(out) / max(time.perf_counter() - start, 1e-9))
    seconds = time.perf_counter() - start
    return out, meta, len(frames) / max(seconds, 1e-9)


def run_demo(source: Path, out: Path, model_name: str, baseline_name: str | None, *, device,
             max_size: int | None, max_frames: int | None, overwrite: bool = False, quiet: bool = True,
             argv: list[str] | None = None, stability: float | None = None) -> dict:
    """Stylize ``source`` with ``model_name`` (recurrent) and ``baseline_name`` (per-frame, or ``None``),
    write the demo folder ``out`` and return its report (what ``report.json`` holds).

    ``stability`` puts the stable slot at that position of the dial between the baseline (its
    per-frame twin) and ``model_name`` (:mod:`stablestyle.stability`).  Both models are loaded, and
    refused if of the wrong kind, before any frame is decoded.
    """
    from .atomic import check_output_folder

    # a demo folder (report.json, videos), not a frame folder: replaced with overwrite when it is one
    check_output_folder(out, overwrite, marker="report.json", what="a demo folder", noun="demo", inputs=[source])
    if stability is None:
        models = {"stable": (model_name, *load_model("--model", model_name, recurrent=True))}
    else:  # refuses a per-frame --model itself, in one line
        from .stability import load_at_stability

        models = {"stable": (model_name, *load_at_stability(model_name, stability, perframe=baseline_name,
                                                                   twin_flag="--baseline"))}
    if baseline_name is None:
        log.info("no per-frame baseline for %s; pass --baseline to compare with one", model_name)
    else:
        models = {"per-frame": (baseline_name, *load_model("--baseline", baseline_name, recurrent=False)), **models}
    from .evaluate.clips import load_clip

    clip = load_clip(source, max_size=max_size, max_frames=max_frames)
    runs, input_instability = stylize_models(models, clip, device, quiet)
    report = build_report(source, clip, runs, input_instability, argv, device)
    write_demo_folder(out, source, clip, runs, report, overwrite)
    return report


def stylize_models(models: dict, clip, device, quiet: bool, on_frame=None) -> tuple[dict, float]:
    """``(runs, instability of the input)``: every model of ``{label: (name, model, meta)}`` over ``clip``
    (:func:`stablestyle.evaluate.clips.load_clip`), with its instability, per frame pair and the mean.

    ``on_frame(label, frames done, frames/s)``, when given, is called after every stylized frame (the app's
    progress bar; an exception it raises stops the work).
    """
    from .evaluate.clips import clip_instability
    from .video import to_tensor

    runs = {}
    for label, (name, model, meta) in models.items():
        hook = None if on_frame is None else (lambda done, fps, label=label: on_frame(label, done, fps))
        frames, meta, fps = _stylize(model, meta, name, clip.frames, device, quiet, hook)
        per_frame = clip_instability(to_tensor(np.stack(frames)), clip)
        runs[label] = {"model": str(name), "frames": frames, "fps": fps, "meta": meta,
                       "instability": float(per_frame.mean()), "per_frame": per_frame.tolist()}
    input_instability = float(clip_instability(to_tensor(np.stack(clip.frames)), clip).mean())
    return runs, input_instability


def build_report(source: Path, clip, runs: dict, input_instability: float, argv, device) -> dict:
    """What ``report.json`` holds: frames, size, instability (mean and per frame pair), speed, models."""
    from .report import provenance

    report = {
        "input": str(source),
        "frames": len(clip.frames),
        "size": list(clip.size),
        "side_by_side": ["input", *runs],
        "flow": clip.flow_source,
        "instability": {"input": input_instability, **{k: r["instability"] for k, r in runs.items()}},
        "instability_per_frame": {k: r["per_frame"] for k, r in runs.items()},
        "fps": {k: r["fps"] for k, r in runs.items()},
        "models": {k: {"name": r["model"], "network": r["meta"]["model"], "step": r["meta"]["step"],
                       **({"stability": r["meta"]["stability"]} if "stability" in r["meta"] else {})}
                   for k, r in runs.items()},
        "provenance": provenance(argv, device),
    }
    if {"per-frame", "stable"} <= set(runs):
        report["stable_over_perframe"] = runs["stable"]["instability"] / max(runs["per-frame"]["instability"],
                                                                              1e-12)
    return report


def write_demo_folder(out: Path, source: Path, clip, runs: dict, report: dict, overwrite: bool,
                      primary: str = "stable") -> None:
    """The demo folder: ``stylized.mp4`` (the ``primary`` run), ``side_by_side.mp4`` (input | every run), both
    with the input's audio, and the report, staged and published at once."""
    from .atomic import staged_folder, write_text_atomic
    from .video import open_sink

    audio = source if _has_audio(source) else None
    with staged_folder(out, overwrite=overwrite) as stage:
        with open_sink(stage / "stylized.mp4", clip.fps, audio_from=audio) as sink:
            for frame in runs[primary]["frames"]:
                sink.write(frame)
        with open_sink(stage / "side_by_side.mp4", clip.fps, audio_from=audio) as sink:
            for i, frame in enumerate(clip.frames):
                sink.write(side_by_side([frame, *(r["frames"][i] for r in runs.values())], report["side_by_side"]))
        write_text_atomic(stage / "report.json", json.dumps(report, indent=2) + "\n")
        write_text_atomic(stage / "report.md", report_markdown(report))


def _has_audio(path: Path) -> bool:
    from .video import open_source

    with open_source(path) as src:
        return bool(src.has_audio)


def summary(report: dict, out: Path) -> str:
    inst = report["instability"]
    parts = [f"{k} {v:.5f}" for k, v in inst.items()]
    text = (f"demo: {report['frames']} frames at {report['size'][0]}x{report['size'][1]}; instability "
            f"{', '.join(parts)}")
    if "stable_over_perframe" in report:
        text += f" (stable/per-frame = {report['stable_over_perframe']:.2f})"
    return text + f" -> {out}/"


def report_markdown(report: dict) -> str:
    from .report import provenance_markdown

    lines = [
        "# stablestyle demo",
        "",
        f"Input: `{report['input']}`, {report['frames']} frames at {report['size'][0]}x{report['size'][1]}.",
        f"Instability = mean over frames of mean over 3HW of (c * (y_t - warp(y_(t-1))))^2, images in [0, 1], "
        f"flow {report['flow']} on the input, c = Ruder et al.'s reliability mask (lower = less flicker).",
        "",
        "| | model | instability | frames/s |",
        "|---|---|---|---|",
        f"| input | - | {report['instability']['input']:.5f} | - |",
    ]
    for label, model in report["models"].items():
        lines.append(f"| {label} | {model['name']} | {report['instability'][label]:.5f} | "
                     f"{report['fps'][label]:.1f} |")
    if "stable_over_perframe" in report:
        lines += ["", f"Stable / per-frame instability: **{report['stable_over_perframe']:.2f}**."]
    panels = " | ".join(report["side_by_side"])
    lines += ["", f"Files: `stylized.mp4` (stable model, input audio), `side_by_side.mp4` ({panels}).", "",
              provenance_markdown(report["provenance"]), ""]
    return "\n".join(lines)
