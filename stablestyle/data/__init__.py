"""Training data: torch datasets of short clips with backward flow and a reliability mask.

Every dataset yields the same item, a dict of tensors for one clip of ``T``
frames (``T = seq_len``; per-frame baselines use ``seq_len=1``)::

    frames   float32 (T, 3, h, w) in [0, 1]
    flow_bw  float32 (T, 2, h, w) pixels, frame t -> t-1; index 0 zeros
    mask     float32 (T, 1, h, w) in {0, 1}, 1 = flow_bw reliable; index 0 zeros
    source   str     where the clip came from

``mask`` weighs the temporal loss (Gupta et al. 2017, Eq. 3).  Items are a
pure function of ``(seed, epoch, index)`` (call ``set_epoch`` before each
epoch, or ``get(index, epoch)``), so a resumed run sees the same data.  No
dataset keeps open files across processes: they work in ``DataLoader``
workers (``num_workers > 0``).

* :class:`StillsDataset`: a virtual camera over still photos with moving
  foreground patches (:mod:`stablestyle.synthetic`): exact flow and occlusion.
* :class:`VideoClipsDataset`: consecutive frames of videos / frame folders;
  flow estimated once per video (:func:`stablestyle.flow.estimate_flow`) and
  masked as Ruder et al. 2016, cached on disk.
* :class:`MixedDataset`: both, in a fixed ratio.
* :func:`build_training_data`: collects files from folders, skips bad ones
  with counted warnings, and builds the right dataset.
"""

from .build import build_training_data
from .images import IMAGE_EXTENSIONS, BadImage, ImageScan, find_images, load_training_image, scan_images
from .mixed import MixedDataset
from .stills import StillsDataset
from .videos import VideoClipsDataset, flow_cache_dir

__all__ = [
    "IMAGE_EXTENSIONS",
    "BadImage",
    "ImageScan",
    "MixedDataset",
    "StillsDataset",
    "VideoClipsDataset",
    "build_training_data",
    "find_images",
    "flow_cache_dir",
    "load_training_image",
    "scan_images",
]
