"""One training run's parts: :class:`Trainer` builds the net, loss, optimiser and data, and does one step.

:class:`Trainer` holds everything a run needs (the recurrent net wrapped in
:class:`~stablestyle.training.objective.SequenceModel`, the frozen loss
network with the style targets, Adam, the gradient scaler, the dataset and
the validation clip) and does the unit operations: one optimiser step
(:meth:`Trainer.train_step`), validation, samples, checkpoints and resuming.
The schedule that strings them together (logging, validation and checkpoint
cadence, interruption, time limit) is :func:`stablestyle.training.loop.fit`,
run by :meth:`Trainer.fit`.

Runs survive interruption: :meth:`Trainer.restore` of a ``last.pt``
continues exactly where a run stopped, since the data order is a function of
``(seed, step)`` only (:class:`~stablestyle.distributed.SequenceSampler`).
"""

from __future__ import annotations

import hashlib
import logging
import math
import os
import random
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from ..distributed import DistContext, EpochItems, SequenceSampler, barrier, gather_objects
from ..errors import UserError
from ..inference.precision import cpu_has_native_bf16
from . import loop
from .config import AMP_MODES, TrainConfig, config_to_dict
from .distill import distill_loss, load_teacher, teacher_outputs
from .inputs import build_dataset, make_validation_clip, split_validation, validation_image
from .objective import SequenceModel, centre_window, loss_window, sequence_loss
from .rundir import read_training_state, rng_state, seed_everything, set_rng_state, write_sample_image

log = logging.getLogger(__name__)


class TrainingDiverged(UserError, FloatingPointError):
    """The losses or the network's weights became NaN / inf (learning rate or loss weights too large).

    A :class:`UserError` (the CLI prints one line and exits 2: the settings
    are the user's to change) and a ``FloatingPointError`` (what it is).
    """


def resolve_amp(amp: str, device: torch.device) -> torch.dtype | None:
    """Autocast dtype for ``amp`` on ``device`` (``None`` = full precision).

    ``auto``: bf16 on CUDA GPUs that support it, else fp16; off on CPU (CPU
    bf16 autocast is opt-in: it is only faster on CPUs with AMX / AVX512-BF16;
    ``bf16`` on a CPU without them is allowed, with a warning).
    """
    if amp == "off":
        return None
    if amp == "bf16":
        if device.type == "cpu" and cpu_has_native_bf16() is False:
            log.warning("this CPU has no native bf16 (AVX-512 BF16 / AMX): --amp bf16 is emulated and many times "
                        "slower than fp32 here; train with --amp off")
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



def _worker_init(worker_id: int) -> None:
    # torch seeds each worker from the loader's private generator; give numpy / random the same seed
    seed = torch.initial_seed() % 2**32
    random.seed(seed)
    np.random.seed(seed)



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
    ``config.out``; ``restore(path)`` loads a ``last.pt`` first.  Everything
    the run reads, the validation clip included, is read here, before step 1.
    """

    def __init__(self, config: TrainConfig, *, loss_net: nn.Module | None = None, ctx: DistContext | None = None,
                 quiet: bool = False, dataset: torch.utils.data.Dataset | None = None) -> None:
        from ..runtime import resolve_device

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
        self.init_step = 0  # the step of config.init's weights (kept in checkpoints: the file may change later)

        seed_everything(config.seed)
        self._build_net()
        self.dataset = self._build_data(dataset)
        self._build_loss(loss_net)
        self.optimizer = torch.optim.Adam(self.net.parameters(), lr=config.lr)
        self.scaler = torch.amp.GradScaler(self.device.type, enabled=self.amp_dtype == torch.float16)
        if len(self.dataset) == 0:  # type: ignore[arg-type]
            raise UserError("the training data is empty: check --content / --video")
        self.terms = ["content", "style", "tv"] + (["temporal"] if config.recurrent else [])
        self.teacher: nn.Module | None = None
        if config.teacher:  # distillation: the teacher's output is the target (:mod:`.distill`)
            self.teacher = load_teacher(config.teacher, recurrent=config.recurrent, device=self.device)[0]
            self.terms = ["distill"] + (["temporal"] if config.distill_temporal else [])
        self._val_clip: dict[str, torch.Tensor] | None = None
        self.last_metrics: dict[str, float] = {}
        self.last_val: dict[str, float] = {}
        self.replica_digests: list[str] = []
        self.in_update = False  # True while an optimiser step is half done (then no checkpoint may be written)
        if self.ctx.is_main:  # validation reads strictly: fail now, not at the first validation step
            self.validation_clip()

    def _build_net(self) -> None:
        """The transformation net (``self.net``) and its unrolled, possibly DDP-wrapped form (``self.model``)."""
        from ..models import TransformerNet

        config = self.config
        self.net = TransformerNet(width=config.width, recurrent=config.recurrent, edge_margin=config.edge_margin)
        if config.init:
            self._load_init(self.net)
        self.net = self.net.to(self.device)
        if config.channels_last:
            self.net = self.net.to(memory_format=torch.channels_last)
        self.net.margin_in_training = config.margin_in_training
        self.model: nn.Module = SequenceModel(self.net, config.detach_previous, config.channels_last)
        if self.ctx.enabled:
            from torch.nn.parallel import DistributedDataParallel

            ids = [self.device.index] if self.device.type == "cuda" else None
            self.model = DistributedDataParallel(self.model, device_ids=ids)

    def _load_init(self, net: nn.Module) -> None:
        """Start from ``config.init`` (a warm start; :mod:`stablestyle.models.warmstart`)."""
        from ..models.warmstart import load_init_state

        config = self.config
        state, width, layout, self.init_step = load_init_state(config.init, recurrent=config.recurrent,
                                                               layout=config.init_layout)
        if width != config.width:
            raise UserError(f"--init {config.init} is a width-{width:g} network but the run trains width "
                            f"{config.width:g}; pass --width {width:g}")
        net.load_state_dict(state)
        if self.ctx.is_main:
            log.info("initialised from %s (%s layout)", config.init, layout)

    def _build_data(self, dataset: torch.utils.data.Dataset | None) -> torch.utils.data.Dataset:
        """``dataset``, or the config's; sets ``self.stills`` and ``self.val_path``."""
        config = self.config
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
        return dataset

    def _build_loss(self, loss_net: nn.Module | None) -> None:
        """``self.perceptual`` (style Gram targets computed once, here) and ``self.weights``."""
        from ..checkpoint import file_sha256
        from ..losses import PerceptualLoss
        from ..models import load_vgg16
        from ..video import load_style_image

        config = self.config
        self.style_sha256 = file_sha256(config.style)
        style = load_style_image(config.style, config.style_size).to(self.device)
        if loss_net is None:
            layers = list(dict.fromkeys([*config.style_layers, config.content_layer]))
            loss_net = load_vgg16(config.vgg_weights, device=self.device, layers=layers)
        loss_net = loss_net.to(self.device)
        if config.channels_last:
            loss_net = loss_net.to(memory_format=torch.channels_last)
        # PerceptualLoss keeps the style targets as buffers
        self.perceptual = PerceptualLoss(loss_net, style, config.content_layer, config.style_layers).to(self.device)
        self.weights = config.weights

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
        size = tuple(frames.shape[-2:])
        if self.config.context_margin:
            window = centre_window(size, self.config.edge_margin)
        else:
            window = loss_window(size, self.config.loss_margin, self.config.seed, self.step)
        with self._autocast():
            outputs = self.model(frames)
            if self.teacher is not None:
                return distill_loss(outputs, teacher_outputs(self.teacher, frames), flow_bw=temporal.get("flow_bw"),
                                    mask=temporal.get("mask"), temporal_weight=self.config.distill_temporal)
            return sequence_loss(outputs, frames, self.perceptual, self.weights, window=window, **temporal)

    def train_step(self, batch: Mapping[str, Any]) -> dict[str, torch.Tensor]:
        """One optimiser step on ``batch``; returns the detached metrics (on the device)."""
        self.model.train()
        self.optimizer.zero_grad(set_to_none=True)
        loss, metrics = self.compute_loss(batch)
        # no host sync here (a GPU runs ahead); fit() checks the logged means and the weights for NaN / inf
        self.scaler.scale(loss).backward()
        self.in_update = True  # weights are half-updated until the step counter moves
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.step += 1
        self.in_update = False
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
        from ..evaluate.metrics import mean_instability

        clip = self.validation_clip()
        outputs = self.stylize_clip(clip["frames"])
        terms = self.perceptual.evaluate(outputs, clip["frames"])
        result = {"instability": float(mean_instability(outputs, clip["flow_bw"], clip["mask"]))}
        result.update({k: float(v.mean()) for k, v in terms.items()})
        return result

    def write_sample(self, path: Path) -> None:
        """PNG: validation frames (top row) and their stylisation (bottom row), up to 4 frames."""
        frames = self.validation_clip()["frames"]
        write_sample_image(path, frames, self.stylize_clip(frames))

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
        from ..checkpoint import save_checkpoint

        metrics: dict[str, Any] = {**{f"train_{k}": v for k, v in self.last_metrics.items()},
                                   **{f"val_{k}": v for k, v in self.last_val.items()}}
        if self.config.init:
            metrics["init_step"] = self.init_step
        if self.replica_digests:
            metrics["replica_sha256"] = list(self.replica_digests)
        save_checkpoint(path, self.net, config=config_to_dict(self.config), step=self.step,
                        style_sha256=self.style_sha256, metrics=metrics,
                        training_state=self.training_state(rng or [rng_state()]) if resumable else None)

    def restore(self, path: str | os.PathLike) -> None:
        """Load weights and training state from a resumable checkpoint (``last.pt``)."""
        payload, state = read_training_state(path, self.net.config())
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
        self.init_step = int(metrics.get("init_step", 0))  # as at the run's start, not as the file is now
        log.info("resumed %s at step %d", path, self.step)

    # ------------------------------------------------------------------ checks the loop makes
    def gather_rng(self) -> list[dict[str, Any]]:
        """Every rank's :func:`~stablestyle.training.rundir.rng_state` (collective), for ``last.pt``."""
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

    def check_finite(self, means: Mapping[str, float]) -> None:
        """Raise :class:`TrainingDiverged` when a logged mean loss is NaN / inf (fp16: warn, the scaler copes)."""
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

    def check_weights(self) -> None:
        """Refuse to checkpoint NaN / inf weights (they would overwrite a good last.pt)."""
        if not all(bool(torch.isfinite(p).all()) for p in self.net.parameters()):
            # --resume cannot change lr or the weights, so a fresh start is the way on
            raise TrainingDiverged(f"training diverged: the network's weights became NaN / inf by step "
                                   f"{self.step}; not saving them. Start afresh (--overwrite or another --out) "
                                   f"with a lower learning rate (lr {self.config.lr:g}) or loss weights")

    # ------------------------------------------------------------------ the run
    def fit(self, time_limit: float | None = None) -> dict[str, float]:
        """Train from ``self.step`` to ``config.steps``; returns the last logged metrics.

        :func:`stablestyle.training.loop.fit` (stopping on Ctrl-C / SIGTERM or
        after ``time_limit`` seconds, with ``last.pt`` saved, is described there).
        """
        return loop.fit(self, time_limit)
