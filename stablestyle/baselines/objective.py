"""The per-frame objective of the optimisation baselines: relative content / style / TV / temporal terms.

Gatys, Ecker, Bethge, "Image Style Transfer Using Convolutional Neural
Networks", CVPR 2016, Eq. 7: ``L = alpha L_content + beta L_style`` minimised
over the pixels of the output; Ruder, Dosovitskiy, Brox, "Artistic Style
Transfer for Videos", GCPR 2016, Eq. 8 / 10 add ``gamma L_temporal``.

The terms are the training objective's (:mod:`stablestyle.losses`): content and
style relative to their targets' energy, layer by layer
(:func:`~stablestyle.losses.relative_content_loss`,
:func:`~stablestyle.losses.relative_style_loss`), so that the weights do not
depend on the VGG weights' activation scale nor on the style image, and a
weight means the same for a trained network and for an optimisation:

* ``content = (1/|Lc|) sum_l mean((F_l(x) - F_l(c))^2) / mean(F_l(c)^2)``;
* ``style = (1/|Ls|) sum_l mean((G_l(x) - A_l)^2) / mean(A_l^2)``;
* ``tv``: :func:`stablestyle.losses.tv_loss` (pixels in [0, 1]);
* ``temporal = sum_j (1/D) sum_k c_k^(j) (x - w_j)_k^2`` over the warped
  previous results ``w_j`` and their masks ``c^(j)``
  (:func:`stablestyle.losses.temporal_loss`, ``D = 3 H W``).

Gatys' ``1/2`` and ``1/(4 N^2 M^2)`` factors weight layers by their size; here
every layer counts alike.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
from torch import Tensor

from ..losses import gram_matrix, relative_content_loss, relative_style_loss, temporal_loss, tv_loss

__all__ = ["style_grams", "frame_terms"]

@torch.no_grad()
def style_grams(vgg: torch.nn.Module, style: Tensor, layers: Sequence[str]) -> dict[str, Tensor]:
    """Gram targets ``A_l`` of ``style`` (``(1, 3, H, W)`` in [0, 1]): tap -> ``(1, C, C)`` float32.

    Computed once per clip (Gatys et al. 2016, Eq. 3-5).
    """
    feats = vgg(style)
    return {name: gram_matrix(feats[name]) for name in layers}


def frame_terms(feats: Mapping[str, Tensor], x: Tensor, *, content_targets: Mapping[str, Tensor],
                grams: Mapping[str, Tensor], refs: Sequence[tuple[Tensor, Tensor]] = ()) -> dict[str, Tensor]:
    """Unweighted relative terms of one frame's objective (module docstring).

    Args:
        feats: VGG taps of ``x`` (``vgg(x)``).
        x: ``(1, 3, H, W)`` the image being optimised (pixels, ~[0, 1]).
        content_targets: tap -> ``(1, C, H', W')`` features of the content frame.
        grams: tap -> ``(1, C, C)`` style Gram targets; style layers are its keys.
        refs: ``(warped_prev, mask)`` pairs, ``(1, 3, H, W)`` and ``(1, 1, H, W)``;
            a ``temporal`` term is returned when not empty.

    Returns:
        ``{"content", "style", "tv"[, "temporal"]}`` 0-d tensors, ready for
        :meth:`stablestyle.losses.LossWeights.total`.
    """
    content = sum((relative_content_loss(feats[name], target) for name, target in content_targets.items()),
                  x.new_zeros(()))
    terms = {
        "content": content / max(1, len(content_targets)),
        "style": relative_style_loss(feats, grams, tuple(grams)),
        "tv": tv_loss(x),
    }
    if refs:
        terms["temporal"] = sum(temporal_loss(x, warped, mask) for warped, mask in refs)
    return terms
