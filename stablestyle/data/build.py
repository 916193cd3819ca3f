"""From the user's content folders and videos to one training dataset."""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence

from torch.utils.data import Dataset

from ..errors import UserError
from ..synthetic import MotionConfig
from ._common import MIN_CROP, check_fraction, check_int
from .images import IMAGE_EXTENSIONS, ImageScan, scan_images
from .mixed import MixedDataset
from .stills import StillsDataset
from .videos import VideoClipsDataset

log = logging.getLogger(__name__)

__all__ = ["build_training_data"]


def build_training_data(content: Sequence[str | os.PathLike] = (), videos: Sequence[str | os.PathLike] = (), *,
                        seq_len: int, crop: int = 256, video_ratio: float = 0.5, motion: MotionConfig | None = None,
                        foreground_prob: float = 0.5, vflip_prob: float = 0.0, flow_method: str = "dis",
                        short_side: int | None = None, max_frames: int | None = None, seed: int = 0, verify: bool = True,
                        quiet: bool = False, held_out: str | os.PathLike | None = None) -> Dataset:
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
        motion, foreground_prob, vflip_prob: synthetic motion of the stills, upside-down photos.
        flow_method, short_side, max_frames: video flow settings.
        seed: data seed (items are a function of seed, epoch and index).
        verify: decode every image up front (see :func:`~stablestyle.data.scan_images`).
        quiet: hide progress bars.
        held_out: an image the caller took out of ``content`` (the validation
            image); only named in the error when no content image is usable.

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
                                   vflip_prob=vflip_prob, seed=seed)
        elif not videos:
            raise UserError(_no_usable_images(content, scan, crop, held_out))
        else:
            log.warning("no usable training images in %s; training on the videos only", _names(content))
    clips = None
    if videos:
        clips = VideoClipsDataset(videos, seq_len, crop, flow_method, short_side, max_frames=max_frames,
                                  seed=seed, quiet=quiet)
    if stills is not None and clips is not None:
        dataset: Dataset = MixedDataset(stills, clips, video_ratio)
    else:  # one kind only: video_ratio does not apply
        dataset = stills if stills is not None else clips
    (log.debug if quiet else log.info)("training data: %r", dataset)  # quiet: also the non-main ranks
    return dataset


def _names(paths: Sequence[str | os.PathLike], limit: int = 3) -> str:
    """``a, b, c and 97 more``: paths for a one-line message."""
    shown = ", ".join(map(str, paths[:limit]))
    return shown + (f" and {len(paths) - limit} more" if len(paths) > limit else "")


def _no_usable_images(content: Sequence[str | os.PathLike], scan: ImageScan, crop: int,
                      held_out: str | os.PathLike | None) -> str:
    """The error when every content image was skipped: why, and what to do."""
    if not scan.num_skipped:
        return (f"no usable training images in {_names(content)}: none found (looked for "
                f"{', '.join(IMAGE_EXTENSIONS)}, recursively)")
    reasons = ", ".join(f"{len(v)} {reason}" for reason, v in sorted(scan.skipped.items()))
    message = (f"no usable training images in {_names(content)}: all {scan.num_skipped} found were skipped "
               f"({reasons}; see the warning above)")
    if "too small" in scan.skipped:
        message += f"; images need a short side of at least {crop // 2 + crop % 2} px for crop {crop}"
    if held_out is not None:
        message += (f"; {held_out} was held back as the validation image, so training needs at least two "
                    "usable images (or give the validation image separately: --val-image / val_image)")
    return message
