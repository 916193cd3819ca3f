"""Rendering layers into frames, with exact optical flow and occlusion.

Owns :class:`SyntheticClip`, :func:`render_layers` and :func:`render_clip` (a background still
and foreground patches, moved by :mod:`stablestyle.synthetic.motion`, rendered).

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
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field

import numpy as np
import torch
import torch.nn.functional as F

from ..errors import UserError
from ..runtime import progress
from .motion import SHAPES, Layer, MotionConfig, apply_affine, background_layer, foreground_layer, homogeneous

_EPS = 1e-6
_NO_LAYER = 255  # label of pixels that no layer covers


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
    fwd = [np.linalg.inv(homogeneous(m)) for m in inv]  # A_t = B_t^-1, (T, 3, 3)
    textures = [_as_texture(layer.texture) for layer in layers]

    frames = np.empty((num_frames, height, width, 3), np.uint8)
    labels = np.empty((num_frames, height, width), np.uint8)
    pure = np.empty((num_frames, height, width), bool)
    flow_bw = np.zeros((num_frames, height, width, 2), np.float32)
    flow_fw = np.zeros_like(flow_bw)
    valid_bw = np.zeros((num_frames, height, width), np.float32)
    valid_fw = np.zeros_like(valid_bw)
    for t in progress(range(num_frames), total=num_frames, desc="render", unit="frame", quiet=quiet):
        colour, labels[t], pure[t] = _composite(layers, textures, [m[t] for m in inv], xs, ys)
        frames[t] = np.clip(np.rint(colour * 255), 0, 255).astype(np.uint8)
        if t == 0:
            continue
        for k in range(len(layers)):
            # t -> t-1 on frame t's grid, and t-1 -> t on frame t-1's grid.
            m_bw = (fwd[k][t - 1] @ homogeneous(inv[k][t]))[:2]
            m_fw = (fwd[k][t] @ homogeneous(inv[k][t - 1]))[:2]
            for flow, valid, m, own, other, lab_own, lab_other in (
                (flow_bw, valid_bw, m_bw, pure[t], pure[t - 1], labels[t], labels[t - 1]),
                (flow_fw, valid_fw, m_fw, pure[t - 1], pure[t], labels[t - 1], labels[t]),
            ):
                _layer_motion(k, m, xs, ys, (own, lab_own), (other, lab_other), flow[t], valid[t])
    meta = {"layers": [layer.shape for layer in layers], "num_frames": num_frames, "size": [width, height]}
    return SyntheticClip(frames, flow_bw, flow_fw, valid_bw, valid_fw, labels, meta)


def _composite(layers: Sequence[Layer], textures: list[torch.Tensor], maps: list[np.ndarray],
               xs: np.ndarray, ys: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One frame, layers drawn back to front through their inverse maps ``maps`` (``B^L_t``, one per layer).

    Returns float32 ``(H, W, 3)`` colour in [0, 1], the ``uint8`` top-layer label (alpha >= 0.5;
    :data:`_NO_LAYER` where none) and whether each pixel is pure (its colour from one layer only).
    """
    height, width = xs.shape
    colour = np.zeros((height, width, 3), np.float32)
    label = np.full((height, width), _NO_LAYER, np.uint8)
    is_pure = np.zeros((height, width), bool)
    for k, layer in enumerate(layers):
        m = maps[k]
        px, py = apply_affine(m, xs, ys)
        scale = math.sqrt(abs(np.linalg.det(m[:, :2])))  # texture px per frame px (similarity maps)
        alpha = _coverage(layer, px, py, scale)
        sample = _bilinear(textures[k], px, py)
        colour += alpha[..., None] * (sample - colour)
        label[alpha >= 0.5] = k
        is_pure[alpha >= 1 - _EPS] = True
        is_pure[(alpha > _EPS) & (alpha < 1 - _EPS)] = False
    return colour, label, is_pure


def _layer_motion(k: int, m: np.ndarray, xs: np.ndarray, ys: np.ndarray, own: tuple[np.ndarray, np.ndarray],
                  other: tuple[np.ndarray, np.ndarray], flow: np.ndarray, valid: np.ndarray) -> None:
    """Fill ``flow`` / ``valid`` (one frame, in place) where layer ``k`` is on top, from its map ``m``.

    ``m``: the affine map from this grid to the other frame's (``A^k_{other} B^k_{own}``);
    ``own`` / ``other``: ``(pure, labels)`` of the frame whose grid this is / of the frame it maps to.
    """
    pure_own, lab_own = own
    pure_other, lab_other = other
    height, width = xs.shape
    # pixels with no layer take the background's motion (they are never valid)
    here = (lab_own == k) | ((lab_own == _NO_LAYER) & (k == 0))
    if not here.any():
        return
    qx, qy = apply_affine(m, xs[here], ys[here])
    flow[here] = np.stack((qx - xs[here], qy - ys[here]), -1)
    inside = (qx >= 0) & (qx <= width - 1) & (qy >= 0) & (qy <= height - 1)
    # every pixel that bilinear sampling at (qx, qy) touches must show layer k, purely
    same = _as_texture((pure_other & (lab_other == k)).astype(np.float32))
    seen = _bilinear(same, qx, qy)[..., 0] >= 1 - _EPS
    valid[here] = (pure_own[here] & (lab_own[here] == k) & inside & seen).astype(np.float32)


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
    layers = [background_layer(background, int(num_frames), size, rng, motion)]
    layers += [foreground_layer(fg, int(num_frames), size, rng, motion) for fg in foregrounds]
    clip = render_layers(layers, size, quiet=quiet)
    clip.meta["motion"] = asdict(motion)
    return clip
