"""Camera paths: how every layer of a synthetic clip moves.

Owns :class:`MotionConfig` (bounds of the random motion), :class:`Layer` (a texture and its
per-frame inverse maps), :func:`smooth_trajectory`, :func:`similarity_maps`, and the two kinds of
layer a clip is made of: :func:`background_layer` (the camera panning, zooming and rotating over
a still) and :func:`foreground_layer` (a cut-out patch moving over the frame).  The maps are
the ``B^L_t`` of :mod:`stablestyle.synthetic.render`, which turns them into frames and exact flow.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ..errors import UserError

SHAPES = ("full", "rect", "ellipse")
"""Layer shapes: ``full`` covers its whole texture (the background)."""
MARGIN = 1.0  # texture pixels kept free around every sampled region (bilinear taps)


@dataclass(frozen=True)
class MotionConfig:
    """Bounds of the random smooth motion of the camera and of foreground patches.

    Every motion parameter follows :func:`smooth_trajectory`: its velocity
    starts uniform in ``[-max, max]``, changes by Gaussian acceleration with a
    standard deviation of ``accel`` times that maximum per frame, and is
    clipped to ``[-max, max]``; the parameter reflects off its bounds.

    Attributes:
        max_speed: camera pan, frame pixels per frame.
        fg_max_speed: foreground patch translation in the frame, pixels per frame.
        max_zoom: bound of ``|log(scale / base scale)|`` (0.1 = +-10.5 %).
        max_zoom_speed: change of log-scale per frame.
        max_rotation: bound of the rotation, degrees (at most 45).
        max_rotation_speed: degrees per frame.
        accel: per-frame acceleration std as a fraction of each maximum speed.
        fill: range of the fraction of the largest admissible camera scale
            drawn per clip; lower = more room to pan, a closer view.
        fg_size: range of a foreground patch's width and height, as fractions
            of the frame's short side.
        fg_shapes: shapes drawn for foreground patches (``rect``, ``ellipse``).
    """

    max_speed: float = 4.0
    fg_max_speed: float = 6.0
    max_zoom: float = 0.1
    max_zoom_speed: float = 0.01
    max_rotation: float = 4.0
    max_rotation_speed: float = 0.5
    accel: float = 0.2
    fill: tuple[float, float] = (0.6, 0.85)
    fg_size: tuple[float, float] = (0.25, 0.5)
    fg_shapes: tuple[str, ...] = ("rect", "ellipse")

    def __post_init__(self) -> None:
        for name in ("max_speed", "fg_max_speed", "max_zoom", "max_zoom_speed", "max_rotation_speed", "accel"):
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and math.isfinite(value) and value >= 0):
                raise UserError(f"motion {name} must be a finite number >= 0, got {value!r}")
        if not 0 <= self.max_rotation <= 45:
            raise UserError(f"motion max_rotation must be 0..45 degrees, got {self.max_rotation!r}")
        object.__setattr__(self, "fill", tuple(self.fill))
        object.__setattr__(self, "fg_size", tuple(self.fg_size))
        object.__setattr__(self, "fg_shapes", tuple(self.fg_shapes))
        lo, hi = self.fill
        if not 0 < lo <= hi < 1:
            raise UserError(f"motion fill must be a range (lo, hi) with 0 < lo <= hi < 1, got {self.fill!r}")
        lo, hi = self.fg_size
        if not 0 < lo <= hi <= 1:
            raise UserError(f"motion fg_size must be a range (lo, hi) with 0 < lo <= hi <= 1, got {self.fg_size!r}")
        bad = [s for s in self.fg_shapes if s not in ("rect", "ellipse")]
        if not self.fg_shapes or bad:
            raise UserError(f"motion fg_shapes must be a non-empty list of 'rect' / 'ellipse', got {self.fg_shapes!r}")

    def at_speed(self, max_speed: float) -> MotionConfig:
        """The same motion with the camera pan bounded by ``max_speed`` px per frame and every other
        speed (foreground, zoom, rotation) scaled by the same factor."""
        if not (isinstance(max_speed, (int, float)) and math.isfinite(max_speed) and max_speed > 0):
            raise UserError(f"motion max_speed must be a finite number > 0, got {max_speed!r}")
        k = max_speed / self.max_speed if self.max_speed else 1.0
        return dataclasses.replace(self, max_speed=float(max_speed), fg_max_speed=self.fg_max_speed * k,
                                   max_zoom_speed=self.max_zoom_speed * k,
                                   max_rotation_speed=self.max_rotation_speed * k)


@dataclass
class Layer:
    """One layer of a clip: a texture seen through per-frame inverse maps.

    Attributes:
        texture: ``(h, w, 3)`` RGB, ``uint8`` (0..255) or float (0..1).
        inverse_maps: ``float64 (T, 2, 3)``: ``B_t``, frame pixel ``x`` ->
            texture pixel ``B_t[:, :2] @ x + B_t[:, 2]``; must be invertible.
        shape: ``"full"`` (opaque wherever the texture is), ``"rect"`` or ``"ellipse"``.
        centre: ``(x, y)`` texture pixel of the shape's centre (rect / ellipse).
        half_size: ``(a, b)`` half width / height of the shape, texture pixels.
    """

    texture: np.ndarray
    inverse_maps: np.ndarray
    shape: str = "full"
    centre: tuple[float, float] = (0.0, 0.0)
    half_size: tuple[float, float] = (0.0, 0.0)



def smooth_trajectory(rng: np.random.Generator, num_frames: int, lo: Sequence[float], hi: Sequence[float],
                      max_speed: Sequence[float], accel: float) -> np.ndarray:
    """A bounded random trajectory with smooth velocity, one column per parameter.

    Starts uniform in ``[lo, hi]`` with a velocity uniform in
    ``[-max_speed, max_speed]``; each frame the velocity gains
    ``N(0, (accel * max_speed)^2)``, is clipped to ``+-max_speed``, and the
    position reflects off ``lo`` / ``hi`` (velocity reversed).

    Args:
        rng: random generator (the only source of randomness).
        num_frames: ``T >= 1``.
        lo, hi: ``(P,)`` bounds; ``lo > hi`` is treated as the single point ``(lo + hi) / 2``.
        max_speed: ``(P,)`` per-frame speed bounds (units of the parameter).
        accel: acceleration std as a fraction of ``max_speed``.

    Returns:
        ``float64 (T, P)``, every row within ``[lo, hi]``.
    """
    lo = np.asarray(lo, dtype=np.float64)
    hi = np.asarray(hi, dtype=np.float64)
    vmax = np.asarray(max_speed, dtype=np.float64)
    collapsed = lo > hi
    mid = 0.5 * (lo + hi)
    lo, hi = np.where(collapsed, mid, lo), np.where(collapsed, mid, hi)
    p = rng.uniform(lo, hi)
    v = rng.uniform(-vmax, vmax)
    out = np.empty((num_frames, lo.size))
    out[0] = p
    for t in range(1, num_frames):
        v = np.clip(v + rng.normal(0.0, 1.0, lo.size) * accel * vmax, -vmax, vmax)
        p = p + v
        over, under = p > hi, p < lo
        p = np.where(over, 2 * hi - p, np.where(under, 2 * lo - p, p))
        v = np.where(over, -np.abs(v), np.where(under, np.abs(v), v))
        p = np.clip(p, lo, hi)  # a step longer than the whole range
        out[t] = p
    return out


def similarity_maps(centre: np.ndarray, anchor: np.ndarray, scale: np.ndarray, angle: np.ndarray) -> np.ndarray:
    """Inverse maps ``B_t(x) = centre_t + scale_t R(angle_t) (x - anchor_t)`` as ``(T, 2, 3)`` matrices.

    Args:
        centre: ``(T, 2)`` texture pixels shown at ``anchor``.
        anchor: ``(T, 2)`` frame pixels.
        scale: ``(T,)`` texture pixels per frame pixel (> 0).
        angle: ``(T,)`` radians; ``R = [[cos, -sin], [sin, cos]]``, so with y pointing
            down the texture appears turned counter-clockwise on screen by ``angle``.
    """
    centre = np.asarray(centre, dtype=np.float64).reshape(-1, 2)
    anchor = np.asarray(anchor, dtype=np.float64).reshape(-1, 2)
    scale = np.asarray(scale, dtype=np.float64).reshape(-1)
    angle = np.asarray(angle, dtype=np.float64).reshape(-1)
    cos, sin = np.cos(angle) * scale, np.sin(angle) * scale
    m = np.empty((scale.size, 2, 3))
    m[:, 0, 0], m[:, 0, 1] = cos, -sin
    m[:, 1, 0], m[:, 1, 1] = sin, cos
    m[:, :, 2] = centre - np.einsum("tij,tj->ti", m[:, :, :2], anchor)
    return m


def homogeneous(m: np.ndarray) -> np.ndarray:
    out = np.zeros(m.shape[:-2] + (3, 3))
    out[..., :2, :] = m
    out[..., 2, 2] = 1.0
    return out


def apply_affine(m: np.ndarray, xs: np.ndarray, ys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return m[0, 0] * xs + m[0, 1] * ys + m[0, 2], m[1, 0] * xs + m[1, 1] * ys + m[1, 2]


def background_layer(image: np.ndarray, num_frames: int, size: tuple[int, int],
                      rng: np.random.Generator, motion: MotionConfig) -> Layer:
    """The camera: a viewport panning, zooming and rotating over ``image``, always inside it."""
    import cv2

    width, height = size
    rot = math.radians(motion.max_rotation)
    # Half extents of the (rotated) viewport at unit scale, frame pixels.
    ex = (width - 1) / 2 + (height - 1) / 2 * math.sin(rot)
    ey = (height - 1) / 2 + (width - 1) / 2 * math.sin(rot)
    zoom_room = math.exp(motion.max_zoom)

    def base_scale(tex_w: int, tex_h: int) -> float:
        s_fit = min(((tex_w - 1) / 2 - MARGIN) / ex, ((tex_h - 1) / 2 - MARGIN) / ey) / zoom_room
        return fill * s_fit

    fill = rng.uniform(*motion.fill)
    tex_h, tex_w = image.shape[:2]
    s0 = base_scale(tex_w, tex_h)
    if s0 > 1:  # reduce a large image first so that sampling never minifies (no aliasing)
        new = (max(2, round(tex_w / s0)), max(2, round(tex_h / s0)))
        image = cv2.resize(image, new, interpolation=cv2.INTER_AREA)
        tex_h, tex_w = image.shape[:2]
        s0 = base_scale(tex_w, tex_h)
    if s0 <= 0:
        raise UserError(f"background of {tex_w}x{tex_h} pixels is too small for a camera")
    s_max = s0 * zoom_room
    half = np.array([s_max * ex + MARGIN, s_max * ey + MARGIN])
    lo = [half[0], half[1], -motion.max_zoom, -rot]
    hi = [tex_w - 1 - half[0], tex_h - 1 - half[1], motion.max_zoom, rot]
    speed = [motion.max_speed * s0, motion.max_speed * s0, motion.max_zoom_speed,
             math.radians(motion.max_rotation_speed)]
    track = smooth_trajectory(rng, num_frames, lo, hi, speed, motion.accel)
    anchor = np.tile([(width - 1) / 2, (height - 1) / 2], (num_frames, 1))
    maps = similarity_maps(track[:, :2], anchor, s0 * np.exp(track[:, 2]), track[:, 3])
    return Layer(image, maps, "full")


def foreground_layer(image: np.ndarray, num_frames: int, size: tuple[int, int],
                      rng: np.random.Generator, motion: MotionConfig) -> Layer:
    """A rect / ellipse patch cut from ``image``, moving over the frame on its own trajectory."""
    width, height = size
    tex_h, tex_w = image.shape[:2]
    short = min(width, height)
    patch = rng.uniform(*motion.fg_size, size=2) * short  # frame pixels (w, h)
    s_fit = min((tex_w - 1 - 2 * MARGIN) / patch[0], (tex_h - 1 - 2 * MARGIN) / patch[1])
    s_f = min(1.0, s_fit)
    a, b = s_f * patch / 2  # texture half sizes
    centre = (rng.uniform(a + MARGIN, tex_w - 1 - a - MARGIN), rng.uniform(b + MARGIN, tex_h - 1 - b - MARGIN))
    shape = str(rng.choice(motion.fg_shapes))
    rot = math.radians(motion.max_rotation)
    lo = [0.0, 0.0, -motion.max_zoom, -rot]
    hi = [width - 1.0, height - 1.0, motion.max_zoom, rot]
    speed = [motion.fg_max_speed, motion.fg_max_speed, motion.max_zoom_speed, math.radians(motion.max_rotation_speed)]
    track = smooth_trajectory(rng, num_frames, lo, hi, speed, motion.accel)
    # Keep only the patch's neighbourhood of the image (texture coordinates shift by the crop's corner).
    x0, y0 = max(0, math.floor(centre[0] - a) - 2), max(0, math.floor(centre[1] - b) - 2)
    x1, y1 = min(tex_w, math.ceil(centre[0] + a) + 3), min(tex_h, math.ceil(centre[1] + b) + 3)
    centre = (centre[0] - x0, centre[1] - y0)
    maps = similarity_maps(np.tile(centre, (num_frames, 1)), track[:, :2], s_f * np.exp(track[:, 2]), track[:, 3])
    return Layer(image[y0:y1, x0:x1], maps, shape, centre, (float(a), float(b)))
