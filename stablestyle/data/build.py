"""From the user's content folders and videos to one training dataset."""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence

from torch.utils.data import Dataset

from ..errors import UserError
from ..synthetic import MotionConfig
from ._common import MIN_CROP, check_fraction, check_int
from .images import IMAGE_EXTENSIONS, scan_images
from .mixed import MixedDataset
from .stills import StillsDataset
from .videos import VideoClipsDataset

log = logging.getLogger(__name__)

__all__ = ["build_training_data"]


def build_training_data(content: Sequence[str | os.PathLike] = (), videos: Sequence[str | os.PathLike] = (), *,
                        seq_len: int, crop: int = 256, video_ratio: float = 0.5, motion: MotionConfig | None = None,
                        foreground_prob: float = 0.5, flow_method: str = "dis", short_side: int | None = None,
                        max_frames: int | None = None, seed: int = 0, verify: bool = True,
                        quiet: bool = False) -> Dataset:
    """The training dataset for photos under ``content`` and the clips in ``videos``.

    Images are collected recursively from folders (``jpg jpeg png bmp webp``)
    and checked once (:func:`~stablestyle.data.scan_images`): unreadable or
    too small ones are skipped with one counted warning, non-RGB ones are
    converted, small ones enlarged.  Videos get their flow cached
    (:class:`~stablestyle.data.VideoClipsDataset`).

    Args:
        content: image files / folders for :class:`~stablestyle.data.StillsDataset`.
        videos: video files / frame folders for :class:`~stablestyle.data.VideoClipsDataset`.
        seq_len: frames per item (1 = per-frame training, e.g. the Johnson baseline).
        crop: item side, pixels.
        video_ratio: fraction of video items when both kinds are present.
        motion, foreground_prob: synthetic motion of the stills.
        flow_method, short_side, max_frames: video flow settings.
        seed: data seed (items are a function of seed, epoch and index).
        verify: decode every image up front (see :func:`~stablestyle.data.scan_images`).
        quiet: hide progress bars.

    Returns:
        A :class:`StillsDataset`, a :class:`VideoClipsDataset` or, with both,
        a :class:`MixedDataset`; all have ``set_epoch``.

    Raises:
        UserError: no usable image and no video, a missing path, bad settings.
    """
    seq_len = check_int("seq_len", seq_len, 1)
    crop = check_int("crop", crop, MIN_CROP)
    video_ratio = check_fraction("video_ratio", video_ratio)
    if not content and not videos:
        raise UserError("no training data given: pass content images (files or folders) and/or videos")
    stills = None
    if content:
        scan = scan_images(content, crop, verify=verify, quiet=quiet)
        if scan.usable:
            stills = StillsDataset(scan.usable, seq_len, crop, motion=motion, foreground_prob=foreground_prob,
                                   seed=seed)
        elif not videos:
            found = len(scan.usable) + scan.num_skipped
            detail = f"all {found} found were skipped (see the warning above)" if found else (
                f"none found (looked for {', '.join(IMAGE_EXTENSIONS)}, recursively)")
            raise UserError(f"no usable training images in {', '.join(map(str, content))}: {detail}; images need "
                            f"a short side of at least {crop // 2 + crop % 2} px for crop {crop}")
        else:
            log.warning("no usable training images in %s; training on the videos only",
                        ", ".join(map(str, content)))
    clips = None
    if videos:
        clips = VideoClipsDataset(videos, seq_len, crop, flow_method, short_side, max_frames=max_frames,
                                  seed=seed, quiet=quiet)
    if stills is not None and clips is not None:
        dataset: Dataset = MixedDataset(stills, clips, video_ratio)
    else:  # one kind only: video_ratio does not apply
        dataset = stills if stills is not None else clips
    log.info("training data: %r", dataset)
    return dataset
