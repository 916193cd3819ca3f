"""Loss maths: analytic values, gradcheck, PerceptualLoss with a stand-in encoder, LossWeights."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from stablestyle.losses import (LossWeights, PerceptualLoss, content_loss, gram_matrix, masked_mean,
                                style_loss, temporal_loss, tv_loss)


class TinyEncoder(nn.Module):
    """Stand-in for VGG: two frozen conv+ReLU taps; counts its calls and images seen."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.conv1 = nn.Conv2d(3, 4, 3, padding=1)
        self.conv2 = nn.Conv2d(4, 6, 3, stride=2, padding=1)
        self.requires_grad_(False)
        self.calls: list[int] = []

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        self.calls.append(x.shape[0])
        a = torch.relu(self.conv1(x))
        return {"a": a, "b": torch.relu(self.conv2(a))}


@pytest.fixture
def encoder() -> TinyEncoder:
    return TinyEncoder()


# ---------------------------------------------------------------- gram_matrix


@pytest.mark.parametrize("values", [(1.0,), (2.0, -1.0), (0.5, 3.0, 0.0)])
@pytest.mark.parametrize("size", [(1, 1), (4, 7)])
def test_gram_of_constant_map(values, size):
    """F F^T / (C H W) of constant channels c is c_i c_j H W / (C H W) = c_i c_j / C."""
    c = torch.tensor(values, dtype=torch.float64)
    feat = c.view(1, -1, 1, 1).expand(2, -1, *size)
    expected = torch.outer(c, c) / len(values)
    torch.testing.assert_close(gram_matrix(feat), expected.expand(2, -1, -1))


def test_gram_invariant_to_tiling():
    torch.manual_seed(0)
    pattern = torch.randn(2, 5, 3, 4)
    torch.testing.assert_close(gram_matrix(pattern.repeat(1, 1, 2, 2)), gram_matrix(pattern))


def test_gram_gradcheck():
    torch.manual_seed(0)
    feat = torch.randn(2, 3, 4, 5, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(gram_matrix, (feat,))


def test_gram_float32_under_autocast():
    torch.manual_seed(0)
    feat = torch.rand(1, 8, 16, 16) * 300  # Caffe-scale activations
    with torch.autocast("cpu", dtype=torch.bfloat16):
        gram = gram_matrix(feat.bfloat16())
    assert gram.dtype == torch.float32
    torch.testing.assert_close(gram, gram_matrix(feat), rtol=2e-2, atol=0)


@pytest.mark.parametrize("shape", [(3, 4, 4), (4, 4)])
def test_gram_rejects_bad_shape(shape):
    with pytest.raises(ValueError, match="B, C, H, W"):
        gram_matrix(torch.rand(*shape))


# ------------------------------------------------------- content, style, tv


def test_content_loss_known_value():
    feat = torch.full((2, 3, 4, 5), 3.0)
    target = torch.full((1, 3, 4, 5), 1.0)  # broadcast over the batch
    assert content_loss(feat, target).item() == pytest.approx(4.0)
    torch.testing.assert_close(content_loss(feat, target, reduction="none"), torch.full((2,), 4.0))


def test_bad_reduction():
    with pytest.raises(ValueError, match="mean, none"):
        content_loss(torch.rand(1, 1, 2, 2), torch.rand(1, 1, 2, 2), reduction="sum")


def test_style_loss_known_value():
    """Constant features give G = c c^T / C; against zero targets the loss is mean(G^2), summed over layers."""
    feats = {"a": torch.full((2, 2, 3, 3), 2.0), "b": torch.full((2, 4, 2, 2), 1.0)}
    targets = {"a": torch.zeros(1, 2, 2), "b": torch.full((1, 4, 4), 0.25)}
    # layer a: G = 4/2 = 2 everywhere -> (2-0)^2 = 4; layer b: G = 1/4 -> matches its target -> 0
    assert style_loss(feats, targets, ["a", "b"]).item() == pytest.approx(4.0)
    assert style_loss(feats, targets, ["b"]).item() == pytest.approx(0.0)
    assert style_loss(feats, targets, ["a"], reduction="none").shape == (2,)


def test_style_loss_missing_layer():
    feats = {"a": torch.rand(1, 2, 3, 3)}
    with pytest.raises(ValueError, match="missing"):
        style_loss(feats, {"a": torch.zeros(1, 2, 2)}, ["a", "b"])
    with pytest.raises(ValueError, match="target Gram"):
        style_loss(feats, {"a": torch.zeros(1, 3, 3)}, ["a"])


@pytest.mark.parametrize("size", [(8, 8), (16, 40)])
@pytest.mark.parametrize("slope", [0.01, 0.02])
def test_tv_loss_ramp_is_size_invariant(size, slope):
    """A horizontal ramp with step ``slope``: dx = slope, dy = 0, so tv = slope^2 whatever the size."""
    h, w = size
    img = (torch.arange(w, dtype=torch.float64) * slope).expand(1, 3, h, w)
    assert tv_loss(img).item() == pytest.approx(slope ** 2)
    assert tv_loss(img.transpose(-1, -2)).item() == pytest.approx(slope ** 2)
    assert tv_loss(torch.full((1, 3, h, w), 0.3)).item() == 0.0


# ------------------------------------------------------ masked_mean, temporal


def test_masked_mean_known_value():
    x = torch.arange(2 * 2 * 2 * 3, dtype=torch.float64).view(2, 2, 2, 3)
    mask = torch.zeros(2, 1, 2, 3, dtype=torch.float64)
    mask[0, 0, 0, 0] = 1  # picks x[0, :, 0, 0] = 0, 6
    mask[1, 0, 1, 2] = 1  # picks x[1, :, 1, 2] = 17, 23
    assert masked_mean(x, mask).item() == pytest.approx((0 + 6 + 17 + 23) / 4)
    soft = mask * 0.5 + (1 - mask) * 0.0
    assert masked_mean(x, soft).item() == pytest.approx((0 + 6 + 17 + 23) / 4)
    assert masked_mean(x, torch.zeros_like(mask)).item() == 0.0


@pytest.mark.parametrize("mask_shape", [(2, 3, 4, 4), (2, 1, 4, 5), (3, 1, 4, 4)])
def test_masked_mean_rejects_bad_mask(mask_shape):
    with pytest.raises(ValueError, match="mask must be"):
        masked_mean(torch.rand(2, 3, 4, 4), torch.ones(*mask_shape))


def test_temporal_loss_zero_for_perfect_warp():
    """Previous output shifted right by 2 px: warping it back is exact except the 2 uncovered columns."""
    torch.manual_seed(0)
    prev = torch.rand(2, 3, 6, 9)
    out = torch.rand_like(prev)
    out[..., 2:] = prev[..., :-2]  # frame t sees content of t-1 shifted right; new columns are noise
    warped = torch.roll(prev, shifts=2, dims=-1)  # backward warp with flow_bw = (-2, 0), wrapped border
    mask = torch.ones(2, 1, 6, 9)
    mask[..., :2] = 0  # disoccluded strip
    assert temporal_loss(out, warped, mask).item() == 0.0
    assert temporal_loss(out, warped, torch.ones_like(mask)).item() > 0


def test_temporal_loss_divides_by_all_pixels():
    """Difference 0.5 everywhere, mask on a quarter of the pixels: (1/D) sum c d^2 = 0.25 * 1/4."""
    out = torch.full((1, 3, 4, 4), 0.75)
    warped = torch.full((1, 3, 4, 4), 0.25)
    mask = torch.zeros(1, 1, 4, 4)
    mask[..., :2, :2] = 1
    assert temporal_loss(out, warped, mask).item() == pytest.approx(0.0625)
    # and not the mask-normalised mean, which would be 0.25
    assert masked_mean((out - warped) ** 2, mask).item() == pytest.approx(0.25)
    batch = temporal_loss(torch.cat([out, out]), torch.cat([warped, out]), torch.cat([mask, mask]),
                          reduction="none")
    torch.testing.assert_close(batch, torch.tensor([0.0625, 0.0]))


def test_temporal_loss_shape_errors():
    with pytest.raises(ValueError, match="warped_prev"):
        temporal_loss(torch.rand(1, 3, 4, 4), torch.rand(1, 3, 4, 5), torch.ones(1, 1, 4, 4))
    with pytest.raises(ValueError, match="mask must be"):
        temporal_loss(torch.rand(1, 3, 4, 4), torch.rand(1, 3, 4, 4), torch.ones(1, 4, 4))


# ---------------------------------------------------------------- PerceptualLoss


def test_perceptual_targets_once_and_batched_pass(encoder):
    torch.manual_seed(1)
    style = torch.rand(1, 3, 12, 10)
    loss = PerceptualLoss(encoder, style, content_layer="a", style_layers=("a", "b"))
    assert encoder.calls == [1]
    grams = loss.target_grams
    assert grams["a"].shape == (1, 4, 4) and grams["b"].shape == (1, 6, 6)
    assert not any(g.requires_grad for g in grams.values())
    assert {n for n, _ in loss.named_buffers()} >= {"gram_a", "gram_b"}
    output = torch.rand(3, 3, 8, 8, requires_grad=True)
    terms = loss(output, torch.rand(3, 3, 8, 8))
    assert encoder.calls == [1, 6]  # one pass over [output; content]
    assert set(terms) == {"content", "style", "tv"}
    terms["style"].backward()
    assert output.grad is not None and output.grad.abs().sum() > 0


def test_perceptual_terms_are_unweighted_definitions(encoder):
    torch.manual_seed(2)
    style, output, content = torch.rand(1, 3, 10, 10), torch.rand(2, 3, 8, 8), torch.rand(2, 3, 8, 8)
    loss = PerceptualLoss(encoder, style, content_layer="b", style_layers=("a", "b"))
    terms = loss(output, content)
    out_feats, content_feats = encoder(output), encoder(content)
    style_grams = {k: gram_matrix(v) for k, v in encoder(style).items()}
    torch.testing.assert_close(terms["content"], content_loss(out_feats["b"], content_feats["b"]))
    torch.testing.assert_close(terms["style"], style_loss(out_feats, style_grams, ("a", "b")))
    torch.testing.assert_close(terms["tv"], tv_loss(output))
    per_sample = loss.evaluate(output, content)
    assert all(v.shape == (2,) and not v.requires_grad for v in per_sample.values())
    for name, value in terms.items():
        torch.testing.assert_close(per_sample[name].mean(), value)


def test_perceptual_zero_at_targets(encoder):
    torch.manual_seed(3)
    style = torch.rand(1, 3, 16, 16)
    loss = PerceptualLoss(encoder, style, content_layer="a", style_layers=("a", "b"))
    terms = loss(style.expand(2, -1, -1, -1), torch.rand(2, 3, 16, 16))
    reference = loss(torch.rand(2, 3, 16, 16), torch.rand(2, 3, 16, 16))["style"]
    assert terms["style"].item() < 1e-6 * reference.item()
    assert loss(style, style)["content"].item() == 0.0


def test_perceptual_with_vgg_style_image_as_output():
    from stablestyle.models import load_vgg16

    torch.manual_seed(4)
    style = torch.rand(1, 3, 32, 48)
    loss = PerceptualLoss(load_vgg16(), style)
    same = loss(style, torch.rand(1, 3, 32, 48))["style"]
    other = loss(torch.rand(1, 3, 32, 48), style)["style"]
    assert same.item() < 1e-6 * other.item()


def test_perceptual_rejects_bad_inputs(encoder):
    with pytest.raises(ValueError, match="style_image"):
        PerceptualLoss(encoder, torch.rand(2, 3, 8, 8), content_layer="a", style_layers=("a",))
    with pytest.raises(ValueError, match="does not provide"):
        PerceptualLoss(encoder, torch.rand(1, 3, 8, 8), content_layer="relu3_3", style_layers=("a",))
    loss = PerceptualLoss(encoder, torch.rand(1, 3, 8, 8), content_layer="a", style_layers=("a",))
    with pytest.raises(ValueError, match="must match"):
        loss(torch.rand(1, 3, 8, 8), torch.rand(2, 3, 8, 8))


# ------------------------------------------------------------------ LossWeights


def test_weights_applied_in_total_only():
    weights = LossWeights(content=2.0, style=3.0, tv=0.5, temporal=10.0)
    terms = {"content": torch.tensor(1.0), "style": torch.tensor(2.0), "temporal": torch.tensor(0.1)}
    assert weights.total(terms).item() == pytest.approx(2.0 + 6.0 + 1.0)  # tv missing: skipped
    assert weights.total({"tv": torch.tensor(4.0)}).item() == pytest.approx(2.0)


@pytest.mark.parametrize("terms", [{"contnet": torch.tensor(1.0)}, {}])
def test_weights_reject_unknown_terms(terms):
    with pytest.raises(ValueError, match="valid: content, style, tv, temporal"):
        LossWeights().total(terms)


@pytest.mark.parametrize("value", [-1.0, float("inf"), float("nan")])
@pytest.mark.parametrize("field", ["content", "style", "tv", "temporal"])
def test_weights_reject_negative_and_non_finite(field, value):
    with pytest.raises(ValueError, match=f"loss weight {field} must be a finite number >= 0"):
        LossWeights(**{field: value})


def test_default_weights_balance_measured_magnitudes():
    """The documented measurement (scream, 256 px): contributions of the same order, style ahead."""
    weights = LossWeights()
    content, style = 2.1e5 * weights.content, 4.1e5 * weights.style
    assert 1.0 < content < 10.0 and 1.0 < style / content < 10.0


class NamedTapsEncoder(TinyEncoder):
    """TinyEncoder under VGG's tap names, for code that uses the default layers."""

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        taps = super().forward(x)
        return {"relu1_2": taps["a"], "relu2_2": taps["b"], "relu3_3": taps["b"], "relu4_3": taps["b"]}


def test_measure_loss_magnitudes_averages_fresh_nets_over_seeds():
    """The measurement behind LossWeights' defaults: raw terms of random-init nets, the mean over seeds."""
    from stablestyle.losses import measure_loss_magnitudes

    gen = torch.Generator().manual_seed(3)
    style, contents = torch.rand(1, 3, 32, 32, generator=gen), torch.rand(2, 3, 24, 24, generator=gen)
    both = measure_loss_magnitudes(NamedTapsEncoder(), style, contents, seeds=(0, 1), width=0.25)
    one = [measure_loss_magnitudes(NamedTapsEncoder(), style, contents, seeds=(s,), width=0.25) for s in (0, 1)]
    assert set(both) >= {"content", "style", "tv"}
    for name in ("content", "style", "tv"):
        assert both[name] > 0 and torch.isfinite(torch.tensor(both[name]))
        assert both[name] == pytest.approx((one[0][name] + one[1][name]) / 2, rel=1e-6)
    assert one[0]["content"] != one[1]["content"]  # each seed is a different fresh net
