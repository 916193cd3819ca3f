"""Checkpoint files: weights plus everything needed to trust and rebuild them.

A checkpoint is a ``torch.save`` dict::

    {
      "format": "stablestyle-checkpoint", "format_version": 1,
      "version": "<package version that wrote it>",
      "model": {"width": 1.0, "recurrent": True},      # TransformerNet(**model)
      "state_dict": {...},
      "config": {...},            # the training config that produced it (plain data)
      "style_sha256": "...",      # hash of the style image file (or None)
      "step": 1234,               # optimiser steps taken
      "metrics": {...},           # measured figures (optional)
      "training_state": {...},    # optimiser / scaler / RNG state, only in resumable checkpoints
    }

Writes are atomic (temporary name in the same folder, then ``os.replace``), so
a killed run never leaves a truncated checkpoint under the final name.
"""

from __future__ import annotations

import hashlib
import logging
import os
from pathlib import Path
from typing import Any

import torch

from . import __version__
from .atomic import atomic_path
from .errors import UserError, first_line

log = logging.getLogger(__name__)

FORMAT = "stablestyle-checkpoint"
FORMAT_VERSION = 1
#: The checkpoint that a run folder of ``stablestyle train`` hands over for use.
FINAL_NAME = "final.pt"


def file_sha256(path: str | os.PathLike) -> str:
    """Hex sha256 of a file's bytes (identifies the style image a model was trained on)."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def atomic_torch_save(obj: Any, path: str | os.PathLike) -> None:
    """``torch.save`` to a temporary file beside ``path``, then rename over it."""
    with atomic_path(path) as tmp:
        torch.save(obj, tmp)


def save_checkpoint(
    path: str | os.PathLike,
    model: torch.nn.Module,
    *,
    config: dict | None = None,
    step: int = 0,
    style_sha256: str | None = None,
    metrics: dict | None = None,
    training_state: dict | None = None,
    half: bool = False,
) -> None:
    """Write ``model`` (a :class:`~stablestyle.models.TransformerNet`) and its metadata atomically.

    ``half=True`` stores floating-point weights as float16 (bundled models:
    half the size; they are upcast on load).  ``training_state`` carries what
    ``--resume`` needs (optimiser, scaler, RNG states) and is omitted from
    release checkpoints.
    """
    net = getattr(model, "module", model)  # unwrap DistributedDataParallel
    state = {k: (v.detach().to("cpu", torch.float16) if half and v.is_floating_point() else v.detach().cpu())
             for k, v in net.state_dict().items()}
    payload = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "version": __version__,
        "model": net.config(),
        "state_dict": state,
        "config": config or {},
        "style_sha256": style_sha256,
        "step": int(step),
        "metrics": metrics or {},
    }
    if training_state is not None:
        payload["training_state"] = training_state
    atomic_torch_save(payload, path)


def read_checkpoint(path: str | os.PathLike, map_location: str | torch.device = "cpu") -> dict:
    """Load and validate a checkpoint dict; every problem is a :class:`UserError` naming the file."""
    path = Path(path)
    if path.is_dir():
        raise UserError(f"{path} is a folder; give a checkpoint file (e.g. {path / FINAL_NAME})")
    if not path.is_file():
        raise UserError(f"checkpoint {path} does not exist (see `stablestyle models` for bundled names)")
    try:
        payload = torch.load(path, map_location=map_location, weights_only=False)
    except Exception as exc:  # pickle / zip errors: a corrupt or foreign file (an image renamed .pt, ...)
        text = first_line(str(exc))  # the CLI prints errors on one line
        reason = f"{type(exc).__name__}: {text}" if text else type(exc).__name__
        raise UserError(f"{path} is not a stablestyle checkpoint ({reason}); train one with `stablestyle train`, "
                        "or pass a bundled name from `stablestyle models`") from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise UserError(
            f"{path} is not a stablestyle checkpoint (train one with `stablestyle train`, "
            "or pass a bundled name from `stablestyle models`)"
        )
    if payload.get("format_version", 0) > FORMAT_VERSION:
        raise UserError(
            f"{path} has checkpoint format {payload['format_version']}, newer than this stablestyle "
            f"{__version__} understands ({FORMAT_VERSION}); upgrade stablestyle"
        )
    for key in ("model", "state_dict", "step"):
        if key not in payload:
            raise UserError(f"{path} is missing '{key}'; the file is damaged or was not written by stablestyle")
    return payload


def model_from_checkpoint(payload: dict, source: str = "checkpoint") -> torch.nn.Module:
    """Rebuild the network described by a checkpoint dict and load its weights (float32, eval mode)."""
    from .models import TransformerNet

    try:
        model = TransformerNet(**payload["model"])
    except TypeError as exc:
        raise UserError(f"{source}: unknown model settings {payload['model']} ({exc})") from None
    state = {k: (v.float() if v.is_floating_point() else v) for k, v in payload["state_dict"].items()}
    expected = model.state_dict()
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    wrong = sorted(k for k in set(expected) & set(state) if expected[k].shape != state[k].shape)
    if missing or unexpected or wrong:
        raise UserError(
            f"{source}: weights do not match the network {payload['model']} (missing {len(missing)} keys "
            f"{missing[:2]}, unexpected {len(unexpected)} {unexpected[:2]}, wrong shape {len(wrong)} {wrong[:2]}); "
            "the file is damaged or its settings were edited"
        )
    model.load_state_dict(state)
    return model.eval()


def resolve_checkpoint(path_or_name: str | os.PathLike) -> Path:
    """The checkpoint file meant by a path, a training run folder or a bundled model name.

    A bare name of a bundled model (``scream``) means the bundled model, even where a file or
    folder of that name exists here (that one is reached as ``./scream``; a warning says so).  A
    folder stands for its ``final.pt`` (what ``stablestyle train --out`` writes; the choice is
    logged); a folder without one is a :class:`UserError` naming the checkpoints it holds.  Any
    other bare name that is not a file here is looked up among the bundled models (unknown names
    list them).  Missing files are left for :func:`read_checkpoint` to report.
    """
    path = Path(path_or_name)
    bare = path.suffix == "" and os.sep not in str(path_or_name) and (os.altsep or os.sep) not in str(path_or_name)
    if bare:
        from .bundled import available, bundled_path

        if str(path_or_name) in available():
            if path.exists():
                log.warning("--model %s: using the bundled model %s, not the %s of that name here (give ./%s "
                            "for that)", path_or_name, path_or_name, "folder" if path.is_dir() else "file",
                            path_or_name)
            return bundled_path(str(path_or_name))
    if path.is_dir():
        final = path / FINAL_NAME
        if final.is_file():
            log.info("%s is a run folder: using its %s", path, FINAL_NAME)
            return final
        found = sorted(p.name for p in path.glob("*.pt") if not p.name.startswith("."))
        held = f" (it holds {', '.join(found[:5])})" if found else ""
        raise UserError(f"{path} is a folder without {FINAL_NAME}{held}; give a checkpoint file "
                        f"(e.g. {path / (found[0] if found else FINAL_NAME)})")
    if bare and not path.exists():
        return bundled_path(str(path_or_name))  # an unknown name: the error lists the bundled ones
    return path


def describe_net(config: dict) -> str:
    """A checkpoint's ``model`` config in words, e.g. ``"recurrent net, width 0.5"``."""
    kind = "recurrent" if config.get("recurrent", True) else "per-frame"
    return f"{kind} net, width {config.get('width', 1.0):g}"


def load_checkpoint(path_or_name: str | os.PathLike, map_location: str | torch.device = "cpu"):
    """``(model, meta)`` from a checkpoint path, a training run folder (its ``final.pt``) or a bundled
    model name (see :func:`resolve_checkpoint`).

    ``meta`` is the checkpoint dict without ``state_dict`` / ``training_state``; ``meta["path"]`` is
    the file read.
    """
    path = resolve_checkpoint(path_or_name)
    payload = read_checkpoint(path, map_location)
    model = model_from_checkpoint(payload, source=str(path))
    meta = {k: v for k, v in payload.items() if k not in ("state_dict", "training_state")}
    meta["path"] = str(path)
    return model, meta
