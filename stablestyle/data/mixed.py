"""Stills and video clips in a fixed ratio."""

from __future__ import annotations

from fractions import Fraction

from torch.utils.data import Dataset

from ..errors import UserError
from ._common import EpochMixin, check_fraction, check_int

__all__ = ["MixedDataset"]


class MixedDataset(EpochMixin, Dataset):
    """Items from ``videos`` with ratio ``video_ratio``, else from ``stills``, decided per index.

    Index ``i`` is a video item when ``floor((i + 1) r) > floor(i r)`` (``r``
    the ratio as an exact fraction): every prefix of the dataset holds
    ``floor(n r)`` video items, so the ratio holds for any batch range, not
    only on average, and needs no random state.  The ``j``-th video item is
    ``videos[j mod len(videos)]`` (likewise for stills); shuffle with the
    ``DataLoader``.  ``set_epoch`` reaches both parts.

    Args:
        stills: a :class:`~stablestyle.data.StillsDataset` (or ``None`` when ``video_ratio == 1``).
        videos: a :class:`~stablestyle.data.VideoClipsDataset` (or ``None`` when ``video_ratio == 0``).
        video_ratio: fraction of video items, 0..1.
        length: items per epoch; default ``len(stills) + len(videos)`` of the parts in use.
    """

    def __init__(self, stills: Dataset | None, videos: Dataset | None, video_ratio: float,
                 length: int | None = None):
        self.video_ratio = check_fraction("video_ratio", video_ratio)
        self._ratio = Fraction(self.video_ratio).limit_denominator(10**6)
        if self._ratio > 0 and (videos is None or len(videos) == 0):
            raise UserError(f"video_ratio={video_ratio} needs training videos, but there are none; use 0")
        if self._ratio < 1 and (stills is None or len(stills) == 0):
            raise UserError(f"video_ratio={video_ratio} needs training images, but there are none; use 1")
        parts = [d for d in (stills, videos) if d is not None]
        shapes = {(getattr(d, "seq_len", None), getattr(d, "crop", None)) for d in parts}
        if len(shapes) > 1:
            raise UserError(f"stills and videos must share seq_len and crop, got (seq_len, crop) {sorted(shapes)}")
        self.stills, self.videos = stills, videos
        used = (len(stills) if self._ratio < 1 else 0) + (len(videos) if self._ratio > 0 else 0)
        self.length = check_int("length", length if length is not None else used, 1)
        self.epoch = 0

    def __len__(self) -> int:
        return self.length

    def __repr__(self) -> str:
        return f"MixedDataset({len(self)} items, video_ratio={self.video_ratio}, {self.stills!r}, {self.videos!r})"

    def set_epoch(self, epoch: int) -> None:
        super().set_epoch(epoch)
        for part in (self.stills, self.videos):
            if part is not None and hasattr(part, "set_epoch"):
                part.set_epoch(epoch)

    def locate(self, index: int) -> tuple[str, int]:
        """``("videos" | "stills", index into that part)`` for mixed index ``index``."""
        index = self._check_index(index)
        before = (index * self._ratio.numerator) // self._ratio.denominator  # video items before ``index``
        if ((index + 1) * self._ratio.numerator) // self._ratio.denominator > before:
            return "videos", before % len(self.videos)
        return "stills", (index - before) % len(self.stills)

    def get(self, index: int, epoch: int) -> dict:
        """Item ``index`` of ``epoch`` (deterministic); see :mod:`stablestyle.data`."""
        part, j = self.locate(index)
        return getattr(self, part).get(j, epoch)
