"""Stability analysis of style images: Gram-matrix traces and an instability-risk score.

Owns the traces, the risk score, their cache and :func:`analyze_styles`; the comparison with
measured instability (Fig. 3) is :mod:`stablestyle.trace_correlation`.

Gupta et al. 2017, Sec. 4 ("Characterizing stability"): the style loss only
constrains Gram matrices ``G = F F^T / N`` of the output's features ``F``
(``C x HW``; the normaliser ``N = C H W`` is this package's, see
:func:`stablestyle.losses.gram_matrix`).  Every ``F`` with ``F F^T = N G``
is an equally good solution, and all of them satisfy

    ||F||_F^2 = trace(F F^T) = N trace(G),

so they lie on a sphere of radius ``sqrt(N trace(G))`` (and any ``F Q``
with ``Q`` an orthogonal ``HW x HW`` matrix is another solution, since
``F Q Q^T F^T = F F^T``: the minimiser is not unique).  A style with a
larger trace therefore has a larger set of equally good solutions, and a
feed-forward network stylising two
almost identical frames has more room to land on far-apart points of that
set: the paper measures that per-frame instability grows with the trace
(their Fig. 3).  ``tests/test_analysis.py`` checks the sphere numerically.

What this module computes for a style image (resized so its long side is
``size`` pixels, the scale styles are trained at):

* per-layer trace ``t_l = trace(G_l) = mean(F_l^2)`` for the style layers
  ``relu1_2 .. relu4_3`` (the taps of the style loss) and each layer's share
  ``t_l / sum_l t_l``;
* the total ``T = sum_l t_l`` (unweighted, as the layers are in the style loss; the layer with the
  largest activations dominates it, which the shares show);
* the **risk score** (:func:`instability_risk`)::

      risk = 0.5 * log2(T / median(T_ref))

  relative to the median style of a reference set (by default the shared
  style collection, ``$STABLESTYLE_ASSETS/styles``).  For a single layer this
  is log2 of the solution-sphere radius relative to the median's; over
  several layers ``T`` is an unweighted sum of the layers' squared radii
  (divided by their sizes), so the score is a trace-based proxy, not the
  radius of one sphere.  0 = as risky as a typical style; +1 = a total trace
  four times as large (expect clearly more flicker from a per-frame
  network); negative = calmer than typical.  The log makes it a ratio scale
  independent of the VGG weights' activation scale.  The percentile of ``T``
  within the reference set is reported beside it.
"""

from __future__ import annotations

import json
import logging
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from .atomic import atomic_path, write_text_atomic
from .errors import UserError

log = logging.getLogger(__name__)

__all__ = [
    "STYLE_LAYERS",
    "gram_trace",
    "gram_traces",
    "trace_shares",
    "instability_risk",
    "percentile_rank",
    "load_style",
    "StyleStats",
    "style_traces",
    "analyze_styles",
    "reference_totals",
    "style_files",
    "default_reference_dir",
    "save_figure",
]

STYLE_LAYERS = ("relu1_2", "relu2_2", "relu3_3", "relu4_3")
CACHE_NAME = "style_traces.json"
#: Bumped whenever how traces are measured changes, so stale cache entries are not reused.
CACHE_VERSION = 1


# ----------------------------------------------------------------------------- pure maths

def gram_trace(feat: Tensor) -> Tensor:
    """``trace(G)`` of the normalised Gram matrix ``G = F F^T / (C H W)`` without forming ``G``.

    ``trace(F F^T) = sum F^2``, so the trace is the mean squared activation.

    Args:
        feat: ``(B, C, H, W)`` activations.

    Returns:
        ``(B,)`` in at least float32 (equal to ``gram_matrix(feat).diagonal(dim1=1, dim2=2).sum(-1)``).
    """
    if feat.dim() != 4:
        raise ValueError(f"feat must be (B, C, H, W), got shape {tuple(feat.shape)}")
    x = feat.to(torch.promote_types(feat.dtype, torch.float32))
    return x.square().flatten(1).mean(1)


def gram_traces(feats: Mapping[str, Tensor], layers: Sequence[str] = STYLE_LAYERS) -> dict[str, Tensor]:
    """:func:`gram_trace` of each of ``layers``: ``{tap: (B,)}``."""
    missing = [name for name in layers if name not in feats]
    if missing:
        raise ValueError(f"layer(s) {missing} missing from the features, which have {list(feats)}")
    return {name: gram_trace(feats[name]) for name in layers}


def trace_shares(traces: Mapping[str, float]) -> dict[str, float]:
    """Each layer's fraction ``t_l / sum_l t_l`` of the total trace (sums to 1)."""
    total = float(sum(traces.values()))
    if not total > 0:
        raise ValueError(f"traces must have a positive sum, got {dict(traces)}")
    return {name: float(value) / total for name, value in traces.items()}


def instability_risk(total_trace: float, reference_totals: Sequence[float]) -> float:
    """``0.5 * log2(T / median(T_ref))``: the total trace against the reference median, as a log2 "radius" ratio.

    Exactly the log2 ratio of solution-sphere radii when one layer carries
    the trace; with several layers a proxy (module docstring).

    See the module docstring for the motivation (Gupta et al. 2017, Sec. 4).
    """
    ref = np.asarray(list(reference_totals), dtype=np.float64)
    if ref.size == 0 or not np.all(ref > 0):
        raise ValueError("reference_totals must be a non-empty list of positive traces")
    if not total_trace > 0:
        raise ValueError(f"total_trace must be positive, got {total_trace!r}")
    return 0.5 * math.log2(total_trace / float(np.median(ref)))


def percentile_rank(value: float, reference: Sequence[float]) -> float:
    """Percent of ``reference`` below ``value`` (ties count half), in ``[0, 100]``."""
    ref = np.asarray(list(reference), dtype=np.float64)
    if ref.size == 0:
        raise ValueError("reference must not be empty")
    return float(100.0 * (np.sum(ref < value) + 0.5 * np.sum(ref == value)) / ref.size)


def load_style(path: str | os.PathLike, size: int | None) -> Tensor:
    """A style image as ``(1, 3, h, w)`` float in ``[0, 1]``, long side resized to ``size``.

    :func:`stablestyle.video.load_style_image`, the loader training uses for
    its style targets, so every style is measured at the scale its network is
    trained at.
    """
    from .video import load_style_image

    return load_style_image(path, size)


# ----------------------------------------------------------------------------- style images

@dataclass
class StyleStats:
    """Gram-trace statistics of one style image (see the module docstring)."""

    name: str
    path: str
    size: tuple[int, int]          # (W, H) measured at
    traces: dict[str, float]       # layer -> trace(G_l)
    total_trace: float
    shares: dict[str, float]       # layer -> t_l / T
    risk: float | None = None
    percentile: float | None = None

    def as_dict(self) -> dict:
        d = asdict(self)
        d["size"] = list(self.size)
        return d


@torch.no_grad()
def style_traces(image: Tensor, vgg: torch.nn.Module, layers: Sequence[str] = STYLE_LAYERS) -> dict[str, float]:
    """Per-layer Gram traces ``{tap: trace(G_l)}`` of a ``(1, 3, H, W)`` style image in ``[0, 1]``.

    ``image`` moves to ``vgg``'s device; see :func:`load_style` for the size.
    """
    if image.dim() != 4 or image.shape[:2] != (1, 3):
        raise ValueError(f"image must be (1, 3, H, W) RGB in [0, 1], got {tuple(image.shape)}")
    device = next(vgg.parameters()).device
    traces = gram_traces(vgg(image.to(device)), layers)
    return {name: float(value[0]) for name, value in traces.items()}


def _vgg_identity() -> str:
    from .models import resolve_vgg16_weights

    path = resolve_vgg16_weights()
    stat = path.stat()
    return f"{path.resolve()}:{stat.st_size}:{stat.st_mtime_ns}"


def _cached_traces(paths: Sequence[Path], vgg: torch.nn.Module, size: int) -> list[dict[str, float]]:
    """:func:`style_traces` of image files, cached in ``cache_dir()/style_traces.json``.

    Keyed by the image's sha256, ``size`` and the VGG weights file (path, size,
    mtime); a corrupt cache is ignored and rewritten.
    """
    from .checkpoint import file_sha256
    from .paths import cache_dir

    cache_file = cache_dir() / CACHE_NAME
    try:
        cache = json.loads(cache_file.read_text()) if cache_file.is_file() else {}
        if not isinstance(cache, dict):
            cache = {}
    except (OSError, ValueError):
        cache = {}
    vgg_id = _vgg_identity()
    out, dirty = [], False
    for path in paths:
        key = f"v{CACHE_VERSION}:{file_sha256(path)}:{size}:{vgg_id}"
        if key not in cache:
            cache[key] = style_traces(load_style(path, size), vgg)
            dirty = True
        out.append(cache[key])
    if dirty:
        try:
            cache_file.parent.mkdir(parents=True, exist_ok=True)
            write_text_atomic(cache_file, json.dumps(cache))
        except OSError as exc:  # a read-only cache only costs time
            log.warning("could not write the style-trace cache %s: %s", cache_file, exc)
    return out


def style_files(folder: Path) -> list[Path]:
    """Image files in ``folder`` (sorted by name)."""
    from .video import IMAGE_SUFFIXES

    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES
                  and not p.name.startswith("."))


def default_reference_dir() -> Path | None:
    """``$STABLESTYLE_ASSETS/styles`` when it exists, else ``None``."""
    from .paths import assets_dir

    assets = assets_dir()
    if assets is not None and (assets / "styles").is_dir():
        return assets / "styles"
    return None


def reference_totals(paths: Sequence[Path], vgg: torch.nn.Module, size: int) -> list[float]:
    """Total Gram traces of a reference set of style images (cached)."""
    return [float(sum(t.values())) for t in _cached_traces(paths, vgg, size)]


def analyze_styles(paths: Sequence[str | Path], vgg: torch.nn.Module, *, size: int = 256,
                   reference: Sequence[str | Path] | None = None) -> list[StyleStats]:
    """Gram-trace statistics and risk scores of style images.

    Args:
        paths: style image files.
        vgg: the frozen VGG-16 (:func:`stablestyle.models.load_vgg16`), providing ``STYLE_LAYERS``.
        size: long side in pixels the images are measured at.
        reference: image files the risk score and percentile are relative to;
            ``None`` = the images of ``paths`` themselves.

    Raises:
        UserError: a missing / unreadable image, or a bad size.
    """
    if isinstance(size, bool) or not isinstance(size, int) or size < 32:
        raise UserError(f"--size must be a whole number of pixels >= 32, got {size!r}")
    files = [Path(p) for p in paths]
    for f in files:
        if not f.is_file():
            raise UserError(f"style image {f}: no such file")
    from .video import read_image

    for f in files:
        read_image(f)  # readable RGB, or a UserError naming the file, before any VGG work
    traces = _cached_traces(files, vgg, size)
    ref_files = files if reference is None else [Path(p) for p in reference]
    ref = reference_totals(ref_files, vgg, size)
    stats = []
    for f, tr in zip(files, traces):
        total = float(sum(tr.values()))
        h, w = load_style(f, size).shape[-2:]
        stats.append(StyleStats(name=f.stem, path=str(f), size=(w, h), traces=dict(tr), total_trace=total,
                                shares=trace_shares(tr), risk=instability_risk(total, ref),
                                percentile=percentile_rank(total, ref)))
    return stats


def save_figure(fig, path: str | Path) -> None:
    """Save a Matplotlib figure atomically (temporary file in the same folder, then rename)."""
    path = Path(path)
    fmt = path.suffix.lstrip(".").lower() or "png"
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format=fmt)
