"""ONNX export of the (recurrent) transformation network: the graph, its metadata, the file.

Owns :func:`export_onnx`, :func:`onnx_bytes` (what the onnx backend runs), the graph's
input / output names, :class:`OnnxExportConfig` and :func:`read_onnx_metadata`.

The exported graph is stateless; the recurrent state travels through it
explicitly (Gupta et al. 2017, Sec. 4: the net sees the previous *output*):

* inputs ``frame`` and, for recurrent nets, ``prev`` -- both ``(B, 3, H, W)``
  float32 RGB in ``[0, 1]``; on the first frame of a clip pass the frame
  itself as ``prev`` (what :class:`~stablestyle.models.TransformerNet` does
  for ``state=None``), and do the same to reset the state at a scene cut
  (:class:`stablestyle.scenecut.SceneCutDetector` ``.update(frame)`` says
  where, on the uint8 input frames);
* output ``out`` -- ``(B, 3, H, W)`` float32 in ``(0, 1)``; feed it back as the
  next frame's ``prev``.

Exporter: torch 2.13's :func:`torch.onnx.export` defaults to the dynamo
(``torch.export``) exporter, which needs the ``onnxscript`` package.  We use
the TorchScript-tracing exporter (``dynamo=False``) instead: it needs only
``onnx``, takes well under a second, and -- checked with torch 2.13 /
onnxruntime 1.32 -- gives a graph whose outputs match PyTorch to ~1e-6 at
every frame size.  (The dynamo exporter, tried with onnxscript 0.7.2, took
~10 s and silently specialised the network's pad-to-multiple-of-4 step to
the example size, giving wrong outputs at other sizes.)

Dynamic sizes: the network pads frames to a multiple of 4 only when needed
(:class:`~stablestyle.models.InputPadder`), a Python ``if`` that tracing
would freeze at the example size.  :class:`OnnxExportWrapper` therefore pads
explicitly and always (a zero-width reflect pad is a no-op), so the traced
graph computes the padding from the input's shape and works at any ``H, W``.
"""

from __future__ import annotations

import copy
import io
import logging
import os
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from .. import __version__
from ..atomic import atomic_path
from ..errors import UserError
from .rewrites import split_thin_convs

log = logging.getLogger(__name__)

INPUT_FRAME = "frame"
INPUT_PREV = "prev"
OUTPUT = "out"
DEFAULT_OPSET = 17
#: Opsets the TorchScript exporter of torch 2.13 writes for this network (reflect padding with
#: computed sizes needs opset >= 11); each was exported and passed onnx.checker here.
MIN_OPSET, MAX_OPSET = 11, 23
#: Smallest frame side accepted (the network's own limit).
MIN_SIDE = 5


@dataclass(frozen=True)
class OnnxExportConfig:
    """How to export.

    ``height`` / ``width``: the example frame size in pixels (the only size a
    static graph accepts).  ``dynamic``: batch, height and width become free
    axes (``batch``, ``height``, ``width``).  ``opset``: ONNX opset version.
    ``split_convs``: export thin 9x9 convolutions phase-split
    (:class:`stablestyle.inference.rewrites.PhaseSplitConv2d`: the same outputs, faster
    on CPU runtimes; GPU runtimes gain nothing).
    """

    height: int = 360
    width: int = 640
    dynamic: bool = False
    opset: int = DEFAULT_OPSET
    split_convs: bool = False

    def validate(self) -> None:
        """Raise :class:`UserError` for a size or opset the exporter cannot produce."""
        for name in ("height", "width"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < MIN_SIDE:
                raise UserError(f"--{name} must be a whole number of pixels >= {MIN_SIDE}, got {value!r}")
        if isinstance(self.opset, bool) or not isinstance(self.opset, int) or not MIN_OPSET <= self.opset <= MAX_OPSET:
            raise UserError(f"--opset must be between {MIN_OPSET} and {MAX_OPSET} (default {DEFAULT_OPSET}), "
                            f"got {self.opset!r}")


class OnnxExportWrapper(nn.Module):
    """``(frame, prev) -> out`` around a :class:`~stablestyle.models.TransformerNet`, traceable at any size.

    Pads both inputs to a multiple of 4 plus the net's edge margin
    unconditionally (reflect; the amounts are computed from the traced shape),
    runs the net's layers, crops the output.
    Reflect padding acts per channel, so padding ``frame`` and ``prev``
    separately equals the net's own padding of their concatenation, and the
    sigmoid head is element-wise, so cropping after it changes nothing:
    the wrapper computes exactly ``net(frame, prev)[0]``.
    """

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net
        self.recurrent = bool(getattr(net, "recurrent", False))

    def forward(self, frame: torch.Tensor, prev: torch.Tensor | None = None) -> torch.Tensor:
        from ..models import InputPadder

        margin = 0 if self.net.training else int(getattr(self.net, "edge_margin", 0))
        padder = InputPadder(frame.shape, margin=margin)
        x = F.pad(frame, padder.padding, mode="reflect")
        if self.recurrent:
            x = torch.cat([x, F.pad(frame if prev is None else prev, padder.padding, mode="reflect")], dim=1)
        return torch.sigmoid(padder.unpad(self.net.body(x)))


def _export_to(model: nn.Module, f, config: OnnxExportConfig) -> None:
    """Trace ``model`` into ``f`` (path or binary file object) with the TorchScript exporter."""
    config.validate()
    if config.split_convs:
        model = copy.deepcopy(model)
        split_thin_convs(model)
    wrapper = OnnxExportWrapper(model).eval()
    param = next(model.parameters(), None)
    device = param.device if param is not None else torch.device("cpu")
    example = torch.rand(1, 3, config.height, config.width, device=device)
    names = [INPUT_FRAME, INPUT_PREV] if wrapper.recurrent else [INPUT_FRAME]
    args = (example, example.clone()) if wrapper.recurrent else (example,)
    axes = {name: {0: "batch", 2: "height", 3: "width"} for name in [*names, OUTPUT]} if config.dynamic else None
    with warnings.catch_warnings():
        # Expected and harmless here: tracer notes about the net's Python shape checks, the
        # deprecation notice of the TorchScript exporter (see the module docstring), constant-
        # folding notes about strided slices, and InstanceNorm's train flag (it has no running stats).
        warnings.filterwarnings("ignore", category=torch.jit.TracerWarning)
        warnings.filterwarnings("ignore", message=".*(legacy TorchScript-based ONNX export|feature will be removed"
                                                  "|Constant folding|instance_norm).*")
        with torch.no_grad():
            torch.onnx.export(
                wrapper, args, f, dynamo=False, input_names=names, output_names=[OUTPUT],
                dynamic_axes=axes, opset_version=config.opset, do_constant_folding=True,
            )


def _add_metadata(model_proto, metadata: dict[str, object]) -> None:
    for key, value in metadata.items():
        entry = model_proto.metadata_props.add()
        entry.key, entry.value = str(key), str(value)


def onnx_bytes(model: nn.Module, config: OnnxExportConfig | None = None,
               metadata: dict[str, object] | None = None) -> bytes:
    """The serialised ONNX model of ``model`` (in memory; see :func:`export_onnx` for files).

    ``metadata`` is stored as string key/value pairs in the model's
    ``metadata_props`` (with the stablestyle version and the net's config).
    """
    import onnx

    config = config or OnnxExportConfig()
    buf = io.BytesIO()
    _export_to(model, buf, config)
    proto = onnx.load_from_string(buf.getvalue())
    meta = {"stablestyle_version": __version__, **_net_config(model), **asdict(config), **(metadata or {})}
    _add_metadata(proto, meta)
    onnx.checker.check_model(proto)
    return proto.SerializeToString()


def _net_config(model: nn.Module) -> dict[str, object]:
    config = getattr(model, "config", None)
    return {f"model_{k}": v for k, v in config().items()} if callable(config) else {}


def export_onnx(model: nn.Module, path: str | os.PathLike, config: OnnxExportConfig | None = None, *,
                metadata: dict[str, object] | None = None, overwrite: bool = False) -> Path:
    """Export ``model`` to ``path`` (``.onnx``), checked with ``onnx.checker``, written atomically.

    The file is written under a temporary name in the output folder and
    renamed when complete, so a failed export leaves nothing behind.  An
    existing ``path`` is a :class:`UserError` unless ``overwrite``.
    """
    path = check_onnx_output(path, overwrite)
    data = onnx_bytes(model, config, metadata)
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)
    log.info("wrote %s (%.1f MB)", path, len(data) / 1e6)
    return path


def check_onnx_output(path: str | os.PathLike, overwrite: bool = False) -> Path:
    """Validate an ONNX output path before any work: ``.onnx`` suffix, folder exists, no clobbering."""
    path = Path(path)
    if path.suffix.lower() != ".onnx":
        raise UserError(f"{path}: the ONNX output must end in .onnx")
    if not path.parent.is_dir():
        raise UserError(f"output folder {path.parent} does not exist; create it first")
    if path.is_dir():
        raise UserError(f"output {path} is a folder; give a file name ending in .onnx")
    if path.exists() and not overwrite:
        raise UserError(f"output {path} already exists; pass --overwrite to replace it")
    return path


def read_onnx_metadata(path_or_bytes: str | os.PathLike | bytes) -> dict[str, str]:
    """The ``metadata_props`` of an ONNX model file (or serialised bytes) as a dict."""
    import onnx

    if isinstance(path_or_bytes, bytes):
        proto = onnx.load_from_string(path_or_bytes)
    else:
        proto = onnx.load(str(path_or_bytes), load_external_data=False)
    return {p.key: p.value for p in proto.metadata_props}
