"""Style traces against measured instability (Gupta et al. 2017, Fig. 3).

Owns :func:`load_instability` (per-style instability from ``stablestyle evaluate``'s
``results.json`` or a ``{style: value}`` map), the correlations :func:`pearson` and
:func:`spearman`, and :func:`plot_trace_vs_instability`, the figure.  The traces themselves come
from :func:`stablestyle.analysis.analyze_styles`.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from .analysis import StyleStats, save_figure
from .errors import UserError

log = logging.getLogger(__name__)


def _check_xy(x: Sequence[float], y: Sequence[float]) -> tuple[np.ndarray, np.ndarray]:
    a, b = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    if a.shape != b.shape or a.ndim != 1 or a.size < 2:
        raise ValueError(f"need two 1-D sequences of equal length >= 2, got shapes {a.shape} and {b.shape}")
    return a, b


def pearson(x: Sequence[float], y: Sequence[float]) -> float:
    """Pearson's correlation coefficient; ``nan`` if either sequence is constant."""
    a, b = _check_xy(x, y)
    a, b = a - a.mean(), b - b.mean()
    denom = math.sqrt(float(np.sum(a * a) * np.sum(b * b)))
    return float(np.sum(a * b) / denom) if denom > 0 else math.nan


def _ranks(x: np.ndarray) -> np.ndarray:
    """Ranks 1..n with ties given their average rank (as ``scipy.stats.rankdata``)."""
    order = np.argsort(x, kind="mergesort")
    ranks = np.empty(x.size, dtype=np.float64)
    ranks[order] = np.arange(1, x.size + 1)
    for value in np.unique(x):
        tied = x == value
        if tied.sum() > 1:
            ranks[tied] = ranks[tied].mean()
    return ranks


def spearman(x: Sequence[float], y: Sequence[float]) -> float:
    """Spearman's rank correlation: Pearson's of the (tie-averaged) ranks."""
    a, b = _check_xy(x, y)
    return pearson(_ranks(a), _ranks(b))


def _finite(value: float) -> bool:
    try:
        return math.isfinite(value)
    except OverflowError:  # an int too large for a float (JSON allows any number of digits)
        return False


def load_instability(path: str | Path, method: str | None = None) -> dict[str, float]:
    """Per-style instability from ``stablestyle evaluate``'s ``results.json`` or a ``{style: value}`` map.

    For an evaluate report, the instability of each style is the mean over
    its clips of the runs of one ``method``: ``method`` if given, else
    ``perframe`` when present (the paper's Fig. 3 uses per-frame networks),
    else the only method other than ``input``.
    """
    path = Path(path)
    if not path.is_file():
        raise UserError(f"instability file {path}: no such file")
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise UserError(f"{path} is not a JSON file ({exc})") from None
    if isinstance(data, dict) and isinstance(data.get("runs"), list):
        runs = [r for r in data["runs"] if isinstance(r, dict) and r.get("instability") is not None]
        methods = sorted({r.get("method") for r in runs})
        if method is None:
            candidates = [m for m in methods if m != "input"]
            if "perframe" in methods:
                method = "perframe"
            elif len(candidates) == 1:
                method = candidates[0]
            else:
                raise UserError(f"{path} has runs of several methods ({', '.join(methods)}); "
                                "choose one with --method")
        if method not in methods:
            raise UserError(f"{path} has no runs of method {method!r}; it has: {', '.join(methods) or 'none'}")
        values: dict[str, list[float]] = {}
        for r in runs:
            if r.get("method") == method:
                values.setdefault(str(r["style"]), []).append(float(r["instability"]))
        return {style: float(np.mean(v)) for style, v in values.items()}
    if isinstance(data, dict) and data and all(isinstance(v, (int, float)) and not isinstance(v, bool)
                                               for v in data.values()):
        bad = {k: v for k, v in data.items() if not (_finite(v) and v >= 0)}
        if bad:  # an instability is a mean of squares: finite and >= 0
            raise UserError(f"{path}: instability must be a finite number >= 0; got "
                            + ", ".join(f"{k}: {v}" for k, v in bad.items()))
        return {str(k): float(v) for k, v in data.items()}
    raise UserError(f"{path}: expected stablestyle evaluate's results.json or a JSON object "
                    '{"style_name": instability, ...}')


def plot_trace_vs_instability(stats: Sequence[StyleStats], instability: Mapping[str, float],
                              path: str | Path) -> dict[str, float]:
    """Gupta et al. 2017, Fig. 3: total Gram trace (x) against measured per-frame instability (y).

    Only styles present in both ``stats`` and ``instability`` are plotted
    (matched by name, the file stem).  The figure is written atomically.

    Returns:
        ``{"pearson", "spearman", "n"}`` of the plotted points.

    Raises:
        UserError: fewer than 3 styles have both values.
    """
    from matplotlib.figure import Figure

    points = [(s.name, s.total_trace, float(instability[s.name])) for s in stats if s.name in instability]
    missing = [s.name for s in stats if s.name not in instability]
    if missing:
        log.warning("no instability value for %s; left out of the plot", ", ".join(missing))
    if len(points) < 3:
        raise UserError(f"the trace-vs-instability plot needs at least 3 styles with instability values, got "
                        f"{len(points)}; styles are matched by image file name without its suffix (analysed: "
                        f"{', '.join(s.name for s in stats)}; instability given for: "
                        f"{', '.join(sorted(instability)) or 'none'})")
    names, x, y = zip(*points)
    r, rho = pearson(x, y), spearman(x, y)
    fig = Figure(figsize=(6, 4.5), dpi=120)
    ax = fig.add_subplot()
    ax.scatter(x, y, color="tab:blue")
    for name, xi, yi in points:
        ax.annotate(name, (xi, yi), textcoords="offset points", xytext=(4, 3), fontsize=8)
    ax.set_xlabel("total Gram-matrix trace (relu1_2 .. relu4_3)")
    ax.set_ylabel("per-frame instability")
    ax.set_title("Style stability (Gupta et al. 2017, Fig. 3)")
    ax.text(0.02, 0.97, f"Pearson r = {r:.3f}\nSpearman rho = {rho:.3f}\nn = {len(points)}",
            transform=ax.transAxes, va="top", fontsize=9,
            bbox={"boxstyle": "round", "facecolor": "white", "alpha": 0.8})
    ax.grid(alpha=0.3)
    fig.tight_layout()
    save_figure(fig, path)
    return {"pearson": r, "spearman": rho, "n": len(points)}
