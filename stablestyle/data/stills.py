"""Clips with exact motion rendered from still photos (a virtual camera; :mod:`stablestyle.synthetic`)."""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from ..errors import UserError
from ..synthetic import MotionConfig, render_clip
from ..video import to_tensor
from ._common import MIN_CROP, EpochMixin, check_fraction, check_int, item_rng
from .images import BadImage, load_training_image

log = logging.getLogger(__name__)

__all__ = ["StillsDataset"]


class StillsDataset(EpochMixin, Dataset):
    """One synthetic clip per photo and epoch, with exact flow and occlusion mask.

    Item ``i`` of epoch ``e``: a ``crop x crop`` virtual camera moving over
    photo ``i`` (:func:`stablestyle.synthetic.render_clip`); with probability
    ``foreground_prob`` a rect / ellipse patch cut from another random photo
    moves over it.  ``mask`` is the exact validity of ``flow_bw``
    (``SyntheticClip.valid_bw``), so the temporal loss never compares
    occluded pixels.  See :mod:`stablestyle.data` for the item layout.

    Args:
        image_paths: photos (any size; see :func:`~stablestyle.data.load_training_image`).
        seq_len: frames per clip ``T`` (1 = per-frame training).
        crop: frame side, pixels.
        motion: motion bounds (:class:`~stablestyle.synthetic.MotionConfig`).
        foreground_prob: probability of a moving foreground patch.
        vflip_prob: probability of turning the background photo upside down before
            the camera moves over it (the clip's flow and mask follow: they are
            rendered from the turned photo).  Photos mostly hold sky at the top; a
            net trained only on upright ones can learn to paint the style's sky
            into the top of every frame whatever is there.  0 draws no random
            number, so items of existing seeds stay the same.
        seed: with ``(epoch, index)`` fixes the item.
    """

    def __init__(self, image_paths: Sequence[str | os.PathLike], seq_len: int, crop: int = 256,
                 motion: MotionConfig | None = None, foreground_prob: float = 0.5, vflip_prob: float = 0.0,
                 seed: int = 0):
        self.paths = [Path(p) for p in image_paths]
        if not self.paths:
            raise UserError("StillsDataset needs at least one training image")
        self.seq_len = check_int("seq_len", seq_len, 1)
        self.crop = check_int("crop", crop, MIN_CROP)
        self.motion = motion if motion is not None else MotionConfig()
        self.foreground_prob = check_fraction("foreground_prob", foreground_prob)
        self.vflip_prob = check_fraction("vflip_prob", vflip_prob)
        self.seed = check_int("seed", seed, 0)
        self.epoch = 0

    def __len__(self) -> int:
        return len(self.paths)

    def __repr__(self) -> str:
        return f"StillsDataset({len(self)} images, seq_len={self.seq_len}, crop={self.crop})"

    def _load(self, index: int) -> tuple[Path, np.ndarray] | None:
        path = self.paths[index]
        try:
            return path, load_training_image(path, self.crop)
        except BadImage as exc:
            log.warning("training image became unusable, using another one: %s", exc)
            return None

    def get(self, index: int, epoch: int) -> dict:
        """Item ``index`` of ``epoch`` (deterministic); see :mod:`stablestyle.data`."""
        index = self._check_index(index)
        rng = item_rng(self.seed, epoch, index)
        n = len(self.paths)
        loaded = None
        for k in range(n):  # a file broken since the scan: take the next one (deterministically)
            loaded = self._load((index + k) % n)
            if loaded is not None:
                break
        if loaded is None:
            raise UserError(f"none of the {n} training images can be read any more")
        path, background = loaded
        if self.vflip_prob > 0 and rng.random() < self.vflip_prob:
            background = np.ascontiguousarray(background[::-1])
        foregrounds = []
        if rng.random() < self.foreground_prob:
            j = int(rng.integers(n - 1)) if n > 1 else 0
            j = j + (j >= index) if n > 1 else index  # another photo when there is one
            fg = self._load(j)
            if fg is not None:
                foregrounds.append(fg[1])
        clip = render_clip(background, self.seq_len, (self.crop, self.crop), rng=rng, motion=self.motion,
                           foregrounds=foregrounds)
        return {
            "frames": to_tensor(clip.frames),
            "flow_bw": torch.from_numpy(clip.flow_bw).permute(0, 3, 1, 2).contiguous(),
            "mask": torch.from_numpy(clip.valid_bw)[:, None].contiguous(),
            "source": str(path),
        }
