"""Loss maths: analytic values, gradcheck, PerceptualLoss with a stand-in encoder, LossWeights."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from stablestyle.losses import (LossWeights, PerceptualLoss, content_loss, gram_matrix, masked_mean,
                                relative_content_loss, relative_style_loss,
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


def test_perceptual_targets_once_then_one_pass_each(encoder):
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
    assert encoder.calls == [1, 3, 3]  # the content (no grad), then the output
    assert set(terms) == {"content", "style", "tv"}
    terms["style"].backward()
    assert output.grad is not None and output.grad.abs().sum() > 0


def test_perceptual_separate_passes_equal_one_batched_pass():
    """Content target without grad and stopped at its tap: the same terms and gradients as the batched pass."""
    from stablestyle.models import VGG16Features

    torch.manual_seed(3)
    vgg = VGG16Features(("relu1_2", "relu2_2", "relu3_3", "relu4_3"))
    loss = PerceptualLoss(vgg, torch.rand(1, 3, 24, 24))
    content = torch.rand(2, 3, 32, 32)
    output = torch.rand(2, 3, 32, 32, requires_grad=True)
    terms = loss(output, content)
    grad = torch.autograd.grad(terms["content"] + terms["style"], output)[0]
    batched = vgg(torch.cat([output, content]))
    target = batched["relu3_3"][2:].detach()
    reference = {"content": relative_content_loss(batched["relu3_3"][:2], target),
                 "style": relative_style_loss({k: v[:2] for k, v in batched.items()}, loss.target_grams,
                                              loss.style_layers)}
    reference_grad = torch.autograd.grad(reference["content"] + reference["style"], output)[0]
    for name in reference:
        torch.testing.assert_close(terms[name], reference[name])
    torch.testing.assert_close(grad, reference_grad)


def test_perceptual_terms_are_unweighted_definitions(encoder):
    torch.manual_seed(2)
    style, output, content = torch.rand(1, 3, 10, 10), torch.rand(2, 3, 8, 8), torch.rand(2, 3, 8, 8)
    loss = PerceptualLoss(encoder, style, content_layer="b", style_layers=("a", "b"))
    terms = loss(output, content)
    out_feats, content_feats = encoder(output), encoder(content)
    style_grams = {k: gram_matrix(v) for k, v in encoder(style).items()}
    torch.testing.assert_close(terms["content"], relative_content_loss(out_feats["b"], content_feats["b"]))
    torch.testing.assert_close(terms["style"], relative_style_loss(out_feats, style_grams, ("a", "b")))
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


def _scaled_vgg(k: float):
    """The shared VGG with every activation multiplied by ``k``: conv1_1's weights and all biases times ``k``.

    ReLU and max-pooling are positively homogeneous, so scaling the first layer
    and every bias scales each tap exactly: the change of activation scale
    between Caffe-trained and torchvision weights, without any other change.
    """
    from stablestyle.models import load_vgg16

    vgg = load_vgg16()
    with torch.no_grad():
        vgg.features[0].weight.mul_(k)
        for module in vgg.features:
            if isinstance(module, nn.Conv2d):
                module.bias.mul_(k)
    return vgg


@pytest.mark.parametrize("k", [1e-2, 30.0])
def test_normalised_losses_and_gradients_do_not_depend_on_the_activation_scale(k):
    from stablestyle.models import load_vgg16

    gen = torch.Generator().manual_seed(5)
    style, content = torch.rand(1, 3, 40, 48, generator=gen), torch.rand(2, 3, 32, 40, generator=gen)
    output = torch.rand(2, 3, 32, 40, generator=gen)
    base, scaled = load_vgg16(), _scaled_vgg(k)
    features = base(content)["relu3_3"], scaled(content)["relu3_3"]
    torch.testing.assert_close(features[1], k * features[0], rtol=1e-4, atol=1e-5 * k * float(features[0].abs().max()))
    results = []
    for vgg in (base, scaled):
        x = output.clone().requires_grad_(True)
        terms = PerceptualLoss(vgg, style)(x, content)
        LossWeights(content=1.0, style=3.0, tv=0.0).total(terms).backward()
        results.append(({n: float(v.detach()) for n, v in terms.items()}, x.grad))
    for name in ("content", "style"):
        assert results[1][0][name] == pytest.approx(results[0][0][name], rel=1e-3)
    cosine = torch.nn.functional.cosine_similarity(results[0][1].flatten(), results[1][1].flatten(), dim=0)
    assert cosine > 0.9999
    raw = [content_loss(vgg(output)["relu3_3"], vgg(content)["relu3_3"]) for vgg in (base, scaled)]
    assert float(raw[1] / raw[0]) == pytest.approx(k * k, rel=1e-3)  # the raw term is what moved


def test_every_style_layer_counts_alike(encoder):
    """Relative style loss: each layer divided by its own target energy, then the mean over layers."""
    torch.manual_seed(6)
    style, output = torch.rand(1, 3, 12, 12), torch.rand(2, 3, 12, 12)
    feats = encoder(output)
    grams = {k: gram_matrix(v) for k, v in encoder(style).items()}
    from stablestyle.losses import relative_style_loss

    per_layer = [style_loss(feats, grams, (n,), "none") / grams[n].square().flatten(1).mean(1) for n in "ab"]
    torch.testing.assert_close(relative_style_loss(feats, grams, ("a", "b"), "none"),
                               (per_layer[0] + per_layer[1]) / 2)
    louder = {"a": feats["a"] * 100.0, "b": feats["b"]}
    louder_grams = {"a": grams["a"] * 1e4, "b": grams["b"]}
    torch.testing.assert_close(relative_style_loss(louder, louder_grams, ("a", "b")),
                               relative_style_loss(feats, grams, ("a", "b")), rtol=1e-5, atol=0)


def test_vgg_weights_of_another_activation_scale_get_a_warning(tmp_path, caplog):
    """A copy of the shared weights scaled like torchvision's (activations / 100): loads, with a warning."""
    import logging

    from stablestyle.models.vgg import activation_scale, load_vgg16

    vgg = _scaled_vgg(0.01)
    assert activation_scale(load_vgg16()) == pytest.approx(1.0, rel=1e-3)
    assert activation_scale(vgg) == pytest.approx(0.01, rel=1e-3)
    path = tmp_path / "scaled.pth"
    torch.save({f"features.{k}": v for k, v in vgg.features.state_dict().items()}, path)
    with caplog.at_level(logging.WARNING, logger="stablestyle.models.vgg"):
        load_vgg16(path)
    assert "0.01x those of the weights the default loss weights were chosen with" in caplog.text
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="stablestyle.models.vgg"):
        load_vgg16()
    assert caplog.text == ""
