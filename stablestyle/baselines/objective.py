"""The per-frame objective of the optimisation baselines: relative content / style / TV / temporal terms.

Gatys, Ecker, Bethge, "Image Style Transfer Using Convolutional Neural
Networks", CVPR 2016, Eq. 7: ``L = alpha L_content + beta L_style`` minimised
over the pixels of the output; Ruder, Dosovitskiy, Brox, "Artistic Style
Transfer for Videos", GCPR 2016, Eq. 8 / 10 add ``gamma L_temporal``.

The terms reuse :mod:`stablestyle.losses` (Johnson-normalised MSEs of
features and of ``C H W``-normalised Gram matrices, :func:`tv_loss`,
:func:`temporal_loss`) and divide content and style by their targets'
energy, so that the weights are independent of the VGG weights' activation
scale (the shared Caffe-scale VGG gives raw values ~1e4-1e6) and of the style
image:

* ``content = sum_l mean((F_l(x) - F_l(c))^2) / sum_l mean(F_l(c)^2)``;
* ``style = sum_l mean((G_l(x) - A_l)^2) / sum_l mean(A_l^2)``;
* ``tv``: :func:`stablestyle.losses.tv_loss` (pixels in [0, 1]);
* ``temporal = sum_j (1/D) sum_k c_k^(j) (x - w_j)_k^2`` over the warped
  previous results ``w_j`` and their masks ``c^(j)``
  (:func:`stablestyle.losses.temporal_loss`, ``D = 3 H W``).

Content and style departs from Gatys' ``1/2`` and ``1/(4 N^2 M^2)`` factors,
which weight layers by ``C_l^2``; here each layer enters as the MSE of
:func:`stablestyle.losses.style_loss`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
from torch import Tensor

from ..losses import content_loss, gram_matrix, style_loss, temporal_loss, tv_loss

__all__ = ["feature_energy", "gram_energy", "style_grams", "frame_terms"]

def _fp32(x: Tensor) -> Tensor:
    """At least float32 (Caffe-scale energies overflow fp16; float64 stays float64)."""
    return x.to(torch.promote_types(x.dtype, torch.float32))


#: Keeps the normalisers positive for an all-black content or a flat style image.
ENERGY_EPS = 1e-30


def feature_energy(feats: Mapping[str, Tensor], layers: Sequence[str]) -> Tensor:
    """``sum_l mean(F_l^2)`` over ``layers``: the normaliser of the content term (a 0-d tensor)."""
    return sum(_fp32(feats[name].detach()).square().mean() for name in layers) + ENERGY_EPS


def gram_energy(grams: Mapping[str, Tensor]) -> Tensor:
    """``sum_l mean(A_l^2)`` over the style Gram targets: the normaliser of the style term (0-d)."""
    return sum(_fp32(g.detach()).square().mean() for g in grams.values()) + ENERGY_EPS


@torch.no_grad()
def style_grams(vgg: torch.nn.Module, style: Tensor, layers: Sequence[str]) -> dict[str, Tensor]:
    """Gram targets ``A_l`` of ``style`` (``(1, 3, H, W)`` in [0, 1]): tap -> ``(1, C, C)`` float32.

    Computed once per clip (Gatys et al. 2016, Eq. 3-5).
    """
    feats = vgg(style)
    return {name: gram_matrix(feats[name]) for name in layers}


def frame_terms(feats: Mapping[str, Tensor], x: Tensor, *, content_targets: Mapping[str, Tensor],
                content_norm: Tensor, grams: Mapping[str, Tensor], style_norm: Tensor,
                refs: Sequence[tuple[Tensor, Tensor]] = ()) -> dict[str, Tensor]:
    """Unweighted relative terms of one frame's objective (module docstring).

    Args:
        feats: VGG taps of ``x`` (``vgg(x)``).
        x: ``(1, 3, H, W)`` the image being optimised (pixels, ~[0, 1]).
        content_targets: tap -> ``(1, C, H', W')`` features of the content frame.
        content_norm: :func:`feature_energy` of ``content_targets``.
        grams: tap -> ``(1, C, C)`` style Gram targets; style layers are its keys.
        style_norm: :func:`gram_energy` of ``grams``.
        refs: ``(warped_prev, mask)`` pairs, ``(1, 3, H, W)`` and ``(1, 1, H, W)``;
            a ``temporal`` term is returned when not empty.

    Returns:
        ``{"content", "style", "tv"[, "temporal"]}`` 0-d tensors, ready for
        :meth:`stablestyle.losses.LossWeights.total`.
    """
    content = sum(content_loss(feats[name], target) for name, target in content_targets.items())
    terms = {
        "content": content / content_norm,
        "style": style_loss(feats, grams, tuple(grams)) / style_norm,
        "tv": tv_loss(x),
    }
    if refs:
        terms["temporal"] = sum(temporal_loss(x, warped, mask) for warped, mask in refs)
    return terms
