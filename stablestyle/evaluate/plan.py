"""What an evaluation will do, settled before any work: its configuration, checks and job list.

Owns :class:`EvalConfig`, :func:`check_config` (every cheap check, before any output exists),
:func:`plan_evaluation` (models, styles, clips and the ``(method, style, clip)`` jobs), and how
trained networks find their style image (:func:`trained_style_paths`, :func:`style_for_model`).
:mod:`stablestyle.evaluate.runner` runs the plan and writes the report.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..atomic import check_output_folder
from ..errors import UserError
from ..runtime import check_at_least
from ..models.transformer import MAX_MARGIN
from .clips import Clip, load_clip
from .methods import (MethodOptions, ModelMethod, check_method_name, dial_methods, load_model_method, make_method,
                      margin_methods)

log = logging.getLogger(__name__)


@dataclass
class EvalConfig:
    """Settings of one evaluation (saved in ``results.json``).

    ``methods``: style-conditioned method names (``input``, ``gatys``,
    ``ruder``; commas allowed); ``models``: ``NAME=CKPT`` trained networks.
    ``max_size`` (long side, px) and ``max_frames`` shrink the clips;
    ``iterations`` / ``size`` configure the optimisation baselines (``size``
    ``None`` = the clip's long side); ``style_size`` is the long side of the
    style image for the style-loss targets (training's default, 256).
    ``stability``: dial positions; each recurrent model is then scored at each
    of them under ``NAME@S`` (:mod:`stablestyle.stability`, twin from
    ``perframe_model`` or found as ``stylize --stability`` finds it).
    ``edge_margins``: each model is also scored at each of these edge margins
    (px) under ``NAME+mPX``.
    """

    clips: list[str]
    output: str
    styles: list[str] = field(default_factory=list)
    methods: list[str] = field(default_factory=list)
    models: list[str] = field(default_factory=list)
    max_size: int | None = None
    max_frames: int | None = None
    flow: str = "dis"
    iterations: int = 100
    size: int | None = None
    style_size: int | None = 256
    device: str = "auto"
    half: bool | None = None
    save_videos: bool = True
    overwrite: bool = False
    quiet: bool = False
    stability: list[float] = field(default_factory=list)
    perframe_model: str | None = None
    edge_margins: list[int] = field(default_factory=list)


@dataclass
class Style:
    name: str
    path: Path
    image: np.ndarray  # uint8, as stored (the optimisation baselines resize it themselves)
    sha256: str


@dataclass
class Job:
    method: str
    kind: str  # "network" or "style-conditioned"
    style: Style
    clip: Clip
    model: ModelMethod | None = None


def unique_names(names: Sequence[str]) -> list[str]:
    """Names made unique by suffixing ``-2``, ``-3`` ... to repeats."""
    seen: dict[str, int] = {}
    out = []
    for name in names:
        seen[name] = seen.get(name, 0) + 1
        out.append(name if seen[name] == 1 else f"{name}-{seen[name]}")
    return out


def load_styles(paths: Sequence[str]) -> list[Style]:
    from ..checkpoint import file_sha256
    from ..video import read_image

    styles = []
    names = unique_names([Path(p).stem for p in paths])
    for name, p in zip(names, paths):
        path = Path(p)
        if path.is_dir():
            raise UserError(f"--style {path} is a folder; give a style image file (repeat --style for several)")
        if not path.is_file():
            raise UserError(f"style image {path}: no such file")
        styles.append(Style(name=name, path=path, image=read_image(path), sha256=file_sha256(path)))
    return styles


def trained_style_paths(models: Sequence[ModelMethod]) -> list[str]:
    """The style images ``models`` were trained on, found by the name their checkpoints record.

    Looked for at the recorded path and in ``$STABLESTYLE_ASSETS/styles``; a
    file counts only if its sha256 is the one in the checkpoint; one image per
    hash.  Raises a :class:`UserError` saying, per model, why none was found.
    """
    from ..checkpoint import file_sha256
    from ..paths import assets_dir

    assets = assets_dir()
    found: list[str] = []
    hashes: set[str] = set()
    problems: list[str] = []
    for model in models:
        recorded = (model.meta.get("config") or {}).get("style")
        if not recorded or not model.style_sha256:
            problems.append(f"{model.name} records no style {'image' if not recorded else 'hash'}")
            continue
        candidates = [Path(recorded).expanduser()]
        if assets is not None:
            candidates.append(assets / "styles" / Path(recorded).name)
        existing = [c for c in candidates if c.is_file()]
        hit = next((c for c in existing if file_sha256(c) == model.style_sha256), None)
        if hit is None:
            where = " or ".join(str(c) for c in candidates)
            why = "differs from the image it was trained on" if existing else "not found"
            problems.append(f"{model.name}: {where} {why}")
        elif model.style_sha256 not in hashes:  # one image per style, wherever each model found it
            hashes.add(model.style_sha256)
            found.append(str(hit))
    if problems:
        hint = "" if assets is not None else "; or set STABLESTYLE_ASSETS to a folder whose styles/ holds them"
        raise UserError(f"no --style given and the models' style images are not at hand ({'; '.join(problems)}); "
                        f"pass --style IMG{hint}")
    return found


def style_for_model(model: ModelMethod, styles: Sequence[Style]) -> Style:
    matches = [s for s in styles if model.style_sha256 and s.sha256 == model.style_sha256]
    if matches:
        return matches[0]
    if len(styles) == 1:
        log.warning("model %s (%s) was not trained on %s (style hashes differ); scoring it against that style "
                    "anyway", model.name, model.checkpoint, styles[0].path)
        return styles[0]
    raise UserError(f"model {model.name}={model.checkpoint} was trained on a style image that matches none of "
                    f"--style {', '.join(str(s.path) for s in styles)} (sha256 {model.style_sha256}); pass the "
                    "style image it was trained with")


def split_methods(values: Sequence[str]) -> list[str]:
    out: list[str] = []
    for value in values:
        for name in value.split(","):
            name = name.strip()
            if name and name not in out:
                out.append(name)
    return out


@dataclass
class Plan:
    """Everything an evaluation runs over: the jobs, and what the report lists."""

    methods: list[str]  # style-conditioned method names
    models: list[ModelMethod]
    model_styles: dict[int, Style]  # id(model) -> the style it is scored against
    styles: list[Style]
    clips: list[Clip]
    options: MethodOptions
    jobs: list[Job]
    method_order: list[str]


def check_config(config: EvalConfig) -> list[str]:
    """Every check that needs no model or clip loaded; returns the style-conditioned method names."""
    out = Path(config.output)
    check_output_folder(out, config.overwrite, marker="results.json", what="an evaluation folder", noun="report",
                        inputs=[*config.clips, *config.styles])
    for name, value in (("--max-frames", config.max_frames),):
        check_at_least(name, value, 2)
    for name, value in (("--max-size", config.max_size), ("--iterations", config.iterations),
                        ("--size", config.size), ("--style-size", config.style_size)):
        check_at_least(name, value, 16 if "size" in name else 1)
    if not config.clips:
        raise UserError("no clips given; pass video files, frame folders or ground-truth clip folders")
    if any(not 0 <= px <= MAX_MARGIN for px in config.edge_margins) or (config.edge_margins and not config.models):
        raise UserError(f"--edge-margin takes pixels from 0 to {MAX_MARGIN} and applies to --model networks")
    methods = split_methods(config.methods)
    for name in methods:
        check_method_name(name)
    if not methods and not config.models:
        raise UserError("nothing to evaluate: give --method (input, gatys, ruder) and/or --model NAME=CKPT")
    if not config.styles and not config.models:
        raise UserError("no --style given: style losses (and the gatys / ruder baselines) need the style image(s)")
    return methods


def plan_evaluation(config: EvalConfig, methods: list[str], device) -> Plan:
    """Load the models, styles and clips of ``config`` and list the jobs; every input error surfaces here."""
    models = [load_model_method(spec) for spec in config.models]
    if config.stability:
        models = dial_methods(models, config.stability, config.perframe_model)
    models = margin_methods(models, config.edge_margins)
    style_paths = list(config.styles)
    if not style_paths:
        style_paths = trained_style_paths(models)
        log.info("no --style: using the style image%s the models were trained on: %s",
                 "s" * (len(style_paths) > 1), ", ".join(style_paths))
    styles = load_styles(style_paths)
    model_styles = {id(m): style_for_model(m, styles) for m in models}
    pairs = [(m.name, model_styles[id(m)].name) for m in models]
    clash = sorted({f"{name} (style {style})" for name, style in pairs if pairs.count((name, style)) > 1})
    if clash:
        raise UserError(f"--model {', '.join(clash)} given twice for the same style; use distinct names")
    clip_names = unique_names([Path(c).name if Path(c).is_dir() else Path(c).stem for c in config.clips])
    clips = [load_clip(c, max_size=config.max_size, max_frames=config.max_frames, flow_method=config.flow,
                       name=n) for c, n in zip(config.clips, clip_names)]
    options = MethodOptions(device=device, half=config.half, iterations=config.iterations, size=config.size,
                            flow_method=config.flow, quiet=True)
    for name in methods:  # option errors (e.g. --iterations for the baselines) surface before any work
        make_method(name, styles[0].image, options, clips[0].size)
    jobs: list[Job] = []
    for clip in clips:
        for style in styles:
            jobs += [Job(m, "style-conditioned", style, clip) for m in methods]
            jobs += [Job(m.name, "network", style, clip, m) for m in models if model_styles[id(m)] is style]
    method_order = [*methods, *dict.fromkeys(m.name for m in models)]
    return Plan(methods, models, model_styles, styles, clips, options, jobs, method_order)
