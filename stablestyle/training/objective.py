"""The paper's training objective: a recurrent net unrolled over a clip, and its loss (Gupta et al. 2017, Sec. 4).

* ``mode="stable"`` (Gupta et al. 2017, Sec. 4): a recurrent
  :class:`~stablestyle.models.TransformerNet` is unrolled over short
  sequences of ``seq_len`` frames (default 4) by :class:`SequenceModel`:
  each frame goes in together with the net's *own previous output*
  (``state=None`` at a sequence start, where the net uses the frame
  itself).  Per frame ``t`` the loss is the perceptual loss against the
  input frame (content + style + TV, Johnson et al. 2016), and for
  ``t >= 1`` the temporal loss against the previous output warped by the
  backward flow, masked by Ruder et al. 2016's reliability mask ``c_t``
  (occlusions and motion boundaries)::

      L_temp(t) = temporal_loss(y_t, backward_warp(y_{t-1}, flow_bw_t), c_t)
                = (1 / 3HW) sum c_t (y_t - w(y_{t-1}))^2

* ``mode="perframe"`` (Johnson et al. 2016): ``seq_len = 1``, a
  non-recurrent net, no temporal term.

Loss of one batch (:func:`sequence_loss`): each term is averaged over the
batch and over the frames it is defined on (perceptual terms over all ``T``
frames, the temporal term over the ``T - 1`` frame pairs), so the weights do
not depend on ``seq_len`` (summing over frames instead would scale the
temporal weight by ``(T - 1) / T`` relative to the others); the weighted sum
is taken only in :meth:`stablestyle.losses.LossWeights.total`.

**What training differentiates.**  Whether ``y_{t-1}`` is treated as a
constant is not taken from Gupta et al.; it is this implementation's choice,
and a switch.  By default training back-propagates through the whole
unrolled sequence (full backpropagation through time, the standard way to
train a recurrent net on a loss of its whole output sequence): the temporal
term then pulls ``y_t`` and ``y_{t-1}`` towards each other, and ``y_t``'s
style / content gradients also reach the computation of ``y_{t-1}`` through
the recurrent input.  ``detach_previous=True`` instead treats the previous
output as given data, both as the recurrent input and as the temporal
target (truncated BPTT of length one).

The loss maths itself (Gram matrices, ``temporal_loss``, ``masked_mean``)
lives in :mod:`stablestyle.losses`; warping in :mod:`stablestyle.flow`.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from ..flow import backward_warp
from ..losses import LossWeights, temporal_loss


class SequenceModel(nn.Module):
    """Unrolls a transformation net over a clip; the unit that ``DistributedDataParallel`` wraps.

    ``forward(frames)``: ``(B, T, 3, H, W)`` in ``[0, 1]`` -> outputs
    ``(B, T, 3, H, W)``.  Frame ``t``'s state is the net's own output for
    ``t - 1`` (``None`` at ``t = 0``), differentiated through unless
    ``detach_previous``.  One forward per step keeps DDP's gradient hooks
    simple.
    """

    def __init__(self, net: nn.Module, detach_previous: bool = False, channels_last: bool = False) -> None:
        super().__init__()
        self.net = net
        self.detach_previous = detach_previous
        self.channels_last = channels_last

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        if frames.dim() != 5 or frames.shape[2] != 3:
            raise ValueError(f"frames must be (B, T, 3, H, W), got {tuple(frames.shape)}")
        state = None
        outputs = []
        for t in range(frames.shape[1]):
            frame = frames[:, t]
            if self.channels_last:
                frame = frame.contiguous(memory_format=torch.channels_last)
            out, state = self.net(frame, state)
            if state is not None and self.detach_previous:
                state = state.detach()
            outputs.append(out)
        return torch.stack(outputs, dim=1)


def loss_window(size: tuple[int, int], margin: int, seed: int, step: int) -> tuple[int, int, int, int] | None:
    """``(top, left, height, width)`` of the perceptual-loss window of training step ``step``, or ``None``.

    With ``margin > 0`` the window is ``margin`` pixels smaller than the crop on each axis, at an offset
    drawn uniformly in ``0..margin`` from ``(seed, step)`` alone (so a resumed run draws the same windows).
    The loss network's zero-padded image border then falls at a different place of the net's output every
    step, and the outer ``margin`` pixels of the crop get no perceptual loss on most steps.  (Tried against
    The Scream's band along the top of every frame, it did not remove it: docs/MODELS.md.)
    """
    if margin <= 0:
        return None
    height, width = size
    if margin >= min(height, width):
        raise ValueError(f"loss margin {margin} leaves no window in a {width}x{height} crop")
    gen = torch.Generator().manual_seed(seed * 1_000_003 + step)
    top, left = (int(v) for v in torch.randint(0, margin + 1, (2,), generator=gen))
    return top, left, height - margin, width - margin


def centre_window(size: tuple[int, int], margin: int) -> tuple[int, int, int, int]:
    """``(top, left, height, width)`` of the crop ``margin`` pixels inside each edge of a ``size`` item.

    The perceptual-loss window of ``train --context-margin``: items are cropped ``margin`` px larger on each
    side, so the net's own edges fall in real context the losses never see.
    """
    height, width = size
    if margin < 0 or 2 * margin >= min(height, width):
        raise ValueError(f"context margin {margin} leaves no window in a {width}x{height} item")
    return margin, margin, height - 2 * margin, width - 2 * margin


def sequence_terms(outputs: torch.Tensor, frames: torch.Tensor, perceptual: nn.Module, *,
                   flow_bw: torch.Tensor | None = None, mask: torch.Tensor | None = None,
                   detach_previous: bool = False,
                   window: tuple[int, int, int, int] | None = None) -> dict[str, torch.Tensor]:
    """Unweighted loss terms of a batch of unrolled sequences.

    Args:
        outputs: ``(B, T, 3, H, W)`` net outputs in ``[0, 1]``.
        frames: ``(B, T, 3, H, W)`` input frames (the content targets).
        perceptual: :class:`~stablestyle.losses.PerceptualLoss`; its terms are
            averaged over all ``B * T`` frames.
        flow_bw: ``(B, T, 2, H, W)`` pixels, frame ``t -> t-1`` (index 0 unused);
            with ``mask`` it adds the temporal term.
        mask: ``(B, T, 1, H, W)`` reliability ``c_t`` (Ruder et al. 2016), 1 = reliable.
        detach_previous: use ``y_{t-1}`` as a constant target.
        window: ``(top, left, height, width)`` (:func:`loss_window`): the perceptual terms see only this
            part of outputs and frames; the temporal term always sees the whole frame.

    Returns:
        ``{content, style, tv}`` plus ``temporal`` (Gupta et al. 2017, Sec. 4,
        averaged over the ``B * (T - 1)`` pairs ``t >= 1``) when flow is given
        and ``T >= 2``.
    """
    if outputs.shape != frames.shape or outputs.dim() != 5:
        raise ValueError(f"outputs {tuple(outputs.shape)} and frames {tuple(frames.shape)} must both be "
                         "(B, T, 3, H, W)")
    b, t = outputs.shape[:2]
    seen_out, seen_in = outputs.flatten(0, 1), frames.flatten(0, 1)
    if window is not None:
        top, left, height, width = window
        seen_out = seen_out[..., top:top + height, left:left + width]
        seen_in = seen_in[..., top:top + height, left:left + width]
    terms = dict(perceptual(seen_out, seen_in))
    if flow_bw is not None and mask is not None and t >= 2:
        terms["temporal"] = sequence_temporal(outputs, flow_bw, mask, detach_previous=detach_previous)
    return terms


def sequence_temporal(outputs: torch.Tensor, flow_bw: torch.Tensor, mask: torch.Tensor, *,
                      detach_previous: bool = False) -> torch.Tensor:
    """The temporal loss of ``outputs`` ``(B, T, 3, H, W)`` (``T >= 2``) over its ``T - 1`` frame pairs: each
    output against the previous one warped by ``flow_bw`` ``(B, T, 2, H, W)``, weighted by ``mask``
    ``(B, T, 1, H, W)`` (entry 0 of both unused)."""
    prev = outputs[:, :-1].flatten(0, 1)
    if detach_previous:
        prev = prev.detach()
    # warping is an fp32 island (backward_warp upcasts internally)
    warped = backward_warp(prev, flow_bw[:, 1:].flatten(0, 1).to(torch.float32))
    return temporal_loss(outputs[:, 1:].flatten(0, 1), warped, mask[:, 1:].flatten(0, 1))


def sequence_loss(outputs: torch.Tensor, frames: torch.Tensor, perceptual: nn.Module, weights: LossWeights,
                  **kwargs: Any) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """``(loss, metrics)``: :func:`sequence_terms` weighted by ``weights.total``; metrics are detached."""
    terms = sequence_terms(outputs, frames, perceptual, **kwargs)
    loss = weights.total(terms)
    metrics = {name: value.detach() for name, value in terms.items()}
    metrics["total"] = loss.detach()
    return loss, metrics

