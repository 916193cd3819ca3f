"""Virtual-camera clips: exact flow, occlusion, determinism and the Sintel-like layout."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest
import torch

from stablestyle.errors import UserError
from stablestyle.flow import backward_warp, inbounds_mask, read_flo
from stablestyle.synthetic import (
    Layer,
    MotionConfig,
    load_ground_truth,
    render_clip,
    render_layers,
    save_clip,
    similarity_maps,
    smooth_trajectory,
)
from stablestyle.video import read_image


def _t(arr: np.ndarray) -> torch.Tensor:
    """numpy (T, H, W, C) -> (T, C, H, W) float tensor."""
    return torch.from_numpy(np.ascontiguousarray(arr)).permute(0, 3, 1, 2).float()


def _frames(clip) -> torch.Tensor:
    return _t(clip.frames) / 255


@pytest.fixture(scope="module")
def photos(assets):
    content = assets / "content"
    return read_image(content / "ccpl_golden_gate.jpg"), read_image(content / "ccpl_lenna.jpg")


def _static_background(tex: np.ndarray, num_frames: int, offset=(10.0, 10.0), step=(0.0, 0.0)) -> Layer:
    """B_t(x) = x + offset + t * step: a camera panning by ``step`` texture pixels per frame."""
    centre = np.array(offset) + np.arange(num_frames)[:, None] * np.array(step)
    return Layer(tex, similarity_maps(centre, np.zeros((num_frames, 2)), np.ones(num_frames), np.zeros(num_frames)))


@pytest.mark.parametrize("step", [(3.0, 0.0), (-2.0, 1.0), (1.5, -0.25)])
def test_pure_translation_gives_constant_flow(step):
    rng = np.random.default_rng(0)
    tex = cv2.GaussianBlur(rng.random((90, 120, 3), dtype=np.float32), (0, 0), 1.5)
    clip = render_layers([_static_background(tex, 4, step=step)], (64, 48))
    d = np.array(step, np.float32)
    assert np.all(clip.flow_bw[0] == 0) and np.all(clip.valid_bw[0] == 0)
    np.testing.assert_allclose(clip.flow_bw[1:], np.broadcast_to(d, clip.flow_bw[1:].shape), atol=1e-5)
    np.testing.assert_allclose(clip.flow_fw[1:], np.broadcast_to(-d, clip.flow_fw[1:].shape), atol=1e-5)
    # valid = exactly the pixels whose x + d stays inside the frame
    expected = inbounds_mask(_t(clip.flow_bw[1:]))[:, 0].numpy()
    np.testing.assert_array_equal(clip.valid_bw[1:], expected)
    warped = backward_warp(_frames(clip)[:-1], _t(clip.flow_bw[1:]))
    err = ((warped - _frames(clip)[1:]).abs() * torch.from_numpy(expected)[:, None]).max().item()
    integer = all(float(s).is_integer() for s in step)
    assert err <= (0.5 / 255 if integer else 6 / 255)


@pytest.mark.parametrize("seed", [0, 1])
def test_warping_previous_frame_reproduces_frame_on_valid_pixels(photos, seed):
    bg, fg = photos
    clip = render_clip(bg, 6, (128, 96), rng=np.random.default_rng(seed), foregrounds=[fg, bg])
    frames, valid = _frames(clip), torch.from_numpy(clip.valid_bw)[1:, None]
    err = (backward_warp(frames[:-1], _t(clip.flow_bw[1:])) - frames[1:]).abs() * valid
    assert 0.8 < valid.mean().item() < 1.0  # foregrounds and borders occlude something, not everything
    assert err.sum().item() / (3 * valid.sum().item()) < 2 / 255
    # an invalid pixel really can differ: the mask is not just "everything"
    assert ((1 - valid) * (backward_warp(frames[:-1], _t(clip.flow_bw[1:])) - frames[1:]).abs()).max() > 0.1


def test_max_warp_error_is_interpolation_error_on_a_smooth_photo(photos):
    # the camera reduces a large photo to about its own resolution first, so blur at that scale
    bg, fg = (cv2.GaussianBlur(cv2.resize(p, (200, 150), interpolation=cv2.INTER_AREA), (0, 0), 1.5) for p in photos)
    clip = render_clip(bg, 6, (128, 96), rng=np.random.default_rng(3), foregrounds=[fg])
    frames, valid = _frames(clip), torch.from_numpy(clip.valid_bw)[1:, None]
    err = (backward_warp(frames[:-1], _t(clip.flow_bw[1:])) - frames[1:]).abs() * valid
    assert err.max().item() < 10 / 255


def test_forward_and_backward_flow_agree_on_valid_pixels(photos):
    bg, fg = photos
    clip = render_clip(bg, 5, (96, 64), rng=np.random.default_rng(2), foregrounds=[fg],
                       motion=MotionConfig(max_rotation=10, max_rotation_speed=2, max_zoom_speed=0.03))
    bw, fw = _t(clip.flow_bw[1:]), _t(clip.flow_fw[1:])
    vb, vf = torch.from_numpy(clip.valid_bw[1:])[:, None], torch.from_numpy(clip.valid_fw[1:])[:, None]
    assert ((backward_warp(fw, bw) + bw).abs() * vb).max() < 1e-3  # round trip t -> t-1 -> t
    assert ((backward_warp(bw, fw) + fw).abs() * vf).max() < 1e-3  # round trip t-1 -> t -> t-1
    assert bw.abs().max() > 1  # it moved


def test_foreground_moving_right_disoccludes_a_strip_behind_it():
    rng = np.random.default_rng(0)
    tex = rng.random((80, 120, 3), dtype=np.float32)
    num_frames, v, (a, b) = 3, 4.0, (8.0, 10.0)
    anchor = np.array([[20.0 + v * t, 24.0] for t in range(num_frames)])
    fg_maps = similarity_maps(np.tile([20.0, 20.0], (num_frames, 1)), anchor, np.ones(num_frames), np.zeros(num_frames))
    fg = Layer(np.full((40, 40, 3), 0.9, np.float32), fg_maps, "rect", (20.0, 20.0), (a, b))
    clip = render_layers([_static_background(tex, num_frames), fg], (64, 48))
    invalid = 1 - clip.valid_bw[2]
    strip = v * 2 * b  # uncovered area; plus at most a 2-pixel band of anti-aliased edges around the patch
    assert strip <= invalid.sum() <= strip + 2 * 2 * (2 * a + 2 * b)
    # the strip interior (patch at t-1, background at t) is invalid; far away everything is valid
    assert np.all(invalid[16:33, 17:20] == 1)
    assert np.all(invalid[:, 45:] == 0) and np.all(invalid[:10] == 0)
    # exact flow: background still, patch moving +v (its pixels come from x - v)
    assert np.all(clip.flow_bw[2][clip.labels[2] == 0] == 0)
    patch = clip.flow_bw[2][clip.labels[2] == 1]
    np.testing.assert_allclose(patch, np.broadcast_to([-v, 0.0], patch.shape), atol=1e-6)


@pytest.mark.parametrize("background_size", [(20, 30), (400, 600)])
def test_camera_never_leaves_the_background(background_size):
    rng = np.random.default_rng(5)
    bg = rng.integers(0, 256, background_size + (3,), dtype=np.uint8)
    motion = MotionConfig(max_speed=20, max_rotation=30, max_rotation_speed=5, max_zoom=0.3, max_zoom_speed=0.1)
    clip = render_clip(bg, 12, (64, 48), rng=rng, motion=motion)
    assert np.all(clip.labels == 0)  # background everywhere, never black outside it


def test_single_frame_and_determinism(photos):
    bg, fg = photos
    one = render_clip(bg, 1, (40, 30), rng=np.random.default_rng(0), foregrounds=[fg])
    assert one.frames.shape == (1, 30, 40, 3) and one.frames.dtype == np.uint8
    assert one.flow_bw.shape == (1, 30, 40, 2) and not one.flow_bw.any() and not one.valid_bw.any()
    a = render_clip(bg, 3, (40, 30), rng=np.random.default_rng(7), foregrounds=[fg])
    b = render_clip(bg, 3, (40, 30), rng=np.random.default_rng(7), foregrounds=[fg])
    c = render_clip(bg, 3, (40, 30), rng=np.random.default_rng(8), foregrounds=[fg])
    for name in ("frames", "flow_bw", "flow_fw", "valid_bw", "valid_fw"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name))
    assert not np.array_equal(a.frames, c.frames)


def test_smooth_trajectory_is_bounded_and_speed_limited():
    rng = np.random.default_rng(0)
    lo, hi, vmax = np.array([0.0, -1.0]), np.array([10.0, 1.0]), np.array([3.0, 0.2])
    track = smooth_trajectory(rng, 200, lo, hi, vmax, accel=0.5)
    assert track.shape == (200, 2)
    assert np.all(track >= lo) and np.all(track <= hi)
    assert np.all(np.abs(np.diff(track, axis=0)) <= vmax + 1e-12)
    steady = smooth_trajectory(rng, 5, [0.0], [1e6], [2.0], accel=0.0)  # no acceleration: constant velocity
    assert np.allclose(np.diff(steady[:, 0]), np.diff(steady[:, 0])[0])


@pytest.mark.parametrize("call, match", [
    (lambda bg: render_clip(bg.astype(np.float32), 3, (32, 32), rng=np.random.default_rng()), "uint8"),
    (lambda bg: render_clip(bg[..., 0], 3, (32, 32), rng=np.random.default_rng()), r"\(H, W, 3\)"),
    (lambda bg: render_clip(bg[:4, :4], 3, (32, 32), rng=np.random.default_rng()), "at least 8"),
    (lambda bg: render_clip(bg, 0, (32, 32), rng=np.random.default_rng()), "num_frames"),
    (lambda bg: render_clip(bg, 3, (32, 0), rng=np.random.default_rng()), "size"),
    (lambda bg: render_clip(bg, 3, (32, 32), rng=np.random.default_rng(), foregrounds=[bg[:3]]), "foreground 0"),
    (lambda bg: MotionConfig(max_speed=-1), "max_speed"),
    (lambda bg: MotionConfig(fill=(0.5, 1.5)), "fill"),
    (lambda bg: MotionConfig(fg_shapes=("star",)), "fg_shapes"),
])
def test_bad_input_is_a_user_error(call, match):
    bg = np.zeros((40, 50, 3), np.uint8)
    with pytest.raises(UserError, match=match):
        call(bg)


@pytest.fixture(scope="module")
def small_clip(photos):
    bg, fg = photos
    return render_clip(bg, 4, (48, 32), rng=np.random.default_rng(1), foregrounds=[fg])


def test_save_and_load_round_trip(small_clip, tmp_path):
    out = save_clip(small_clip, tmp_path / "clip", provenance={"seed": 1, "sources": {"background": "x.jpg"}})
    names = lambda sub: sorted(p.name for p in (out / sub).iterdir())  # noqa: E731
    assert names("frames") == [f"frame_{i:04d}.png" for i in range(1, 5)]
    assert names("flow") == [f"frame_{i:04d}.flo" for i in range(1, 4)]  # Sintel: i -> i+1
    assert names("occlusions") == [f"frame_{i:04d}.png" for i in range(1, 4)]
    assert names("flow_bw") == [f"frame_{i:04d}.flo" for i in range(2, 5)]
    assert names("valid_bw") == [f"frame_{i:04d}.png" for i in range(2, 5)]
    np.testing.assert_array_equal(read_flo(out / "flow" / "frame_0001.flo"), small_clip.flow_fw[1])
    occ = cv2.imread(str(out / "occlusions" / "frame_0002.png"), cv2.IMREAD_UNCHANGED)
    np.testing.assert_array_equal(occ, 255 * (small_clip.valid_fw[2] == 0))
    meta = json.loads((out / "clip.json").read_text())
    assert meta["seed"] == 1 and meta["num_frames"] == 4 and meta["size"] == [48, 32] and "motion" in meta

    gt = load_ground_truth(out)
    np.testing.assert_array_equal(gt.frames, small_clip.frames)
    np.testing.assert_array_equal(gt.flow_bw, small_clip.flow_bw)
    np.testing.assert_array_equal(gt.valid_bw, small_clip.valid_bw)
    assert gt.meta["sources"] == {"background": "x.jpg"}
    assert [p.name for p in tmp_path.iterdir()] == ["clip"]  # no temporary folder left


def test_save_refuses_to_replace_without_overwrite(small_clip, tmp_path):
    out = save_clip(small_clip, tmp_path / "clip")
    with pytest.raises(UserError, match="--overwrite"):
        save_clip(small_clip, out)
    single = render_layers([_static_background(np.zeros((60, 80, 3), np.float32), 2)], (48, 32))
    save_clip(single, out, overwrite=True)
    assert load_ground_truth(out).frames.shape == (2, 32, 48, 3)
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "keep.txt").write_text("x")
    with pytest.raises(UserError, match="not a clip folder"):
        save_clip(small_clip, tmp_path / "other", overwrite=True)
    with pytest.raises(UserError, match="does not exist"):
        save_clip(small_clip, tmp_path / "missing" / "clip")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["clip", "other"]


def test_load_ground_truth_explains_the_layout(small_clip, tmp_path):
    with pytest.raises(UserError, match="flow_bw/frame_0002.flo"):
        load_ground_truth(tmp_path / "nope")
    out = save_clip(small_clip, tmp_path / "clip")
    (out / "valid_bw" / "frame_0003.png").unlink()
    with pytest.raises(UserError, match="frame_0003.png is missing"):
        load_ground_truth(out)
    for sub in ("flow_bw", "valid_bw"):
        for p in (out / sub).iterdir():
            p.unlink()
        (out / sub).rmdir()
    with pytest.raises(UserError, match="no flow_bw or valid_bw"):
        load_ground_truth(out)


def test_motion_at_speed_scales_every_speed_and_keeps_the_bounds():
    from stablestyle.synthetic import MotionConfig

    from stablestyle.training import TrainConfig

    base = MotionConfig()
    # runs saved before --max-speed existed resume with the default: the same clips as before
    assert base.at_speed(TrainConfig().max_speed) == base
    fast = base.at_speed(12.0)
    assert fast.max_speed == 12.0 and fast.fg_max_speed == pytest.approx(3 * base.fg_max_speed)
    assert fast.max_zoom_speed == pytest.approx(3 * base.max_zoom_speed)
    assert fast.max_rotation_speed == pytest.approx(3 * base.max_rotation_speed)
    assert (fast.max_zoom, fast.max_rotation, fast.fill) == (base.max_zoom, base.max_rotation, base.fill)
    for bad in (0, -2.0, float("inf")):
        with pytest.raises(UserError, match="max_speed"):
            base.at_speed(bad)
