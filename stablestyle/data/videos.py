"""Clips of real video with optical flow estimated once and cached on disk.

Each video (a file PyAV reads, or a folder of numbered frames) is decoded
once, resized so that its short side is ``short_side`` pixels (the fixed
working resolution), and for every pair of neighbours ``(t-1, t)`` the
backward and forward flow are estimated
(:func:`stablestyle.flow.flow_pair`) and turned into the reliability mask of
Ruder et al. 2016 (:func:`stablestyle.flow.reliability_mask`: forward-backward
consistency, motion boundaries, in-bounds).  Frames, ``flow_bw`` (float16)
and the mask are cached under ``cache_dir()/flow/<key>/`` as ``.npy`` files
(memory-mapped when read, so random crops touch only what they use);
``key`` hashes the file's path, size and modification time, the working
resolution, the flow method and the frame limit.  A second construction
finds the cache ("flow cache hit").

Items are random ``crop x crop`` windows of ``seq_len`` consecutive frames,
optionally mirrored left-right; cropping and mirroring act on frames, flow
(x component negated on a mirror) and mask alike, and pixels whose flow
leaves the crop are masked out.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import logging
import os
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from ..atomic import temp_beside
from ..errors import UserError
from ..paths import cache_dir
from ..runtime import progress
from ..video import to_tensor
from ._common import MIN_CROP, EpochMixin, check_fraction, check_int, item_rng

log = logging.getLogger(__name__)

__all__ = ["VideoClipsDataset", "flow_cache_dir", "CACHE_VERSION"]

CACHE_VERSION = 1
_ARRAYS = ("frames", "flow_bw", "mask")


def flow_cache_dir() -> Path:
    """Where cached video flow lives: ``stablestyle.paths.cache_dir() / "flow"``."""
    return cache_dir() / "flow"


@dataclass(frozen=True)
class CachedVideo:
    """One video in the flow cache: ``folder`` holds frames.npy, flow_bw.npy, mask.npy, meta.json."""

    source: str
    folder: Path
    num_frames: int
    size: tuple[int, int]  # (W, H) at the working resolution


def _signature(path: Path) -> dict:
    """What identifies a video's content cheaply: resolved path, size and mtime (of each frame for folders)."""
    from ..video import IMAGE_SUFFIXES

    st = path.stat()
    if path.is_dir():
        files = sorted((p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES), key=lambda p: p.name)
        listing = [(p.name, p.stat().st_size, p.stat().st_mtime_ns) for p in files]
        return {"path": str(path.resolve()), "frames": hashlib.sha256(repr(listing).encode()).hexdigest()}
    return {"path": str(path.resolve()), "size": st.st_size, "mtime_ns": st.st_mtime_ns}


def cache_key(path: Path, short_side: int, method: str, max_frames: int | None) -> str:
    """Hex key of a video's flow cache entry (see the module docstring)."""
    spec = {"video": _signature(path), "short_side": short_side, "method": method, "max_frames": max_frames,
            "version": CACHE_VERSION}
    return hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()[:32]


def working_size(size: tuple[int, int], short_side: int) -> tuple[int, int]:
    """``(W, H)`` scaled so that the short side is exactly ``short_side`` (aspect kept)."""
    w, h = size
    if w <= h:
        return short_side, max(short_side, round(h * short_side / w))
    return max(short_side, round(w * short_side / h)), short_side


def _resize(frame: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    import cv2

    if (frame.shape[1], frame.shape[0]) == size:
        return frame
    shrink = size[0] < frame.shape[1]
    return cv2.resize(frame, size, interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR)


def _compute(path: Path, folder: Path, short_side: int, method: str, max_frames: int | None,
             quiet: bool) -> None:
    """Decode ``path``, estimate flow between neighbours and write the cache entry ``folder`` atomically."""
    from ..flow import flow_pair, flow_to_tensor, reliability_mask
    from ..video import open_source

    frames: list[np.ndarray] = []
    flows: list[np.ndarray] = []
    masks: list[np.ndarray] = []
    with open_source(path) as source:
        size = working_size(source.size, short_side)
        total = source.num_frames if max_frames is None else min(source.num_frames or max_frames, max_frames)
        stream = itertools.islice(source, max_frames)
        for frame in progress(stream, total=total, desc=f"flow {path.name}", unit="frame", quiet=quiet):
            frame = _resize(frame, size)
            if frames:
                bw, fw = flow_pair(frames[-1], frame, method)
                mask = reliability_mask(flow_to_tensor(bw), flow_to_tensor(fw))[0, 0].numpy()
            else:
                bw, mask = np.zeros(frame.shape[:2] + (2,), np.float32), np.zeros(frame.shape[:2], np.float32)
            frames.append(frame)
            flows.append(bw.astype(np.float16))
            masks.append((mask > 0.5).astype(np.uint8))
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = temp_beside(folder, folder=True)
    try:
        for name, arrays in zip(_ARRAYS, (frames, flows, masks)):
            np.save(tmp / f"{name}.npy", np.stack(arrays))
        meta = {"source": str(path), "num_frames": len(frames), "size": list(size), "short_side": short_side,
                "method": method, "max_frames": max_frames, "version": CACHE_VERSION}
        (tmp / "meta.json").write_text(json.dumps(meta, indent=2) + "\n")
        try:
            os.rename(tmp, folder)
        except OSError:
            if not (folder / "meta.json").is_file():  # not a concurrent writer that finished first
                raise
            shutil.rmtree(tmp, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _prepare(path: Path, short_side: int, method: str, max_frames: int | None, quiet: bool) -> CachedVideo:
    folder = flow_cache_dir() / cache_key(path, short_side, method, max_frames)
    meta_file = folder / "meta.json"
    if meta_file.is_file():
        log.info("flow cache hit for %s (%s)", path, folder)
    else:
        log.info("estimating %s flow for %s (once; cached in %s)", method, path, folder)
        _compute(path, folder, short_side, method, max_frames, quiet)
    meta = json.loads(meta_file.read_text())
    return CachedVideo(str(path), folder, int(meta["num_frames"]), tuple(meta["size"]))


class VideoClipsDataset(EpochMixin, Dataset):
    """Windows of ``seq_len`` consecutive frames of real video, with cached flow and Ruder's mask.

    Videos are split into windows starting every ``stride`` frames; each
    epoch a window starts at a random offset within its stride, and gets a
    random ``crop x crop`` position and a left-right mirror with probability
    ``flip_prob``, all drawn from ``(seed, epoch, index)``.  See
    :mod:`stablestyle.data` for the item layout.

    Args:
        video_paths: video files or folders of numbered frames.
        seq_len: frames per item ``T`` (1 = per-frame training).
        crop: item side, pixels (at most ``short_side``).
        flow_method: a :data:`stablestyle.flow.FLOW_METHODS` name.
        short_side: working resolution: frames are resized so their short side
            is this many pixels before flow is estimated; default ``max(crop, 288)``.
        stride: frames between window starts; default ``seq_len``.
        max_frames: use at most the first this many frames of each video.
        flip_prob: probability of a left-right mirror.
        seed: with ``(epoch, index)`` fixes the item.
        quiet: hide the flow progress bar.

    Unreadable videos and videos shorter than ``seq_len`` are skipped with a
    counted warning; none left is a :class:`UserError`.
    """

    def __init__(self, video_paths: Sequence[str | os.PathLike], seq_len: int, crop: int = 256,
                 flow_method: str = "dis", short_side: int | None = None, *, stride: int | None = None,
                 max_frames: int | None = None, flip_prob: float = 0.5, seed: int = 0, quiet: bool = True):
        from ..flow import FLOW_METHODS

        self.seq_len = check_int("seq_len", seq_len, 1)
        self.crop = check_int("crop", crop, MIN_CROP)
        if flow_method not in FLOW_METHODS:
            raise UserError(f"unknown flow method {flow_method!r}; valid: {', '.join(sorted(FLOW_METHODS))}")
        self.flow_method = flow_method
        self.short_side = check_int("short_side", short_side if short_side is not None else max(crop, 288), 1)
        if self.short_side < self.crop:
            raise UserError(f"short_side ({self.short_side}) must be at least the crop ({self.crop})")
        self.stride = check_int("stride", stride if stride is not None else self.seq_len, 1)
        self.max_frames = None if max_frames is None else check_int("max_frames", max_frames, 1)
        self.flip_prob = check_fraction("flip_prob", flip_prob)
        self.seed = check_int("seed", seed, 0)
        self.epoch = 0
        paths = [Path(p) for p in video_paths]
        if not paths:
            raise UserError("VideoClipsDataset needs at least one video file or frame folder")

        self.videos: list[CachedVideo] = []
        skipped: dict[str, list[str]] = {}
        for path in paths:
            if not path.exists():
                raise UserError(f"training video {path} does not exist")
            try:
                video = _prepare(path, self.short_side, flow_method, self.max_frames, quiet)
            except UserError as exc:
                log.debug("skipping training video: %s", exc)
                skipped.setdefault("unreadable", []).append(str(path))
                continue
            if video.num_frames < self.seq_len:
                skipped.setdefault(f"shorter than {self.seq_len} frames", []).append(str(path))
                continue
            self.videos.append(video)
        if skipped:
            counts = ", ".join(f"{len(v)} {reason}" for reason, v in skipped.items())
            log.warning("skipped %d of %d training videos (%s): %s", sum(map(len, skipped.values())), len(paths),
                        counts, ", ".join(p for v in skipped.values() for p in v[:3]))
        if not self.videos:
            raise UserError(f"none of the {len(paths)} training videos can be used: they are unreadable or "
                            f"shorter than seq_len={self.seq_len} frames (run with -v for details)")
        # window -> (video, first start, number of admissible starts)
        self._windows: list[tuple[int, int, int]] = []
        for v, video in enumerate(self.videos):
            last = video.num_frames - self.seq_len
            for base in range(0, last + 1, self.stride):
                self._windows.append((v, base, min(self.stride, last - base + 1)))
        self._arrays: dict[int, tuple[np.ndarray, ...]] = {}
        self._pid = os.getpid()

    def __len__(self) -> int:
        return len(self._windows)

    def __repr__(self) -> str:
        return (f"VideoClipsDataset({len(self.videos)} videos, {len(self)} windows, seq_len={self.seq_len}, "
                f"crop={self.crop}, short_side={self.short_side}, flow={self.flow_method!r})")

    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        state["_arrays"] = {}  # memory maps are opened again in each process
        return state

    def _open(self, v: int) -> tuple[np.ndarray, ...]:
        if self._pid != os.getpid():
            self._arrays, self._pid = {}, os.getpid()
        if v not in self._arrays:
            folder = self.videos[v].folder
            self._arrays[v] = tuple(np.load(folder / f"{name}.npy", mmap_mode="r") for name in _ARRAYS)
        return self._arrays[v]

    def get(self, index: int, epoch: int) -> dict:
        """Item ``index`` of ``epoch`` (deterministic); see :mod:`stablestyle.data`."""
        index = self._check_index(index)
        rng = item_rng(self.seed, epoch, index)
        v, base, choices = self._windows[index]
        start = base + int(rng.integers(choices))
        video = self.videos[v]
        width, height = video.size
        y0 = int(rng.integers(height - self.crop + 1))
        x0 = int(rng.integers(width - self.crop + 1))
        flip = bool(rng.random() < self.flip_prob)

        frames_mm, flow_mm, mask_mm = self._open(v)
        window = (slice(start, start + self.seq_len), slice(y0, y0 + self.crop), slice(x0, x0 + self.crop))
        frames = np.array(frames_mm[window])
        flow = np.array(flow_mm[window], dtype=np.float32)
        mask = np.array(mask_mm[window], dtype=np.float32)
        flow[0], mask[0] = 0, 0  # the window's first frame has no predecessor
        # Pixels whose flow leaves the crop have nothing to be compared with inside it.
        grid = np.arange(self.crop, dtype=np.float32)
        px, py = grid[None, None, :] + flow[..., 0], grid[None, :, None] + flow[..., 1]
        mask *= (px >= 0) & (px <= self.crop - 1) & (py >= 0) & (py <= self.crop - 1)
        if flip:
            frames, flow, mask = frames[:, :, ::-1], flow[:, :, ::-1] * np.float32([-1, 1]), mask[:, :, ::-1]

        return {
            "frames": to_tensor(np.ascontiguousarray(frames)),
            "flow_bw": torch.from_numpy(np.ascontiguousarray(flow)).permute(0, 3, 1, 2).contiguous(),
            "mask": torch.from_numpy(np.ascontiguousarray(mask))[:, None].contiguous(),
            "source": f"{video.source}#{start}",
        }
