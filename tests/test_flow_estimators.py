"""Flow estimators on a real photograph shifted by a known integer, the registry and its errors."""

from __future__ import annotations

import threading

import numpy as np
import pytest
from PIL import Image

import stablestyle.flow.estimators as estimators
from stablestyle.errors import UserError
from stablestyle.flow import (
    FLOW_METHODS,
    estimate_flow,
    flow_pair,
    flow_to_tensor,
    register_flow_method,
    reliability_mask,
)

MARGIN, CROP_H, CROP_W = 8, 130, 180


@pytest.fixture(scope="module")
def photo(assets) -> np.ndarray:
    img = Image.open(assets / "content" / "ccpl_sailboat.jpg").convert("RGB").resize((200, 150), Image.BILINEAR)
    return np.asarray(img)


def _shifted_pair(photo: np.ndarray, dx: int, dy: int) -> tuple[np.ndarray, np.ndarray]:
    """Crops a, b with b[y + dy, x + dx] = a[y, x]: the flow from a to b is (dx, dy)."""
    a = photo[MARGIN : MARGIN + CROP_H, MARGIN : MARGIN + CROP_W]
    b = photo[MARGIN - dy : MARGIN - dy + CROP_H, MARGIN - dx : MARGIN - dx + CROP_W]
    assert np.array_equal(b[5 + dy, 5 + dx], a[5, 5])
    return np.ascontiguousarray(a), np.ascontiguousarray(b)


def _median_error(flow: np.ndarray, dx: float, dy: float, border: int = 10) -> float:
    err = np.hypot(flow[..., 0] - dx, flow[..., 1] - dy)[border:-border, border:-border]
    return float(np.median(err))


def test_registry_has_the_documented_methods():
    assert {"dis", "dis-fast", "dis-ultrafast", "deepflow"} <= set(FLOW_METHODS)


@pytest.mark.parametrize(
    "method,dx,dy",
    [("dis", 3, -2), ("dis", -5, 4), ("dis-fast", 3, -2), ("dis-ultrafast", 3, -2), ("deepflow", 3, -2)],
)
def test_known_shift_is_recovered(photo, method, dx, dy):
    a, b = _shifted_pair(photo, dx, dy)
    flow = estimate_flow(a, b, method)
    assert flow.shape == (CROP_H, CROP_W, 2) and flow.dtype == np.float32
    assert _median_error(flow, dx, dy) < 0.5


def test_flow_pair_directions_and_reliability_on_real_flow(photo):
    dx, dy = 3, -2
    prev, cur = _shifted_pair(photo, dx, dy)
    flow_bw, flow_fw = flow_pair(prev, cur, "dis")
    assert _median_error(flow_fw, dx, dy) < 0.5  # prev -> cur
    assert _median_error(flow_bw, -dx, -dy) < 0.5  # cur -> prev
    mask = reliability_mask(flow_to_tensor(flow_bw), flow_to_tensor(flow_fw))[0, 0].numpy()
    assert mask[10:-10, 10:-10].mean() > 0.9
    # the columns that entered on the left (x + w < 0) and rows that entered at the bottom are unreliable
    assert mask[:, :2].max() == 0 and mask[-1:, :].max() == 0


def test_unknown_method_lists_valid_ones(photo):
    with pytest.raises(UserError, match=r"unknown flow method 'raft'; valid: deepflow, dis, dis-fast, dis-ultrafast"):
        estimate_flow(photo, photo, "raft")


def test_deepflow_without_contrib_names_the_package(photo, monkeypatch):
    import cv2

    monkeypatch.setattr(estimators, "_local", threading.local())  # empty estimator cache
    monkeypatch.delattr(cv2, "optflow")
    with pytest.raises(UserError, match="opencv-contrib-python-headless"):
        estimate_flow(photo, photo, "deepflow")


@pytest.mark.parametrize(
    "img_a,img_b,match",
    [
        (np.zeros((8, 9, 3), np.float32), np.zeros((8, 9, 3), np.uint8), r"img_a must be a uint8 RGB array"),
        (np.zeros((8, 9, 3), np.uint8), np.zeros((8, 9), np.uint8), r"img_b must be a uint8 RGB array.*\(8, 9\)"),
        (np.zeros((8, 9, 3), np.uint8), np.zeros((9, 8, 3), np.uint8), "must have one size"),
        ([[0]], np.zeros((8, 9, 3), np.uint8), "got list"),
    ],
)
def test_bad_frames(img_a, img_b, match):
    with pytest.raises(UserError, match=match):
        estimate_flow(img_a, img_b)


def test_estimators_are_cached_per_thread(monkeypatch):
    monkeypatch.setattr(estimators, "_local", threading.local())
    first = estimators._estimator("dis")
    assert estimators._estimator("dis") is first
    other: list[object] = []
    thread = threading.Thread(target=lambda: other.append(estimators._estimator("dis")))
    thread.start()
    thread.join()
    assert other[0] is not first


def test_register_rejects_duplicates():
    with pytest.raises(ValueError, match="already registered"):
        register_flow_method("dis")(lambda: None)
