"""Ruder et al. 2016 reliability mask on analytic flows: a moving square, a translation, thresholds."""

from __future__ import annotations

import pytest
import torch

from stablestyle.flow import (
    ReliabilityMask,
    backward_warp,
    consistency_mask,
    inbounds_mask,
    motion_boundary_mask,
    reliability_mask,
)

H, W, SIDE = 24, 26, 7
TOP, LEFT = 8, 9  # square position in frame t-1


def _square(top: int, left: int) -> torch.Tensor:
    m = torch.zeros(H, W, dtype=torch.bool)
    m[top : top + SIDE, left : left + SIDE] = True
    return m


def _moving_square(dx: int, dy: int):
    """Square moving by (dx, dy) px from frame t-1 to t over a static textured background.

    Returns (frame_prev, frame_cur, flow_bw, flow_fw, square_prev, square_cur).
    """
    torch.manual_seed(0)
    background = torch.rand(1, 3, H, W)
    texture = torch.rand(1, 3, SIDE, SIDE)
    sq_prev, sq_cur = _square(TOP, LEFT), _square(TOP + dy, LEFT + dx)
    frame_prev, frame_cur = background.clone(), background.clone()
    frame_prev[..., TOP : TOP + SIDE, LEFT : LEFT + SIDE] = texture
    frame_cur[..., TOP + dy : TOP + dy + SIDE, LEFT + dx : LEFT + dx + SIDE] = texture
    flow_fw = torch.zeros(1, 2, H, W)  # on frame t-1's grid
    flow_fw[0, 0][sq_prev], flow_fw[0, 1][sq_prev] = dx, dy
    flow_bw = torch.zeros(1, 2, H, W)  # on frame t's grid
    flow_bw[0, 0][sq_cur], flow_bw[0, 1][sq_cur] = -dx, -dy
    return frame_prev, frame_cur, flow_bw, flow_fw, sq_prev, sq_cur


def _motion_band(top: int, left: int) -> torch.Tensor:
    """Pixels straddling the square's outline: central differences see the flow step from both sides.

    = the square grown by one pixel along rows and columns (4-neighbour dilation, no outer
    corners) minus the square shrunk by one pixel (4-neighbour erosion).
    """
    band = torch.zeros(H, W, dtype=torch.bool)
    band[top - 1 : top + SIDE + 1, left : left + SIDE] = True
    band[top : top + SIDE, left - 1 : left + SIDE + 1] = True
    band[top + 1 : top + SIDE - 1, left + 1 : left + SIDE - 1] = False
    return band


@pytest.mark.parametrize("dx,dy", [(1, 0), (3, 0), (0, 2), (-2, 0), (2, -1), (4, 3)])
def test_moving_square_disoccluded_strip_is_found_exactly(dx, dy):
    frame_prev, frame_cur, flow_bw, flow_fw, sq_prev, sq_cur = _moving_square(dx, dy)

    # Uncovered in frame t: where the square was and no longer is (background, flow_bw = 0,
    # but flow_fw there = (dx, dy)).  E.g. moving right by k: the k-px strip it left.
    strip = sq_prev & ~sq_cur
    assert strip.sum() > 0
    consistent = consistency_mask(flow_bw, flow_fw)
    assert consistent.shape == (1, 1, H, W)
    assert torch.equal(consistent[0, 0] == 0, strip)

    # The motion-boundary band is the 2-px ring straddling the square's outline in frame t.
    smooth = motion_boundary_mask(flow_bw)
    assert torch.equal(smooth[0, 0] == 0, _motion_band(TOP + dy, LEFT + dx))

    mask = reliability_mask(flow_bw, flow_fw)
    assert inbounds_mask(flow_bw).eq(1).all()
    assert torch.equal(mask, consistent * smooth)

    # Where the mask trusts the flow, the warped previous frame is frame t exactly ...
    warped = backward_warp(frame_prev, flow_bw)
    torch.testing.assert_close(warped * mask, frame_cur * mask, rtol=0, atol=1e-5)
    # ... and on the disoccluded strip it is not (it shows the square, frame t the background).
    assert (warped - frame_cur).abs().sum(1)[0][strip].min() > 1e-3


def test_right_move_by_k_strip_is_the_k_columns_left_behind():
    k = 3
    _, _, flow_bw, flow_fw, _, _ = _moving_square(k, 0)
    expected = torch.ones(1, 1, H, W)
    expected[..., TOP : TOP + SIDE, LEFT : LEFT + k] = 0
    assert torch.equal(consistency_mask(flow_bw, flow_fw), expected)


@pytest.mark.parametrize("dx,dy", [(3, 0), (-2, 5), (0, -4)])
def test_global_translation_only_the_entering_strip_is_unreliable(dx, dy):
    b = 2
    flow_bw = torch.empty(b, 2, H, W)
    flow_bw[:, 0], flow_bw[:, 1] = -dx, -dy
    flow_fw = -flow_bw
    expected = torch.zeros(b, 1, H, W)
    # pixel x of frame t came from x - d in frame t-1: rows/cols within |d| of the entering side are new.
    expected[..., max(0, dy) : H + min(0, dy), max(0, dx) : W + min(0, dx)] = 1
    assert torch.equal(inbounds_mask(flow_bw), expected)
    # the round trip holds wherever it can be checked; the motion is smooth everywhere
    assert torch.equal(consistency_mask(flow_bw, flow_fw) * expected, expected)
    assert motion_boundary_mask(flow_bw).eq(1).all()
    assert torch.equal(reliability_mask(flow_bw, flow_fw), expected)


@pytest.mark.parametrize("err,consistent", [(0.0, True), (0.70, True), (0.72, False), (2.0, False)])
def test_consistency_threshold(err, consistent):
    # w = 0, what = err: inconsistent iff err^2 > 0.01 err^2 + 0.5, i.e. err > sqrt(0.5 / 0.99) = 0.7107
    flow_bw = torch.zeros(1, 2, 4, 4)
    flow_fw = torch.zeros(1, 2, 4, 4)
    flow_fw[:, 0] = err
    assert consistency_mask(flow_bw, flow_fw).eq(float(consistent)).all()


@pytest.mark.parametrize(
    "base,step,boundary",
    [
        (0.0, 0.5, True),  # |grad|^2 = (0.5/2)^2 = 0.0625 > 0.002
        (0.0, 0.08, False),  # (0.04)^2 = 0.0016 < 0.002
        (10.0, 0.5, False),  # 0.0625 < 0.01 * 100 + 0.002: large motion tolerates more gradient
        (10.0, 3.0, True),  # 2.25 > 0.01 * 169 + 0.002 on the fast side, 1.002 on the slow side
    ],
)
def test_motion_boundary_threshold_is_relative_to_motion(base, step, boundary):
    flow_bw = torch.zeros(1, 2, 6, 8)
    flow_bw[:, 0] = base
    flow_bw[:, 0, :, 4:] += step
    flagged = motion_boundary_mask(flow_bw)[0, 0] == 0
    expected = torch.zeros(6, 8, dtype=torch.bool)
    expected[:, 3:5] = boundary  # central differences straddle the step
    assert torch.equal(flagged, expected)


def test_batch_items_are_independent_and_module_agrees():
    cases = [_moving_square(3, 0), _moving_square(0, -2)]
    flow_bw = torch.cat([c[2] for c in cases])
    flow_fw = torch.cat([c[3] for c in cases])
    batched = reliability_mask(flow_bw, flow_fw)
    for i, c in enumerate(cases):
        assert torch.equal(batched[i : i + 1], reliability_mask(c[2], c[3]))
    module = ReliabilityMask(beta=0.25)
    assert "beta=0.25" in repr(module)
    assert torch.equal(module(flow_bw, flow_fw), reliability_mask(flow_bw, flow_fw, beta=0.25))


@pytest.mark.parametrize("dtype", [torch.float16, torch.float64])
def test_mask_follows_flow_dtype(dtype):
    _, _, flow_bw, flow_fw, _, _ = _moving_square(2, 1)
    mask = reliability_mask(flow_bw.to(dtype), flow_fw.to(dtype))
    assert mask.dtype == dtype
    assert torch.equal(mask.float(), reliability_mask(flow_bw, flow_fw))


def test_errors():
    good = torch.zeros(1, 2, 5, 5)
    with pytest.raises(ValueError, match="must have one shape"):
        reliability_mask(good, torch.zeros(1, 2, 5, 6))
    with pytest.raises(ValueError, match=r"flow_fw must have shape \(B, 2, H, W\)"):
        consistency_mask(good, torch.zeros(1, 3, 5, 5))
    with pytest.raises(ValueError, match="alpha must be a number >= 0"):
        consistency_mask(good, good, alpha=-0.1)
    with pytest.raises(ValueError, match="mb_beta must be a number >= 0"):
        motion_boundary_mask(good, mb_beta=float("nan"))
    with pytest.raises(ValueError, match="beta must be a number >= 0"):
        ReliabilityMask(beta=-1)
