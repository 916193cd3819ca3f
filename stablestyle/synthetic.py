"""Virtual-camera clips over still images, with exact optical flow and occlusion.

A clip is a stack of *layers*: a background image and ``K`` foreground
patches (rectangular or elliptical cut-outs with an anti-aliased alpha
mask), composited back to front.  Each layer ``L`` moves by its own smooth
random 2-D similarity transform (translation, zoom, rotation).  Because the
motion is known exactly, so are the optical flow and the occlusions, which
makes these clips ground truth for the temporal loss (Gupta et al. 2017,
Eq. 3) and for the instability metric where real video has only estimated
flow.  Ruder et al. 2016 (Sec. 3.2) mark occluded pixels with a
forward-backward check; here visibility is decided geometrically.

Maths
-----
Coordinates are pixel centres (integers), as in
:func:`stablestyle.flow.backward_warp` (``align_corners=True``).  Layer
``L`` at frame ``t`` is drawn through its *inverse map* ``B^L_t``: frame
pixel ``x`` shows the layer's texture at ::

    B^L_t(x) = c^L_t + s^L_t R(theta^L_t) (x - o^L_t)            (texture px)

(``s`` = texture pixels per frame pixel, ``R`` a rotation).  For the
background the frame centre ``o`` is fixed and the looked-at point ``c``
pans; for a foreground the patch centre ``c`` is fixed in its texture and
its position ``o`` in the frame moves.  ``A^L_t = (B^L_t)^-1`` maps texture
to frame.  The texture point seen at ``x`` in frame ``t`` is seen in frame
``t-1`` at ``A^L_{t-1} B^L_t x``, so for the top-most layer ``L`` at ``x``::

    flow_bw[t](x) = A^L_{t-1}(B^L_t(x)) - x        (frame t's grid, t -> t-1)
    flow_fw[t](x) = A^L_t(B^L_{t-1}(x)) - x        (frame t-1's grid, t-1 -> t)

Both are affine in ``x`` within one layer, so bilinear interpolation of the
flow inside a layer is exact and ``flow_fw`` sampled at ``x + flow_bw(x)``
equals ``-flow_bw(x)`` to rounding.

Visibility: a pixel is *pure* in frame ``t`` when its colour comes from one
layer only (that layer's alpha is 1 and every layer above has alpha 0);
anti-aliased mask edges are not pure.  ``valid_bw[t](x) = 1`` when ``x`` is
pure with layer ``L`` in frame ``t``, ``y = x + flow_bw[t](x)`` lies inside
frame ``t-1`` (``0 <= y <= size - 1``, as :func:`stablestyle.flow.inbounds_mask`)
and every pixel of frame ``t-1`` that bilinear sampling at ``y`` touches is
pure with the same layer ``L``.  On such pixels warping frame ``t-1`` with
``flow_bw`` reproduces frame ``t`` up to interpolation error (texture
sampled twice at different sub-pixel phases) and ``uint8`` rounding.
``valid_fw`` is the same test from frame ``t-1`` towards ``t``.

Layers are resampled with exact float bilinear interpolation (not OpenCV's
1/32-pixel fixed-point maps).  A background larger than needed is first
reduced (area filter) so that the camera never minifies by more than ~1x,
which would alias; flow does not depend on texture coordinates, so this
changes nothing else.

On disk (:func:`save_clip`) a clip uses the MPI Sintel layout (Butler et al.,
ECCV 2012) plus our backward direction::

    frames/frame_0001.png ...          T frames, RGB
    flow/frame_0001.flo ...            Sintel: forward flow frame i -> i+1 (T-1 files)
    occlusions/frame_0001.png ...      Sintel: 255 = pixel of frame i not visible in i+1
    flow_bw/frame_0002.flo ...         ours: flow of frame i back to i-1 (T-1 files)
    valid_bw/frame_0002.png ...        ours: 255 = valid for flow_bw (visible in i-1)
    clip.json                          provenance (sources, seed, motion, conventions)
"""

from __future__ import annotations

import json
import logging
import math
import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from . import __version__
from .atomic import check_output_folder, staged_folder
from .errors import UserError
from .runtime import progress

log = logging.getLogger(__name__)

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

SHAPES = ("full", "rect", "ellipse")
"""Layer shapes: ``full`` covers its whole texture (the background)."""
FORMAT = "stablestyle-synthetic-clip"
FORMAT_VERSION = 1
_MARGIN = 1.0  # texture pixels kept free around every sampled region (bilinear taps)
_EPS = 1e-6
_NO_LAYER = 255  # label of pixels that no layer covers


# ----------------------------------------------------------------------------- configuration

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


@dataclass
class SyntheticClip:
    """A rendered clip with exact motion (index 0 of every motion array is zeros).

    Attributes:
        frames: ``uint8 (T, H, W, 3)`` RGB.
        flow_bw: ``float32 (T, H, W, 2)`` pixels; ``flow_bw[t]`` on frame ``t``'s
            grid takes frame ``t`` back to ``t-1``.
        flow_fw: ``float32 (T, H, W, 2)`` pixels; ``flow_fw[t]`` on frame ``t-1``'s
            grid takes frame ``t-1`` to ``t`` (Sintel's ``flow/frame_{t}``).
        valid_bw: ``float32 (T, H, W)``, 1 = pixel of frame ``t`` visible in ``t-1``.
        valid_fw: ``float32 (T, H, W)`` on frame ``t-1``'s grid, 1 = visible in ``t``
            (Sintel's occlusions are ``1 - valid_fw``).
        labels: ``uint8 (T, H, W)``: top-most layer (alpha >= 0.5) at each pixel,
            0 = background, 255 = none.
        meta: provenance (plain data), written to ``clip.json``.
    """

    frames: np.ndarray
    flow_bw: np.ndarray
    flow_fw: np.ndarray
    valid_bw: np.ndarray
    valid_fw: np.ndarray
    labels: np.ndarray
    meta: dict = field(default_factory=dict)

    @property
    def num_frames(self) -> int:
        return int(self.frames.shape[0])

    @property
    def size(self) -> tuple[int, int]:
        """``(W, H)``."""
        return int(self.frames.shape[2]), int(self.frames.shape[1])


@dataclass
class GroundTruthClip:
    """Frames with exact backward flow, as :func:`load_ground_truth` reads them.

    Attributes:
        frames: ``uint8 (T, H, W, 3)``.
        flow_bw: ``float32 (T, H, W, 2)``, index 0 zeros.
        valid_bw: ``float32 (T, H, W)`` in ``{0, 1}``, index 0 zeros.
        meta: the folder's ``clip.json`` (empty when absent).
        folder: where it was read from.
    """

    frames: np.ndarray
    flow_bw: np.ndarray
    valid_bw: np.ndarray
    meta: dict
    folder: Path


# ----------------------------------------------------------------------------- motion

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


def _homogeneous(m: np.ndarray) -> np.ndarray:
    out = np.zeros(m.shape[:-2] + (3, 3))
    out[..., :2, :] = m
    out[..., 2, 2] = 1.0
    return out


def _apply(m: np.ndarray, xs: np.ndarray, ys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return m[0, 0] * xs + m[0, 1] * ys + m[0, 2], m[1, 0] * xs + m[1, 1] * ys + m[1, 2]


# ----------------------------------------------------------------------------- rendering

def _as_texture(img: np.ndarray) -> torch.Tensor:
    """``(h, w)`` or ``(h, w, C)`` numpy (``uint8`` 0..255 or float 0..1) -> ``float32 (1, C, h, w)`` in [0, 1]."""
    planes = img[None] if img.ndim == 2 else img.transpose(2, 0, 1)
    t = torch.from_numpy(np.ascontiguousarray(planes, dtype=np.float32))[None]
    return t.div_(255.0) if img.dtype == np.uint8 else t


def _bilinear(texture: torch.Tensor, px: np.ndarray, py: np.ndarray) -> np.ndarray:
    """Bilinear sample of a ``(1, C, h, w)`` texture at float pixel positions, edge-clamped.

    Pixel centres at integers (``align_corners=True``), float32 weights (not
    OpenCV's 1/32-pixel fixed point).  Returns ``float32 px.shape + (C,)``.
    """
    h, w = texture.shape[-2:]
    gx = 2.0 * np.clip(px, 0, w - 1) / max(w - 1, 1) - 1.0
    gy = 2.0 * np.clip(py, 0, h - 1) / max(h - 1, 1) - 1.0
    grid = torch.from_numpy(np.stack((gx, gy), -1).astype(np.float32).reshape(1, 1, -1, 2))
    out = F.grid_sample(texture, grid, mode="bilinear", padding_mode="border", align_corners=True)
    return out[0, :, 0].T.numpy().reshape(px.shape + (texture.shape[1],))


def _coverage(layer: Layer, px: np.ndarray, py: np.ndarray, scale: float) -> np.ndarray:
    """Alpha of ``layer`` at texture positions: 1 inside the shape, a 1-frame-pixel linear ramp at its edge.

    ``scale`` converts texture pixels to frame pixels (``d_frame = d_tex / scale``).
    Outside the texture the layer is transparent.
    """
    h, w = layer.texture.shape[:2]
    inside = (px >= 0) & (px <= w - 1) & (py >= 0) & (py <= h - 1)
    if layer.shape == "full":
        return inside.astype(np.float32)
    u, v = px - layer.centre[0], py - layer.centre[1]
    a, b = layer.half_size
    if layer.shape == "rect":
        qx, qy = np.abs(u) - a, np.abs(v) - b
        dist = np.hypot(np.maximum(qx, 0), np.maximum(qy, 0)) + np.minimum(np.maximum(qx, qy), 0)
    else:
        # Signed distance to an ellipse, first order: (r - 1) / |grad r| with r = |(u/a, v/b)|.
        r = np.sqrt((u / a) ** 2 + (v / b) ** 2)
        grad = np.sqrt((u / a**2) ** 2 + (v / b**2) ** 2) / np.maximum(r, _EPS)
        dist = (r - 1) / np.maximum(grad, _EPS)
    alpha = np.clip(0.5 - dist / scale, 0.0, 1.0).astype(np.float32)
    return np.where(inside, alpha, np.float32(0))


def _check_layers(layers: Sequence[Layer]) -> int:
    if not layers:
        raise UserError("a clip needs at least one layer (the background)")
    num_frames = None
    for k, layer in enumerate(layers):
        tex = layer.texture
        if (not isinstance(tex, np.ndarray) or tex.ndim != 3 or tex.shape[2] != 3 or min(tex.shape[:2]) < 2
                or not (tex.dtype == np.uint8 or np.issubdtype(tex.dtype, np.floating))):
            raise UserError(f"layer {k}: texture must be a uint8 or float (h, w, 3) array at least 2x2")
        maps = np.asarray(layer.inverse_maps)
        if maps.ndim != 3 or maps.shape[1:] != (2, 3):
            raise UserError(f"layer {k}: inverse_maps must have shape (T, 2, 3), got {maps.shape}")
        if num_frames is None:
            num_frames = maps.shape[0]
        elif maps.shape[0] != num_frames:
            raise UserError(f"layer {k} has {maps.shape[0]} frames of motion, layer 0 has {num_frames}")
        if layer.shape not in SHAPES:
            raise UserError(f"layer {k}: unknown shape {layer.shape!r}; valid: {', '.join(SHAPES)}")
        if layer.shape != "full" and min(layer.half_size) <= 0:
            raise UserError(f"layer {k}: half_size must be positive, got {layer.half_size}")
        if np.any(np.abs(np.linalg.det(maps[:, :, :2])) < 1e-12):
            raise UserError(f"layer {k}: inverse_maps must be invertible")
    if not num_frames:
        raise UserError("a clip needs at least one frame")
    return int(num_frames)


def render_layers(layers: Sequence[Layer], size: tuple[int, int], *, quiet: bool = True) -> SyntheticClip:
    """Render layers (back to front) with exact flow and visibility; see the module docstring.

    Args:
        layers: ``layers[0]`` is the bottom; all share ``T`` frames of motion.
        size: ``(W, H)`` of the frames.
        quiet: hide the progress bar.

    Returns:
        A :class:`SyntheticClip`; ``meta`` records the layer shapes.
    """
    num_frames = _check_layers(layers)
    width, height = _check_size(size)
    xs, ys = np.meshgrid(np.arange(width, dtype=np.float64), np.arange(height, dtype=np.float64))
    inv = [np.asarray(layer.inverse_maps, dtype=np.float64) for layer in layers]
    fwd = [np.linalg.inv(_homogeneous(m)) for m in inv]  # A_t = B_t^-1, (T, 3, 3)
    textures = [_as_texture(layer.texture) for layer in layers]

    frames = np.empty((num_frames, height, width, 3), np.uint8)
    labels = np.empty((num_frames, height, width), np.uint8)
    pure = np.empty((num_frames, height, width), bool)
    flow_bw = np.zeros((num_frames, height, width, 2), np.float32)
    flow_fw = np.zeros_like(flow_bw)
    valid_bw = np.zeros((num_frames, height, width), np.float32)
    valid_fw = np.zeros_like(valid_bw)
    for t in progress(range(num_frames), total=num_frames, desc="render", unit="frame", quiet=quiet):
        colour = np.zeros((height, width, 3), np.float32)
        label = np.full((height, width), _NO_LAYER, np.uint8)
        is_pure = np.zeros((height, width), bool)
        for k, layer in enumerate(layers):
            m = inv[k][t]
            px, py = _apply(m, xs, ys)
            scale = math.sqrt(abs(np.linalg.det(m[:, :2])))  # texture px per frame px (similarity maps)
            alpha = _coverage(layer, px, py, scale)
            sample = _bilinear(textures[k], px, py)
            colour += alpha[..., None] * (sample - colour)
            label[alpha >= 0.5] = k
            is_pure[alpha >= 1 - _EPS] = True
            is_pure[(alpha > _EPS) & (alpha < 1 - _EPS)] = False
        frames[t] = np.clip(np.rint(colour * 255), 0, 255).astype(np.uint8)
        labels[t], pure[t] = label, is_pure
        if t == 0:
            continue
        for k in range(len(layers)):
            # t -> t-1 on frame t's grid, and t-1 -> t on frame t-1's grid.
            m_bw = (fwd[k][t - 1] @ _homogeneous(inv[k][t]))[:2]
            m_fw = (fwd[k][t] @ _homogeneous(inv[k][t - 1]))[:2]
            for flow, valid, m, own, other, lab_own, lab_other in (
                (flow_bw, valid_bw, m_bw, pure[t], pure[t - 1], labels[t], labels[t - 1]),
                (flow_fw, valid_fw, m_fw, pure[t - 1], pure[t], labels[t - 1], labels[t]),
            ):
                # pixels with no layer take the background's motion (they are never valid)
                here = (lab_own == k) | ((lab_own == _NO_LAYER) & (k == 0))
                if not here.any():
                    continue
                qx, qy = _apply(m, xs[here], ys[here])
                flow[t][here] = np.stack((qx - xs[here], qy - ys[here]), -1)
                inside = (qx >= 0) & (qx <= width - 1) & (qy >= 0) & (qy <= height - 1)
                # every pixel that bilinear sampling at (qx, qy) touches must show layer k, purely
                same = _as_texture((other & (lab_other == k)).astype(np.float32))
                seen = _bilinear(same, qx, qy)[..., 0] >= 1 - _EPS
                valid[t][here] = (own[here] & (lab_own[here] == k) & inside & seen).astype(np.float32)
    meta = {"layers": [layer.shape for layer in layers], "num_frames": num_frames, "size": [width, height]}
    return SyntheticClip(frames, flow_bw, flow_fw, valid_bw, valid_fw, labels, meta)


def _check_size(size: tuple[int, int]) -> tuple[int, int]:
    try:
        width, height = (int(v) for v in size)
        ok = (width, height) == tuple(size)
    except (TypeError, ValueError):
        ok = False
    if not ok or width < 2 or height < 2:
        raise UserError(f"size must be (width, height) in whole pixels, each >= 2, got {size!r}")
    return width, height


def _check_image(img: np.ndarray, what: str, min_side: int = 8) -> np.ndarray:
    if not isinstance(img, np.ndarray) or img.dtype != np.uint8 or img.ndim != 3 or img.shape[2] != 3:
        desc = f"{img.dtype} array of shape {img.shape}" if isinstance(img, np.ndarray) else type(img).__name__
        raise UserError(f"{what} must be a uint8 RGB array of shape (H, W, 3), got {desc}")
    if min(img.shape[:2]) < min_side:
        raise UserError(f"{what} is {img.shape[1]}x{img.shape[0]} pixels; it needs at least {min_side} a side")
    return img


def _background_layer(image: np.ndarray, num_frames: int, size: tuple[int, int],
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
        s_fit = min(((tex_w - 1) / 2 - _MARGIN) / ex, ((tex_h - 1) / 2 - _MARGIN) / ey) / zoom_room
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
    half = np.array([s_max * ex + _MARGIN, s_max * ey + _MARGIN])
    lo = [half[0], half[1], -motion.max_zoom, -rot]
    hi = [tex_w - 1 - half[0], tex_h - 1 - half[1], motion.max_zoom, rot]
    speed = [motion.max_speed * s0, motion.max_speed * s0, motion.max_zoom_speed,
             math.radians(motion.max_rotation_speed)]
    track = smooth_trajectory(rng, num_frames, lo, hi, speed, motion.accel)
    anchor = np.tile([(width - 1) / 2, (height - 1) / 2], (num_frames, 1))
    maps = similarity_maps(track[:, :2], anchor, s0 * np.exp(track[:, 2]), track[:, 3])
    return Layer(image, maps, "full")


def _foreground_layer(image: np.ndarray, num_frames: int, size: tuple[int, int],
                      rng: np.random.Generator, motion: MotionConfig) -> Layer:
    """A rect / ellipse patch cut from ``image``, moving over the frame on its own trajectory."""
    width, height = size
    tex_h, tex_w = image.shape[:2]
    short = min(width, height)
    patch = rng.uniform(*motion.fg_size, size=2) * short  # frame pixels (w, h)
    s_fit = min((tex_w - 1 - 2 * _MARGIN) / patch[0], (tex_h - 1 - 2 * _MARGIN) / patch[1])
    s_f = min(1.0, s_fit)
    a, b = s_f * patch / 2  # texture half sizes
    centre = (rng.uniform(a + _MARGIN, tex_w - 1 - a - _MARGIN), rng.uniform(b + _MARGIN, tex_h - 1 - b - _MARGIN))
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


def render_clip(background: np.ndarray, num_frames: int, size: tuple[int, int], *, rng: np.random.Generator,
                motion: MotionConfig | None = None, foregrounds: Sequence[np.ndarray] = (),
                quiet: bool = True) -> SyntheticClip:
    """A virtual camera over ``background`` with moving foreground patches, exact flow and occlusion.

    Args:
        background: ``uint8 (h, w, 3)`` RGB, at least 8 pixels a side; the
            camera stays inside it (any size works: small images are magnified,
            large ones reduced first).
        num_frames: ``T >= 1``.
        size: ``(W, H)`` of the frames.
        rng: the only source of randomness (same state -> same clip).
        motion: bounds of the motion (:class:`MotionConfig`).
        foregrounds: one ``uint8`` RGB image per foreground patch (drawn in this
            depth order, each a rect / ellipse cut-out of its image).
        quiet: hide the progress bar.

    Returns:
        :class:`SyntheticClip`.
    """
    motion = motion if motion is not None else MotionConfig()
    if isinstance(num_frames, bool) or not isinstance(num_frames, (int, np.integer)) or num_frames < 1:
        raise UserError(f"num_frames must be a whole number >= 1, got {num_frames!r}")
    size = _check_size(size)
    _check_image(background, "background")
    for k, fg in enumerate(foregrounds):
        _check_image(fg, f"foreground {k}")
    layers = [_background_layer(background, int(num_frames), size, rng, motion)]
    layers += [_foreground_layer(fg, int(num_frames), size, rng, motion) for fg in foregrounds]
    clip = render_layers(layers, size, quiet=quiet)
    clip.meta["motion"] = asdict(motion)
    return clip


# ----------------------------------------------------------------------------- files

def _frame_name(i: int, suffix: str) -> str:
    return f"frame_{i:04d}{suffix}"


def _write_mask(path: Path, mask: np.ndarray) -> None:
    from PIL import Image

    Image.fromarray(mask.astype(np.uint8), "L").save(path, format="PNG")


def _read_mask(path: Path) -> np.ndarray:
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as img:
            return np.asarray(img.convert("L")) >= 128
    except (UnidentifiedImageError, OSError, ValueError) as exc:  # ValueError: a chunk past Pillow's limit
        raise UserError(f"{path}: not a readable mask image ({exc})") from None


def save_clip(clip: SyntheticClip, folder: str | os.PathLike, *, overwrite: bool = False,
              provenance: dict | None = None, quiet: bool = True) -> Path:
    """Write ``clip`` in the Sintel-like layout of the module docstring, atomically.

    Everything is written to a temporary folder beside ``folder`` that is
    renamed into place only when complete; an existing ``folder`` is replaced
    only with ``overwrite`` (and only when it looks like a clip folder).

    Args:
        clip: the clip.
        folder: output folder; its parent must exist.
        overwrite: replace an existing clip folder.
        provenance: extra plain data for ``clip.json`` (sources, seed, ...).
        quiet: hide the progress bar.

    Returns:
        ``folder`` as a :class:`Path`.
    """
    from .flow import write_flo
    from .video import write_image

    folder = Path(folder)
    check_clip_folder(folder, overwrite)
    with staged_folder(folder, overwrite=overwrite) as tmp:
        for sub in ("frames", "flow", "occlusions", "flow_bw", "valid_bw"):
            (tmp / sub).mkdir()
        num_frames = clip.num_frames
        for t in progress(range(num_frames), total=num_frames, desc="write", unit="frame", quiet=quiet):
            write_image(tmp / "frames" / _frame_name(t + 1, ".png"), clip.frames[t])
            if t == 0:
                continue
            # Sintel: flow/frame_i is frame i -> i+1 (1-based) = our flow_fw[i] (0-based t = i).
            write_flo(tmp / "flow" / _frame_name(t, ".flo"), clip.flow_fw[t])
            _write_mask(tmp / "occlusions" / _frame_name(t, ".png"), 255 * (clip.valid_fw[t] < 0.5))
            write_flo(tmp / "flow_bw" / _frame_name(t + 1, ".flo"), clip.flow_bw[t])
            _write_mask(tmp / "valid_bw" / _frame_name(t + 1, ".png"), 255 * (clip.valid_bw[t] >= 0.5))
        meta = {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "stablestyle_version": __version__,
            "num_frames": num_frames,
            "size": list(clip.size),
            "layout": {
                "frames": "frames/frame_%04d.png, 1-based, RGB",
                "flow": "flow/frame_%04d.flo: forward flow frame i -> i+1 (Sintel), on frame i's grid",
                "occlusions": "occlusions/frame_%04d.png: 255 = pixel of frame i not visible in frame i+1 (Sintel)",
                "flow_bw": "flow_bw/frame_%04d.flo: flow of frame i back to frame i-1, on frame i's grid",
                "valid_bw": "valid_bw/frame_%04d.png: 255 = pixel of frame i visible in frame i-1",
                "flow_units": "pixels; channel 0 = x (right), 1 = y (down)",
            },
            **clip.meta,
            **(provenance or {}),
        }
        (tmp / "clip.json").write_text(json.dumps(meta, indent=2, default=_json_default) + "\n")
    log.debug("wrote a %d-frame clip to %s", clip.num_frames, folder)
    return folder


def _json_default(value):
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def check_clip_folder(folder: str | os.PathLike, overwrite: bool = False) -> Path:
    """Check an output clip folder before any work (:func:`save_clip` checks again); returns it.

    Raises:
        UserError: its parent folder is missing, it is a file, it exists and
            ``overwrite`` is false, or it exists but holds something other than
            a clip (no ``clip.json``).
    """
    return check_output_folder(folder, overwrite, marker="clip.json", what="a clip folder", noun="clip")


_LAYOUT_HELP = (
    "expected a folder with frames/frame_0001.png ..., flow_bw/frame_0002.flo ... (flow of frame i back "
    "to i-1) and valid_bw/frame_0002.png ... (255 = valid), as `stablestyle make-clip` writes; Sintel's "
    "forward flow/ and occlusions/ alone are not enough"
)


def load_ground_truth(folder: str | os.PathLike) -> GroundTruthClip:
    """Read a clip folder's frames, exact backward flow and validity (see the module docstring).

    Raises:
        UserError: the folder or a required file is missing or unreadable, or
            sizes disagree; the message lists the expected layout.
    """
    from .flow import read_flo
    from .video import IMAGE_SUFFIXES, natural_key, read_image

    folder = Path(folder)
    if not folder.is_dir():
        raise UserError(f"{folder}: no such clip folder; {_LAYOUT_HELP}")
    frame_dir = folder / "frames"
    files = sorted((p for p in frame_dir.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES
                    and not p.name.startswith(".")), key=lambda p: natural_key(p.name)) if frame_dir.is_dir() else []
    if not files:
        raise UserError(f"{folder} has no frames/ images; {_LAYOUT_HELP}")
    if not (folder / "flow_bw").is_dir() or not (folder / "valid_bw").is_dir():
        missing = [d for d in ("flow_bw", "valid_bw") if not (folder / d).is_dir()]
        raise UserError(f"{folder} has no {' or '.join(missing)}/ folder; {_LAYOUT_HELP}")
    frames = np.stack([read_image(p) for p in files])
    num_frames, height, width = frames.shape[:3]
    flow_bw = np.zeros((num_frames, height, width, 2), np.float32)
    valid_bw = np.zeros((num_frames, height, width), np.float32)
    for t in range(1, num_frames):
        flo = folder / "flow_bw" / _frame_name(t + 1, ".flo")
        png = folder / "valid_bw" / _frame_name(t + 1, ".png")
        for path in (flo, png):
            if not path.is_file():
                raise UserError(f"{path} is missing ({num_frames} frames need flow_bw and valid_bw for frames "
                                f"2..{num_frames}); {_LAYOUT_HELP}")
        flow = read_flo(flo)
        mask = _read_mask(png)
        if flow.shape[:2] != (height, width) or mask.shape != (height, width):
            raise UserError(f"{flo} / {png} are {flow.shape[1]}x{flow.shape[0]} / {mask.shape[1]}x{mask.shape[0]} "
                            f"but the frames are {width}x{height}")
        flow_bw[t], valid_bw[t] = flow, mask
    meta = {}
    if (folder / "clip.json").is_file():
        try:
            meta = json.loads((folder / "clip.json").read_text())
        except (OSError, ValueError) as exc:
            raise UserError(f"{folder / 'clip.json'} is not valid JSON ({exc})") from None
    return GroundTruthClip(frames, flow_bw, valid_bw, meta, folder)
