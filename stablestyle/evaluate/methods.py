"""The methods that ``stablestyle evaluate`` compares, behind one small registry.

A *method* turns a clip's ``uint8 (H, W, 3)`` frames into stylised frames,
lazily: ``process(frames) -> iterator of frames``.  Two kinds:

* **style-conditioned** methods, built per style image by a factory in
  :data:`EVAL_METHODS` (``factory(style, options) -> process``): ``input``
  (identity, the unstylised input as a reference; its "style loss" says how
  far the raw video is from each style) and the optimisation baselines of
  :mod:`stablestyle.baselines` (``gatys``, ``ruder``, whatever its
  ``OPTIMIZATION_METHODS`` registry holds), looked up when first asked for;
* **trained networks** (``--model NAME=CKPT``): a checkpoint whose style is
  fixed; see :class:`ModelMethod`.

``register_method(name)`` adds a style-conditioned method.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from ..errors import UserError

log = logging.getLogger(__name__)

__all__ = ["Process", "MethodOptions", "EVAL_METHODS", "register_method", "available_methods",
           "make_method", "ModelMethod", "load_model_method"]

Process = Callable[[Iterable[np.ndarray]], Iterator[np.ndarray]]


@dataclass
class MethodOptions:
    """Settings shared by every method of one evaluation.

    ``iterations`` / ``size`` / ``flow_method`` configure the optimisation
    baselines (``size`` = long side in pixels they optimise at; ``None`` = the
    clip's own size so that outputs and inputs align); ``half`` the networks'
    precision (``None`` = fp16 on CUDA, fp32 on CPU).
    """

    device: torch.device = field(default_factory=lambda: torch.device("cpu"))
    half: bool | None = None
    iterations: int = 100
    size: int | None = None
    flow_method: str = "dis"
    quiet: bool = True


#: name -> ``factory(style uint8 (H, W, 3), options, clip_size (W, H)) -> Process``
EVAL_METHODS: dict[str, Callable[[np.ndarray, MethodOptions, tuple[int, int]], Process]] = {}


def register_method(name: str):
    """Decorator: register a style-conditioned method factory under ``name``."""

    def decorate(factory):
        if name in EVAL_METHODS:
            raise ValueError(f"evaluation method {name!r} is already registered")
        EVAL_METHODS[name] = factory
        return factory

    return decorate


@register_method("input")
def _identity(style: np.ndarray, options: MethodOptions, clip_size: tuple[int, int]) -> Process:
    """The unstylised input: a reference row (its instability is the input video's own)."""

    def process(frames: Iterable[np.ndarray]) -> Iterator[np.ndarray]:
        yield from frames

    return process


def _baselines() -> dict:
    """The optimisation methods of :mod:`stablestyle.baselines` (empty if that package is absent)."""
    try:
        from ..baselines import OPTIMIZATION_METHODS
    except ImportError as exc:
        log.debug("stablestyle.baselines unavailable: %s", exc)
        return {}
    return OPTIMIZATION_METHODS


def available_methods() -> list[str]:
    """Every style-conditioned method name: registered ones, then the optimisation baselines."""
    return [*EVAL_METHODS, *(name for name in _baselines() if name not in EVAL_METHODS)]


def _optimisation(name: str, style: np.ndarray, options: MethodOptions, clip_size: tuple[int, int]) -> Process:
    from ..baselines import OptimOptions

    method = _baselines()[name]
    # size None: optimise at the clip's own size (outputs are resized back to the input size anyway)
    optim = OptimOptions(iterations=options.iterations, size=options.size, flow_method=options.flow_method)
    optim.validate()

    def process(frames: Iterable[np.ndarray]) -> Iterator[np.ndarray]:
        return method(frames, style, options=optim, device=options.device, quiet=options.quiet)

    return process


def check_method_name(name: str) -> None:
    """:class:`UserError` listing the valid names unless ``name`` is a style-conditioned method."""
    if name not in EVAL_METHODS and name not in _baselines():
        raise UserError(f"unknown method {name!r}; valid: {', '.join(available_methods())}, "
                        "or a trained network given as --model NAME=CKPT (e.g. --model stable=run/final.pt)")


def make_method(name: str, style: np.ndarray, options: MethodOptions, clip_size: tuple[int, int]) -> Process:
    """The ``process`` of style-conditioned method ``name`` for ``style`` on clips of ``clip_size`` (W, H)."""
    check_method_name(name)
    if name in EVAL_METHODS:
        return EVAL_METHODS[name](style, options, clip_size)
    return _optimisation(name, style, options, clip_size)


@dataclass
class ModelMethod:
    """A trained transformation network under a report name (``stable``, ``perframe``, ...).

    ``style_sha256`` is the hash of the style image it was trained on (from
    the checkpoint), used to pair it with one of the evaluation's styles;
    ``weights_sha256`` the hash of the checkpoint file itself, which reports
    record because a name such as ``udnie`` means other weights once the
    bundled models are retrained.
    """

    name: str
    checkpoint: str
    model: torch.nn.Module
    meta: dict

    @property
    def style_sha256(self) -> str | None:
        return self.meta.get("style_sha256")

    @property
    def weights_sha256(self) -> str | None:
        """Hex sha256 of the checkpoint file read (``None`` when it is not known or gone)."""
        from ..checkpoint import file_sha256

        path = self.meta.get("path")
        if not path or not Path(path).is_file():
            return None
        return file_sha256(path)

    def process(self, options: MethodOptions) -> Process:
        from ..stylize import stylize_frames

        def run(frames: Iterable[np.ndarray]) -> Iterator[np.ndarray]:
            return stylize_frames(self.model, frames, device=options.device, half=options.half)

        return run

    def describe(self) -> dict:
        """Plain data for reports."""
        from ..checkpoint import file_sha256

        out = {"name": self.name, "checkpoint": self.checkpoint, "path": self.meta.get("path"),
               "model": self.meta.get("model"), "step": self.meta.get("step"),
               "style_sha256": self.style_sha256, "weights_sha256": self.weights_sha256,
               "trained_by": self.meta.get("version"),
               "edge_margin": self.meta.get("edge_margin", (self.meta.get("model") or {}).get("edge_margin", 0))}
        if "stability" in self.meta:
            dial = self.meta["stability"]
            out["stability"] = {**dial, "perframe_weights_sha256": file_sha256(dial["perframe"])}
        return out


def parse_model_spec(spec: str) -> tuple[str, str]:
    """``"NAME=CKPT"`` -> ``(NAME, CKPT)``; a bare ``CKPT`` is named after its file stem."""
    if "=" in spec:
        name, _, ckpt = spec.partition("=")
        name, ckpt = name.strip(), ckpt.strip()
        if not name or not ckpt:
            raise UserError(f"--model {spec!r}: expected NAME=CKPT, e.g. --model stable=runs/a/final.pt")
    else:
        ckpt = spec.strip()
        name = Path(ckpt).stem
    return name, ckpt


def load_model_method(spec: str) -> ModelMethod:
    """Load ``NAME=CKPT`` (a checkpoint path or a bundled model name) as a :class:`ModelMethod`."""
    from ..checkpoint import load_checkpoint

    name, ckpt = parse_model_spec(spec)
    if name in EVAL_METHODS or name in _baselines():
        raise UserError(f"--model {spec!r}: {name!r} is the name of a built-in method; "
                        "name trained networks e.g. stable=CKPT or perframe=CKPT")
    model, meta = load_checkpoint(ckpt)
    return ModelMethod(name=name, checkpoint=ckpt, model=model, meta=meta)


def dial_methods(models: list[ModelMethod], positions: list[float], perframe: str | None) -> list[ModelMethod]:
    """Each recurrent model at each dial position, named ``NAME@S``; per-frame models stay as they are."""
    from ..stability import load_at_stability

    out = []
    for m in models:
        if not m.meta["model"].get("recurrent", True):
            out.append(m)
            continue
        for s in positions:
            model, meta = load_at_stability(m.checkpoint, s, perframe=perframe)
            out.append(ModelMethod(name=f"{m.name}@{s:g}", checkpoint=m.checkpoint, model=model, meta=meta))
    return out


def margin_methods(models: list[ModelMethod], margins: list[int]) -> list[ModelMethod]:
    """Each model as it is, then at each edge margin (px), named ``NAME+mPX`` (see ``TransformerNet``)."""
    import copy

    from ..models import set_edge_margin

    out = []
    for m in models:
        out.append(m)
        for px in margins:
            net = copy.deepcopy(m.model)
            set_edge_margin(net, px)
            out.append(ModelMethod(name=f"{m.name}+m{px}", checkpoint=m.checkpoint, model=net,
                                   meta={**m.meta, "edge_margin": px}))
    return out
