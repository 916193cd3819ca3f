"""Frozen VGG-16 feature extractor: the loss network of Johnson et al. 2016 and Gupta et al. 2017.

Written here rather than imported from torchvision; ``self.features`` uses
torchvision's indices so the state-dict keys are ``features.0.weight`` ...
``features.28.bias`` and both the package's ``vgg16_features.pth`` (conv1_1 ..
conv4_3) and the full torchvision ``vgg16-397923af.pth`` load (only the
needed keys are taken).

Input convention (torchvision): RGB in ``[0, 1]``, normalised inside with the
ImageNet mean / std.  Note that the shared weights were trained on Caffe
(0-255) input, so activations, and hence raw content / Gram losses, are on
that larger scale; the losses divide by their targets' energy so the loss
weights do not depend on it (:mod:`stablestyle.losses`).  The default weights
were chosen with those shared weights, and :func:`load_vgg16` warns when a
file's activation scale is far from theirs (:func:`activation_scale`).
"""

from __future__ import annotations

import http.client
import logging
from collections.abc import Sequence
from pathlib import Path

import torch
from torch import nn

from ..errors import UserError, first_line
from ..paths import vgg16_env_path

log = logging.getLogger(__name__)

VGG16_URL = "https://download.pytorch.org/models/vgg16-397923af.pth"
VGG16_FILENAME = "vgg16-397923af.pth"
VGG16_HASH_PREFIX = "397923af"

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

# torchvision vgg16().features: output channels of each conv, "M" = 2x2 max pool.
_CFG = (64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512)
_BLOCK_SIZES = (2, 2, 3, 3, 3)


def _layer_names() -> dict[str, int]:
    """Tap name (``relu3_3``) -> index in ``features`` of that ReLU (torchvision numbering)."""
    names: dict[str, int] = {}
    index = 0
    for block, size in enumerate(_BLOCK_SIZES, start=1):
        for conv in range(1, size + 1):
            names[f"relu{block}_{conv}"] = index + 1  # conv at index, its ReLU right after
            index += 2
        index += 1  # max pool
    return names


#: Available taps and their index in ``features`` (relu1_1 = 1 ... relu5_3 = 29).
LAYER_INDEX: dict[str, int] = _layer_names()
DEFAULT_LAYERS = ("relu1_2", "relu2_2", "relu3_3", "relu4_3")


class VGG16Features(nn.Module):
    """VGG-16 up to the deepest requested tap, frozen; ``forward(x) -> {tap: activation}``.

    Args:
        layers: tap names, a subset of :data:`LAYER_INDEX` (``relu1_1`` ..
            ``relu5_3``); the network stops at the deepest one.

    ``forward(x)``: ``x`` is ``(B, 3, H, W)`` RGB in ``[0, 1]`` (not modified);
    returns a dict in the order of ``layers``; ``relu{k}_*`` has shape
    ``(B, C_k, H / 2**(k-1), W / 2**(k-1))`` (floor division per pool) with
    ``C = 64, 128, 256, 512, 512``.  Weights start random: use
    :func:`load_vgg16`.
    """

    def __init__(self, layers: Sequence[str] = DEFAULT_LAYERS) -> None:
        super().__init__()
        if isinstance(layers, str):
            layers = (layers,)
        layers = tuple(layers)
        unknown = [name for name in layers if name not in LAYER_INDEX]
        if not layers or unknown:
            raise ValueError(f"unknown VGG-16 layer(s) {unknown or '(none given)'}; valid: "
                             f"{', '.join(LAYER_INDEX)}")
        self.layers = layers
        self._taps = {LAYER_INDEX[name]: name for name in layers}
        last = max(self._taps)
        modules: list[nn.Module] = []
        in_channels = 3
        for item in _CFG:
            if len(modules) > last:
                break
            if item == "M":
                modules.append(nn.MaxPool2d(kernel_size=2, stride=2))
            else:
                modules += [nn.Conv2d(in_channels, item, kernel_size=3, padding=1), nn.ReLU()]
                in_channels = item
        self.features = nn.Sequential(*modules[:last + 1])
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1))
        self.requires_grad_(False)
        self.eval()

    def train(self, mode: bool = True) -> VGG16Features:
        """Always stays in eval mode: the loss network is frozen."""
        return super().train(False)

    def forward(self, x: torch.Tensor, until: str | None = None) -> dict[str, torch.Tensor]:
        """``{tap: activation}``; with ``until`` (one of ``layers``) the pass stops there and returns the taps
        up to it, e.g. a content target that needs no deeper layer."""
        if x.dim() != 4 or x.shape[1] != 3:
            raise ValueError(f"VGG16Features expects (B, 3, H, W) RGB in [0, 1], got shape {tuple(x.shape)}")
        if until is not None and until not in self.layers:
            raise ValueError(f"until={until!r} is not one of this network's taps {self.layers}")
        stop = len(self.features) - 1 if until is None else LAYER_INDEX[until]
        h = (x - self.mean.to(x.dtype)) / self.std.to(x.dtype)  # new tensor: caller's x untouched
        out: dict[str, torch.Tensor] = {}
        for index, module in enumerate(self.features[:stop + 1]):
            h = module(h)
            if index in self._taps:
                out[self._taps[index]] = h
        return {name: out[name] for name in self.layers if name in out}


#: RMS of ``relu3_3`` on :func:`_probe_image` with the shared ``vgg16_features.pth`` (the
#: weights :class:`stablestyle.losses.LossWeights`' defaults were chosen with).
CALIBRATED_RELU3_3_RMS = 1519.0
#: :func:`load_vgg16` warns when a file's scale differs from the calibrated one by more than this factor.
SCALE_TOLERANCE = 10.0


def _probe_image() -> torch.Tensor:
    """A fixed ``(1, 3, 32, 32)`` test card: two ramps and a checkerboard, in ``[0, 1]``."""
    y = torch.linspace(0, 1, 32).view(1, 1, 32, 1).expand(1, 1, 32, 32)
    x = torch.linspace(0, 1, 32).view(1, 1, 1, 32).expand(1, 1, 32, 32)
    return torch.cat([y, x, ((x * 8).floor() + (y * 8).floor()) % 2], 1)


@torch.no_grad()
def activation_scale(vgg: VGG16Features) -> float:
    """``relu3_3``'s RMS on a fixed test card relative to the shared weights' (1.0 = the calibrated scale).

    Caffe-trained weights (0-255 input) give about 1; torchvision's own give
    activations about a hundred times smaller.  ``nan`` when ``vgg`` has no
    ``relu3_3`` tap.
    """
    if "relu3_3" not in vgg.layers:
        return float("nan")
    device = next(vgg.parameters()).device
    feat = vgg(_probe_image().to(device))["relu3_3"]
    return float(feat.float().square().mean().sqrt()) / CALIBRATED_RELU3_3_RMS


def _download_hint() -> str:
    return (f"set STABLESTYLE_VGG16 to a VGG-16 state dict (e.g. shared/assets/vgg16_features.pth), "
            f"set STABLESTYLE_ASSETS to a folder containing vgg16_features.pth, or put {VGG16_URL} at "
            f"{_hub_path()}")


#: What to do about an unusable weights file (one line).
_WEIGHTS_HINT = (f"point --vgg-weights or STABLESTYLE_VGG16 at vgg16_features.pth (in the shared assets) or "
                 f"torchvision's {VGG16_FILENAME}")


def _load_error(exc: Exception) -> str:
    """The gist of a ``torch.load`` failure in one short line.

    With ``weights_only=True`` torch wraps the real cause in paragraphs that
    advise ``weights_only=False``: wrong advice for a file that is not a state
    dict at all (and unsafe), so only the cause after ``WeightsUnpickler error:``
    is kept.
    """
    text = str(exc)
    if "WeightsUnpickler error:" in text:
        text = text.split("WeightsUnpickler error:", 1)[1]
    first = first_line(text)
    first = "" if "weights_only" in first else first
    return f"{type(exc).__name__}: {first}" if first else type(exc).__name__


def _hub_path() -> Path:
    return Path(torch.hub.get_dir()) / "checkpoints" / VGG16_FILENAME


def resolve_vgg16_weights(weights: str | Path | None = None) -> Path:
    """Where the VGG-16 weights come from, in order.

    1. ``weights`` (an explicit path);
    2. :func:`stablestyle.paths.vgg16_env_path` (``STABLESTYLE_VGG16``, then
       ``$STABLESTYLE_ASSETS/vgg16_features.pth``);
    3. the torch hub cache, ``torch.hub.get_dir()/checkpoints/vgg16-397923af.pth``;
    4. a download of torchvision's file into that cache (hash-prefix checked).

    Raises :class:`UserError` saying where to put the file when none works.
    """
    if weights is not None:
        path = Path(weights).expanduser()
        if path.is_dir():
            raise UserError(f"VGG-16 weights file {path} is a folder, not a weights file; {_WEIGHTS_HINT}")
        if not path.is_file():
            raise UserError(f"VGG-16 weights file {path} does not exist")
        return path
    path = vgg16_env_path()
    if path is not None:
        if path.is_dir():
            raise UserError(f"STABLESTYLE_VGG16={path} is a folder, not a weights file; {_WEIGHTS_HINT}")
        if not path.is_file():
            raise UserError(f"STABLESTYLE_VGG16={path} does not exist; point it at a VGG-16 state dict")
        return path
    hub = _hub_path()
    if hub.is_file():
        return hub
    log.info("downloading VGG-16 weights from %s to %s", VGG16_URL, hub)
    try:
        hub.parent.mkdir(parents=True, exist_ok=True)
        # looked up at call time so tests can replace it
        torch.hub.download_url_to_file(VGG16_URL, str(hub), hash_prefix=VGG16_HASH_PREFIX)
    except (OSError, RuntimeError, ValueError, http.client.HTTPException) as exc:
        # URLError is an OSError, a hash mismatch a RuntimeError
        raise UserError(f"no VGG-16 weights found and the download failed ({exc}); {_download_hint()}") from exc
    return hub


def _read_state_dict(path: Path) -> dict[str, torch.Tensor]:
    if path.stat().st_size == 0:
        raise UserError(f"{path} is empty, not a VGG-16 weights file; {_WEIGHTS_HINT}")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any unreadable file is the user's to fix
        raise UserError(f"{path} is not a VGG-16 weights file readable by torch.load ({_load_error(exc)}); "
                        f"{_WEIGHTS_HINT}") from exc
    if isinstance(obj, dict) and isinstance(obj.get("state_dict"), dict):
        obj = obj["state_dict"]
    if not isinstance(obj, dict) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise UserError(f"{path} is not a state dict (a dict of tensors); expected VGG-16 weights "
                        "with keys features.0.weight ...")
    return obj


def load_vgg16(weights: str | Path | None = None, device: torch.device | str | None = None,
               layers: Sequence[str] = DEFAULT_LAYERS) -> VGG16Features:
    """A frozen :class:`VGG16Features` with pretrained weights on ``device`` (default CPU).

    Weights are found by :func:`resolve_vgg16_weights`; only the ``features.*``
    keys up to the deepest tap are used, so both the package's conv1-4 file and
    torchvision's full ``vgg16-397923af.pth`` load.  A file with missing keys,
    wrong shapes or no state dict raises :class:`UserError` naming it.
    """
    model = VGG16Features(layers)
    path = resolve_vgg16_weights(weights)
    state = _read_state_dict(path)
    expected = model.features.state_dict()
    missing = [f"features.{k}" for k in expected if f"features.{k}" not in state]
    if missing:
        raise UserError(f"{path} lacks VGG-16 weights {', '.join(missing[:4])}"
                        f"{' ...' if len(missing) > 4 else ''} needed for layers {', '.join(model.layers)}; "
                        "expected torchvision vgg16 keys (features.0.weight ...)")
    for key, tensor in expected.items():
        got = state[f"features.{key}"]
        if got.shape != tensor.shape:
            raise UserError(f"{path}: features.{key} has shape {tuple(got.shape)}, expected "
                            f"{tuple(tensor.shape)}; is this a VGG-16 state dict?")
    model.features.load_state_dict({k: state[f"features.{k}"].float() for k in expected})
    log.debug("loaded VGG-16 weights from %s", path)
    scale = activation_scale(model)
    if not (1 / SCALE_TOLERANCE <= scale <= SCALE_TOLERANCE) and scale == scale:
        log.warning("VGG-16 weights %s give activations %.3gx those of the weights the default loss weights "
                    "were chosen with (vgg16_features.pth, Caffe scale); content and style are normalised "
                    "by their targets' energy, so training still works, but the balance between layers may "
                    "differ: compare samples before trusting the defaults", path, scale)
    return model.to(device or "cpu")
