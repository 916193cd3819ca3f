"""Live inputs (:mod:`stablestyle.camera`): a camera faked through a stand-in OpenCV, and files standing in."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from stablestyle.camera import FALLBACK_FPS, MAX_CAMERA, Camera, StandIn, check_camera_index, nominal_fps, open_input
from stablestyle.errors import UserError


class FakeCapture:
    """``cv2.VideoCapture`` giving ``n`` BGR frames (blue on the left half), then failing reads."""

    def __init__(self, index, *, n: int = 3, fps: float = 0.0, opened: bool = True):
        self.left, self.fps, self.opened, self.released = n, fps, opened, False

    def isOpened(self):  # noqa: N802 -- OpenCV's name
        return self.opened

    def get(self, prop):
        return self.fps if prop == cv2.CAP_PROP_FPS else 0.0

    def read(self):
        if self.left == 0:
            return False, None
        self.left -= 1
        frame = np.zeros((40, 80, 3), np.uint8)
        frame[:, :40, 0] = 255  # blue in BGR
        return True, frame

    def release(self):
        self.released = True


@pytest.fixture
def fake_cv2(monkeypatch):
    made = []

    def capture(index, **kwargs):
        made.append(FakeCapture(index, **kwargs))
        return made[-1]

    monkeypatch.setattr(cv2, "VideoCapture", capture)
    return made


@pytest.mark.parametrize("fps, expected", [(25.0, 25.0), (0.0, FALLBACK_FPS), (-1.0, FALLBACK_FPS),
                                           (1000.0, FALLBACK_FPS)])
def test_nominal_fps_falls_back_on_nonsense(fps, expected):
    assert nominal_fps(fps) == expected


@pytest.mark.parametrize("index", [-1, MAX_CAMERA, 200 + 1])
def test_camera_index_out_of_range_is_a_user_error(index):
    with pytest.raises(UserError, match="camera index from 0"):
        check_camera_index(index)


def test_camera_gives_rgb_frames_shrunk_and_says_when_it_stops(fake_cv2):
    camera = Camera(cv2, 0, max_size=40)
    frames = list(camera.frames())
    assert len(frames) == 3 and frames[0].shape == (20, 40, 3)
    assert frames[0][:, :10, 2].min() > 200 and frames[0][:, :10, 0].max() < 50  # BGR blue is RGB blue
    assert camera.fps == FALLBACK_FPS
    assert "camera 0 stopped giving frames after 3" in camera.ended_early
    camera.close()
    assert fake_cv2[0].released


def test_camera_that_does_not_open_is_a_user_error(monkeypatch):
    monkeypatch.setattr(cv2, "VideoCapture", lambda index: FakeCapture(index, opened=False))
    with pytest.raises(UserError, match="cannot open camera 3"):
        Camera(cv2, 3, max_size=64)


def test_open_input_prefers_the_stand_in(fake_cv2, frames_dir):
    stand_in = open_input(cv2, None, str(frames_dir), 64)
    try:
        assert isinstance(stand_in, StandIn) and stand_in.what.startswith("frame folder")
        frames = list(stand_in.frames())
        assert len(frames) == 5 and max(frames[0].shape[:2]) == 64 and stand_in.ended_early == ""
    finally:
        stand_in.close()
    assert not fake_cv2  # no camera was opened
    camera = open_input(cv2, None, None, 64)
    assert isinstance(camera, Camera) and camera.what == "camera 0"
