"""Training of the transformation network: Gupta et al. 2017's recurrent net and Johnson et al. 2016's per-frame net.

One loop trains both (:class:`Trainer`); the per-frame net is the same code
with recurrence and the temporal loss switched off:

* ``mode="stable"`` (Gupta et al. 2017, Sec. 4): a recurrent
  :class:`~stablestyle.models.TransformerNet` is unrolled over short
  sequences of ``seq_len`` frames (default 4), each frame's input being the
  frame and the net's *own previous output* (``state=None`` at a sequence
  start, where the net uses the frame itself).  Per frame ``t`` the loss is
  the perceptual loss against the input frame (content + style + TV,
  Johnson et al. 2016), and for ``t >= 1`` the temporal loss (Gupta et al.
  2017, Sec. 4, with Ruder et al. 2016's reliability mask ``c_t``)::

      L_temp(t) = temporal_loss(y_t, backward_warp(y_{t-1}, flow_bw_t), c_t)
                = (1 / 3HW) sum c_t (y_t - w(y_{t-1}))^2

* ``mode="perframe"`` (Johnson et al. 2016): ``seq_len = 1``, a
  non-recurrent net, no temporal term.

Loss of one batch (:func:`sequence_loss`): each term is averaged over the
batch and over the frames it is defined on (perceptual terms over all ``T``
frames, the temporal term over the ``T - 1`` frame pairs), so the weights do
not depend on ``seq_len`` (summing over frames instead would scale the
temporal weight by ``(T - 1) / T`` relative to the others); the weighted sum
is taken only in
:meth:`stablestyle.losses.LossWeights.total`.

**Gradient through the previous output.**  Whether ``y_{t-1}`` is treated as
a constant is not taken from Gupta et al.; it is this implementation's
choice, and a switch.  By default we differentiate through it (full
backpropagation through time over the unrolled sequence, the standard way to
train a recurrent net on a loss of its whole output sequence): the temporal
term then pulls ``y_t`` and ``y_{t-1}`` towards each other, and ``y_t``'s
style / content gradients also reach the computation of ``y_{t-1}`` through
the recurrent input.  ``detach_previous=True`` instead treats the previous
output as given data, both as the recurrent input and as the temporal
target (truncated BPTT of length one).

Runs survive interruption: the run folder holds ``config.yaml`` (the resolved
configuration), ``log.csv`` (step, each loss term, total, images/s, lr),
``val.csv`` (instability and perceptual terms on a held-out synthetic clip
with exact flow), ``samples/step_XXXXXXXX.png`` and atomic checkpoints:
``last.pt`` with the training state (optimiser, grad scaler, step, Python /
numpy / torch RNG states, data position) and ``final.pt`` without it.
``Trainer.restore(last.pt)`` continues exactly where a run stopped: the data
order is a function of ``(seed, step)`` only (:class:`SequenceSampler`).
"""

from __future__ import annotations

import csv
import dataclasses
import hashlib
import logging
import math
import os
import random
import shutil
import signal
import threading
import time
import types
import typing
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from .atomic import atomic_path, write_text_atomic
from .checkpoint import FINAL_NAME
from .distributed import DistContext, EpochItems, SequenceSampler, all_reduce_mean, any_rank, barrier, gather_objects
from .errors import UserError
from .losses import LossWeights, check_loss_weight

log = logging.getLogger(__name__)

MODES = ("stable", "perframe")
AMP_MODES = ("off", "bf16", "fp16", "auto")
DEVICES = ("auto", "cpu", "cuda")
#: Gupta et al. train on short sequences; 4 frames give 3 temporal pairs per sequence.
DEFAULT_SEQ_LEN = 4
#: With several processes, how often (steps) the ranks agree on stopping after Ctrl-C / SIGTERM.
STOP_CHECK_EVERY = 10
#: Files a run folder may hold (``--overwrite`` removes only a folder that has ``config.yaml``).
CONFIG_NAME, LOG_NAME, VAL_NAME = "config.yaml", "log.csv", "val.csv"
LAST_NAME, SAMPLES_NAME = "last.pt", "samples"  # FINAL_NAME: stablestyle.checkpoint's, which run folders hand over
#: The clock of ``fit(time_limit=...)`` (a module attribute so tests can replace it).
_clock = time.monotonic


class TrainingDiverged(UserError, FloatingPointError):
    """The losses or the network's weights became NaN / inf (learning rate or loss weights too large).

    A :class:`UserError` (the CLI prints one line and exits 2: the settings
    are the user's to change) and a ``FloatingPointError`` (what it is).
    """


# ============================================================================= configuration

@dataclass
class TrainConfig:
    """Everything that determines a training run (saved as ``config.yaml`` in the run folder).

    Defaults are Johnson et al. 2016's (crop 256, Adam lr 1e-3, batch 4,
    content ``relu3_3`` as in his code, style ``relu1_2..relu4_3``, style
    image 256 px on its long side, 40,000 steps = 2 epochs of COCO at batch
    4) and Gupta et al. 2017's sequences for ``mode="stable"``.
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
    style_size: int | None = 256
    """Long side of the style image for the Gram targets (``None``: as stored)."""
    content_layer: str = "relu3_3"
    style_layers: list[str] = field(default_factory=lambda: ["relu1_2", "relu2_2", "relu3_3", "relu4_3"])
    weights: LossWeights = field(default_factory=LossWeights)
    """Loss weights (``content``, ``style``, ``tv``, ``temporal``)."""
    detach_previous: bool = False
    """Treat the previous output as given (no gradient through it); see the module docstring."""
    vgg_weights: str | None = None
    """VGG-16 state dict; ``None``: ``STABLESTYLE_VGG16`` / ``STABLESTYLE_ASSETS`` / torch hub cache."""
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

    @property
    def recurrent(self) -> bool:
        return self.mode == "stable"

    @property
    def sequence_length(self) -> int:
        """``seq_len`` with its mode-dependent default applied."""
        if self.seq_len is not None:
            return self.seq_len
        return DEFAULT_SEQ_LEN if self.mode == "stable" else 1

    def validate(self) -> None:
        """Check values (not files); raise :class:`UserError` saying what is valid."""
        from .flow import FLOW_METHODS
        from .models import LAYER_INDEX

        if self.mode not in MODES:
            raise UserError(f"unknown mode {self.mode!r}; valid: {', '.join(MODES)}")
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
        if self.crop < 16:
            raise UserError(f"crop must be at least 16 pixels, got {self.crop}")
        if self.style_size is not None and not 16 <= self.style_size <= 16384:
            raise UserError(f"style_size must be 16..16384 pixels (or unset), got {self.style_size}")
        if self.val_frames < 2:
            raise UserError(f"val_frames must be at least 2 (instability compares consecutive frames), "
                            f"got {self.val_frames}")
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
    if tp is int:
        if isinstance(value, bool):
            raise bad
        if isinstance(value, int):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        if isinstance(value, str):
            try:
                return int(value)
            except ValueError:
                raise bad from None
        raise bad
    if tp is float:
        if isinstance(value, bool):
            raise bad
        if isinstance(value, (int, float)):
            return float(value)
        if isinstance(value, str):
            try:
                return float(value)
            except ValueError:
                raise bad from None
        raise bad
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


# ============================================================================= inputs and run folder

def find_content(entries: Sequence[str]) -> list[Path]:
    """Image files under ``entries`` (:func:`stablestyle.data.find_images`; folders searched recursively).

    Raises :class:`UserError` for a missing entry or an entry without images.
    """
    from .data import IMAGE_EXTENSIONS, find_images
    from .video import VIDEO_FILE_SUFFIXES

    files: list[Path] = []
    for entry in entries:
        path = Path(entry).expanduser()
        if path.is_file():
            _check_content_file(path)
        found = find_images([path])
        if not found:
            videos = path.is_dir() and any(p.suffix.lower() in VIDEO_FILE_SUFFIXES for p in path.rglob("*"))
            todo = "pass its videos with --video FILE each" if videos else "give a folder of photos or image files"
            raise UserError(f"content {entry} has no images ({', '.join(IMAGE_EXTENSIONS)}); {todo}")
        files += found
    return files


def _check_content_file(path: Path) -> None:
    """A ``content`` file named explicitly must be an image, not a video (which ``--video`` takes)."""
    from PIL import Image

    from .data import IMAGE_EXTENSIONS
    from .video import VIDEO_FILE_SUFFIXES

    if path.suffix.lower() in VIDEO_FILE_SUFFIXES:
        raise UserError(f"content {path} is a video; --content takes images or folders of images, "
                        f"pass videos with --video {path}")
    if path.suffix.lower() in IMAGE_EXTENSIONS:
        return  # a broken photo is skipped with a counted warning later, as in a folder
    try:
        with Image.open(path):  # reads the header only
            pass
    except Exception:  # noqa: BLE001 - Pillow raises many types for non-images
        raise UserError(f"content {path} is not an image Pillow can read; --content takes images or folders of "
                        f"images ({', '.join(IMAGE_EXTENSIONS)}); if it is a video, pass it with --video") from None


def split_validation(config: TrainConfig) -> tuple[list[Path], Path | None]:
    """``(training stills, validation image)`` per ``config.val_image`` (see :class:`TrainConfig`).

    The validation image is ``None`` only for video-only training without
    ``val_image``; then a video frame stands in (:func:`validation_image`).
    """
    from .video import read_image

    stills = find_content(config.content)
    if config.val_image is not None:
        val = Path(config.val_image).expanduser()
        read_image(val)  # a UserError naming the file when it is unusable
        return stills, val
    if len(stills) >= 2:
        return stills[:-1], stills[-1]
    if stills:
        log.warning("only one content image: it is also the validation image (set val_image to hold one out)")
        return stills, stills[0]
    return stills, None


def validation_image(path: Path | None, videos: Sequence[str]) -> np.ndarray:
    """``uint8 (H, W, 3)`` for the validation clip: ``path``, else the first frame of the first video."""
    from .video import open_source, read_image

    if path is not None:
        return read_image(path)
    if not videos:
        raise UserError("no image for the validation clip: give content images, videos or val_image")
    log.warning("no content images: the validation clip is made from the first frame of %s, which is also "
                "training data (set val_image to hold an image out)", videos[0])
    with open_source(videos[0]) as source:
        for frame in source:
            return frame
    raise UserError(f"video {videos[0]} has no frames")


def check_inputs(config: TrainConfig) -> None:
    """Check the files a run needs (style image, content, videos) before anything is written."""
    from .video import open_source, read_image

    config.validate()
    if not config.content and not config.video:
        raise UserError("no training data: give --content DIR (still images) and/or --video FILE")
    style = Path(config.style).expanduser()
    if style.is_dir():
        raise UserError(f"style image {config.style} is a folder, not an image file; give one image, "
                        "e.g. --style styles/scream.jpg")
    if not style.exists():
        raise UserError(f"style image {config.style} does not exist")
    read_image(style)
    if config.vgg_weights is not None:  # a missing file or a folder fails here, before the data scan
        from .models import resolve_vgg16_weights

        resolve_vgg16_weights(config.vgg_weights)
    split_validation(config)
    for entry in config.video:
        path = Path(entry).expanduser()
        if not path.exists():
            raise UserError(f"video {path} does not exist")
        with open_source(path) as source:
            if source.num_frames is not None and source.num_frames < config.sequence_length:
                raise UserError(f"video {path} has {source.num_frames} frames, fewer than seq_len "
                                f"{config.sequence_length}")


def prepare_run_dir(path: str | os.PathLike, *, overwrite: bool = False) -> Path:
    """Check that ``path`` may become a new run folder (it is not created here).

    An existing non-empty folder is an error unless ``overwrite``; then it is
    removed only if it is a run folder (holds ``config.yaml``), so a typo can
    never delete unrelated files.
    """
    path = Path(path).expanduser()
    if path.exists() and not path.is_dir():
        raise UserError(f"run folder {path} exists and is a file; choose another --out")
    if path.is_dir() and any(path.iterdir()):
        has_checkpoint = (path / LAST_NAME).is_file() or (path / FINAL_NAME).is_file()
        if not overwrite and (path / CONFIG_NAME).is_file() and not has_checkpoint:
            raise UserError(f"run folder {path} holds no checkpoint (an earlier run stopped before its first "
                            f"{LAST_NAME}); pass --overwrite to start it afresh, or choose another --out")
        if not overwrite:
            raise UserError(f"run folder {path} already exists; pass --resume {path} to continue it, "
                            "--overwrite to start it afresh, or choose another --out")
        if not (path / CONFIG_NAME).is_file():
            raise UserError(f"--overwrite refuses to delete {path}: it is not a stablestyle run folder "
                            f"(no {CONFIG_NAME})")
    return path


def clear_run_dir(path: Path) -> None:
    """Remove an existing run folder (checked by :func:`prepare_run_dir`)."""
    if path.is_dir():
        shutil.rmtree(path)


# ============================================================================= maths

def resolve_amp(amp: str, device: torch.device) -> torch.dtype | None:
    """Autocast dtype for ``amp`` on ``device`` (``None`` = full precision).

    ``auto``: bf16 on CUDA GPUs that support it, else fp16; off on CPU (CPU
    bf16 autocast is opt-in: it is only faster on CPUs with AMX / AVX512-BF16).
    """
    if amp == "off":
        return None
    if amp == "bf16":
        return torch.bfloat16
    if amp == "fp16":
        if device.type != "cuda":
            raise UserError("--amp fp16 needs a CUDA GPU; on CPU use --amp bf16 or off")
        return torch.float16
    if amp == "auto":
        if device.type != "cuda":
            return None
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    raise UserError(f"unknown amp setting {amp!r}; valid: {', '.join(AMP_MODES)}")


class SequenceModel(nn.Module):
    """Unrolls a transformation net over a clip; the unit that ``DistributedDataParallel`` wraps.

    ``forward(frames)``: ``(B, T, 3, H, W)`` in ``[0, 1]`` -> outputs
    ``(B, T, 3, H, W)``.  Frame ``t``'s state is the net's own output for
    ``t - 1`` (``None`` at ``t = 0``), differentiated through unless
    ``detach_previous``.  One forward per step keeps DDP's gradient hooks
    simple.
    """

    def __init__(self, net: nn.Module, detach_previous: bool = False, channels_last: bool = False) -> None:
        super().__init__()
        self.net = net
        self.detach_previous = detach_previous
        self.channels_last = channels_last

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        if frames.dim() != 5 or frames.shape[2] != 3:
            raise ValueError(f"frames must be (B, T, 3, H, W), got {tuple(frames.shape)}")
        state = None
        outputs = []
        for t in range(frames.shape[1]):
            frame = frames[:, t]
            if self.channels_last:
                frame = frame.contiguous(memory_format=torch.channels_last)
            out, state = self.net(frame, state)
            if state is not None and self.detach_previous:
                state = state.detach()
            outputs.append(out)
        return torch.stack(outputs, dim=1)


def sequence_terms(outputs: torch.Tensor, frames: torch.Tensor, perceptual: nn.Module, *,
                   flow_bw: torch.Tensor | None = None, mask: torch.Tensor | None = None,
                   detach_previous: bool = False) -> dict[str, torch.Tensor]:
    """Unweighted loss terms of a batch of unrolled sequences.

    Args:
        outputs: ``(B, T, 3, H, W)`` net outputs in ``[0, 1]``.
        frames: ``(B, T, 3, H, W)`` input frames (the content targets).
        perceptual: :class:`~stablestyle.losses.PerceptualLoss`; its terms are
            averaged over all ``B * T`` frames.
        flow_bw: ``(B, T, 2, H, W)`` pixels, frame ``t -> t-1`` (index 0 unused);
            with ``mask`` it adds the temporal term.
        mask: ``(B, T, 1, H, W)`` reliability ``c_t`` (Ruder et al. 2016), 1 = reliable.
        detach_previous: use ``y_{t-1}`` as a constant target.

    Returns:
        ``{content, style, tv}`` plus ``temporal`` (Gupta et al. 2017, Sec. 4,
        averaged over the ``B * (T - 1)`` pairs ``t >= 1``) when flow is given
        and ``T >= 2``.
    """
    from .flow import backward_warp
    from .losses import temporal_loss

    if outputs.shape != frames.shape or outputs.dim() != 5:
        raise ValueError(f"outputs {tuple(outputs.shape)} and frames {tuple(frames.shape)} must both be "
                         "(B, T, 3, H, W)")
    b, t = outputs.shape[:2]
    terms = dict(perceptual(outputs.flatten(0, 1), frames.flatten(0, 1)))
    if flow_bw is not None and mask is not None and t >= 2:
        prev = outputs[:, :-1].flatten(0, 1)
        if detach_previous:
            prev = prev.detach()
        # warping is an fp32 island (backward_warp upcasts internally)
        warped = backward_warp(prev, flow_bw[:, 1:].flatten(0, 1).to(torch.float32))
        terms["temporal"] = temporal_loss(outputs[:, 1:].flatten(0, 1), warped, mask[:, 1:].flatten(0, 1))
    return terms


def sequence_loss(outputs: torch.Tensor, frames: torch.Tensor, perceptual: nn.Module, weights: LossWeights,
                  **kwargs: Any) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """``(loss, metrics)``: :func:`sequence_terms` weighted by ``weights.total``; metrics are detached."""
    terms = sequence_terms(outputs, frames, perceptual, **kwargs)
    loss = weights.total(terms)
    metrics = {name: value.detach() for name, value in terms.items()}
    metrics["total"] = loss.detach()
    return loss, metrics


def seed_everything(seed: int) -> None:
    """Seed Python, numpy and torch (all devices)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def rng_state() -> dict[str, Any]:
    """This process's Python / numpy / torch (CPU and CUDA) RNG states."""
    state = {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: Mapping[str, Any]) -> None:
    """Restore :func:`rng_state`."""
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def _worker_init(worker_id: int) -> None:
    # torch seeds each worker from the loader's private generator; give numpy / random the same seed
    seed = torch.initial_seed() % 2**32
    random.seed(seed)
    np.random.seed(seed)


# ============================================================================= run bookkeeping

class CsvLog:
    """Append-only CSV with a fixed header; ``truncate(step)`` drops rows after a resumed step."""

    def __init__(self, path: Path, columns: Sequence[str]) -> None:
        self.path, self.columns = path, list(columns)

    def truncate(self, step: int) -> None:
        """Keep only rows with ``step <= step`` (rows a killed run wrote after its last checkpoint go)."""
        if not self.path.is_file():
            return
        with open(self.path, newline="") as fh:
            rows = list(csv.DictReader(fh))
        kept = [r for r in rows if r.get("step", "").isdigit() and int(r["step"]) <= step]
        with atomic_path(self.path) as tmp, open(tmp, "w", newline="") as fh:
            writer = csv.DictWriter(fh, fieldnames=self.columns, extrasaction="ignore")
            writer.writeheader()
            writer.writerows(kept)

    def write(self, row: Mapping[str, Any]) -> None:
        new = not self.path.is_file()
        with open(self.path, "a", newline="") as fh:
            writer = csv.DictWriter(fh, fieldnames=self.columns, extrasaction="ignore")
            if new:
                writer.writeheader()
            writer.writerow({k: (f"{v:.6g}" if isinstance(v, float) else v) for k, v in row.items()})


class _StopRequest:
    """SIGINT / SIGTERM set a flag that the loop checks between steps (a second Ctrl-C stops at once).

    Stopping between steps means ``last.pt`` is never written from weights
    that an optimiser step left half-updated.
    """

    def __init__(self) -> None:
        self.requested = False
        self._previous: dict[int, Any] = {}

    def _handle(self, signum: int, frame: Any) -> None:
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True
        log.warning("interrupt received: saving a checkpoint after this step (press Ctrl-C again to abort)")

    def __enter__(self) -> _StopRequest:
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM, *([signal.SIGHUP] if hasattr(signal, "SIGHUP") else [])):
                self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc: Any) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)


# ============================================================================= the trainer

class Trainer:
    """Builds the net, loss network, optimiser and data, and runs (or resumes) a training run.

    Args:
        config: the run's :class:`TrainConfig` (validated here).
        loss_net: the frozen feature extractor for :class:`~stablestyle.losses.PerceptualLoss`;
            ``None`` loads VGG-16 (:func:`~stablestyle.models.load_vgg16`).
            Tests pass a tiny stand-in.
        ctx: the data-parallel context (:func:`stablestyle.distributed.setup`);
            ``None``: one process on ``config.device``.
        quiet: no progress bar.
        dataset: training data (items as :mod:`stablestyle.data` yields them);
            ``None`` builds it from the config.

    ``fit()`` trains to ``config.steps`` and writes the run folder
    ``config.out``; ``restore(path)`` loads a ``last.pt`` first.
    """

    def __init__(self, config: TrainConfig, *, loss_net: nn.Module | None = None, ctx: DistContext | None = None,
                 quiet: bool = False, dataset: torch.utils.data.Dataset | None = None) -> None:
        from .checkpoint import file_sha256
        from .losses import PerceptualLoss
        from .models import TransformerNet, load_vgg16
        from .runtime import resolve_device
        from .video import load_style_image

        config.validate()
        self.config = config
        self.ctx = ctx if ctx is not None else DistContext(device=resolve_device(config.device))
        self.device = self.ctx.device
        self.quiet = quiet or not self.ctx.is_main
        self.run_dir = Path(config.out).expanduser()
        self.amp_dtype = resolve_amp(config.amp, self.device)
        if self.device.type == "cuda":
            torch.backends.cudnn.benchmark = True  # fixed crop size: autotuned kernels pay off
        self.seq_len = config.sequence_length
        self.step = 0

        seed_everything(config.seed)
        self.net = TransformerNet(width=config.width, recurrent=config.recurrent).to(self.device)
        if config.channels_last:
            self.net = self.net.to(memory_format=torch.channels_last)
        self.model: nn.Module = SequenceModel(self.net, config.detach_previous, config.channels_last)
        if self.ctx.enabled:
            from torch.nn.parallel import DistributedDataParallel

            ids = [self.device.index] if self.device.type == "cuda" else None
            self.model = DistributedDataParallel(self.model, device_ids=ids)

        self.stills, self.val_path = split_validation(config)
        # the validation image taken out of the content images (none when val_image names one, or it is reused)
        held_out = self.val_path if config.val_image is None and self.val_path not in self.stills else None
        if self.ctx.is_main and held_out is not None:
            log.info("validation image %s is held out of training (val_image chooses another)", held_out.name)
        if dataset is None:
            # rank 0 first: video flow is estimated once and cached on disk, then the others read the cache
            if not self.ctx.is_main:
                barrier(self.ctx)
            dataset = build_dataset(config, self.stills, quiet=self.quiet, held_out=held_out)
            if self.ctx.is_main:
                barrier(self.ctx)
        self.dataset = dataset
        self.style_sha256 = file_sha256(config.style)
        style = load_style_image(config.style, config.style_size).to(self.device)
        if loss_net is None:
            layers = list(dict.fromkeys([*config.style_layers, config.content_layer]))
            loss_net = load_vgg16(config.vgg_weights, device=self.device, layers=layers)
        loss_net = loss_net.to(self.device)
        if config.channels_last:
            loss_net = loss_net.to(memory_format=torch.channels_last)
        # style Gram targets are computed once, here (PerceptualLoss keeps them as buffers)
        self.perceptual = PerceptualLoss(loss_net, style, config.content_layer, config.style_layers).to(self.device)
        self.weights = config.weights
        self.optimizer = torch.optim.Adam(self.net.parameters(), lr=config.lr)
        self.scaler = torch.amp.GradScaler(self.device.type, enabled=self.amp_dtype == torch.float16)
        if len(self.dataset) == 0:  # type: ignore[arg-type]
            raise UserError("the training data is empty: check --content / --video")
        self.terms = ["content", "style", "tv"] + (["temporal"] if config.recurrent else [])
        self._val_clip: dict[str, torch.Tensor] | None = None
        self.last_metrics: dict[str, float] = {}
        self.last_val: dict[str, float] = {}
        self.replica_digests: list[str] = []
        self._in_update = False

    # ------------------------------------------------------------------ one step
    def _autocast(self) -> torch.autocast:
        return torch.autocast(self.device.type, dtype=self.amp_dtype or torch.float32,
                              enabled=self.amp_dtype is not None)

    def compute_loss(self, batch: Mapping[str, Any]) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """``(loss, metrics)`` of one batch (``frames`` ``(B, T, 3, h, w)``, ``flow_bw``, ``mask``)."""
        frames = batch["frames"].to(self.device, non_blocking=True)
        temporal = {}
        if self.config.recurrent:
            temporal = {"flow_bw": batch["flow_bw"].to(self.device, non_blocking=True),
                        "mask": batch["mask"].to(self.device, non_blocking=True),
                        "detach_previous": self.config.detach_previous}
        with self._autocast():
            outputs = self.model(frames)
            return sequence_loss(outputs, frames, self.perceptual, self.weights, **temporal)

    def train_step(self, batch: Mapping[str, Any]) -> dict[str, torch.Tensor]:
        """One optimiser step on ``batch``; returns the detached metrics (on the device)."""
        self.model.train()
        self.optimizer.zero_grad(set_to_none=True)
        loss, metrics = self.compute_loss(batch)
        # no host sync here (a GPU runs ahead); fit() checks the logged means and the weights for NaN / inf
        self.scaler.scale(loss).backward()
        self._in_update = True  # weights are half-updated until the step counter moves
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.step += 1
        self._in_update = False
        return metrics

    # ------------------------------------------------------------------ data
    def make_loader(self, start_step: int) -> torch.utils.data.DataLoader:
        """DataLoader over this rank's shard, starting at batch ``start_step`` (the resume position)."""
        sampler = SequenceSampler(len(self.dataset), self.config.batch, self.config.seed,  # type: ignore[arg-type]
                                  rank=self.ctx.rank, world_size=self.ctx.world_size, start_batch=start_step)
        workers = self.config.num_workers
        return torch.utils.data.DataLoader(
            EpochItems(self.dataset), batch_sampler=sampler, num_workers=workers,
            pin_memory=self.device.type == "cuda", persistent_workers=workers > 0,
            worker_init_fn=_worker_init if workers > 0 else None,
            generator=torch.Generator().manual_seed(self.config.seed * 1000 + self.ctx.rank),
        )

    # ------------------------------------------------------------------ validation
    def validation_clip(self) -> dict[str, torch.Tensor]:
        """The held-out synthetic clip with exact flow (built once, fixed seed): frames, flow_bw, mask."""
        if self._val_clip is None:
            image = validation_image(self.val_path, self.config.video)
            self._val_clip = {k: v.to(self.device) for k, v in
                              make_validation_clip(image, self.config.crop, self.config.val_frames).items()}
        return self._val_clip

    @torch.no_grad()
    def stylize_clip(self, frames: torch.Tensor) -> torch.Tensor:
        """Run the net (eval mode, fp32) over ``frames`` ``(T, 3, H, W)`` as a video; returns ``(T, 3, H, W)``."""
        self.net.eval()
        state, outs = None, []
        for t in range(frames.shape[0]):
            out, state = self.net(frames[t:t + 1], state)
            outs.append(out)
        self.net.train()
        return torch.cat(outs)

    def validate(self) -> dict[str, float]:
        """Instability and perceptual terms on the validation clip.

        Instability is the evaluation's :func:`~stablestyle.evaluate.metrics.mean_instability`
        (the temporal loss of Gupta et al. 2017 used as a metric), so the two report the same number.
        """
        from .evaluate.metrics import mean_instability

        clip = self.validation_clip()
        outputs = self.stylize_clip(clip["frames"])
        terms = self.perceptual.evaluate(outputs, clip["frames"])
        result = {"instability": float(mean_instability(outputs, clip["flow_bw"], clip["mask"]))}
        result.update({k: float(v.mean()) for k, v in terms.items()})
        return result

    def write_sample(self, path: Path) -> None:
        """PNG: validation frames (top row) and their stylisation (bottom row), up to 4 frames."""
        from .video import to_uint8, write_image

        frames = self.validation_clip()["frames"]
        idx = torch.linspace(0, frames.shape[0] - 1, min(4, frames.shape[0])).round().long().tolist()
        outputs = self.stylize_clip(frames)
        top = np.concatenate([to_uint8(frames[i]) for i in idx], axis=1)
        bottom = np.concatenate([to_uint8(outputs[i]) for i in idx], axis=1)
        path.parent.mkdir(parents=True, exist_ok=True)
        write_image(path, np.concatenate([top, bottom], axis=0))

    # ------------------------------------------------------------------ checkpoints
    def training_state(self, rng: list[dict[str, Any]]) -> dict[str, Any]:
        """What ``restore`` needs beyond the weights."""
        return {
            "optimizer": self.optimizer.state_dict(),
            "scaler": self.scaler.state_dict(),
            "step": self.step,
            "rng": rng,
            "data": {"batches_consumed": self.step, "seed": self.config.seed, "batch": self.config.batch,
                     "world_size": self.ctx.world_size, "dataset_len": len(self.dataset)},  # type: ignore[arg-type]
        }

    def save(self, path: Path, *, resumable: bool, rng: list[dict[str, Any]] | None = None) -> None:
        """Write a checkpoint (rank 0 only; the caller decides).  ``resumable`` adds the training state."""
        from .checkpoint import save_checkpoint

        metrics: dict[str, Any] = {**{f"train_{k}": v for k, v in self.last_metrics.items()},
                                   **{f"val_{k}": v for k, v in self.last_val.items()}}
        if self.replica_digests:
            metrics["replica_sha256"] = list(self.replica_digests)
        save_checkpoint(path, self.net, config=config_to_dict(self.config), step=self.step,
                        style_sha256=self.style_sha256, metrics=metrics,
                        training_state=self.training_state(rng or [rng_state()]) if resumable else None)

    def restore(self, path: str | os.PathLike) -> None:
        """Load weights and training state from a resumable checkpoint (``last.pt``)."""
        from .checkpoint import read_checkpoint

        payload = read_checkpoint(path, map_location="cpu")
        state = payload.get("training_state")
        if state is None:
            raise UserError(f"{path} has no training state (final.pt is not resumable); resume from "
                            f"{LAST_NAME}")
        if payload["model"] != self.net.config():
            raise UserError(f"{path} holds a net {payload['model']} but the config builds {self.net.config()}")
        self.net.load_state_dict(payload["state_dict"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scaler.load_state_dict(state["scaler"])
        self.step = int(state["step"])
        data = state.get("data", {})
        if data.get("world_size", 1) != self.ctx.world_size or data.get("dataset_len") != len(self.dataset):
            log.warning("resuming with %d process(es) and %d training items (the run had %s and %s): the data "
                        "order differs from an uninterrupted run", self.ctx.world_size, len(self.dataset),
                        data.get("world_size"), data.get("dataset_len"))
        rngs = state["rng"]
        set_rng_state(rngs[self.ctx.rank] if self.ctx.rank < len(rngs) else rngs[0])
        metrics = payload.get("metrics", {})
        self.last_val = {k[4:]: v for k, v in metrics.items() if k.startswith("val_")}
        log.info("resumed %s at step %d", path, self.step)

    # ------------------------------------------------------------------ the loop
    def _gather_rng(self) -> list[dict[str, Any]]:
        return gather_objects(rng_state(), self.ctx)

    def weights_digest(self) -> str:
        """sha256 of the net's parameters and buffers (bitwise identity of replicas)."""
        digest = hashlib.sha256()
        for name, value in self.net.state_dict().items():
            digest.update(name.encode())
            digest.update(value.detach().cpu().contiguous().numpy().tobytes())
        return digest.hexdigest()

    def check_replicas(self) -> list[str]:
        """Every rank's :meth:`weights_digest` (collective); logs an error when the replicas differ."""
        digests = gather_objects(self.weights_digest(), self.ctx)
        if len(set(digests)) > 1:
            log.error("data-parallel replicas hold different weights at step %d: %s", self.step, digests)
        return digests

    def _check_finite(self, means: Mapping[str, float]) -> None:
        bad = {k: v for k, v in means.items() if not math.isfinite(v)}
        if not bad:
            return
        if self.scaler.is_enabled():  # fp16: the gradient scaler skips overflowing steps by design
            log.warning("non-finite loss terms %s before step %d: fp16 overflow, steps skipped by the "
                        "gradient scaler", bad, self.step)
            return
        weights = ", ".join(f"{k} {v:g}" for k, v in self.weights.as_dict().items())
        raise TrainingDiverged(f"training diverged: non-finite loss terms {bad} before step {self.step}; lower the "
                               f"learning rate (lr {self.config.lr:g}) or the loss weights ({weights}), or train "
                               f"with amp off, and start afresh (--overwrite or another --out)")

    def _check_weights(self) -> None:
        """Refuse to checkpoint NaN / inf weights (they would overwrite a good last.pt)."""
        if not all(bool(torch.isfinite(p).all()) for p in self.net.parameters()):
            # --resume cannot change lr or the weights, so a fresh start is the way on
            raise TrainingDiverged(f"training diverged: the network's weights became NaN / inf by step "
                                   f"{self.step}; not saving them. Start afresh (--overwrite or another --out) "
                                   f"with a lower learning rate (lr {self.config.lr:g}) or loss weights")

    def fit(self, time_limit: float | None = None) -> dict[str, float]:
        """Train from ``self.step`` to ``config.steps``; returns the last logged metrics.

        ``time_limit`` (seconds of this call, ``None``: none) stops earlier, after
        the step during which it ran out: the run is logged, validated and saved
        as at the end (``last.pt`` to resume with more time, ``final.pt`` to use).

        On SIGINT / SIGTERM the current step completes, ``last.pt`` is written
        and ``KeyboardInterrupt`` is raised (the CLI exits 130).  A second
        Ctrl-C (or a ``KeyboardInterrupt`` raised directly) stops at once and
        still saves ``last.pt`` unless it hit the middle of an optimiser update.
        With several processes the ranks agree on stopping every
        :data:`STOP_CHECK_EVERY` steps; a rank killed outright leaves the last
        periodic checkpoint.
        """
        cfg, main = self.config, self.ctx.is_main
        log_file = CsvLog(self.run_dir / LOG_NAME, ["step", *self.terms, "total", "images_per_s", "lr"])
        val_file = CsvLog(self.run_dir / VAL_NAME, ["step", "instability", "content", "style", "tv"])
        if main:
            self.run_dir.mkdir(parents=True, exist_ok=True)
            save_config(self.run_dir / CONFIG_NAME, cfg)
            log_file.truncate(self.step)
            val_file.truncate(self.step)
        images_per_step = cfg.batch * self.seq_len * self.ctx.world_size  # over all processes
        loader = self.make_loader(self.step)
        batches = iter(loader)
        bar = _progress_bar(total=cfg.steps, initial=self.step, quiet=self.quiet)
        sums: dict[str, torch.Tensor] = {}
        count, since, overhead = 0, time.perf_counter(), 0.0
        deadline = None if time_limit is None else _clock() + time_limit
        interrupted = timed_out = False
        validated_at, first_step = -1, self.step  # a time limit still lets one step run

        def log_step() -> None:  # mean losses since the last row (a collective: every rank calls it)
            nonlocal sums, count, since, overhead
            names = list(sums)
            # .tolist() waits for the device, so the wall time below covers the real work
            means = all_reduce_mean(torch.stack([sums[k] for k in names]) / count, self.ctx).tolist()
            self.last_metrics = dict(zip(names, means))
            self._check_finite(self.last_metrics)
            speed = images_per_step * count / max(time.perf_counter() - since - overhead, 1e-9)
            if main:
                log_file.write({"step": self.step, **self.last_metrics, "images_per_s": speed,
                                "lr": self.optimizer.param_groups[0]["lr"]})
            bar.set_postfix(loss=f"{self.last_metrics['total']:.4g}", img_s=f"{speed:.1f}", refresh=False)
            sums, count, since, overhead = {}, 0, time.perf_counter(), 0.0

        def validate_step() -> None:
            nonlocal validated_at
            self.last_val = self.validate()
            val_file.write({"step": self.step, **self.last_val})
            validated_at = self.step

        try:
            with _StopRequest() as stop:
                while self.step < cfg.steps:
                    # one process: check every step; several: a collective every STOP_CHECK_EVERY steps
                    if not self.ctx.enabled or self.step % STOP_CHECK_EVERY == 0:
                        if any_rank(stop.requested, self.ctx):
                            interrupted = True
                            break
                        if deadline is not None and self.step > first_step and any_rank(_clock() >= deadline, self.ctx):
                            timed_out = True
                            break
                    try:
                        batch = next(batches)
                    except Exception:
                        if stop.requested:  # Ctrl-C also reached the loader's workers
                            interrupted = True
                            break
                        raise
                    step_start = time.perf_counter()
                    metrics = self.train_step(batch)
                    if main and self.step == first_step + 2 and self.device.type == "cpu":  # the 1st warms up
                        _warn_if_slow_on_cpu(time.perf_counter() - step_start, cfg)
                    for k, v in metrics.items():
                        sums[k] = sums[k] + v if k in sums else v.clone()
                    count += 1
                    bar.update(1)
                    if self.step % cfg.log_every == 0 or self.step == cfg.steps:
                        log_step()
                    t0 = time.perf_counter()
                    if main and (self.step % cfg.validate_every == 0 or self.step == cfg.steps):
                        validate_step()
                    if main and self.step % cfg.sample_every == 0:
                        self.write_sample(self.run_dir / SAMPLES_NAME / f"step_{self.step:08d}.png")
                    if self.step % cfg.checkpoint_every == 0 and self.step < cfg.steps:
                        self._check_weights()
                        rng = self._gather_rng()
                        if main:
                            self.save(self.run_dir / LAST_NAME, resumable=True, rng=rng)
                    overhead += time.perf_counter() - t0
                if timed_out:  # log and validate the step reached, as at the end of a run
                    if count:
                        log_step()
                    if main and validated_at != self.step:
                        validate_step()
        except KeyboardInterrupt:
            if main and not self._in_update:
                self.save(self.run_dir / LAST_NAME, resumable=True)
                log.warning("aborted at step %d; continue with: stablestyle train --resume %s", self.step,
                            self.run_dir)
            raise
        finally:
            bar.close()
            del batches, loader  # shuts persistent workers down
        self._check_weights()
        rng = [rng_state()] if interrupted else self._gather_rng()
        if self.ctx.enabled and not interrupted:
            self.replica_digests = self.check_replicas()
        if main:
            self.save(self.run_dir / LAST_NAME, resumable=True, rng=rng)
        if interrupted:
            log.warning("stopped at step %d; continue with: stablestyle train --resume %s", self.step, self.run_dir)
            raise KeyboardInterrupt
        if main:
            self.save(self.run_dir / FINAL_NAME, resumable=False)
            final_sample = self.run_dir / SAMPLES_NAME / f"step_{self.step:08d}.png"
            if not final_sample.exists():  # every run folder shows what its final.pt does
                self.write_sample(final_sample)
            if timed_out:
                log.warning("time limit reached at step %d of %d; model so far: %s; train on with: stablestyle "
                            "train --resume %s", self.step, cfg.steps, self.run_dir / FINAL_NAME, self.run_dir)
            else:
                val = self.last_val.get("instability")
                val_text = f"; validation instability {val:.3g} (val.csv)" if val is not None else ""
                log.info("finished %d step%s; model: %s%s", self.step, "s" * (self.step != 1),
                         self.run_dir / FINAL_NAME, val_text)
        return dict(self.last_metrics)


#: A CPU step slower than this gets advice to train smaller.  ``bench/train_throughput.py`` on the project's
#: 2-core CPU: the defaults (width 1.0, 256 px crops, batch 4, 4 frames) 29 s a step, configs/cpu_small.yaml's
#: setting (width 0.5, 128 px, batch 2, 4 frames) 1.7 s.
SLOW_CPU_STEP_S = 10.0


def _warn_if_slow_on_cpu(seconds: float, cfg: TrainConfig) -> None:
    """Name the CPU setting when a measured step is slow (the defaults are GPU scale)."""
    if seconds < SLOW_CPU_STEP_S:
        return
    left_h = seconds * max(cfg.steps - 2, 0) / 3600
    log.warning("a step takes %.0f s on this CPU (%d steps: ~%.0f h); the defaults are GPU scale: for a CPU train "
                "smaller, e.g. --width 0.5 --crop 128 --batch 2 (configs/cpu_small.yaml, the bundled models' "
                "setting: 1.7 s a step on 2 cores)", seconds, cfg.steps, left_h)


def _progress_bar(*, total: int, initial: int, quiet: bool):
    """A tqdm bar we can update by hand (step, losses and images/s in its postfix, time left from tqdm).

    :func:`stablestyle.runtime.progress` wraps an iterable and returns a bare
    iterator, so it cannot show the running losses; this follows its
    ``quiet`` convention.
    """
    from tqdm import tqdm

    from .runtime import LOG_BAR_SETTINGS, stderr_is_terminal

    settings = {} if stderr_is_terminal() else LOG_BAR_SETTINGS
    return tqdm(total=total, initial=initial, desc="train", unit="step", dynamic_ncols=True, disable=quiet,
                **settings)


# ============================================================================= data and images

def build_dataset(config: TrainConfig, stills: Sequence[Path], quiet: bool = True,
                  held_out: Path | None = None) -> torch.utils.data.Dataset:
    """The training data of ``config``: ``stills`` with synthetic motion and / or ``config.video``.

    :func:`stablestyle.data.build_training_data` with ``seq_len`` items of
    ``crop x crop`` pixels; items are a function of ``(seed, epoch, index)``.
    ``held_out``, the validation image taken out of the content images, is
    named in the error when no still is usable because of it.
    """
    from .data import build_training_data

    return build_training_data([str(p) for p in stills], list(config.video), seq_len=config.sequence_length,
                               crop=config.crop, video_ratio=config.video_ratio, flow_method=config.flow_method,
                               seed=config.seed, quiet=quiet, held_out=held_out)


#: Seed of the validation clip's motion: the same clip for every run and every resume.
VAL_SEED = 20170505


def make_validation_clip(image: np.ndarray, size: int, frames: int) -> dict[str, torch.Tensor]:
    """The held-out validation clip: a virtual camera over ``image`` (``uint8 (H, W, 3)``) with exact flow.

    :func:`stablestyle.synthetic.render_clip` with a fixed seed
    (:data:`VAL_SEED`), ``size x size`` pixels, one foreground patch cut from
    the same image (so the clip has occlusions).  Returns ``frames``
    ``(T, 3, H, W)`` in ``[0, 1]``, ``flow_bw`` ``(T, 2, H, W)`` pixels and
    ``mask`` ``(T, 1, H, W)`` (the exact visibility ``valid_bw``; index 0 zeros).
    """
    from .synthetic import render_clip
    from .video import to_tensor

    clip = render_clip(image, frames, (size, size), rng=np.random.default_rng(VAL_SEED), foregrounds=(image,))
    return {
        "frames": to_tensor(clip.frames),
        "flow_bw": torch.from_numpy(np.ascontiguousarray(clip.flow_bw)).permute(0, 3, 1, 2).float().contiguous(),
        "mask": torch.from_numpy(np.ascontiguousarray(clip.valid_bw))[:, None].float(),
    }
