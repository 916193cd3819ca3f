"""Initial weights for training from another network: warm starts and outside checkpoints.

Gupta et al. 2017 train the recurrent network from scratch.  A recurrent
:class:`~stablestyle.models.TransformerNet` whose extra input channels (the
previous output) have zero weights computes exactly what the per-frame net
with the same other weights computes, so a trained per-frame net is a
stable model's natural starting point: fine-tuning with the temporal loss then
only has to learn to use the previous output (``stablestyle train --init``).

Two layouts are read, both as plain state dicts (``torch.load(weights_only=True)``:
a file cannot run code):

* **stablestyle**: a ``stablestyle train`` checkpoint (``state_dict`` inside,
  per-frame or recurrent) or its bare state dict;
* **fast_neural_style**: the state dict of pytorch/examples'
  ``fast_neural_style`` ``TransformerNet`` (the most common fast-style
  checkpoints).  Same module names as ours; its input is ``[0, 255]`` and its
  output unbounded ``~[0, 255]``, ours ``[0, 1]`` in and a sigmoid out.  The
  conversion scales ``conv1`` by 255 (exact) and maps the output ``y`` to
  ``sigmoid(FNS_OUTPUT_GAIN * (y / 255 - 0.5))`` by scaling the last conv:
  the same picture in mid-tones, with extremes slightly compressed until the
  fine-tune adapts.  Old files' ``in*.running_mean`` / ``running_var`` keys
  (unused by instance norm) are dropped, as pytorch/examples do.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import NamedTuple

import torch

from ..errors import UserError
from .transformer import BASE_CHANNELS, TransformerNet, scaled_channels

__all__ = ["FNS_OUTPUT_GAIN", "InitWeights", "detect_layout", "adapt_state_dict", "load_init_state", "width_of"]

#: Slope applied to fast_neural_style's output (in units of 255) before our sigmoid.
FNS_OUTPUT_GAIN = 5.0
_RUNNING_STATS = re.compile(r"in\d+\.running_(mean|var)$|\.num_batches_tracked$")


def _check_keys(state: Mapping[str, torch.Tensor]) -> None:
    if "conv1.conv2d.weight" not in state or "deconv3.conv2d.weight" not in state:
        sample = ", ".join(list(state)[:3])
        raise UserError(f"not a style transformation network's state dict (keys {sample} ...); expected "
                        "conv1.conv2d.weight ... deconv3.conv2d.weight (stablestyle or pytorch/examples "
                        "fast_neural_style)")


def detect_layout(payload: Mapping) -> str:
    """``"stablestyle"`` for a stablestyle checkpoint (its ``format`` key), else ``"fast_neural_style"``.

    ``stablestyle train`` always writes checkpoints with metadata, while
    pytorch/examples save a bare state dict; a bare state dict is therefore
    read as fast_neural_style (pass the layout explicitly to override).
    """
    return "stablestyle" if payload.get("format") == "stablestyle-checkpoint" else "fast_neural_style"


def width_of(state: Mapping[str, torch.Tensor]) -> float:
    """The width multiplier whose channel counts match ``state``'s ``conv1`` / ``conv2`` / ``conv3``."""
    counts = tuple(int(state[f"conv{i}.conv2d.weight"].shape[0]) for i in (1, 2, 3))
    for width in (counts[2] / BASE_CHANNELS[2], counts[0] / BASE_CHANNELS[0]):
        if scaled_channels(width) == counts:
            return float(width)
    raise UserError(f"channel counts {counts} match no width of TransformerNet (width 1.0 gives {BASE_CHANNELS})")


def adapt_state_dict(state: Mapping[str, torch.Tensor], *, recurrent: bool,
                     layout: str = "stablestyle") -> dict[str, torch.Tensor]:
    """``state`` as a state dict of ``TransformerNet(width_of(state), recurrent)``.

    A 3-channel ``conv1`` becomes a 6-channel one with zero weights for the
    previous output (the recurrent net then equals the per-frame one); a
    6-channel ``conv1`` loaded into a per-frame net is refused (its output
    depends on the previous frame).  ``layout="fast_neural_style"`` also
    rescales input and output (module docstring).  Float32 tensors, new
    storage (``state`` is not modified).
    """
    out = {k: v.detach().float().clone() for k, v in state.items() if not _RUNNING_STATS.search(k)}
    if layout == "fast_neural_style":
        out["conv1.conv2d.weight"] *= 255.0
        gain = FNS_OUTPUT_GAIN / 255.0
        out["deconv3.conv2d.weight"] *= gain
        out["deconv3.conv2d.bias"] = out["deconv3.conv2d.bias"] * gain - FNS_OUTPUT_GAIN / 2
    elif layout != "stablestyle":
        raise ValueError(f"unknown layout {layout!r}; valid: stablestyle, fast_neural_style")
    weight = out["conv1.conv2d.weight"]
    if weight.dim() != 4 or weight.shape[1] not in (3, 6):
        raise UserError(f"conv1 takes {weight.shape[1] if weight.dim() == 4 else '?'} input channels; "
                        "expected 3 (per-frame) or 6 (recurrent)")
    if recurrent and weight.shape[1] == 3:
        out["conv1.conv2d.weight"] = torch.cat([weight, torch.zeros_like(weight)], dim=1)
    elif not recurrent and weight.shape[1] == 6:
        raise UserError("a recurrent network cannot initialise a per-frame one (its output depends on the "
                        "previous frame); use --mode stable, or a per-frame network")
    return out


class InitWeights(NamedTuple):
    """What :func:`load_init_state` read: weights that fit ``TransformerNet(width, recurrent)``."""

    state: dict[str, torch.Tensor]
    width: float
    layout: str
    #: the training step recorded in a stablestyle checkpoint; 0 for other layouts.  A run that
    #: continues a stage from its own saved weights counts its steps on from it
    #: (``scripts/bundle_models.py --wip``).
    step: int


def _step_of(payload: Mapping, layout: str) -> int:
    step = payload.get("step", 0) if layout == "stablestyle" else 0
    return step if isinstance(step, int) and not isinstance(step, bool) and step > 0 else 0


def _payload_from_file(path: Path) -> Mapping:
    from ..checkpoint import safe_torch_load  # a run's last.pt also holds numpy RNG state: allowed, inert

    try:
        payload = safe_torch_load(path)
    except Exception as exc:  # noqa: BLE001 - an unreadable file is the user's to fix
        reason = str(exc).split("WeightsUnpickler error:")[-1].strip().splitlines()[0:1]
        raise UserError(f"{path} is not a weights file that loads safely (torch.load with weights_only): "
                        f"{reason[0] if reason else type(exc).__name__}") from exc
    if not isinstance(payload, Mapping):
        raise UserError(f"{path} holds no state dict (a dict of tensors)")
    return payload


def _state_of(payload: Mapping, path: Path) -> Mapping[str, torch.Tensor]:
    state = payload.get("state_dict", payload)
    if not isinstance(state, Mapping) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise UserError(f"{path} holds no state dict (a dict of tensors)")
    _check_keys(state)
    return state


def load_init_state(path: str | os.PathLike, *, recurrent: bool,
                    layout: str = "auto") -> InitWeights:
    """Read ``path`` (a ``.pt`` file or a run folder's ``final.pt``) as initial weights.

    ``layout``: ``"auto"`` (:func:`detect_layout`), ``"stablestyle"`` or
    ``"fast_neural_style"``.  Returns :class:`InitWeights`: the state dict fits ``TransformerNet(width, recurrent)`` (checked by loading it
    into one); non-finite weights are refused.
    """
    path = Path(path)
    if path.is_dir():
        path = path / "final.pt"
    if not path.is_file():
        raise UserError(f"--init {path}: no such file")
    payload = _payload_from_file(path)
    state = _state_of(payload, path)
    if layout == "auto":
        layout = detect_layout(payload)
    width = width_of(state)
    adapted = adapt_state_dict(state, recurrent=recurrent, layout=layout)
    if not all(torch.isfinite(v).all() for v in adapted.values()):
        raise UserError(f"--init {path}: the weights contain NaN or infinity")
    try:
        TransformerNet(width=width, recurrent=recurrent).load_state_dict(adapted)
    except RuntimeError as exc:
        raise UserError(f"--init {path}: the weights do not fit a width-{width:g} network "
                        f"({str(exc).splitlines()[0]})") from exc
    return InitWeights(adapted, width, layout, _step_of(payload, detect_layout(payload)))
