"""Figures of an evaluation report (Matplotlib's object API, no global pyplot state).

* :func:`plot_instability_over_time`: per-frame instability of every method,
  one panel per (clip, style), as Gupta et al. 2017 plot it over a clip.
* :func:`plot_instability_vs_style`: mean instability against mean style
  loss, one marker per method, one point per (style, clip): the trade-off of
  Gupta et al. 2017, Table 2 / Fig. 6, as a scatter.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

from ..analysis import save_figure

__all__ = ["plot_instability_over_time", "plot_instability_vs_style"]

_MARKERS = "osD^v<>pPX*h"


def _colours(methods: Sequence[str]) -> dict[str, tuple]:
    from matplotlib import colormaps

    cmap = colormaps["tab10"]
    return {m: cmap(i % 10) for i, m in enumerate(methods)}


def _ordered(values) -> list:
    seen: dict = {}
    for v in values:
        seen.setdefault(v, None)
    return list(seen)


def plot_instability_over_time(runs: Sequence[dict], path: str | Path) -> None:
    """Lines of ``run["instability_per_frame"]`` (frames ``1 .. T-1``) per method; panels = clip x style."""
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    clips = _ordered(r["clip"] for r in runs)
    styles = _ordered(r["style"] for r in runs)
    methods = _ordered(r["method"] for r in runs)
    colours = _colours(methods)
    rows, cols = len(clips), len(styles)
    fig = Figure(figsize=(4.2 * cols + 1.5, 3.0 * rows + 0.6), dpi=100)
    axes = fig.subplots(rows, cols, squeeze=False)
    for i, clip in enumerate(clips):
        for j, style in enumerate(styles):
            ax = axes[i][j]
            for r in runs:
                if r["clip"] == clip and r["style"] == style:
                    values = r["instability_per_frame"]
                    frames = range(1, len(values) + 1)
                    ax.plot(frames, [math.nan if v is None else v for v in values], marker=".",
                            color=colours[r["method"]], label=r["method"])
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
            ax.set_title(f"{clip} / {style}", fontsize=9)
            ax.set_xlabel("frame")
            ax.set_ylabel("instability")
            ax.grid(alpha=0.3)
    handles, labels = [], []
    for ax in fig.axes:
        for h, label in zip(*ax.get_legend_handles_labels()):
            if label not in labels:
                handles.append(h)
                labels.append(label)
    fig.legend(handles, labels, loc="center right", fontsize=8)
    fig.suptitle("Per-frame instability (lower = more stable)", fontsize=11)
    fig.tight_layout(rect=(0, 0, 0.8 if cols == 1 else 0.9, 0.95))
    save_figure(fig, path)


def _log_if_wide(ax, values: Sequence[float], axis: str) -> None:
    positive = [v for v in values if v is not None and v > 0 and math.isfinite(v)]
    if positive and len(positive) == len(values) and max(positive) / min(positive) > 50:
        (ax.set_xscale if axis == "x" else ax.set_yscale)("log")


def plot_instability_vs_style(runs: Sequence[dict], path: str | Path) -> None:
    """Scatter of mean ``instability`` (y) against mean ``style_loss`` (x); one colour / marker per method."""
    from matplotlib.figure import Figure

    methods = _ordered(r["method"] for r in runs)
    colours = _colours(methods)
    fig = Figure(figsize=(6.5, 4.8), dpi=100)
    ax = fig.add_subplot()
    for k, method in enumerate(methods):
        pts = [(r["style_loss"], r["instability"], f"{r['style']}/{r['clip']}") for r in runs
               if r["method"] == method and r["style_loss"] is not None and r["instability"] is not None]
        if not pts:
            continue
        xs, ys, _ = zip(*pts)
        ax.scatter(xs, ys, color=colours[method], marker=_MARKERS[k % len(_MARKERS)], label=method, s=36)
        if len(pts) <= 12:
            for x, y, name in pts:
                ax.annotate(name, (x, y), textcoords="offset points", xytext=(4, 3), fontsize=7, alpha=0.7)
    _log_if_wide(ax, [r["style_loss"] for r in runs], "x")
    _log_if_wide(ax, [r["instability"] for r in runs], "y")
    ax.set_xlabel("style loss (lower = closer to the style)")
    ax.set_ylabel("instability (lower = more stable)")
    ax.set_title("Stability vs stylisation")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    save_figure(fig, path)
