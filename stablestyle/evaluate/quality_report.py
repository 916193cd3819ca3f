"""The quality report: each model's loss on held-out photos and the optimisation it is worth.

Runs :mod:`stablestyle.evaluate.quality` over models x photos x sizes:

* the style of each model is the image its checkpoint names (sha256-checked,
  :func:`stablestyle.evaluate.runner.trained_style_paths`), at the style size
  the model was trained with;
* the objective's weights come from the style's entry in a weights table
  (``configs/style_weights.yaml``): the same weights the bundled models are
  trained with, so the network and the optimisation are scored on one
  objective;
* optimisation curves depend only on style, weights, photo, size and
  iterations, so they are cached (JSON + the optimised image as PNG) under
  ``$STABLESTYLE_CACHE/quality`` and shared by every model of a style.
"""

from __future__ import annotations

import hashlib
import json
import logging
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from ..atomic import write_text_atomic
from ..checkpoint import file_sha256, load_checkpoint
from ..errors import UserError
from ..losses import LossWeights, PerceptualLoss
from ..video import load_style_image, read_image, to_tensor, to_uint8, write_image
from .quality import equivalent_iterations, network_terms, optimization_curve

__all__ = ["QualityModel", "load_style_weights", "resize_long_side", "iterations_at", "measure_quality"]

log = logging.getLogger(__name__)


@dataclass
class QualityModel:
    """A model under measurement: its name, checkpoint file, net, style image and training style size."""

    name: str
    path: Path
    net: torch.nn.Module
    style: Path
    style_size: int | None
    weights_sha256: str

    @classmethod
    def load(cls, name: str, spec: str) -> QualityModel:
        from .methods import ModelMethod
        from .runner import trained_style_paths

        net, meta = load_checkpoint(spec)
        style = Path(trained_style_paths([ModelMethod(name=name, checkpoint=spec, model=net, meta=meta)])[0])
        size = (meta.get("config") or {}).get("style_size", 256)
        return cls(name, Path(meta["path"]), net, style, size, file_sha256(meta["path"]))


#: Keys of a style's entry that only the stable training stages read (``scripts/train_bundled.sh``): the
#: full-width stable stage's weights, and the temporal weights of the ``-small`` stable net's distillation and
#: of its perceptual fine-tune.
STABLE_STAGE_KEYS = ("temporal", "stable_style", "small_temporal", "small_tune")


def load_style_weights(path: str | Path) -> dict[str, LossWeights]:
    """``{style name: LossWeights}`` from a YAML map ``name: {content:, style:, tv:}``.

    The stable stage's own keys (:data:`STABLE_STAGE_KEYS`) are left out: models are measured under
    the style's one objective, whatever weights their last training stage used.
    """
    import yaml

    try:
        data = yaml.safe_load(Path(path).read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise UserError(f"cannot read the style weights {path}: {exc}") from None
    if not isinstance(data, Mapping) or not data:
        raise UserError(f"{path} must map style names to weights, e.g. scream: {{content: 1, style: 3, tv: 0.05}}")
    try:
        return {str(name): LossWeights(**{**{k: v for k, v in dict(w).items() if k not in STABLE_STAGE_KEYS},
                                          "temporal": 0.0})
                for name, w in data.items()}
    except (TypeError, ValueError) as exc:
        raise UserError(f"{path}: {exc}") from None


def resize_long_side(image: torch.Tensor, size: int) -> torch.Tensor:
    """``(1, 3, H, W)`` with the long side scaled (up or down) to ``size``, antialiased, in [0, 1]."""
    h, w = image.shape[-2:]
    scale = size / max(h, w)
    new = (max(16, round(h * scale)), max(16, round(w * scale)))
    return F.interpolate(image, size=new, mode="bilinear", antialias=True, align_corners=False).clamp(0, 1)


def iterations_at(iterations: int | Mapping[int, int], size: int) -> int:
    """The optimisation length at ``size``: ``iterations`` itself, or its entry for ``size``.

    A per-size map lets a larger size stop earlier: the curve only has to pass the models' losses
    (``equivalent_iterations`` is ``inf`` where it never does, and the report says so).
    """
    if isinstance(iterations, Mapping):
        if size not in iterations:
            raise UserError(f"no optimisation length for {size} px (given for {', '.join(map(str, iterations))} px)")
        return int(iterations[size])
    return int(iterations)


def _curve_key(style_sha: str, weights: LossWeights, photo: Path, size: int, iterations: int, style_size) -> str:
    text = json.dumps([style_sha, weights.as_dict(), photo.name, file_sha256(photo), size, iterations, style_size])
    return hashlib.sha256(text.encode()).hexdigest()[:24]


def cached_curve(cache: Path, loss: PerceptualLoss, content: torch.Tensor, weights: LossWeights, *, key: str,
                 iterations: int) -> tuple[np.ndarray, list[float]]:
    """:func:`optimization_curve` through the cache: ``(uint8 image, curve)``."""
    meta, png = cache / f"{key}.json", cache / f"{key}.png"
    if meta.is_file() and png.is_file():
        return read_image(png), json.loads(meta.read_text())["curve"]
    image, curve = optimization_curve(loss, content, weights, iterations=iterations)
    cache.mkdir(parents=True, exist_ok=True)
    pixels = to_uint8(image)
    write_image(png, pixels)
    write_text_atomic(meta, json.dumps({"curve": curve}))
    return pixels, curve


def measure_quality(models: Sequence[QualityModel], photos: Sequence[Path], *, sizes: Sequence[int],
                    style_weights: Mapping[str, LossWeights], iterations: int | Mapping[int, int],
                    vgg: torch.nn.Module,
                    cache: Path, images: dict | None = None) -> dict:
    """The report dict: per model and size, mean terms and equivalent iterations per photo.

    ``images`` (optional) collects ``{(kind, name, photo, size): uint8 image}``
    for grids: kind ``"model"`` (name = model name) or ``"optimisation"``
    (name = style name).  ``iterations``: one optimisation length, or one per size
    (:func:`iterations_at`); the report records it as given (a per-size map keyed by the size as text).
    """
    device = next(vgg.parameters()).device
    lengths = {size: iterations_at(iterations, size) for size in sizes}
    report: dict = {"iterations": ({str(s): n for s, n in lengths.items()} if isinstance(iterations, Mapping)
                                   else int(iterations)), "sizes": list(sizes), "photos": [p.name for p in photos],
                    "models": {}, "optimisation": {}}
    for model in models:
        style_name = model.style.stem
        if style_name not in style_weights:
            raise UserError(f"no weights for style {style_name!r} in the style weights table "
                            f"(it has {', '.join(style_weights)})")
        weights = style_weights[style_name]
        loss = PerceptualLoss(vgg, load_style_image(model.style, model.style_size).to(device))
        entry = {"checkpoint": str(model.path), "weights_sha256": model.weights_sha256, "style": style_name,
                 "style_sha256": file_sha256(model.style), "objective_weights": weights.as_dict(), "sizes": {}}
        net = model.net.to(device)
        for size in sizes:
            rows = []
            for photo in photos:
                content = resize_long_side(to_tensor(read_image(photo)), size).to(device)
                out, terms = network_terms(net, loss, content, weights)
                key = _curve_key(entry["style_sha256"], weights, photo, size, lengths[size], model.style_size)
                optimised, curve = cached_curve(cache, loss, content, weights, key=key, iterations=lengths[size])
                terms["equivalent_iterations"] = equivalent_iterations(terms["total"], curve)
                rows.append(terms)
                report["optimisation"].setdefault(style_name, {}).setdefault(str(size), {})[photo.name] = {
                    "total_after": {str(i): curve[i] for i in (0, 10, 50, 100, 200, 500) if i < len(curve)},
                    "final_total": curve[-1]}
                if images is not None:
                    images[("model", model.name, photo.name, size)] = to_uint8(out)
                    images[("optimisation", style_name, photo.name, size)] = optimised
            entry["sizes"][str(size)] = {
                **{name: statistics.fmean(r[name] for r in rows) for name in ("content", "style", "tv", "total")},
                "equivalent_iterations": [r["equivalent_iterations"] for r in rows],
                # median: inf (never reached) sorts last, so it is inf only when most photos never reach it
                "equivalent_iterations_median": statistics.median(r["equivalent_iterations"] for r in rows),
            }
            log.info("%s at %d px: total %.4g, equivalent iterations %s", model.name, size,
                     entry["sizes"][str(size)]["total"], entry["sizes"][str(size)]["equivalent_iterations"])
        report["models"][model.name] = entry
    return report
