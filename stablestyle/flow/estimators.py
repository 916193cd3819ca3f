"""Optical-flow estimators (OpenCV) behind a small registry.

``estimate_flow(img_a, img_b)`` returns the flow *from a to b*: pixel ``x`` of
``img_a`` is found at ``x + flow(x)`` in ``img_b`` (OpenCV's convention for
``calc(prev, next)``).  So ``estimate_flow(frame_t, frame_t_minus_1)`` is
``flow_bw`` and ``estimate_flow(frame_t_minus_1, frame_t)`` is ``flow_fw``.

Methods (``FLOW_METHODS``):

* ``"dis"``: DIS optical flow (Kroeger et al., ECCV 2016), OpenCV's MEDIUM
  preset; ~8 ms at 480x270 on one CPU core.  The default.
* ``"dis-fast"``, ``"dis-ultrafast"``: the FAST / ULTRAFAST DIS presets.
* ``"deepflow"``: DeepFlow (Weinzaepfel et al., ICCV 2013) from
  ``opencv-contrib`` (``cv2.optflow``); ~30x slower than DIS, smoother at
  large displacements.  The flow used by Ruder et al. 2016.

Estimator objects are cached per thread: OpenCV estimators keep internal
buffers, so reuse saves ~30% per call (measured: DIS 480x270, 11 ms fresh vs
8 ms reused) but one object must not run in two threads at once.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

import numpy as np

from ..errors import UserError

__all__ = ["FLOW_METHODS", "register_flow_method", "estimate_flow", "flow_pair"]

# name -> factory returning an object with ``calc(gray_a, gray_b, None) -> (H, W, 2) float32``
FLOW_METHODS: dict[str, Callable[[], object]] = {}

_local = threading.local()


def register_flow_method(name: str) -> Callable[[Callable[[], object]], Callable[[], object]]:
    """Decorator: register an estimator factory under ``name`` in :data:`FLOW_METHODS`."""

    def decorate(factory: Callable[[], object]) -> Callable[[], object]:
        if name in FLOW_METHODS:
            raise ValueError(f"flow method {name!r} is already registered")
        FLOW_METHODS[name] = factory
        return factory

    return decorate


def _dis(preset_name: str) -> object:
    import cv2

    return cv2.DISOpticalFlow_create(getattr(cv2, preset_name))


@register_flow_method("dis")
def _dis_medium() -> object:
    return _dis("DISOPTICAL_FLOW_PRESET_MEDIUM")


@register_flow_method("dis-fast")
def _dis_fast() -> object:
    return _dis("DISOPTICAL_FLOW_PRESET_FAST")


@register_flow_method("dis-ultrafast")
def _dis_ultrafast() -> object:
    return _dis("DISOPTICAL_FLOW_PRESET_ULTRAFAST")


@register_flow_method("deepflow")
def _deepflow() -> object:
    import cv2

    optflow = getattr(cv2, "optflow", None)
    if optflow is None:
        raise UserError(
            "flow method 'deepflow' needs OpenCV's contrib modules (cv2.optflow): "
            "pip install opencv-contrib-python-headless (and uninstall opencv-python), or use --flow dis"
        )
    return optflow.createOptFlow_DeepFlow()


def _estimator(method: str) -> object:
    """The calling thread's cached estimator for ``method``."""
    if method not in FLOW_METHODS:
        raise UserError(f"unknown flow method {method!r}; valid: {', '.join(sorted(FLOW_METHODS))}")
    cache: dict[str, object] | None = getattr(_local, "estimators", None)
    if cache is None:
        cache = _local.estimators = {}
    if method not in cache:
        cache[method] = FLOW_METHODS[method]()
    return cache[method]


def _check_frame(img: np.ndarray, name: str) -> None:
    if not isinstance(img, np.ndarray) or img.ndim != 3 or img.shape[2] != 3 or img.dtype != np.uint8:
        desc = f"{img.dtype} array of shape {img.shape}" if isinstance(img, np.ndarray) else type(img).__name__
        raise UserError(f"{name} must be a uint8 RGB array of shape (H, W, 3), got {desc}")


def estimate_flow(img_a: np.ndarray, img_b: np.ndarray, method: str = "dis") -> np.ndarray:
    """Optical flow from ``img_a`` to ``img_b``.

    Args:
        img_a, img_b: ``uint8`` RGB ``(H, W, 3)`` frames of one size.
        method: a key of :data:`FLOW_METHODS`.

    Returns:
        ``float32 (H, W, 2)`` in pixels: pixel ``x`` of ``img_a`` is at
        ``x + flow(x)`` in ``img_b``; channel 0 = x (right), 1 = y (down).

    Raises:
        UserError: unknown method (lists the valid ones), a method whose
            OpenCV module is missing, or frames of the wrong type / size.
    """
    import cv2

    estimator = _estimator(method)
    _check_frame(img_a, "img_a")
    _check_frame(img_b, "img_b")
    if img_a.shape != img_b.shape:
        raise UserError(f"frames must have one size to estimate flow, got {img_a.shape} and {img_b.shape}")
    gray_a = cv2.cvtColor(np.ascontiguousarray(img_a), cv2.COLOR_RGB2GRAY)
    gray_b = cv2.cvtColor(np.ascontiguousarray(img_b), cv2.COLOR_RGB2GRAY)
    flow = estimator.calc(gray_a, gray_b, None)
    return np.ascontiguousarray(flow, dtype=np.float32)


def flow_pair(frame_prev: np.ndarray, frame_cur: np.ndarray, method: str = "dis") -> tuple[np.ndarray, np.ndarray]:
    """``(flow_bw, flow_fw)`` for consecutive frames, each ``float32 (H, W, 2)``.

    ``flow_bw`` takes ``frame_cur`` back to ``frame_prev`` (on ``frame_cur``'s
    grid), ``flow_fw`` takes ``frame_prev`` to ``frame_cur``; together they
    feed :func:`~stablestyle.flow.reliability_mask`.
    """
    flow_bw = estimate_flow(frame_cur, frame_prev, method)
    flow_fw = estimate_flow(frame_prev, frame_cur, method)
    return flow_bw, flow_fw
