"""The run folder and what survives an interruption: file names, checkpoints' training state, logs, samples, signals.

A run folder holds ``config.yaml`` (the resolved configuration), ``log.csv``
(step, each loss term, total, images/s, lr), ``val.csv`` (instability and
perceptual terms on the held-out validation clip),
``samples/step_XXXXXXXX.png`` and atomic checkpoints: ``last.pt`` with the
training state (optimiser, grad scaler, step, Python / numpy / torch RNG
states, data position) and ``final.pt`` without it.

This module owns those names (:data:`CONFIG_NAME` ...), checking and clearing
a folder (:func:`prepare_run_dir`, :func:`clear_run_dir`), the CSV logs
(:class:`CsvLog`), sample images (:func:`sample_path`, :func:`write_sample_image`),
whether a run reached its configured steps (:func:`run_finished`),
the RNG part of the training state (:func:`seed_everything`,
:func:`rng_state`, :func:`set_rng_state`), reading a resumable checkpoint
(:func:`read_training_state`) and stopping between steps on SIGINT / SIGTERM
(:class:`StopRequest`).  It knows nothing of :class:`~stablestyle.training.TrainConfig`.
"""

from __future__ import annotations

import csv
import logging
import os
import random
import shutil
import signal
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..atomic import atomic_path
from ..checkpoint import FINAL_NAME, read_checkpoint
from ..errors import UserError

log = logging.getLogger(__name__)

#: Files a run folder may hold (``--overwrite`` removes only a folder that has ``config.yaml``).
CONFIG_NAME, LOG_NAME, VAL_NAME = "config.yaml", "log.csv", "val.csv"
LAST_NAME, SAMPLES_NAME = "last.pt", "samples"  # FINAL_NAME: stablestyle.checkpoint's, which run folders hand over
CHECKPOINTS_NAME = "checkpoints"  # keep_every's weights


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

def sample_path(run_dir: Path, step: int) -> Path:
    """Where the sample image of ``step`` goes: ``samples/step_XXXXXXXX.png``."""
    return run_dir / SAMPLES_NAME / f"step_{step:08d}.png"


def kept_path(run_dir: Path, step: int) -> Path:
    """Where ``keep_every`` keeps the weights of ``step``: ``checkpoints/step_XXXXXXXX.pt``."""
    return run_dir / CHECKPOINTS_NAME / f"step_{step:08d}.pt"


def write_sample_image(path: Path, frames: torch.Tensor, outputs: torch.Tensor) -> None:
    """PNG: ``frames`` (top row) and ``outputs`` (bottom row), both ``(T, 3, H, W)``, up to 4 frames of them."""
    from ..video import to_uint8, write_image

    idx = torch.linspace(0, frames.shape[0] - 1, min(4, frames.shape[0])).round().long().tolist()
    top = np.concatenate([to_uint8(frames[i]) for i in idx], axis=1)
    bottom = np.concatenate([to_uint8(outputs[i]) for i in idx], axis=1)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_image(path, np.concatenate([top, bottom], axis=0))


def run_finished(run_dir: str | os.PathLike) -> bool:
    """Whether ``run_dir/final.pt`` reached the steps its configuration asked for.

    A run stopped by ``--time-limit`` writes ``final.pt`` too (the model so
    far), so the file alone does not say the run is done.
    """
    path = Path(run_dir) / FINAL_NAME
    if not path.exists():
        return False
    payload = read_checkpoint(path)
    steps = (payload.get("config") or {}).get("steps")
    return steps is not None and int(payload["step"]) >= int(steps)


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



def read_training_state(path: str | os.PathLike, model_config: Mapping[str, Any]) -> tuple[dict, dict]:
    """``(payload, training_state)`` of a resumable checkpoint whose net matches ``model_config``.

    Raises :class:`UserError` for a checkpoint without training state
    (``final.pt``) or one holding another net.
    """
    from ..checkpoint import read_checkpoint

    payload = read_checkpoint(path, map_location="cpu")
    state = payload.get("training_state")
    if state is None:
        raise UserError(f"{path} has no training state (final.pt is not resumable); resume from "
                        f"{LAST_NAME}")
    if payload["model"] != model_config:
        raise UserError(f"{path} holds a net {payload['model']} but the config builds {model_config}")
    return payload, state


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


class StopRequest:
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

    def __enter__(self) -> StopRequest:
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM, *([signal.SIGHUP] if hasattr(signal, "SIGHUP") else [])):
                self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc: Any) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)

