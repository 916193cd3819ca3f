"""What a training run is told to do: :class:`TrainConfig`, its YAML form and how settings combine.

Owns the settings of ``stablestyle train`` and their rules, so that the CLI only parses flags:

* :class:`TrainConfig` (typed fields, defaults, :meth:`TrainConfig.validate`; files: :func:`.inputs.check_inputs`);
* plain data and YAML: :func:`config_to_dict`, :func:`config_from_dict`, :func:`load_config`, :func:`save_config`;
* how a run's settings are put together: :func:`new_run_config` (defaults, then a YAML file, then flags)
  and :func:`resume_config` (the saved ``config.yaml``, of which only :data:`RESUME_CHANGEABLE` may change).
"""
from __future__ import annotations

import dataclasses
import logging
import math
import os
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..atomic import write_text_atomic
from ..errors import UserError
from ..losses import LossWeights, check_loss_weight
from ..models.transformer import MAX_MARGIN
from .rundir import CONFIG_NAME, LAST_NAME

log = logging.getLogger(__name__)

MODES = ("stable", "perframe")
AMP_MODES = ("off", "bf16", "fp16", "auto")
DEVICES = ("auto", "cpu", "cuda")
#: Gupta et al. train on short sequences; 4 frames give 3 temporal pairs per sequence.
DEFAULT_SEQ_LEN = 4
#: Values of :attr:`TrainConfig.init_layout`.
INIT_LAYOUTS = ("auto", "stablestyle", "fast_neural_style")
#: Settings that a resumed run may change: they steer the run, not what it learns.
RESUME_CHANGEABLE = ("steps", "num_workers", "device", "log_every", "sample_every", "validate_every",
                     "checkpoint_every", "keep_every")


@dataclass
class TrainConfig:
    """Everything that determines a training run (saved as ``config.yaml`` in the run folder).

    Defaults are Johnson et al. 2016's (crop 256, Adam lr 1e-3, batch 4, content ``relu3_3`` as in his code,
    style ``relu1_2..relu4_3``, style image 256 px on its long side, 40,000 steps = 2 epochs of COCO at
    batch 4) and Gupta et al. 2017's sequences for ``mode="stable"``.
    """

    # --- data
    style: str = ""
    """Style image file."""
    content: list[str] = field(default_factory=list)
    """Still images: folders (every image inside, natural order) and/or image files."""
    video: list[str] = field(default_factory=list)
    """Video files (or frame folders) for real-motion sequences, flow estimated with ``flow_method``."""
    video_ratio: float = 0.5
    """Fraction of training sequences drawn from ``video`` (when given); the rest are stills."""
    vflip: float = 0.0
    """Probability of turning a still photo upside down before it is cropped (breaks the sky-on-top prior)."""
    max_speed: float = 4.0
    """Fastest virtual-camera pan over the stills, px per frame (other speeds scale along; the val clip stays)."""
    flow_method: str = "dis"
    """Optical-flow estimator for video sequences (:data:`stablestyle.flow.FLOW_METHODS`)."""
    val_image: str | None = None
    """Image for the held-out validation clip; ``None``: the last content image, held out of training."""
    val_frames: int = 8
    """Frames of the validation clip."""
    # --- model and losses
    mode: str = "stable"
    """``stable`` (recurrent + temporal loss, Gupta et al.) or ``perframe`` (Johnson et al.)."""
    seq_len: int | None = None
    """Frames per training sequence; ``None``: 4 for ``stable``, 1 for ``perframe`` (which allows only 1)."""
    width: float = 1.0
    """Channel multiplier of the transformation net (1.0 = Johnson et al.)."""
    crop: int = 256
    """Training crop side in pixels."""
    edge_margin: int = 32
    """Reflect margin (px per side) the trained net adds at inference (:class:`~stablestyle.models.TransformerNet`)."""
    margin_in_training: bool = False
    """Train with that margin too, so the losses never see the net's own edges (``TransformerNet.margin_in_training``)."""
    context_margin: bool = False
    """Crops ``edge_margin`` px larger on each side, the perceptual losses on the centre ``crop`` only."""
    loss_margin: int = 0
    """Perceptual loss on a random ``crop - loss_margin`` window per step (:func:`~.objective.loss_window`)."""
    style_size: int | None = 256
    """Long side of the style image for the Gram targets (``None``: as stored)."""
    content_layer: str = "relu3_3"
    style_layers: list[str] = field(default_factory=lambda: ["relu1_2", "relu2_2", "relu3_3", "relu4_3"])
    weights: LossWeights = field(default_factory=LossWeights)
    """Loss weights (``content``, ``style``, ``tv``, ``temporal``)."""
    detach_previous: bool = False
    """Treat the previous output as given (no gradient through it); see :mod:`stablestyle.training.objective`."""
    vgg_weights: str | None = None
    """VGG-16 state dict; ``None``: ``STABLESTYLE_VGG16`` / ``STABLESTYLE_ASSETS`` / torch hub cache."""
    init: str | None = None
    """Initial weights: a checkpoint, run folder or fast_neural_style state dict (:mod:`..models.warmstart`)."""
    teacher: str | None = None
    """Distil: match this model's output instead of the perceptual losses (:mod:`stablestyle.training.distill`)."""
    distill_temporal: float = 0.0
    """With ``teacher`` in mode stable: weight of the student's own temporal loss added to the distillation."""
    init_layout: str = "auto"
    """Layout of ``init``: ``auto``, ``stablestyle`` or ``fast_neural_style``."""
    # --- optimisation
    steps: int = 40000
    batch: int = 4
    """Sequences per step *per process* (``torchrun`` multiplies it by the number of processes)."""
    lr: float = 1e-3
    seed: int = 0
    # --- speed
    device: str = "auto"
    amp: str = "auto"
    """``off``, ``bf16``, ``fp16`` (CUDA only, with a gradient scaler) or ``auto`` (bf16 / fp16 on CUDA, off on CPU)."""
    channels_last: bool = False
    num_workers: int = 2
    # --- bookkeeping
    out: str = ""
    """Run folder."""
    log_every: int = 50
    sample_every: int = 1000
    validate_every: int = 1000
    checkpoint_every: int = 1000
    keep_every: int = 0
    """Also keep the weights every this many steps, as ``checkpoints/step_XXXXXXXX.pt`` (0: none)."""

    @property
    def recurrent(self) -> bool:
        return self.mode == "stable"

    @property
    def data_crop(self) -> int:
        """Side of the training items: ``crop``, plus ``edge_margin`` on each side with ``context_margin``."""
        return self.crop + 2 * self.edge_margin if self.context_margin else self.crop

    @property
    def sequence_length(self) -> int:
        """``seq_len`` with its mode-dependent default applied."""
        if self.seq_len is not None:
            return self.seq_len
        return DEFAULT_SEQ_LEN if self.mode == "stable" else 1

    def validate(self) -> None:
        """Check values (not files); raise :class:`UserError` saying what is valid."""
        from ..flow import FLOW_METHODS
        from ..models import LAYER_INDEX

        if self.mode not in MODES:
            raise UserError(f"unknown mode {self.mode!r}; valid: {', '.join(MODES)}")
        if self.init_layout not in INIT_LAYOUTS:
            raise UserError(f"unknown init_layout {self.init_layout!r}; valid: {', '.join(INIT_LAYOUTS)}")
        if self.amp not in AMP_MODES:
            raise UserError(f"unknown amp setting {self.amp!r}; valid: {', '.join(AMP_MODES)}")
        if self.device not in DEVICES and not self.device.startswith("cuda:"):
            raise UserError(f"unknown device {self.device!r}; valid: {', '.join(DEVICES)}")
        if self.flow_method not in FLOW_METHODS:
            raise UserError(f"unknown flow method {self.flow_method!r}; valid: {', '.join(FLOW_METHODS)}")
        if self.mode == "perframe" and self.sequence_length != 1:
            raise UserError(f"mode perframe trains on single frames; seq_len must be 1 (or unset), got "
                            f"{self.seq_len}; use mode stable for sequences")
        if self.mode == "stable" and self.sequence_length < 2:
            raise UserError(f"mode stable needs sequences of at least 2 frames for the temporal loss; "
                            f"seq_len is {self.sequence_length} (Gupta et al. use short sequences, e.g. 4)")
        for name in ("steps", "batch", "crop", "val_frames", "log_every", "sample_every", "validate_every",
                     "checkpoint_every"):
            if getattr(self, name) < 1:
                raise UserError(f"{name} must be a positive integer, got {getattr(self, name)}")
        if self.keep_every < 0:
            raise UserError(f"keep_every must be 0 (none) or a positive integer, got {self.keep_every}")
        if self.crop < 16:
            raise UserError(f"crop must be at least 16 pixels, got {self.crop}")
        if not 0.0 <= self.vflip <= 1.0:
            raise UserError(f"vflip is a probability, 0..1, got {self.vflip}")
        if not (0 < self.max_speed <= self.crop and math.isfinite(self.max_speed)):
            raise UserError(f"max_speed must be 0..crop ({self.crop}) px per frame, got {self.max_speed}")
        _check_margins(self)
        if self.style_size is not None and not 16 <= self.style_size <= 16384:
            raise UserError(f"style_size must be 16..16384 pixels (or unset), got {self.style_size}")
        if self.val_frames < 2:
            raise UserError(f"val_frames must be at least 2 (instability compares frame pairs), got {self.val_frames}")
        if self.num_workers < 0:
            raise UserError(f"num_workers must be >= 0, got {self.num_workers}")
        if not (self.width > 0 and math.isfinite(self.width)):
            raise UserError(f"width must be a positive number (1.0 = Johnson et al.'s net), got {self.width}")
        if not (self.lr > 0 and math.isfinite(self.lr)):
            raise UserError(f"lr (--lr) must be a positive finite number, got {self.lr}")
        for name, value in self.weights.as_dict().items():
            _check_weight(name, value)
        if not 0.0 <= self.video_ratio <= 1.0:
            raise UserError(f"video_ratio must be in [0, 1], got {self.video_ratio}")
        for layer in (self.content_layer, *self.style_layers):
            if layer not in LAYER_INDEX:
                raise UserError(f"unknown VGG-16 layer {layer!r}; valid: {', '.join(LAYER_INDEX)}")
        if not self.style_layers:
            raise UserError(f"style_layers is empty; give at least one of {', '.join(LAYER_INDEX)}")
        if not self.style:
            raise UserError("no style image given (--style IMAGE or `style:` in the config)")
        if self.seed < 0:
            raise UserError(f"seed must be a whole number >= 0, got {self.seed}")
        if not self.out:
            raise UserError("no run folder given (--out RUN_DIR or `out:` in the config)")


def _check_margins(config: TrainConfig) -> None:
    if not 0 <= config.edge_margin <= MAX_MARGIN:
        raise UserError(f"edge_margin must be 0..{MAX_MARGIN} pixels, got {config.edge_margin}")
    if not 0 <= config.loss_margin <= config.crop - 16:
        raise UserError(f"loss_margin must be 0..crop - 16 = {config.crop - 16} pixels, got {config.loss_margin}")
    if config.context_margin and (config.margin_in_training or config.loss_margin or not config.edge_margin):
        raise UserError("context_margin needs edge_margin > 0 and excludes margin_in_training and loss_margin")
    if config.teacher and (config.context_margin or config.loss_margin):
        raise UserError("teacher (distillation) has no loss window: it excludes context_margin and loss_margin")
    if config.distill_temporal and not (config.teacher and config.recurrent and config.distill_temporal > 0):
        raise UserError("distill_temporal must be > 0 and needs teacher (distillation) and mode stable")


def config_to_dict(config: TrainConfig) -> dict[str, Any]:
    """Plain data (YAML / checkpoint friendly) of a config; ``seq_len`` resolved."""
    data = dataclasses.asdict(config)
    data["seq_len"] = config.sequence_length
    return data


def _describe(tp: Any) -> str:
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin in (types.UnionType, typing.Union):
        return " or ".join("null" if a is type(None) else _describe(a) for a in args)
    if origin is list:
        return f"a list of {_describe(args[0])}s"
    return {bool: "true/false", int: "an integer", float: "a number", str: "a string"}.get(tp, str(tp))


def _coerce(value: Any, tp: Any, name: str, source: str) -> Any:
    """``value`` as type ``tp`` (YAML gives ``1e-3`` as a string; ``3.0`` may stand for an integer)."""
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    bad = UserError(f"{source}: {name} must be {_describe(tp)}, got {value!r}")
    if origin in (types.UnionType, typing.Union):
        if value is None and type(None) in args:
            return None
        inner = [a for a in args if a is not type(None)]
        return _coerce(value, inner[0], name, source)
    if origin is list:
        if isinstance(value, (str, os.PathLike)):
            value = [value]
        if not isinstance(value, (list, tuple)):
            raise bad
        return [_coerce(v, args[0], name, source) for v in value]
    if tp is bool:
        if isinstance(value, bool):
            return value
        raise bad
    if tp in (int, float):
        if isinstance(value, bool) or not isinstance(value, (int, float, str)):
            raise bad
        if tp is int and isinstance(value, float):
            if value.is_integer():
                return int(value)
            raise bad
        try:
            return tp(value)
        except ValueError:
            raise bad from None
    if tp is str:
        if isinstance(value, (str, os.PathLike)):
            return str(value)
        raise bad
    raise TypeError(f"unsupported config type {tp!r} for {name}")  # a bug in TrainConfig, not user input


def _check_weight(name: str, value: float, source: str = "") -> None:
    """:func:`~stablestyle.losses.check_loss_weight` as a :class:`UserError` naming the flag that sets it."""
    try:
        check_loss_weight(name, value)
    except ValueError:
        where = f"{source}: " if source else ""
        raise UserError(f"{where}loss weight {name} (--{name}-weight) must be a finite number >= 0, "
                        f"got {value!r}") from None


def _weights_from(value: Any, base: LossWeights, source: str) -> LossWeights:
    names = [f.name for f in dataclasses.fields(LossWeights)]
    if not isinstance(value, Mapping):
        raise UserError(f"{source}: weights must be a mapping of {', '.join(names)} to numbers, got {value!r}")
    unknown = sorted(set(value) - set(names))
    if unknown:
        raise UserError(f"{source}: unknown loss weight(s) {', '.join(map(str, unknown))}; valid: {', '.join(names)}")
    merged = base.as_dict()
    merged.update({k: _coerce(v, float, f"weights.{k}", source) for k, v in value.items()})
    for name, weight in merged.items():
        _check_weight(name, weight, source)
    return LossWeights(**merged)


def config_from_dict(data: Mapping[str, Any], base: TrainConfig | None = None,
                     source: str = "config") -> TrainConfig:
    """``base`` (default :class:`TrainConfig`) updated with ``data``; unknown keys are a :class:`UserError`.

    ``weights`` may be a partial mapping (the other weights keep their
    values).  Values are type-checked; numbers given as strings (YAML reads
    ``1e-3`` as one) are accepted for number fields.
    """
    if not isinstance(data, Mapping):
        raise UserError(f"{source}: expected a mapping of settings, got {type(data).__name__}")
    config = dataclasses.replace(base) if base is not None else TrainConfig()
    hints = typing.get_type_hints(TrainConfig)
    valid = [f.name for f in dataclasses.fields(TrainConfig)]
    unknown = sorted(str(k) for k in data if k not in valid)
    if unknown:
        raise UserError(f"{source}: unknown setting(s) {', '.join(unknown)}; valid: {', '.join(valid)}")
    for key, value in data.items():
        if key == "weights":
            config.weights = _weights_from(value, config.weights, source)
        else:
            setattr(config, key, _coerce(value, hints[key], key, source))
    return config


def load_config(path: str | os.PathLike, base: TrainConfig | None = None) -> TrainConfig:
    """Read a YAML config file (see ``configs/*.yaml``) on top of ``base``."""
    import yaml

    path = Path(path).expanduser()
    if path.is_dir():
        raise UserError(f"config file {path} is a folder, not a YAML file; give a file such as configs/stable.yaml")
    if not path.is_file():
        raise UserError(f"config file {path} does not exist")
    try:
        text = path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as exc:
        raise UserError(f"config file {path} is not a UTF-8 text YAML file (byte {exc.start} is "
                        f"{exc.object[exc.start]:#04x}); save it as UTF-8 text") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise UserError(f"{path} is not valid YAML ({exc})".replace("\n", " ")) from None
    return config_from_dict(data or {}, base, source=str(path))


def save_config(path: str | os.PathLike, config: TrainConfig) -> None:
    """Write ``config`` (resolved) as YAML, atomically."""
    import yaml

    write_text_atomic(path, yaml.safe_dump(config_to_dict(config), sort_keys=False))



def new_run_config(overrides: Mapping[str, Any], config_file: str | os.PathLike | None = None) -> TrainConfig:
    """A new run's validated settings: :class:`TrainConfig` defaults, then ``config_file`` (YAML), then ``overrides``.

    ``overrides`` are the settings given on the command line (``weights`` a
    partial mapping).  A ``mode`` override of the other mode than the file's
    drops the file's ``seq_len`` (it belongs to the mode replaced) unless
    ``seq_len`` is overridden too.
    """
    base = load_config(config_file) if config_file else TrainConfig()
    mode = overrides.get("mode", base.mode)
    if mode != base.mode and "seq_len" not in overrides and base.seq_len is not None:
        log.info("--mode %s: the config's seq_len %d (for mode %s) gives way to mode %s's default",
                 mode, base.seq_len, base.mode, mode)
        base.seq_len = None
    config = config_from_dict(overrides, base, source="command line")
    config.validate()
    return config


def resume_config(run_dir: str | os.PathLike, overrides: Mapping[str, Any], *,
                  config_file: str | os.PathLike | None = None, overwrite: bool = False) -> tuple[TrainConfig, Path]:
    """``(config, last.pt)`` to continue the run in ``run_dir``: its saved ``config.yaml`` plus ``overrides``.

    Only :data:`RESUME_CHANGEABLE` settings may differ from the saved ones;
    ``overrides["out"]``, when given, must name ``run_dir`` (a moved run
    folder resumes where it now is).  ``config_file`` and ``overwrite`` are
    refused (a resumed run keeps its settings and its folder).
    """
    run_dir = Path(run_dir).expanduser()
    overrides = dict(overrides)
    out = overrides.pop("out", None)
    if config_file:
        raise UserError("--config cannot be combined with --resume: a resumed run keeps its config.yaml")
    if overwrite:
        raise UserError("--overwrite and --resume contradict each other; pass one of them")
    if out and Path(out).expanduser().resolve() != run_dir.resolve():
        raise UserError(f"--out {out} differs from --resume {run_dir}; a resumed run stays in its folder")
    if not (run_dir / CONFIG_NAME).is_file():
        raise UserError(f"{run_dir} is not a run folder (no {CONFIG_NAME}); start a run with --out")
    if not (run_dir / LAST_NAME).is_file():
        raise UserError(f"{run_dir} has no {LAST_NAME} to resume from (it stopped before its first "
                        "checkpoint); start it afresh with --overwrite")
    saved = load_config(run_dir / CONFIG_NAME)
    merged = config_from_dict(overrides, saved, source="command line")
    before, after = config_to_dict(saved), config_to_dict(merged)
    changed = [k for k in after if after[k] != before[k] and k not in RESUME_CHANGEABLE]
    if changed:
        flags = ", ".join(f"{k} (saved {before[k]!r}, given {after[k]!r})" for k in changed)
        raise UserError(f"--resume continues a run with its saved settings; cannot change {flags}. "
                        f"Changeable: {', '.join(RESUME_CHANGEABLE)}")
    merged.out = str(run_dir)
    return merged, run_dir / LAST_NAME
