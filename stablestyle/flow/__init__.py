"""Optical flow: warping, Ruder et al. 2016 reliability masks, ``.flo`` I/O and estimators.

Flow direction names follow the package convention (:mod:`stablestyle`):
``flow_bw`` takes frame ``t`` back to ``t-1`` (pixel ``x`` of frame ``t`` is
at ``x + flow_bw(x)`` in frame ``t-1``); ``flow_fw`` takes ``t-1`` to ``t``.
Torch flow is ``(B, 2, H, W)``, numpy flow ``float32 (H, W, 2)``, in pixels.
"""

from .convert import flow_to_color, flow_to_numpy, flow_to_tensor
from .estimators import FLOW_METHODS, estimate_flow, flow_pair, register_flow_method
from .flo import read_flo, write_flo
from .reliability import ReliabilityMask, consistency_mask, motion_boundary_mask, reliability_mask
from .warp import BackwardWarp, backward_warp, inbounds_mask

__all__ = [
    "FLOW_METHODS",
    "BackwardWarp",
    "ReliabilityMask",
    "backward_warp",
    "consistency_mask",
    "estimate_flow",
    "flow_pair",
    "flow_to_color",
    "flow_to_numpy",
    "flow_to_tensor",
    "inbounds_mask",
    "motion_boundary_mask",
    "read_flo",
    "register_flow_method",
    "reliability_mask",
    "write_flo",
]
