"""Virtual-camera clips over still images, with exact optical flow and occlusion.

Ground truth for the temporal loss and the instability metric where real video has only
estimated flow.  :mod:`.motion` owns the camera paths (how each layer moves), :mod:`.render`
the frames and the exact flow / visibility (the maths is in its docstring), :mod:`.files` the
clip folder (MPI Sintel's layout plus the backward direction).
"""

from .files import GroundTruthClip, check_clip_folder, load_ground_truth, save_clip
from .motion import SHAPES, Layer, MotionConfig, similarity_maps, smooth_trajectory
from .render import SyntheticClip, render_clip, render_layers

__all__ = [
    "MotionConfig",
    "Layer",
    "SyntheticClip",
    "GroundTruthClip",
    "smooth_trajectory",
    "similarity_maps",
    "render_layers",
    "render_clip",
    "save_clip",
    "check_clip_folder",
    "load_ground_truth",
    "SHAPES",
]
