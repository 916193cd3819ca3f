"""Reliability (occlusion and motion-boundary) mask of Ruder et al. 2016.

Ruder, Dosovitskiy, Brox, "Artistic style transfer for videos", GCPR 2016,
Sec. 3.2 (thresholds from Sundaram et al. 2010).  On frame ``t``'s grid, with
``w = flow_bw`` (frame ``t -> t-1``) and ``what`` = ``flow_fw`` (frame
``t-1 -> t``) sampled at ``x + w(x)``:

* disocclusion / inconsistency (Ruder Eq. 5)::

      |w + what|^2 > alpha * (|w|^2 + |what|^2) + beta

  A pixel seen in both frames has ``what = -w``; a pixel uncovered in
  frame ``t`` has no correspondence and fails the round trip.

* motion boundary (Ruder Eq. 6)::

      |grad u|^2 + |grad v|^2 > mb_alpha * |w|^2 + mb_beta

  with ``(u, v) = w`` and **central differences**
  ``du/dx = (u[x+1] - u[x-1]) / 2`` (replicate padding at the image border),
  as the authors' ``consistencyChecker`` (``CDerivative(3)``).  A step edge
  in the flow is therefore flagged on the two pixels that straddle it.

* pixels whose ``x + w(x)`` leaves the image (see :func:`inbounds_mask`).

Departures from the reference C++ tool: the inconsistency test uses ``>``
as in the paper (the tool uses ``>=``); "inside" means
``0 <= x + w <= W - 1`` (the tool also rejects ``x + w`` in ``(W-2, W-1]``);
and no Gaussian smoothing is applied to the mask.

All masks follow the package convention: ``(B, 1, H, W)``, **1 = reliable**.
They are computed in at least float32 and returned in ``flow_bw``'s dtype.
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn

from .warp import _check_flow, _compute_dtype, backward_warp, inbounds_mask

__all__ = ["consistency_mask", "motion_boundary_mask", "reliability_mask", "ReliabilityMask"]


def _check_pair(flow_bw: Tensor, flow_fw: Tensor) -> None:
    _check_flow(flow_bw, "flow_bw")
    _check_flow(flow_fw, "flow_fw")
    if flow_bw.shape != flow_fw.shape:
        raise ValueError(f"flow_bw {tuple(flow_bw.shape)} and flow_fw {tuple(flow_fw.shape)} must have one shape")
    if flow_bw.device != flow_fw.device:
        raise ValueError(f"flow_bw is on {flow_bw.device} but flow_fw on {flow_fw.device}; use one device")


def _check_threshold(**values: float) -> None:
    for name, value in values.items():
        if not value >= 0:
            raise ValueError(f"{name} must be a number >= 0, got {value!r}")


def consistency_mask(flow_bw: Tensor, flow_fw: Tensor, *, alpha: float = 0.01, beta: float = 0.5) -> Tensor:
    """Forward-backward consistency on frame ``t``'s grid (Ruder et al. 2016, Eq. 5).

    Args:
        flow_bw: ``(B, 2, H, W)`` pixels, frame ``t -> t-1`` (on frame t's grid).
        flow_fw: ``(B, 2, H, W)`` pixels, frame ``t-1 -> t`` (on frame t-1's grid).
        alpha: relative tolerance (dimensionless).
        beta: absolute tolerance in squared pixels.

    Returns:
        ``(B, 1, H, W)``: 0 where ``|w + what|^2 > alpha (|w|^2 + |what|^2) + beta``
        (occluded / disoccluded), else 1.  Pixels whose ``x + w`` leaves the
        image are not judged here (``what`` there is zero-padded); see
        :func:`reliability_mask`.
    """
    _check_pair(flow_bw, flow_fw)
    _check_threshold(alpha=alpha, beta=beta)
    dtype = _compute_dtype(flow_bw, flow_fw)
    w = flow_bw.to(dtype)
    w_hat = backward_warp(flow_fw.to(dtype), w)
    err = (w + w_hat).square().sum(1, keepdim=True)
    tol = alpha * (w.square().sum(1, keepdim=True) + w_hat.square().sum(1, keepdim=True)) + beta
    return (err <= tol).to(flow_bw.dtype)


def motion_boundary_mask(flow_bw: Tensor, *, mb_alpha: float = 0.01, mb_beta: float = 0.002) -> Tensor:
    """Motion-boundary test on ``flow_bw`` (Ruder et al. 2016, Eq. 6).

    Args:
        flow_bw: ``(B, 2, H, W)`` pixels, frame ``t -> t-1``.
        mb_alpha: relative tolerance (dimensionless).
        mb_beta: absolute tolerance in squared pixels per pixel.

    Returns:
        ``(B, 1, H, W)``: 0 on motion boundaries, where
        ``|grad u|^2 + |grad v|^2 > mb_alpha |w|^2 + mb_beta`` with central
        differences (replicate padding), else 1.
    """
    _check_flow(flow_bw, "flow_bw")
    _check_threshold(mb_alpha=mb_alpha, mb_beta=mb_beta)
    w = flow_bw.to(_compute_dtype(flow_bw))
    p = F.pad(w, (1, 1, 1, 1), mode="replicate")
    dx = 0.5 * (p[:, :, 1:-1, 2:] - p[:, :, 1:-1, :-2])
    dy = 0.5 * (p[:, :, 2:, 1:-1] - p[:, :, :-2, 1:-1])
    grad_sq = (dx.square() + dy.square()).sum(1, keepdim=True)
    tol = mb_alpha * w.square().sum(1, keepdim=True) + mb_beta
    return (grad_sq <= tol).to(flow_bw.dtype)


def reliability_mask(
    flow_bw: Tensor,
    flow_fw: Tensor,
    *,
    alpha: float = 0.01,
    beta: float = 0.5,
    mb_alpha: float = 0.01,
    mb_beta: float = 0.002,
) -> Tensor:
    """Ruder et al. 2016 reliability mask ``c`` on frame ``t``'s grid.

    The product of :func:`consistency_mask`, :func:`motion_boundary_mask`
    and :func:`~stablestyle.flow.warp.inbounds_mask` of ``flow_bw``: 1 where
    frame ``t-1`` warped by ``flow_bw`` can be trusted to match frame ``t``
    (the per-pixel weight of the temporal loss, Gupta et al. 2017, Eq. 3).

    Args:
        flow_bw: ``(B, 2, H, W)`` pixels, frame ``t -> t-1``.
        flow_fw: ``(B, 2, H, W)`` pixels, frame ``t-1 -> t``.
        alpha, beta, mb_alpha, mb_beta: thresholds, see the module docstring.

    Returns:
        ``(B, 1, H, W)`` in ``{0, 1}``, ``flow_bw``'s dtype and device.
    """
    consistent = consistency_mask(flow_bw, flow_fw, alpha=alpha, beta=beta)
    smooth = motion_boundary_mask(flow_bw, mb_alpha=mb_alpha, mb_beta=mb_beta)
    return consistent * smooth * inbounds_mask(flow_bw)


class ReliabilityMask(nn.Module):
    """Thin module holding the thresholds of :func:`reliability_mask`."""

    def __init__(self, alpha: float = 0.01, beta: float = 0.5, mb_alpha: float = 0.01, mb_beta: float = 0.002):
        super().__init__()
        _check_threshold(alpha=alpha, beta=beta, mb_alpha=mb_alpha, mb_beta=mb_beta)
        self.alpha, self.beta, self.mb_alpha, self.mb_beta = alpha, beta, mb_alpha, mb_beta

    def forward(self, flow_bw: Tensor, flow_fw: Tensor) -> Tensor:
        return reliability_mask(
            flow_bw, flow_fw, alpha=self.alpha, beta=self.beta, mb_alpha=self.mb_alpha, mb_beta=self.mb_beta
        )

    def extra_repr(self) -> str:
        return f"alpha={self.alpha}, beta={self.beta}, mb_alpha={self.mb_alpha}, mb_beta={self.mb_beta}"
