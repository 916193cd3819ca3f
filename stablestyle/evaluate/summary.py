"""The Markdown report of an evaluation (``results.md``), built from ``results.json``'s data."""

from __future__ import annotations

import math
from collections.abc import Sequence

from ..report import provenance_markdown

__all__ = ["results_markdown", "format_number"]


def _fps(runs: list[dict], key: str) -> str:
    """Mean frames/s of ``runs`` for the table; none for ``input`` (copying frames is not a method's speed)."""
    if all(r["method"] == "input" for r in runs):
        return "-"
    return format_number(_mean([r["speed"][key] for r in runs]), 3)


def format_number(value: float | None, digits: int = 4) -> str:
    """Compact significant-digit formatting; ``None`` / nan -> ``n/a``."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "n/a"
    if value == 0:
        return "0"
    if 1e-3 <= abs(value) < 1e5:
        return f"{value:.{digits}g}"
    return f"{value:.{digits - 1}e}"


def _mean(values: Sequence[float | None]) -> float | None:
    good = [v for v in values if v is not None and math.isfinite(v)]
    return sum(good) / len(good) if good else None


def results_markdown(results: dict) -> str:
    """Markdown: provenance, settings, one row per run, a per-method summary and the metric definitions."""
    runs = results["runs"]
    lines = ["# stablestyle evaluation", "", provenance_markdown(results["provenance"]), ""]
    cfg = results["config"]
    clips = [f"{name} ({c['frames']} frames, {c['size'][0]}x{c['size'][1]}, instability flow: "
             f"{c['instability_flow']})" for name, c in results["clips"].items()]
    lines += [
        "## Settings",
        "",
        f"- clips: {', '.join(clips)}",
        f"- styles: {', '.join(results['styles'])} (style targets at long side {cfg['style_size']})",
        f"- methods: {', '.join(results['methods'])}",
        f"- max size {cfg['max_size']}, max frames {cfg['max_frames']}, flow estimator {cfg['flow']}, "
        f"optimisation: {cfg['iterations']} iterations at size {cfg['size'] or 'of the clip'}",
        "",
        "## Results",
        "",
        "| method | style | clip | instability | warping error | style loss | content loss "
        "| fps (model) | fps (model, steady) | fps (file to file) |",
        "|---|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in runs:
        lines.append(
            f"| {r['method']} | {r['style']} | {r['clip']} | {format_number(r['instability'])} "
            f"| {format_number(r['warping_error'])} | {format_number(r['style_loss'])} "
            f"| {format_number(r['content_loss'])} | {_fps([r], 'fps_model')} | {_fps([r], 'fps_model_steady')} "
            f"| {_fps([r], 'fps_total')} |")
    lines += [
        "",
        "## Mean per method (over styles and clips)",
        "",
        "| method | runs | instability | warping error | style loss | content loss | fps (model) "
        "| fps (file to file) |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for method in results["methods"]:
        rs = [r for r in runs if r["method"] == method]
        if not rs:
            continue
        lines.append(
            f"| {method} | {len(rs)} | {format_number(_mean([r['instability'] for r in rs]))} "
            f"| {format_number(_mean([r['warping_error'] for r in rs]))} "
            f"| {format_number(_mean([r['style_loss'] for r in rs]))} "
            f"| {format_number(_mean([r['content_loss'] for r in rs]))} "
            f"| {_fps(rs, 'fps_model')} | {_fps(rs, 'fps_total')} |")
    lines += ["", "## Definitions", ""]
    lines += [f"- **{name}**: {text}" for name, text in results["definitions"].items()]
    lines += ["", "![instability over time](instability_over_time.png)", "",
              "![instability vs style loss](instability_vs_style.png)", ""]
    return "\n".join(lines)
