"""Evaluation metrics: instability, warping error, perceptual losses, speed; clips with ground truth."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

from stablestyle.evaluate.clips import (
    Clip,
    GroundTruth,
    clip_instability,
    estimate_clip_flow,
    load_clip,
    resize_flow,
    resize_mask,
)
from stablestyle.evaluate.metrics import (
    instability,
    mean_instability,
    measure_stream,
    perceptual_losses,
    warping_error,
    warping_error_per_frame,
)
from stablestyle.flow import backward_warp, inbounds_mask, write_flo
from stablestyle.losses import PerceptualLoss, temporal_loss


def _panning_clip(t: int, h: int, w: int, d: tuple[int, int], dtype=torch.float64, seed: int = 0):
    """Frames cut from one random canvas by a window moving ``d = (dx, dy)`` px per frame.

    Frame ``t`` at ``x`` shows canvas ``x + t d``, which frame ``t-1`` showed at
    ``x + d``: ``flow_bw = +d`` everywhere (exact integer warps).
    """
    g = torch.Generator().manual_seed(seed)
    dx, dy = d
    pad = max(abs(dx), abs(dy)) * t
    canvas = torch.rand(3, h + 2 * pad, w + 2 * pad, generator=g, dtype=dtype)
    frames = torch.stack([canvas[:, pad + k * dy:pad + k * dy + h, pad + k * dx:pad + k * dx + w]
                          for k in range(t)])
    flow = torch.zeros(t, 2, h, w, dtype=dtype)
    flow[:, 0], flow[:, 1] = dx, dy
    return frames, flow


@pytest.mark.parametrize("d", [(1, 0), (0, 2), (-2, 1), (3, -3)])
def test_perfectly_warped_clip_has_zero_instability(d):
    frames, flow = _panning_clip(4, 16, 20, d)
    mask = inbounds_mask(flow)
    values = instability(frames, flow, mask)
    assert values.shape == (3,)
    assert values.abs().max() < 1e-12
    assert warping_error(frames, flow, mask).abs() < 1e-12
    # the mask matters: with every pixel trusted, the strip entering the view is an error
    assert instability(frames, flow, torch.ones_like(mask)).min() > 1e-3


@pytest.mark.parametrize("sigma", [0.01, 0.05, 0.2])
def test_gaussian_noise_gives_two_sigma_squared(sigma):
    """Static frames plus independent noise, exact (zero) flow: E[(n1 - n2)^2] = 2 sigma^2."""
    torch.manual_seed(0)
    t, h, w = 4, 64, 64
    base = torch.rand(1, 3, h, w, dtype=torch.float64)
    frames = base + sigma * torch.randn(t, 3, h, w, dtype=torch.float64)
    flow = torch.zeros(t, 2, h, w, dtype=torch.float64)
    mask = torch.ones(t, 1, h, w, dtype=torch.float64)
    expected = 2 * sigma**2
    per_frame = instability(frames, flow, mask)
    assert per_frame.shape == (t - 1,)
    assert per_frame.numpy() == pytest.approx(expected, rel=0.05)
    assert float(mean_instability(frames, flow, mask)) == pytest.approx(expected, rel=0.03)
    # Lai et al.'s warping error sums the 3 channels per pixel: 3 * 2 sigma^2
    assert float(warping_error(frames, flow, mask)) == pytest.approx(3 * expected, rel=0.03)


@pytest.mark.parametrize("strip", [1, 3, 7])
def test_mask_excludes_the_occluded_strip(strip):
    """A large error only where the mask is 0 contributes nothing; unmasked it gives e^2 * strip / W."""
    frames, flow = _panning_clip(3, 12, 16, (0, 0))
    err = 0.7
    frames[1:, :, :, :strip] += err
    frames[2, :, :, :strip] += err  # frame 2 differs from frame 1 by err in the strip as well
    mask = torch.ones(3, 1, 12, 16, dtype=torch.float64)
    mask[:, :, :, :strip] = 0
    assert instability(frames, flow, mask).abs().max() < 1e-12
    assert warping_error_per_frame(frames, flow, mask).abs().max() < 1e-12
    full = instability(frames, flow, torch.ones_like(mask))
    assert full.numpy() == pytest.approx(err**2 * strip / 16, rel=1e-9)


def test_instability_is_the_temporal_loss_and_accepts_both_lengths():
    torch.manual_seed(1)
    frames = torch.rand(5, 3, 10, 12)
    flow = 2 * torch.randn(5, 2, 10, 12)
    mask = (torch.rand(5, 1, 10, 12) > 0.3).float()
    full = instability(frames, flow, mask)
    short = instability(frames, flow[1:], mask[1:])
    assert torch.equal(full, short)
    for k in range(1, 5):
        ref = temporal_loss(frames[k:k + 1], backward_warp(frames[k - 1:k], flow[k:k + 1]), mask[k:k + 1])
        assert float(full[k - 1]) == pytest.approx(float(ref), rel=1e-6)


def test_instability_gradcheck():
    torch.manual_seed(2)
    frames = torch.rand(3, 3, 4, 5, dtype=torch.float64, requires_grad=True)
    flow = torch.rand(3, 2, 4, 5, dtype=torch.float64) * 0.8 + 0.1  # away from integer kinks
    mask = (torch.rand(3, 1, 4, 5) > 0.2).double()
    assert torch.autograd.gradcheck(lambda x: instability(x, flow, mask), (frames,))


def test_warping_error_empty_mask_frames_are_left_out():
    frames, flow = _panning_clip(4, 8, 8, (0, 0))
    frames[3] += 0.1
    mask = torch.ones(4, 1, 8, 8, dtype=torch.float64)
    mask[1] = 0
    per_frame = warping_error_per_frame(frames, flow, mask)
    assert math.isnan(per_frame[0]) and float(per_frame[1]) == 0
    assert float(per_frame[2]) == pytest.approx(3 * 0.01)
    assert float(warping_error(frames, flow, mask)) == pytest.approx(0.015)
    assert math.isnan(warping_error(frames, flow, torch.zeros_like(mask)))


@pytest.mark.parametrize("shapes", [
    ((1, 3, 8, 8), (1, 2, 8, 8), (1, 1, 8, 8)),     # one frame: no pair
    ((3, 1, 8, 8), (3, 2, 8, 8), (3, 1, 8, 8)),     # not RGB
    ((3, 3, 8, 8), (3, 2, 8, 9), (3, 1, 8, 8)),     # flow size
    ((3, 3, 8, 8), (3, 2, 8, 8), (3, 3, 8, 8)),     # mask channels
    ((4, 3, 8, 8), (2, 2, 8, 8), (4, 1, 8, 8)),     # too few flows
])
def test_metric_shape_errors(shapes):
    f, fl, m = (torch.zeros(s) for s in shapes)
    with pytest.raises(ValueError):
        instability(f, fl, m)
    with pytest.raises(ValueError):
        warping_error(f, fl, m)


def test_warping_error_of_a_static_clip_with_estimated_flow(assets):
    """DIS on a still photo repeated gives ~zero flow and a full mask: warping error ~0."""
    from stablestyle.video import read_image, to_tensor

    img = read_image(sorted((assets / "content").glob("*.jpg"))[0])[:96, :128].copy()
    frames = [img] * 4
    flow, mask = estimate_clip_flow(frames, "dis")
    assert flow.shape == (3, 2, 96, 128) and mask.shape == (3, 1, 96, 128)
    assert flow.abs().max() < 0.05 and mask.mean() > 0.95
    y = to_tensor(frames)
    assert float(warping_error(y, flow, mask)) < 1e-5
    assert float(mean_instability(y, flow, mask)) < 1e-5


# ----------------------------------------------------------------------------- ground-truth clips

def test_forward_ground_truth_is_evaluated_in_reverse():
    """Sintel-style forward flow: the exact panning clip is perfectly stable, noise gives 2 sigma^2."""
    frames, flow_bw = _panning_clip(4, 32, 40, (2, 1), dtype=torch.float32)
    flow_fw = -flow_bw[:3]  # frame i -> i+1 on frame i's grid
    gt = GroundTruth(flow=flow_fw, mask=inbounds_mask(flow_fw), direction="forward", source="test")
    clip = Clip(name="pan", path=None, frames=[np.zeros((32, 40, 3), np.uint8)] * 4, fps=25.0, max_size=None,
                max_frames=None, ground_truth=gt)
    assert clip_instability(frames, clip).abs().max() < 1e-10
    torch.manual_seed(0)
    noisy = frames + 0.05 * torch.randn_like(frames)
    assert clip_instability(noisy, clip).numpy() == pytest.approx(2 * 0.05**2 * inbounds_mask(flow_fw).mean(
        dim=(1, 2, 3)).numpy(), rel=0.15)


def test_resize_flow_scales_vectors_and_masks_stay_conservative():
    flow = torch.zeros(2, 2, 32, 64)
    flow[:, 0], flow[:, 1] = 4.0, -2.0
    small = resize_flow(flow, (32, 16))
    assert small.shape == (2, 2, 16, 32)
    assert torch.allclose(small[:, 0], torch.tensor(2.0)) and torch.allclose(small[:, 1], torch.tensor(-1.0))
    mask = torch.ones(1, 1, 32, 64)
    mask[..., 5, 9] = 0
    small_mask = resize_mask(mask, (32, 16))
    assert small_mask[0, 0, 2, 4] == 0 and small_mask.sum() == 16 * 32 - 1


def _write_png(path, arr):
    from PIL import Image

    Image.fromarray(arr).save(path)


def test_sintel_style_folder_with_forward_flo_files(tmp_path):
    """Frames + forward .flo + occlusion PNGs in the Sintel tree: loaded as ground truth, input is stable."""
    rng = np.random.default_rng(0)
    h, w, n, dx = 48, 64, 4, 2
    canvas = rng.integers(0, 256, (h, w + dx * n, 3), dtype=np.uint8)
    root = tmp_path / "training"
    for sub in ("clean/scene", "flow/scene", "occlusions/scene"):
        (root / sub).mkdir(parents=True)
    for i in range(n):
        _write_png(root / "clean/scene" / f"frame_{i + 1:04d}.png", canvas[:, dx * i:dx * i + w].copy())
    for i in range(n - 1):
        # frame i at x shows canvas x + 2i, seen in frame i+1 at x - 2: forward flow (-2, 0)
        write_flo(root / "flow/scene" / f"frame_{i + 1:04d}.flo", np.tile(np.float32([-dx, 0]), (h, w, 1)))
        occ = np.zeros((h, w), np.uint8)
        occ[:, :dx] = 255  # leaves the view
        _write_png(root / "occlusions/scene" / f"frame_{i + 1:04d}.png", occ)
    clip = load_clip(root / "clean/scene")
    assert clip.ground_truth is not None and clip.ground_truth.direction == "forward"
    assert "ground truth" in clip.flow_source and clip.name == "scene"
    assert clip.ground_truth.mask[:, :, :, :dx].sum() == 0
    from stablestyle.video import to_tensor

    assert clip_instability(to_tensor(clip.frames), clip).abs().max() < 1e-10
    # max size: ground truth resized with the frames, still exact for this translation
    half = load_clip(root / "clean/scene", max_size=32, max_frames=3)
    assert half.size == (32, 24) and half.ground_truth.flow.shape == (2, 2, 24, 32)
    assert torch.allclose(half.ground_truth.flow[:, 0], torch.tensor(-1.0))


def test_synthetic_clip_folder_has_backward_ground_truth(tmp_path, assets):
    from stablestyle.synthetic import render_clip, save_clip
    from stablestyle.video import read_image, to_tensor

    bg = read_image(sorted((assets / "content").glob("*.jpg"))[1])
    clip_data = render_clip(bg, 4, (48, 32), rng=np.random.default_rng(3))
    folder = save_clip(clip_data, tmp_path / "synthetic")
    clip = load_clip(folder)
    assert clip.ground_truth.direction == "backward" and len(clip.frames) == 4
    assert clip.ground_truth.flow.shape == (3, 2, 32, 48)
    assert torch.allclose(clip.ground_truth.flow, torch.from_numpy(clip_data.flow_bw[1:]).permute(0, 3, 1, 2))
    # the input itself: only interpolation and uint8 rounding remain on valid pixels
    exact = float(clip_instability(to_tensor(clip.frames), clip).mean())
    est_flow, est_mask = clip.estimated_flow()
    assert exact < 5e-4
    shifted = float(instability(torch.roll(to_tensor(clip.frames), 3, dims=-1), clip.ground_truth.flow,
                                clip.ground_truth.mask).mean())
    assert shifted > 3 * exact
    assert est_flow.shape == clip.ground_truth.flow.shape and est_mask.shape == (3, 1, 32, 48)


# ----------------------------------------------------------------------------- perceptual losses and speed

class _TinyEncoder(nn.Module):
    """Stand-in for VGG-16 with the four style taps (random conv features)."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.c1 = nn.Conv2d(3, 4, 3, padding=1)
        self.c2 = nn.Conv2d(4, 6, 3, stride=2, padding=1)

    def forward(self, x):
        a = torch.relu(self.c1(x))
        b = torch.relu(self.c2(a))
        return {"relu1_2": a, "relu2_2": b, "relu3_3": b * 2, "relu4_3": b + 1}


def test_perceptual_losses_per_frame_match_the_training_loss():
    torch.manual_seed(0)
    loss = PerceptualLoss(_TinyEncoder(), torch.rand(1, 3, 16, 16))
    outputs, inputs = torch.rand(5, 3, 12, 14), torch.rand(5, 3, 12, 14)
    terms = perceptual_losses(outputs, inputs, loss, batch_size=2)
    assert terms["style"].shape == (5,) and terms["content"].shape == (5,)
    for k in range(5):
        with torch.no_grad():
            ref = loss(outputs[k:k + 1], inputs[k:k + 1])
        assert float(terms["style"][k]) == pytest.approx(float(ref["style"]), rel=1e-5)
        assert float(terms["content"][k]) == pytest.approx(float(ref["content"]), rel=1e-5)
    same = perceptual_losses(inputs, inputs, loss)
    assert float(same["content"].abs().max()) == 0


def test_measure_stream_separates_model_decode_and_encode_time():
    now = [0.0]

    def clock():
        return now[0]

    def frames():
        for k in range(4):
            now[0] += 1.0  # decoding costs 1 s
            yield np.full((2, 2, 3), k, np.uint8)

    def process(inputs):
        for f in inputs:
            now[0] += 10.0 + (5.0 if f[0, 0, 0] == 0 else 0.0)  # 10 s per frame, +5 s warm-up on the first
            yield f

    written = []

    def write(f):
        now[0] += 100.0
        written.append(f)

    outputs, speed = measure_stream(process, frames(), write, clock=clock)
    assert len(outputs) == len(written) == 4
    assert speed.frames == 4
    assert speed.decode_seconds == pytest.approx(4.0)
    assert speed.model_seconds == pytest.approx(45.0)
    assert speed.first_frame_seconds == pytest.approx(15.0)
    assert speed.encode_seconds == pytest.approx(400.0)
    assert speed.total_seconds == pytest.approx(449.0)
    assert speed.fps_model == pytest.approx(4 / 45)
    assert speed.fps_model_steady == pytest.approx(3 / 30)
    assert speed.fps_total == pytest.approx(4 / 449)
