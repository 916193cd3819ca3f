"""The training schedule: :func:`fit` runs a :class:`~stablestyle.training.trainer.Trainer` to its last step.

Owns what happens between optimiser steps: the rows of ``log.csv`` (mean
losses since the last row, images/s, lr), validation into ``val.csv``,
samples, periodic ``last.pt`` checkpoints, the progress bar, stopping on
Ctrl-C / SIGTERM or a time limit, and the final ``last.pt`` / ``final.pt``.
A step itself is :meth:`Trainer.train_step
<stablestyle.training.trainer.Trainer.train_step>`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any

import torch

from ..checkpoint import FINAL_NAME
from ..distributed import all_reduce_mean, any_rank
from .config import TrainConfig, save_config
from .rundir import (CONFIG_NAME, LAST_NAME, LOG_NAME, VAL_NAME, CsvLog, StopRequest, kept_path, rng_state,
                     sample_path)

if TYPE_CHECKING:  # the trainer imports this module, not the other way round
    from .trainer import Trainer

log = logging.getLogger(__name__)

#: With several processes, how often (steps) the ranks agree on stopping after Ctrl-C / SIGTERM.
STOP_CHECK_EVERY = 10
#: The clock of ``fit(time_limit=...)`` (a module attribute so tests can replace it).
_clock = time.monotonic
#: A CPU step slower than this gets advice to train smaller (``bench/train_throughput.py`` times a step; the
#: defaults are GPU scale and take tens of seconds a step on a small CPU).
SLOW_CPU_STEP_S = 10.0

# how the step loop ended
DONE, INTERRUPTED, TIMED_OUT = "done", "interrupted", "timed out"


def fit(trainer: Trainer, time_limit: float | None = None) -> dict[str, float]:
    """Train ``trainer`` from its step to ``config.steps``; returns the last logged metrics.

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
    books = _Bookkeeping(trainer)
    loader = trainer.make_loader(trainer.step)
    batches = iter(loader)
    deadline = None if time_limit is None else _clock() + time_limit
    try:
        with StopRequest() as stop:
            outcome = _run_steps(trainer, books, batches, stop, deadline)
            if outcome == TIMED_OUT:  # log and validate the step reached, as at the end of a run
                books.flush()
    except KeyboardInterrupt:
        if trainer.ctx.is_main and not trainer.in_update:
            trainer.save(trainer.run_dir / LAST_NAME, resumable=True)
            log.warning("aborted at step %d; continue with: stablestyle train --resume %s", trainer.step,
                        trainer.run_dir)
        raise
    finally:
        books.bar.close()
        del batches, loader  # shuts persistent workers down
    return _finish(trainer, outcome)


def _run_steps(trainer: Trainer, books: _Bookkeeping, batches: Iterator[Any], stop: StopRequest,
               deadline: float | None) -> str:
    """Steps until ``config.steps`` (:data:`DONE`), a stop request (:data:`INTERRUPTED`) or the deadline."""
    cfg, ctx = trainer.config, trainer.ctx
    first_step = trainer.step  # a time limit still lets one step run
    while trainer.step < cfg.steps:
        # one process: check every step; several: a collective every STOP_CHECK_EVERY steps
        if not ctx.enabled or trainer.step % STOP_CHECK_EVERY == 0:
            if any_rank(stop.requested, ctx):
                return INTERRUPTED
            if deadline is not None and trainer.step > first_step and any_rank(_clock() >= deadline, ctx):
                return TIMED_OUT
        try:
            batch = next(batches)
        except Exception:
            if stop.requested:  # Ctrl-C also reached the loader's workers
                return INTERRUPTED
            raise
        step_start = time.perf_counter()
        metrics = trainer.train_step(batch)
        if ctx.is_main and trainer.step == first_step + 2 and trainer.device.type == "cpu":  # the 1st warms up
            _warn_if_slow_on_cpu(time.perf_counter() - step_start, cfg)
        books.after_step(metrics)
    return DONE


def _finish(trainer: Trainer, outcome: str) -> dict[str, float]:
    """Save ``last.pt`` (and, unless interrupted, ``final.pt`` and a final sample); say how the run ended."""
    cfg, main, run_dir = trainer.config, trainer.ctx.is_main, trainer.run_dir
    interrupted = outcome == INTERRUPTED
    trainer.check_weights()
    rng = [rng_state()] if interrupted else trainer.gather_rng()
    if trainer.ctx.enabled and not interrupted:
        trainer.replica_digests = trainer.check_replicas()
    if main:
        trainer.save(run_dir / LAST_NAME, resumable=True, rng=rng)
    if interrupted:
        log.warning("stopped at step %d; continue with: stablestyle train --resume %s", trainer.step, run_dir)
        raise KeyboardInterrupt
    if not main:
        return dict(trainer.last_metrics)
    trainer.save(run_dir / FINAL_NAME, resumable=False)
    final_sample = sample_path(run_dir, trainer.step)
    if not final_sample.exists():  # every run folder shows what its final.pt does
        trainer.write_sample(final_sample)
    if outcome == TIMED_OUT:
        log.warning("time limit reached at step %d of %d; model so far: %s; train on with: stablestyle "
                    "train --resume %s", trainer.step, cfg.steps, run_dir / FINAL_NAME, run_dir)
    else:
        val = trainer.last_val.get("instability")
        val_text = f"; validation instability {val:.3g} (val.csv)" if val is not None else ""
        log.info("finished %d step%s; model: %s%s", trainer.step, "s" * (trainer.step != 1),
                 run_dir / FINAL_NAME, val_text)
    return dict(trainer.last_metrics)


class _Bookkeeping:
    """One :func:`fit` call's logs, running loss sums and progress bar, and what is due after each step."""

    def __init__(self, trainer: Trainer) -> None:
        cfg, self.trainer, self.main = trainer.config, trainer, trainer.ctx.is_main
        self.log_file = CsvLog(trainer.run_dir / LOG_NAME, ["step", *trainer.terms, "total", "images_per_s", "lr"])
        self.val_file = CsvLog(trainer.run_dir / VAL_NAME, ["step", "instability", "content", "style", "tv"])
        if self.main:
            trainer.run_dir.mkdir(parents=True, exist_ok=True)
            save_config(trainer.run_dir / CONFIG_NAME, cfg)
            self.log_file.truncate(trainer.step)
            self.val_file.truncate(trainer.step)
        self.images_per_step = cfg.batch * trainer.seq_len * trainer.ctx.world_size  # over all processes
        self.bar = _progress_bar(total=cfg.steps, initial=trainer.step, quiet=trainer.quiet)
        self.sums: dict[str, torch.Tensor] = {}
        self.count, self.since, self.overhead = 0, time.perf_counter(), 0.0
        self.validated_at = -1

    def after_step(self, metrics: Mapping[str, torch.Tensor]) -> None:
        """Add a step's metrics; write what is due at this step (log row, validation, sample, ``last.pt``)."""
        trainer, cfg = self.trainer, self.trainer.config
        for k, v in metrics.items():
            self.sums[k] = self.sums[k] + v if k in self.sums else v.clone()
        self.count += 1
        self.bar.update(1)
        step = trainer.step
        if step % cfg.log_every == 0 or step == cfg.steps:
            self.log_row()
        t0 = time.perf_counter()
        if self.main and (step % cfg.validate_every == 0 or step == cfg.steps):
            self.validate()
        if self.main and step % cfg.sample_every == 0:
            trainer.write_sample(sample_path(trainer.run_dir, step))
        if step % cfg.checkpoint_every == 0 and step < cfg.steps:
            trainer.check_weights()
            rng = trainer.gather_rng()
            if self.main:
                trainer.save(trainer.run_dir / LAST_NAME, resumable=True, rng=rng)
        if self.main and cfg.keep_every and step % cfg.keep_every == 0 and step < cfg.steps:
            kept = kept_path(trainer.run_dir, step)
            kept.parent.mkdir(exist_ok=True)
            trainer.save(kept, resumable=False)  # weights only, as final.pt
        self.overhead += time.perf_counter() - t0  # not training time: images/s leaves it out

    def log_row(self) -> None:
        """Mean losses since the last row into ``log.csv`` (a collective: every rank calls it)."""
        trainer = self.trainer
        names = list(self.sums)
        # .tolist() waits for the device, so the wall time below covers the real work
        means = all_reduce_mean(torch.stack([self.sums[k] for k in names]) / self.count, trainer.ctx).tolist()
        trainer.last_metrics = dict(zip(names, means))
        trainer.check_finite(trainer.last_metrics)
        speed = self.images_per_step * self.count / max(time.perf_counter() - self.since - self.overhead, 1e-9)
        if self.main:
            self.log_file.write({"step": trainer.step, **trainer.last_metrics, "images_per_s": speed,
                                 "lr": trainer.optimizer.param_groups[0]["lr"]})
        self.bar.set_postfix(loss=f"{trainer.last_metrics['total']:.4g}", img_s=f"{speed:.1f}", refresh=False)
        self.sums, self.count, self.since, self.overhead = {}, 0, time.perf_counter(), 0.0

    def validate(self) -> None:
        """A row of ``val.csv`` for the current step (rank 0 only)."""
        self.trainer.last_val = self.trainer.validate()
        self.val_file.write({"step": self.trainer.step, **self.trainer.last_val})
        self.validated_at = self.trainer.step

    def flush(self) -> None:
        """Log and validate the step reached, unless done already (a run stopped by its time limit)."""
        if self.count:
            self.log_row()
        if self.main and self.validated_at != self.trainer.step:
            self.validate()


def _warn_if_slow_on_cpu(seconds: float, cfg: TrainConfig) -> None:
    """Name the CPU setting when a measured step is slow (the defaults are GPU scale)."""
    if seconds < SLOW_CPU_STEP_S:
        return
    left_h = seconds * max(cfg.steps - 2, 0) / 3600
    log.warning("a step takes %.0f s on this CPU (%d steps: ~%.0f h); the defaults are GPU scale: for a CPU train "
                "smaller, e.g. --width 0.5 --crop 128 --batch 2 (configs/cpu_small.yaml; bench/train_throughput.py "
                "times a step)", seconds, cfg.steps, left_h)


def _progress_bar(*, total: int, initial: int, quiet: bool):
    """A tqdm bar we can update by hand (step, losses and images/s in its postfix, time left from tqdm).

    :func:`stablestyle.runtime.progress` wraps an iterable and returns a bare
    iterator, so it cannot show the running losses; this follows its
    ``quiet`` convention.
    """
    from tqdm import tqdm

    from ..runtime import LOG_BAR_SETTINGS, stderr_is_terminal

    settings = {} if stderr_is_terminal() else LOG_BAR_SETTINGS
    return tqdm(total=total, initial=initial, desc="train", unit="step", dynamic_ncols=True, disable=quiet,
                **settings)

