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

Writes are atomic (temporary name in the same folder, flushed to disk, then
``os.replace``), so a killed run never leaves a truncated checkpoint under the
final name.

Loading never runs code from the file: ``torch.load(weights_only=True)``, whose
unpickler builds only tensors, plain containers, numbers and strings, plus the
numpy array types that the RNG state of a resumable checkpoint holds
(:data:`SAFE_GLOBALS`).  A file that names anything else (a pickled function
call, a class) is refused with a :class:`UserError` before any of it runs.
The settings and weights read are then checked (types, ranges, finiteness)
before a network is built from them.
"""

from __future__ import annotations

import errno
import hashlib
import logging
import math
import os
import pickle
import re
from pathlib import Path
from typing import Any

import torch

from . import __version__
from .atomic import atomic_path
from .errors import UserError, first_line
from .inputs import check_input_file

log = logging.getLogger(__name__)

FORMAT = "stablestyle-checkpoint"
FORMAT_VERSION = 1
#: The checkpoint that a run folder of ``stablestyle train`` hands over for use.
FINAL_NAME = "final.pt"
#: Largest channel multiplier a checkpoint may ask for (width 1.0 is Johnson et al.'s net); larger values
#: in a file are damage or malice, and would ask for gigabytes before any weight is checked.
MAX_WIDTH = 4.0


def _numpy_safe_globals() -> list:
    """The numpy callables that unpickle a plain numeric array (``np.random.get_state()`` holds one).

    ``_reconstruct`` and ``ndarray`` build an empty array whose contents come from the restricted
    unpickler itself, so they cannot reach arbitrary code.
    """
    import numpy as np

    try:
        from numpy._core.multiarray import _reconstruct
    except ImportError:  # pragma: no cover - numpy < 2
        from numpy.core.multiarray import _reconstruct
    return [_reconstruct, np.ndarray, np.dtype, type(np.dtype(np.uint32))]


def safe_torch_load(path: str | os.PathLike, map_location: str | torch.device = "cpu") -> Any:
    """``torch.load`` that cannot run code: only tensors, plain data and numeric numpy arrays are built.

    Raises ``pickle.UnpicklingError`` for a file that names anything else, and whatever ``torch.load``
    raises for a corrupt file; :func:`read_checkpoint` turns both into a :class:`UserError`.
    """
    with torch.serialization.safe_globals(_numpy_safe_globals()):
        return torch.load(path, map_location=map_location, weights_only=True)


def _load_error(exc: BaseException) -> str:
    """One short line saying why :func:`safe_torch_load` failed (torch's text is a page of advice)."""
    text = str(exc)
    if "WeightsUnpickler error:" in text:
        cause = text.split("WeightsUnpickler error:", 1)[1]
        named = re.search(r"GLOBAL (\S+)", cause)
        if named:
            return (f"refused unrun: it names {named.group(1)}, which a checkpoint may not contain "
                    "(code or a foreign type)")
        return f"{type(exc).__name__}: {first_line(cause)}"  # not a pickle at all (an image renamed .pt, ...)
    text = first_line(text)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def file_sha256(path: str | os.PathLike) -> str:
    """Hex sha256 of a file's bytes (identifies the style image a model was trained on)."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def atomic_torch_save(obj: Any, path: str | os.PathLike) -> None:
    """``torch.save`` to a temporary file beside ``path``, then rename over it.

    The payload goes through an open file object: ``torch.save`` given a file *name* names the archive's inner
    folder after it (here the temporary's random name), so the same payload would give different bytes, and a
    re-bundled, unchanged model a new weights hash. Through a file object the folder is always ``archive``.

    A full disk makes the write raise ``OSError`` (or, from ``torch.save``'s C++ writer, ``RuntimeError``
    "file write failed"); either becomes an ``OSError`` naming ``path`` (ENOSPC when the disk is indeed full,
    else EIO), which the CLI reports in one line with exit status 1.
    """
    with atomic_path(path) as tmp:
        try:
            with open(tmp, "wb") as fh:
                torch.save(obj, fh)
        except OSError as exc:
            raise OSError(exc.errno or _write_errno(tmp), exc.strerror or "could not write the checkpoint",
                          str(path)) from None
        except RuntimeError as exc:
            if "write" not in str(exc).lower():
                raise
            raise OSError(_write_errno(tmp), "could not write the checkpoint (disk full?)", str(path)) from None


def _write_errno(path: Path) -> int:
    """ENOSPC when the file system of ``path`` has no room left, else EIO."""
    try:
        stat = os.statvfs(path.parent)
    except OSError:
        return errno.EIO
    return errno.ENOSPC if stat.f_bavail * stat.f_frsize < (64 << 20) else errno.EIO


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
    if not path.exists():
        raise UserError(f"checkpoint {path} does not exist (see `stablestyle models` for bundled names)")
    check_input_file(path, "checkpoint")
    try:
        payload = safe_torch_load(path, map_location)
    except (pickle.UnpicklingError, RuntimeError, EOFError, ValueError, TypeError, AttributeError, KeyError,
            ImportError, IndexError, OSError, UnicodeDecodeError, OverflowError, MemoryError) as exc:
        raise UserError(f"{path} is not a stablestyle checkpoint ({_load_error(exc)}); train one with "
                        "`stablestyle train`, or pass a bundled name from `stablestyle models`") from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise UserError(
            f"{path} is not a stablestyle checkpoint (train one with `stablestyle train`, "
            "or pass a bundled name from `stablestyle models`)"
        )
    version = payload.get("format_version", 0)
    if isinstance(version, bool) or not isinstance(version, int):
        raise UserError(f"{path} has format_version {version!r}, not a whole number; the file is damaged")
    if version > FORMAT_VERSION:
        raise UserError(
            f"{path} has checkpoint format {payload['format_version']}, newer than this stablestyle "
            f"{__version__} understands ({FORMAT_VERSION}); upgrade stablestyle"
        )
    for key in ("model", "state_dict", "step"):
        if key not in payload:
            raise UserError(f"{path} is missing '{key}'; the file is damaged or was not written by stablestyle")
    check_model_settings(payload["model"], str(path))
    check_weights(payload["state_dict"], str(path))
    return payload


def check_model_settings(settings: Any, source: str = "checkpoint") -> None:
    """:class:`UserError` unless ``settings`` is ``{"width": 0 < number <= MAX_WIDTH, "recurrent": bool}``
    plus, optionally, ``"edge_margin": 0 <= int <= MAX_MARGIN`` (checkpoints written before it had none: 0)."""
    from .models.transformer import MAX_MARGIN

    if not isinstance(settings, dict):
        raise UserError(f"{source}: model settings must be a mapping, got {type(settings).__name__}")
    unknown = sorted(str(k) for k in settings if k not in ("width", "recurrent", "edge_margin"))
    if unknown:
        raise UserError(f"{source}: unknown model settings {', '.join(unknown)} (valid: width, recurrent, "
                        "edge_margin); the file is damaged or its settings were edited")
    margin = settings.get("edge_margin", 0)
    if isinstance(margin, bool) or not isinstance(margin, int) or not 0 <= margin <= MAX_MARGIN:
        raise UserError(f"{source}: model setting edge_margin={margin!r} is not a whole number of pixels in "
                        f"[0, {MAX_MARGIN}]; the file is damaged or its settings were edited")
    width = settings.get("width", 1.0)
    if isinstance(width, bool) or not isinstance(width, (int, float)) or not (
            math.isfinite(width) and 0 < width <= MAX_WIDTH):
        raise UserError(f"{source}: model width {width!r} is not a number in (0, {MAX_WIDTH:g}]; "
                        "the file is damaged or its settings were edited")
    if not isinstance(settings.get("recurrent", True), bool):
        raise UserError(f"{source}: model setting recurrent={settings['recurrent']!r} is not true or false; "
                        "the file is damaged or its settings were edited")


def check_weights(state: Any, source: str = "checkpoint") -> None:
    """:class:`UserError` unless ``state`` maps names to tensors whose values are all finite.

    A net with NaN or infinite weights renders black frames; refuse it where it is loaded.
    """
    if not isinstance(state, dict) or not all(isinstance(k, str) and isinstance(v, torch.Tensor)
                                              for k, v in state.items()):
        raise UserError(f"{source}: its state_dict is not a mapping of names to tensors; the file is damaged")
    bad = [k for k, v in state.items() if v.is_floating_point() and not bool(torch.isfinite(v).all())]
    if bad:
        raise UserError(f"{source}: {len(bad)} weight tensor(s) hold NaN or infinite values ({', '.join(bad[:2])}); "
                        "the training diverged or the file is damaged; use an earlier checkpoint")


def model_from_checkpoint(payload: dict, source: str = "checkpoint") -> torch.nn.Module:
    """Rebuild the network described by a checkpoint dict and load its weights (float32, eval mode)."""
    from .models import TransformerNet

    check_model_settings(payload["model"], source)
    check_weights(payload["state_dict"], source)
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
    margin = config.get("edge_margin", 0)
    return f"{kind} net, width {config.get('width', 1.0):g}" + (f", edge margin {margin} px" if margin else "")


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
