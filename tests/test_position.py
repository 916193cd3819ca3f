"""Flip tests for position priors (stablestyle.evaluate.position)."""

from __future__ import annotations

import math

import pytest
import torch

from stablestyle.evaluate.position import edge_excess, flip_difference_profile
from stablestyle.models import TransformerNet

ORANGE = torch.tensor([1.0, 0.5, 0.0]).view(1, 3, 1, 1)


def _band(rows: int = 0, cols: int = 0):
    """A "net" that keeps the photo but paints orange over the top ``rows`` / left ``cols``."""
    def stylize(x):
        y = x.clone()
        if rows:
            y[..., :rows, :] = ORANGE
        if cols:
            y[..., :, :cols] = ORANGE
        return y
    return stylize


def test_a_position_free_function_has_a_zero_profile():
    x = torch.rand(2, 3, 32, 24)
    for axis, length in (("rows", 32), ("cols", 24)):
        profile = flip_difference_profile(lambda t: t.square(), x, axis)
        assert profile.shape == (length,) and profile.abs().max() < 1e-7
        assert edge_excess(profile) == 1.0


def test_a_top_band_shows_in_the_row_profile_and_not_in_the_columns():
    x = torch.rand(2, 3, 32, 32) * 0.2  # dark photos: far from orange
    rows = flip_difference_profile(_band(rows=4), x, "rows")
    assert (rows[:4] > 0.3).all() and (rows[-4:] > 0.3).all()  # upright band at the top, turned one at the bottom
    assert rows[4:-4].abs().max() < 1e-7 and math.isinf(edge_excess(rows))
    cols = flip_difference_profile(_band(rows=4), x, "cols")
    assert cols.abs().max() < 1e-7  # a mirror left-right keeps a top band where it is


def test_a_left_stripe_shows_in_the_column_profile():
    x = torch.rand(1, 3, 32, 32) * 0.2
    cols = flip_difference_profile(_band(cols=2), x, "cols")
    assert (cols[:2] > 0.3).all() and cols[2:-2].abs().max() < 1e-7


def test_edge_excess_is_the_ratio_of_edges_to_middle():
    profile = torch.ones(16)
    profile[:2] = 3.0
    profile[-2:] = 5.0
    assert edge_excess(profile, 0.125) == pytest.approx(4.0)
    assert edge_excess(torch.ones(16)) == pytest.approx(1.0)


def test_an_untrained_net_has_no_strong_position_prior():
    torch.manual_seed(0)
    net = TransformerNet(width=0.25, recurrent=False).eval()
    profile = flip_difference_profile(lambda t: net(t)[0], torch.rand(1, 3, 64, 64), "rows")
    assert profile.shape == (64,) and torch.isfinite(profile).all() and profile.max() > 0
    assert edge_excess(profile) < 3.0


@pytest.mark.parametrize("call, match", [
    (lambda: flip_difference_profile(lambda t: t, torch.rand(1, 3, 8, 8), "diagonal"), "axis must be"),
    (lambda: flip_difference_profile(lambda t: t, torch.rand(3, 8, 8)), r"\(B, C, H, W\)"),
    (lambda: flip_difference_profile(lambda t: t[..., :4, :], torch.rand(1, 3, 8, 8)), "keep the shape"),
    (lambda: edge_excess(torch.ones(4)), "at least 8"),
    (lambda: edge_excess(torch.ones(16), 0.5), "edge_fraction"),
])
def test_bad_arguments(call, match):
    with pytest.raises(ValueError, match=match):
        call()
