"""How good a trained network's stylization is: its loss, and the optimisation it is worth.

Johnson et al. 2016 (Sec. 4.1, Fig. 5) compare their feed-forward network
with the optimisation method of Gatys et al. on the *same* objective: the
network's loss on held-out images equals that of 50-100 L-BFGS iterations
started from noise at 256x256.  This module measures that number for any
model, so that "the model looks like a painting" is a figure that can fail:

* :func:`optimization_curve`: L-BFGS over the pixels from uniform noise on
  the training objective (:class:`~stablestyle.losses.PerceptualLoss`, weights
  applied by :meth:`~stablestyle.losses.LossWeights.total`); the total loss
  after each iteration;
* :func:`network_terms`: the same terms of a network's output for the same photo;
* :func:`equivalent_iterations`: the iteration at which the curve first
  reaches the network's total loss (linear between iterations), ``inf``
  when it never does within the curve.

The optimised image is unconstrained during L-BFGS (as in Gatys et al.) and
its loss is that of the unclamped pixels, which slightly favours the
optimisation over the network (whose output is in [0, 1]).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor, nn

from ..losses import LossWeights, PerceptualLoss

__all__ = ["optimization_curve", "network_terms", "equivalent_iterations", "objective_weights"]


def objective_weights(weights: LossWeights) -> LossWeights:
    """``weights`` without the temporal term: the per-image objective both sides are scored on."""
    return LossWeights(content=weights.content, style=weights.style, tv=weights.tv, temporal=0.0)


def _noise(shape: torch.Size, seed: int, like: Tensor) -> Tensor:
    generator = torch.Generator().manual_seed(seed)  # on the CPU: the same start on every device
    return torch.rand(shape, generator=generator).to(like.device, like.dtype)


def optimization_curve(loss: PerceptualLoss, content: Tensor, weights: LossWeights, *, iterations: int,
                       seed: int = 0, lr: float = 1.0) -> tuple[Tensor, list[float]]:
    """Optimise the pixels of one image from uniform noise with L-BFGS; the loss after each iteration.

    Args:
        loss: holds the loss network and the style targets.
        content: ``(1, 3, H, W)`` photo in ``[0, 1]``.
        weights: the objective's weights (the temporal term is ignored).
        iterations: L-BFGS iterations (one objective evaluation each, no line
            search, as in Gatys' and Ruder's Torch code).
        seed: seed of the noise start.
        lr: L-BFGS step size.

    Returns:
        ``(image, curve)``: the optimised image clamped to ``[0, 1]``
        ``(1, 3, H, W)`` and ``curve[i]`` = total weighted loss after ``i``
        iterations (``curve[0]`` is the noise), ``len(curve) == iterations + 1``.
    """
    if content.dim() != 4 or content.shape[:2] != (1, 3):
        raise ValueError(f"content must be (1, 3, H, W), got {tuple(content.shape)}")
    if iterations < 1:
        raise ValueError(f"iterations must be >= 1, got {iterations}")
    weights = objective_weights(weights)
    x = _noise(content.shape, seed, content).requires_grad_(True)
    opt = torch.optim.LBFGS([x], lr=lr, max_iter=1, history_size=100)
    curve: list[float] = []

    def closure() -> Tensor:
        opt.zero_grad()
        total = weights.total(loss(x, content))
        total.backward()
        curve.append(float(total.detach()))
        return total

    for _ in range(iterations):
        opt.step(closure)
    with torch.no_grad():
        curve.append(float(weights.total(loss(x, content))))
    if not all(math.isfinite(v) for v in curve):
        raise FloatingPointError("the optimisation diverged (non-finite loss); lower lr")
    return x.detach().clamp(0.0, 1.0), curve


@torch.no_grad()
def network_terms(net: nn.Module, loss: PerceptualLoss, content: Tensor,
                  weights: LossWeights) -> tuple[Tensor, dict[str, float]]:
    """A network's output for one photo (state ``None``: a clip's first frame) and its loss terms.

    Returns ``(output (1, 3, H, W), {"content", "style", "tv", "total"})``,
    ``total`` weighted by :func:`objective_weights` of ``weights``.
    """
    out, _ = net(content)
    out = out.float().clamp(0.0, 1.0)
    raw = loss(out, content)  # one VGG pass for the terms and their weighted total
    terms = {name: float(value) for name, value in raw.items()}
    terms["total"] = float(objective_weights(weights).total(raw))
    return out, terms


def equivalent_iterations(model_loss: float, curve: Sequence[float]) -> float:
    """The (fractional) iteration at which ``curve`` first falls to ``model_loss``.

    ``curve[i]`` is the loss after ``i`` iterations.  Between iterations the
    loss is taken as linear.  ``0.0`` when even the start is as good,
    ``math.inf`` when no iteration of the curve reaches it.
    """
    if not curve:
        raise ValueError("curve is empty")
    if curve[0] <= model_loss:
        return 0.0
    for i in range(1, len(curve)):
        if curve[i] <= model_loss:
            prev, cur = curve[i - 1], curve[i]
            frac = (prev - model_loss) / (prev - cur) if prev > cur else 1.0
            return (i - 1) + min(1.0, max(0.0, frac))
    return math.inf
