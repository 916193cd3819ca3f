"""Shot boundaries in a stream of frames: where the recurrent state must start afresh.

The recurrent network carries its previous output from frame to frame; at a
cut in edited footage that output belongs to another shot, and the new shot
would start with the old shot's stylization bleeding through.  A cut is
detected on the *input* frames, causally (one frame of look-back, so it works
live), cheaply (a 64x36 thumbnail per frame):

* :func:`signature`: the thumbnail's colour histogram, 3 channels x 16 bins,
  each channel normalised to sum 1;
* :func:`histogram_distance`: half the L1 distance between two signatures,
  averaged over channels, in ``[0, 1]`` (0 = the same colour distribution,
  1 = disjoint);
* :class:`SceneCutDetector`: frame ``t`` starts a new shot when its distance
  to frame ``t - 1`` exceeds ``threshold`` *and* is ``ratio`` times the
  median distance of the previous ``window`` frames (so footage whose colours
  change fast all the time, like fast motion with large occlusions, does not
  cut at every frame), and at least ``min_gap`` frames have passed since the
  last cut.  The ratio test needs history, so the stream's first three
  frames never cut (a cut there has little stylization to carry over).

Colour histograms ignore where the colours are, so camera motion within a
shot (pans, zooms) barely moves them, while a cut to another scene changes
them at once (the "content" detectors of PySceneDetect work on the same
principle).  A cut between two shots of the same palette can be missed; that
is the safe failure here (the state then carries on as without detection).
"""

from __future__ import annotations

import math
import statistics
from collections import deque
from dataclasses import dataclass, field

import cv2
import numpy as np

__all__ = ["THUMBNAIL", "BINS", "signature", "histogram_distance", "SceneCutDetector", "SCENE_CUT_MODES",
           "describe_cuts"]

#: Thumbnail (width, height) the histograms are computed on.
THUMBNAIL = (64, 36)
#: Histogram bins per colour channel.
BINS = 16
#: Values of ``--scene-cuts``.
SCENE_CUT_MODES = ("auto", "off")


def signature(frame: np.ndarray) -> np.ndarray:
    """``uint8 (H, W, 3)`` RGB frame -> ``(3, BINS)`` float64 per-channel histograms, each summing to 1."""
    if not isinstance(frame, np.ndarray) or frame.dtype != np.uint8 or frame.ndim != 3 or frame.shape[2] != 3:
        desc = f"{frame.dtype} {frame.shape}" if isinstance(frame, np.ndarray) else type(frame).__name__
        raise ValueError(f"frame must be a uint8 (H, W, 3) array, got {desc}")
    thumb = cv2.resize(frame, THUMBNAIL, interpolation=cv2.INTER_AREA)
    hist = np.stack([np.bincount(thumb[..., c].ravel() >> 4, minlength=BINS) for c in range(3)]).astype(np.float64)
    return hist / hist.sum(axis=1, keepdims=True)


def histogram_distance(a: np.ndarray, b: np.ndarray) -> float:
    """Half the L1 distance of two :func:`signature` s, averaged over the channels: ``[0, 1]``."""
    if a.shape != b.shape:
        raise ValueError(f"signatures differ in shape: {a.shape} and {b.shape}")
    return float(0.5 * np.abs(a - b).sum(axis=1).mean())


@dataclass
class SceneCutDetector:
    """Causal shot-boundary detector; :meth:`update` per frame says whether it starts a new shot.

    Attributes:
        threshold: least histogram distance to the previous frame for a cut.
        ratio: the distance must also be this many times the median of the
            previous ``window`` distances.
        window: frames of history for that median.
        min_gap: least frames between two cuts (a cut's next frames often
            still change: fades, flashes).
    """

    threshold: float = 0.15
    ratio: float = 3.0
    window: int = 8
    min_gap: int = 6
    _previous: np.ndarray | None = field(default=None, init=False, repr=False)
    _history: deque = field(default_factory=deque, init=False, repr=False)
    _since_cut: int = field(default=0, init=False, repr=False)
    frame_index: int = field(default=-1, init=False)
    cuts: list[int] = field(default_factory=list, init=False)

    def __post_init__(self) -> None:
        if not 0 < self.threshold <= 1:
            raise ValueError(f"threshold must be in (0, 1], got {self.threshold}")
        if self.ratio < 1 or self.window < 1 or self.min_gap < 1:
            raise ValueError("ratio must be >= 1, window and min_gap >= 1")
        self._history = deque(maxlen=self.window)
        self._since_cut = self.min_gap  # the stream's start is no cut: the first real one is not held back

    def score(self, frame: np.ndarray) -> float:
        """Advance by one frame; its histogram distance to the previous one (0 for the first frame)."""
        sig = signature(frame)
        distance = 0.0 if self._previous is None else histogram_distance(self._previous, sig)
        self._previous = sig
        self.frame_index += 1
        return distance

    def update(self, frame: np.ndarray) -> bool:
        """True when ``frame`` starts a new shot (never for the first frame of the stream)."""
        distance = self.score(frame)
        if self.frame_index == 0:
            return False
        self._since_cut += 1
        # the ratio test needs a typical distance: no cut until two frame pairs are known
        typical = statistics.median(self._history) if len(self._history) >= 2 else math.inf
        cut = distance > self.threshold and distance > self.ratio * typical and self._since_cut >= self.min_gap
        self._history.append(distance)
        if cut:
            self.cuts.append(self.frame_index)
            self._since_cut = 0
        return cut


def describe_cuts(cuts: list[int]) -> str:
    """A summary line: ``"scene cuts at frames 31, 77: the recurrent state restarted there"`` (1-based), or ""."""
    if not cuts:
        return ""
    shown = ", ".join(str(c + 1) for c in cuts[:12]) + (f", ... ({len(cuts)} in all)" if len(cuts) > 12 else "")
    plural = "s" * (len(cuts) > 1)
    return f"scene cut{plural} at frame{plural} {shown}: the recurrent state restarted there"
