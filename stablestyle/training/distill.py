"""Distillation: a student net trained to reproduce a trained model's output (``stablestyle train --teacher``).

The perceptual objective spends most of a training step in the VGG-16 loss network, which is the same size
whatever the width of the net being trained. A narrow student (the ``-small`` nets) can instead learn from a
trained teacher's *output*: the loss is the mean absolute difference between the student's and the teacher's
images, with no loss network at all, so a step costs the student's forward and backward pass plus the teacher's
forward pass.

* The teacher runs as users run it (eval mode, its own edge margin), on the same training items, under no
  gradient. A recurrent teacher is unrolled over each sequence on its own previous outputs, so a recurrent
  student learns the teacher's stable behaviour from its outputs, with no temporal term by default.
* ``distill_temporal`` (``--distill-temporal W``) adds ``W`` times the temporal loss of the student's own outputs
  (the batch's flow and mask): a quarter-width per-frame twin distilled from a full-width one is itself steadier
  than its teacher, so the stable student must be steadier than its own teacher to keep the pair's ratio.
* Student and teacher must both be recurrent or both per-frame (:func:`load_teacher` says which to pass).
* The student's validation still reports instability and the perceptual terms under the run's style, so a
  distilled run is measured like any other.
"""

from __future__ import annotations

import torch
from torch import nn

from ..errors import UserError
from .objective import SequenceModel, sequence_temporal


def load_teacher(spec: str, *, recurrent: bool, device: torch.device) -> tuple[nn.Module, dict]:
    """``(net, meta)``: the teacher model ``spec`` (a bundled name, checkpoint or run folder) frozen, eval mode,
    on ``device``; a :class:`UserError` when it is recurrent and the student is not, or the other way round."""
    from ..checkpoint import describe_net, load_checkpoint

    net, meta = load_checkpoint(spec)
    if bool(net.recurrent) != recurrent:
        student = "recurrent (--mode stable)" if recurrent else "per-frame (--mode perframe)"
        raise UserError(f"--teacher {spec} is a {describe_net(meta['model'])} but the student is {student}; "
                        f"distil a {'stable' if recurrent else 'per-frame'} model, or pass --mode "
                        f"{'stable' if net.recurrent else 'perframe'}")
    net = net.to(device).eval()
    for p in net.parameters():
        p.requires_grad_(False)
    return net, meta


@torch.no_grad()
def teacher_outputs(teacher: nn.Module, frames: torch.Tensor) -> torch.Tensor:
    """``(B, T, 3, H, W)`` outputs of ``teacher`` on ``frames`` (``(B, T, 3, H, W)`` in ``[0, 1]``), unrolled
    over ``T`` on its own previous outputs by :class:`~.objective.SequenceModel` (the state starts empty)."""
    return SequenceModel(teacher)(frames)


def distill_loss(outputs: torch.Tensor, targets: torch.Tensor, *, temporal_weight: float = 0.0,
                 flow_bw: torch.Tensor | None = None, mask: torch.Tensor | None = None
                 ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """``(loss, metrics)``: the mean absolute difference of the student's ``outputs`` from the teacher's
    ``targets`` (same shape, images in ``[0, 1]``), computed in float32; ``metrics`` = detached ``distill`` and
    ``total``.

    With ``temporal_weight > 0`` (sequences ``(B, T, 3, H, W)``, ``flow_bw`` and ``mask`` given) the loss adds
    that weight times the temporal loss of the student's own outputs (:func:`~.objective.sequence_temporal`,
    gradient through the previous output), reported as ``temporal``: a student steadier than its teacher.
    """
    if outputs.shape != targets.shape:
        raise ValueError(f"student outputs {tuple(outputs.shape)} and teacher outputs {tuple(targets.shape)} "
                         "differ in shape")
    loss = (outputs.float() - targets.float()).abs().mean()
    metrics = {"distill": loss.detach()}
    if temporal_weight > 0:
        if flow_bw is None or mask is None or outputs.dim() != 5:
            raise ValueError("a temporal term needs (B, T, 3, H, W) outputs with flow_bw and mask")
        temporal = sequence_temporal(outputs, flow_bw, mask)
        loss = loss + temporal_weight * temporal
        metrics["temporal"] = temporal.detach()
    metrics["total"] = loss.detach()
    return loss, metrics
