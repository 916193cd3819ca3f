"""Scene cuts: the detector on synthetic cuts, pans and flicker; the state restarts at a cut, end to end."""

import logging

import numpy as np
import pytest
import torch

from stablestyle.scenecut import SceneCutDetector, describe_cuts, histogram_distance, signature
from stablestyle.video import read_image


def _pan(photo: np.ndarray, frames: int, step: int = 3, size=(96, 128)) -> list[np.ndarray]:
    """A slow camera pan: a window sliding ``step`` px a frame across ``photo``."""
    h, w = size
    return [np.ascontiguousarray(photo[10:10 + h, 5 + i * step:5 + i * step + w]) for i in range(frames)]


@pytest.fixture(scope="module")
def photos(assets):
    names = sorted((assets / "content").glob("*.jpg"))
    return read_image(names[0]), read_image(names[7])


def test_histogram_distance_known_values():
    black, white = np.zeros((20, 30, 3), np.uint8), np.full((20, 30, 3), 255, np.uint8)
    half = black.copy()
    half[:, :15] = 255
    assert histogram_distance(signature(black), signature(black)) == 0.0
    assert histogram_distance(signature(black), signature(white)) == pytest.approx(1.0)
    assert histogram_distance(signature(black), signature(half)) == pytest.approx(0.5, abs=0.02)
    assert signature(half).shape == (3, 16) and np.allclose(signature(half).sum(axis=1), 1.0)


def test_a_cut_between_two_pans_is_found_exactly_once(photos):
    clip = _pan(photos[0], 20) + _pan(photos[1], 20)
    detector = SceneCutDetector()
    flags = [detector.update(f) for f in clip]
    assert detector.cuts == [20] and flags.index(True) == 20 and sum(flags) == 1


@pytest.mark.parametrize("kind", ["pan", "flicker", "static"])
def test_no_cut_without_one(photos, kind):
    base = _pan(photos[0], 60, step=2)
    if kind == "flicker":  # a light flickering by +-15 %: colour change every frame, all the time
        base = [np.clip(f * (1.0 + 0.15 * (-1) ** i), 0, 255).astype(np.uint8) for i, f in enumerate(base)]
    elif kind == "static":
        base = [base[0]] * 60
    detector = SceneCutDetector()
    assert not any(detector.update(f) for f in base) and detector.cuts == []


def test_bad_settings_and_frames_are_rejected():
    with pytest.raises(ValueError, match="threshold"):
        SceneCutDetector(threshold=0)
    with pytest.raises(ValueError, match="uint8"):
        signature(np.zeros((4, 4), np.float32))


def test_describe_cuts_is_one_based():
    assert describe_cuts([]) == ""
    assert describe_cuts([30, 76]) == "scene cuts at frames 31, 77: the recurrent state restarted there"


def _recurrent_net():
    from stablestyle.models import TransformerNet
    torch.manual_seed(0)
    net = TransformerNet(width=0.25, recurrent=True).eval()
    with torch.no_grad():  # make the previous output matter: its conv1 weights are random, not small
        net.conv1.conv2d.weight[:, 3:].mul_(5.0)
    return net


def test_after_a_cut_the_output_is_a_fresh_start(photos):
    """With cut detection the frames after the cut equal stylizing the new shot alone; without, they do not."""
    from stablestyle.stylize import stylize_frames

    net = _recurrent_net()
    first, second = _pan(photos[0], 6), _pan(photos[1], 6)
    fresh = list(stylize_frames(net, second, scene_cuts="off"))
    auto = list(stylize_frames(net, first + second))[6:]
    off = list(stylize_frames(net, first + second, scene_cuts="off"))[6:]
    assert all(np.array_equal(a, b) for a, b in zip(auto, fresh))
    assert np.abs(off[0].astype(int) - fresh[0].astype(int)).mean() > 1.0
    with pytest.raises(ValueError, match="valid: auto, off"):
        list(stylize_frames(net, second, scene_cuts="maybe"))


def test_stylize_cli_reports_cuts_and_off_keeps_the_state(tmp_path, photos, caplog):
    from stablestyle.checkpoint import save_checkpoint
    from stablestyle.cli import main
    from stablestyle.video import write_image

    frames = tmp_path / "frames"
    frames.mkdir()
    for i, f in enumerate(_pan(photos[0], 8) + _pan(photos[1], 8)):
        write_image(frames / f"frame_{i:03d}.png", f)
    ckpt = tmp_path / "net.pt"
    save_checkpoint(ckpt, _recurrent_net(), config={}, step=1, style_sha256=None)
    with caplog.at_level(logging.INFO, logger="stablestyle"):
        assert main(["stylize", str(frames), "-o", str(tmp_path / "auto"), "--model", str(ckpt)]) == 0
    assert "scene cut at frame 9: the recurrent state restarted there" in caplog.text
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="stablestyle"):
        assert main(["stylize", str(frames), "-o", str(tmp_path / "off"), "--model", str(ckpt),
                     "--scene-cuts", "off"]) == 0
    assert "scene cut" not in caplog.text
    auto, off = (sorted((tmp_path / d).glob("*.png")) for d in ("auto", "off"))
    assert np.array_equal(read_image(auto[7]), read_image(off[7]))  # before the cut: the same
    assert not np.array_equal(read_image(auto[8]), read_image(off[8]))  # after it: a fresh start
