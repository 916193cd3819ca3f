"""Loss maths: perceptual (content / style), total variation and temporal losses.

Pure functions plus one thin module (:class:`PerceptualLoss`) that holds the
loss network and the style targets.  Every function returns *unweighted*
terms; weights are applied in exactly one place, :meth:`LossWeights.total`.

References:
  * Gatys, Ecker, Bethge, "Image Style Transfer Using CNNs", CVPR 2016 (Gram matrices).
  * Johnson, Alahi, Fei-Fei, "Perceptual Losses for Real-Time Style Transfer", ECCV 2016,
    Sec. 3.2 (feature reconstruction loss, Eq. 2; style reconstruction loss, Eq. 3-4).
  * Ruder, Dosovitskiy, Brox, "Artistic Style Transfer for Videos", GCPR 2016 (reliability mask).
  * Gupta, Johnson, Alahi, Fei-Fei, "Characterizing and Improving Stability in Neural Style
    Transfer", ICCV 2017, Sec. 4 (temporal consistency loss).

Losses that can overflow half precision (feature MSEs and Grams of Caffe-scale
activations reach 1e5-1e6) are computed in float32 (float64 inputs stay
float64) with autocast switched off locally.
"""

from __future__ import annotations

import math

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, fields

import torch
from torch import nn

from .models.vgg import VGG16Features

#: ``reduction`` values: ``"mean"`` over the batch (a scalar) or ``"none"`` (one value per sample, ``(B,)``).
REDUCTIONS = ("mean", "none")
#: Keeps :func:`masked_mean` finite for an all-zero mask.
MASK_EPS = 1e-8


def _fp32(x: torch.Tensor) -> torch.Tensor:
    """``x`` in at least float32 (half / bfloat16 are upcast; float64 is kept)."""
    return x.to(torch.promote_types(x.dtype, torch.float32))


def _no_autocast(x: torch.Tensor) -> torch.autocast:
    return torch.autocast(device_type=x.device.type, enabled=False)


def _reduce(per_sample: torch.Tensor, reduction: str) -> torch.Tensor:
    if reduction == "mean":
        return per_sample.mean()
    if reduction == "none":
        return per_sample
    raise ValueError(f"unknown reduction {reduction!r}; valid: {', '.join(REDUCTIONS)}")


def _check_4d(name: str, x: torch.Tensor) -> None:
    if x.dim() != 4:
        raise ValueError(f"{name} must be (B, C, H, W), got shape {tuple(x.shape)}")


def gram_matrix(feat: torch.Tensor) -> torch.Tensor:
    """Normalised Gram matrix ``G = F F^T / (C H W)`` (Johnson et al. 2016, Eq. 3).

    Args:
        feat: ``(B, C, H, W)`` activations, any float dtype.

    Returns:
        ``(B, C, C)`` float32 (float64 for float64 input), computed outside
        autocast: with Caffe-scale VGG activations the sums overflow fp16.
    """
    _check_4d("feat", feat)
    b, c, h, w = feat.shape
    with _no_autocast(feat):
        f = _fp32(feat).reshape(b, c, h * w)
        return torch.bmm(f, f.transpose(1, 2)) / (c * h * w)


def content_loss(feat: torch.Tensor, target: torch.Tensor, reduction: str = "mean") -> torch.Tensor:
    """Feature reconstruction loss ``mean((feat - target)^2)`` (Johnson et al. 2016, Eq. 2).

    Johnson's ``1 / (C H W) ||phi(y) - phi(y_c)||^2`` averaged over the batch,
    i.e. the mean over all ``B C H W`` entries.  ``feat``, ``target``:
    ``(B, C, H, W)`` (``target`` may have batch 1 to broadcast).  Float32.
    ``reduction="none"`` gives ``(B,)``.
    """
    _check_4d("feat", feat)
    _check_4d("target", target)
    with _no_autocast(feat):
        diff = _fp32(feat) - _fp32(target)
        return _reduce(diff.square().flatten(1).mean(1), reduction)


def style_loss(feats: Mapping[str, torch.Tensor], target_grams: Mapping[str, torch.Tensor],
               layers: Sequence[str], reduction: str = "mean") -> torch.Tensor:
    """Style reconstruction loss ``sum_l mean_{i,j} (G_l(feat) - G_l(style))_{ij}^2``.

    Johnson et al. 2016, Eq. 4, with the squared Frobenius norm divided by the
    ``C_l^2`` entries (the MSE of the Gram matrices, as in Johnson's code),
    summed over ``layers`` and averaged over the batch.

    Args:
        feats: tap name -> ``(B, C, H, W)`` activations of the output.
        target_grams: tap name -> ``(1, C, C)`` (broadcast over the batch) or ``(B, C, C)``.
        layers: the taps to sum over.
        reduction: ``"mean"`` (scalar) or ``"none"`` (``(B,)``).
    """
    if not layers:
        raise ValueError("style_loss needs at least one layer")
    missing = [name for name in layers if name not in feats or name not in target_grams]
    if missing:
        raise ValueError(f"style layer(s) {missing} missing from the features or targets; "
                         f"features have {list(feats)}, targets have {list(target_grams)}")
    total = None
    for name in layers:
        gram = gram_matrix(feats[name])
        target = target_grams[name]
        if target.dim() != 3 or target.shape[-2:] != gram.shape[-2:]:
            raise ValueError(f"target Gram for {name} must be (1, {gram.shape[-1]}, {gram.shape[-1]}), "
                             f"got {tuple(target.shape)}")
        with _no_autocast(gram):
            term = (gram - _fp32(target)).square().flatten(1).mean(1)
        total = term if total is None else total + term
    return _reduce(total, reduction)


#: Keeps the relative terms finite for an all-black content or a flat style image.
ENERGY_EPS = 1e-30


def feature_energy(feat: torch.Tensor) -> torch.Tensor:
    """``mean(F^2)`` per sample: the energy that normalises a content or Gram term.

    ``feat``: ``(B, ...)`` any float dtype.  Returns ``(B,)`` float32 (float64
    for float64 input), detached (a normaliser, not a term to optimise), plus
    :data:`ENERGY_EPS`.
    """
    with _no_autocast(feat):
        return _fp32(feat.detach()).square().flatten(1).mean(1) + ENERGY_EPS


def relative_content_loss(feat: torch.Tensor, target: torch.Tensor, reduction: str = "mean") -> torch.Tensor:
    """Content loss relative to the target's energy: ``mean((F - P)^2) / mean(P^2)`` per sample.

    :func:`content_loss` divided by :func:`feature_energy` of ``target``, so
    it does not change when every activation of the loss network is scaled by
    a constant (Caffe-scale weights with 0-255 activations give the same value
    as torchvision's).  Johnson et al. 2016 weight the raw term instead, which
    ties their weights to one set of VGG weights.  ``(B, C, H, W)`` inputs;
    ``reduction="none"`` gives ``(B,)``.
    """
    raw = content_loss(feat, target, "none")
    energy = feature_energy(target)
    return _reduce(raw / (energy if energy.shape[0] == raw.shape[0] else energy.expand_as(raw)), reduction)


def relative_style_loss(feats: Mapping[str, torch.Tensor], target_grams: Mapping[str, torch.Tensor],
                        layers: Sequence[str], reduction: str = "mean") -> torch.Tensor:
    """Style loss relative to the targets' energy, averaged over layers.

    ``(1 / L) sum_l mean((G_l - A_l)^2) / mean(A_l^2)`` with ``G_l`` the
    output's and ``A_l`` the style image's Gram matrices (:func:`gram_matrix`).
    Each layer is divided by its own target energy, so every layer counts
    alike whatever its activation scale (Gatys et al. 2016 weight layers by
    ``1 / (4 N_l^2 M_l^2)`` and Johnson et al. not at all, both of which make
    the balance depend on the VGG weights).  0 for a perfect match; about 1
    when the output's Grams are far from the targets.  Arguments as
    :func:`style_loss`.
    """
    if not layers:
        raise ValueError("relative_style_loss needs at least one layer")
    total = None
    for name in layers:
        if name not in target_grams:
            raise ValueError(f"style layer {name!r} missing from the targets; they have {list(target_grams)}")
        term = style_loss(feats, target_grams, (name,), "none") / feature_energy(target_grams[name])
        total = term if total is None else total + term
    return _reduce(total / len(layers), reduction)


def tv_loss(img: torch.Tensor, reduction: str = "mean") -> torch.Tensor:
    """Total variation ``mean((x[i, j+1] - x[i, j])^2) + mean((x[i+1, j] - x[i, j])^2)``.

    The squared (beta = 2) total variation regulariser of Mahendran & Vedaldi
    2015 used by Johnson et al. 2016 (Sec. 3.3); each direction is a *mean*
    over its ``C (H) (W-1)`` / ``C (H-1) W`` differences, so the value does not
    grow with the image size.  ``img``: ``(B, C, H, W)`` with ``H, W >= 2``,
    in ``[0, 1]``.  ``reduction="none"`` gives ``(B,)``.
    """
    _check_4d("img", img)
    if img.shape[-1] < 2 or img.shape[-2] < 2:
        raise ValueError(f"tv_loss needs H, W >= 2, got shape {tuple(img.shape)}")
    with _no_autocast(img):
        x = _fp32(img)
        dx = (x[..., :, 1:] - x[..., :, :-1]).square().flatten(1).mean(1)
        dy = (x[..., 1:, :] - x[..., :-1, :]).square().flatten(1).mean(1)
        return _reduce(dx + dy, reduction)


def _check_mask(x: torch.Tensor, mask: torch.Tensor) -> None:
    _check_4d("x", x)
    if (mask.dim() != 4 or mask.shape[1] != 1 or mask.shape[-2:] != x.shape[-2:]
            or mask.shape[0] not in (1, x.shape[0])):
        raise ValueError(f"mask must be (B, 1, H, W) matching {tuple(x.shape)}, got {tuple(mask.shape)}")


def masked_mean(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean of ``x`` over the pixels where ``mask`` is set: ``sum(mask x) / (C sum(mask) + eps)``.

    Args:
        x: ``(B, C, H, W)``.
        mask: ``(B, 1, H, W)`` (or batch 1), 1 = valid, soft values allowed;
            broadcast over the ``C`` channels.

    Returns a scalar over the whole batch (float32 or wider); an all-zero mask
    gives 0 (``eps`` = :data:`MASK_EPS`).
    """
    _check_mask(x, mask)
    with _no_autocast(x):
        m = _fp32(mask).expand(x.shape[0], 1, *x.shape[-2:])
        return (_fp32(x) * m).sum() / (x.shape[1] * m.sum() + MASK_EPS)


def temporal_loss(out: torch.Tensor, warped_prev: torch.Tensor, mask: torch.Tensor,
                  reduction: str = "mean") -> torch.Tensor:
    """Temporal consistency loss of Gupta et al. 2017 (Sec. 4): ``(1/D) sum_k c_k (y_t - w(y_{t-1}))_k^2``.

    ``D = 3 H W``: the sum runs over all channels and pixels and is divided by
    their number, *not* by the mask sum (the paper's definition; occluded
    pixels simply contribute 0, so frames with large occlusions weigh less).
    Averaged over the batch.

    Args:
        out: ``(B, 3, H, W)`` current output ``y_t`` in ``[0, 1]``.
        warped_prev: ``(B, 3, H, W)`` previous output warped to frame ``t``'s grid
            with ``flow_bw`` (whether it is detached is the caller's choice).
        mask: ``(B, 1, H, W)`` reliability weights ``c`` (Ruder et al. 2016), 1 = reliable.
        reduction: ``"mean"`` (scalar) or ``"none"`` (``(B,)``).
    """
    _check_mask(out, mask)
    if warped_prev.shape != out.shape:
        raise ValueError(f"warped_prev {tuple(warped_prev.shape)} must match out {tuple(out.shape)}")
    with _no_autocast(out):
        diff = (_fp32(out) - _fp32(warped_prev)).square() * _fp32(mask)
        return _reduce(diff.flatten(1).mean(1), reduction)


class PerceptualLoss(nn.Module):
    """Content, style and TV terms for a batch of outputs (Johnson et al. 2016); unweighted.

    Content and style are relative to their targets' energy
    (:func:`relative_content_loss`, :func:`relative_style_loss`), so the loss
    weights mean the same with any VGG-16 weights file.

    Args:
        vgg: frozen feature extractor (``forward(x in [0,1]) -> {tap: (B,C,H,W)}``,
            e.g. :func:`stablestyle.models.load_vgg16`) providing ``content_layer``
            and ``style_layers``.  Tests may pass a tiny stand-in.
        style_image: ``(1, 3, H, W)`` in ``[0, 1]``, already at the size to use.
        content_layer: tap for :func:`content_loss` (Johnson et al.: ``relu3_3``
            in their code, ``relu2_2`` in the paper).
        style_layers: taps for :func:`style_loss`.

    The style Gram targets are computed once, here, and kept as buffers
    ``gram_<tap>`` (``(1, C, C)``, float32, no grad); they move with ``.to()``.
    """

    def __init__(self, vgg: nn.Module, style_image: torch.Tensor, content_layer: str = "relu3_3",
                 style_layers: Sequence[str] = ("relu1_2", "relu2_2", "relu3_3", "relu4_3")) -> None:
        super().__init__()
        if style_image.dim() != 4 or style_image.shape[:2] != (1, 3):
            raise ValueError(f"style_image must be (1, 3, H, W) RGB in [0, 1], got {tuple(style_image.shape)}")
        self.vgg = vgg
        self.content_layer = content_layer
        self.style_layers = tuple(style_layers)
        with torch.no_grad():
            feats = vgg(style_image)
        missing = [name for name in (content_layer, *self.style_layers) if name not in feats]
        if missing:
            raise ValueError(f"the loss network does not provide layer(s) {missing}; it gives {list(feats)}")
        for name in self.style_layers:
            self.register_buffer(f"gram_{name}", gram_matrix(feats[name]).detach())

    @property
    def target_grams(self) -> dict[str, torch.Tensor]:
        """Style tap -> ``(1, C, C)`` Gram target."""
        return {name: getattr(self, f"gram_{name}") for name in self.style_layers}

    def _terms(self, output: torch.Tensor, content: torch.Tensor, reduction: str) -> dict[str, torch.Tensor]:
        if output.shape != content.shape:
            raise ValueError(f"output {tuple(output.shape)} and content {tuple(content.shape)} must match")
        dtype = torch.promote_types(output.dtype, content.dtype)
        # two passes, not one over [output; content]: the target needs no gradient (a batched pass would
        # backpropagate through the content half too) and no layer deeper than the content tap
        with torch.no_grad():
            target = self._content_features(content.to(dtype))[self.content_layer]
        out_feats = self.vgg(output.to(dtype))
        return {
            "content": relative_content_loss(out_feats[self.content_layer], target, reduction),
            "style": relative_style_loss(out_feats, self.target_grams, self.style_layers, reduction),
            "tv": tv_loss(output, reduction),
        }

    def _content_features(self, content: torch.Tensor) -> dict[str, torch.Tensor]:
        """The loss network on the content, stopped at the content tap where the network can stop early."""
        if isinstance(self.vgg, VGG16Features):
            return self.vgg(content, until=self.content_layer)
        return self.vgg(content)

    def forward(self, output: torch.Tensor, content: torch.Tensor) -> dict[str, torch.Tensor]:
        """``output``, ``content``: ``(B, 3, H, W)`` in ``[0, 1]`` -> ``{content, style, tv}`` scalars."""
        return self._terms(output, content, "mean")

    @torch.no_grad()
    def evaluate(self, output: torch.Tensor, content: torch.Tensor) -> dict[str, torch.Tensor]:
        """The same terms without grad, one value per sample: ``{content, style, tv}`` each ``(B,)``.

        For evaluation (Gupta et al. 2017, Table 2 style / content losses);
        ``.mean()`` of each equals :meth:`forward`.
        """
        return self._terms(output, content, "none")


def check_loss_weight(name: str, value: object) -> None:
    """``ValueError`` unless ``value`` is a finite number >= 0 (an infinite weight makes every loss NaN / inf)."""
    if not (isinstance(value, (int, float)) and math.isfinite(value) and value >= 0):
        raise ValueError(f"loss weight {name} must be a finite number >= 0, got {value!r}")


@dataclass
class LossWeights:
    """Loss weights; :meth:`total` is the one place they are applied.

    The unweighted terms they multiply:

    * ``content``: :func:`relative_content_loss` of the content tap (1 for
      an output whose features are as far from the photo's as the photo's are
      from zero; ~1.3 for a random-init network);
    * ``style``: :func:`relative_style_loss`, the mean over the style taps of
      the Gram MSE divided by the style Gram's energy (~0.7-0.96 for a
      random-init network's output or the photo itself, 0 for a perfect match);
    * ``tv``: mean squared neighbour difference, both directions, image in
      ``[0, 1]`` (:func:`tv_loss`);
    * ``temporal``: reliability-masked squared difference divided by ``3 H W``,
      image in ``[0, 1]`` (:func:`temporal_loss`).

    Content and style are relative to their targets' energy, so these weights
    mean the same with any VGG-16 weights file (a uniformly rescaled loss
    network gives identical losses; ``tests/test_losses.py``).

    * ``content`` = 1, ``style`` = 10: with these, L-BFGS from noise on a
      held-out photo, run to convergence at 256 px, takes on the painting's
      strokes and palette for the bundled styles while the photo's shapes stay
      readable (``configs/style_weights.yaml`` holds the per-style choice;
      ``bench/quality.py`` draws the optimised images; docs/MODELS.md).
    * ``tv`` = 0.05: a weak regulariser against single-pixel speckle (its
      contribution is ~1e-3 of the content term for a typical output).
    * ``temporal`` = 200: a residual flicker of RMS 0.1 (~25 grey levels, plainly
      visible) over reliable pixels gives a raw term of ~0.01, which then
      costs about as much as the content term at the start, so flicker is
      traded against content, while a stable output costs little.
    """

    content: float = 1.0
    style: float = 10.0
    tv: float = 0.05
    temporal: float = 200.0

    def __post_init__(self) -> None:
        for f in fields(self):
            check_loss_weight(f.name, getattr(self, f.name))

    def as_dict(self) -> dict[str, float]:
        return asdict(self)

    def total(self, terms: Mapping[str, torch.Tensor]) -> torch.Tensor:
        """``sum_k weight_k * terms[k]`` over the terms present (missing ones are skipped).

        Unknown term names (or no terms at all) raise ``ValueError`` listing the valid ones.
        """
        weights = self.as_dict()
        unknown = [name for name in terms if name not in weights]
        if unknown or not terms:
            raise ValueError(f"unknown loss term(s) {unknown or '(none given)'}; valid: {', '.join(weights)}")
        return sum(weights[name] * value for name, value in terms.items())  # type: ignore[return-value]
