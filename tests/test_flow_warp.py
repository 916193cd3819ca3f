"""backward_warp / inbounds_mask: identity, integer shifts, half-pixel values, gradcheck, dtypes, errors."""

from __future__ import annotations

import pytest
import torch

from stablestyle.flow import BackwardWarp, backward_warp, inbounds_mask


def _const_flow(b: int, h: int, w: int, dx: float, dy: float, dtype=torch.float32) -> torch.Tensor:
    flow = torch.empty(b, 2, h, w, dtype=dtype)
    flow[:, 0], flow[:, 1] = dx, dy
    return flow


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.float16, torch.bfloat16])
@pytest.mark.parametrize("shape", [(1, 3, 5, 7), (2, 4, 8, 3), (1, 1, 2, 2)])
def test_identity_warp_returns_input(shape, dtype):
    torch.manual_seed(0)
    image = torch.rand(shape).to(dtype)
    out = backward_warp(image, torch.zeros(shape[0], 2, *shape[2:], dtype=dtype))
    assert out.dtype == dtype and out.shape == image.shape
    torch.testing.assert_close(out, image, rtol=0, atol=1e-6)
    assert inbounds_mask(torch.zeros(shape[0], 2, *shape[2:], dtype=dtype)).eq(1).all()


@pytest.mark.parametrize("dx,dy", [(3, -2), (-1, 4), (5, 0), (0, -3), (-4, -4)])
def test_integer_shift_equals_slicing_and_mask_marks_the_strip(dx, dy):
    torch.manual_seed(1)
    b, c, h, w = 2, 3, 9, 11
    image = torch.rand(b, c, h, w)
    out = backward_warp(image, _const_flow(b, h, w, dx, dy))
    mask = inbounds_mask(_const_flow(b, h, w, dx, dy))

    # out[y, x] = image[y + dy, x + dx] where that lies inside the image.
    ys, yd = slice(max(0, -dy), min(h, h - dy)), slice(max(0, dy), min(h, h + dy))
    xs, xd = slice(max(0, -dx), min(w, w - dx)), slice(max(0, dx), min(w, w + dx))
    torch.testing.assert_close(out[:, :, ys, xs], image[:, :, yd, xd], rtol=0, atol=1e-5)

    expected = torch.zeros(b, 1, h, w)
    expected[:, :, ys, xs] = 1
    assert mask.shape == (b, 1, h, w) and mask.dtype == torch.float32
    assert torch.equal(mask, expected)
    # outside the valid region zero padding gives (numerically) zero
    assert out.mul(1 - expected).abs().max() < 1e-5


def test_half_pixel_shift_averages_neighbours_and_edges_blend_with_zero():
    image = torch.arange(12.0).view(1, 1, 3, 4)
    out = backward_warp(image, _const_flow(1, 3, 4, 0.5, 0.0))
    torch.testing.assert_close(out[..., :3], 0.5 * (image[..., :3] + image[..., 1:]))
    torch.testing.assert_close(out[..., 3], 0.5 * image[..., 3])  # half of the last pixel, half zero padding
    mask = inbounds_mask(_const_flow(1, 3, 4, 0.5, 0.0))
    assert mask[..., :3].eq(1).all() and mask[..., 3].eq(0).all()


def test_per_pixel_flow_reads_the_right_source_pixel():
    image = torch.arange(20.0).view(1, 1, 4, 5)
    flow = torch.zeros(1, 2, 4, 5)
    flow[0, 0, 1, 2], flow[0, 1, 1, 2] = 2.0, 2.0  # pixel (y=1, x=2) reads (y=3, x=4)
    out = backward_warp(image, flow)
    assert out[0, 0, 1, 2] == pytest.approx(float(image[0, 0, 3, 4]), abs=1e-5)
    expected = image.clone()
    expected[0, 0, 1, 2] = image[0, 0, 3, 4]
    torch.testing.assert_close(out, expected, rtol=0, atol=1e-5)


def test_gradcheck_image_and_flow_float64():
    torch.manual_seed(2)
    b, c, h, w = 1, 2, 5, 6
    image = torch.rand(b, c, h, w, dtype=torch.float64, requires_grad=True)
    # sample points strictly inside the image and away from the integer grid (bilinear kinks)
    ys, xs = torch.meshgrid(torch.arange(h, dtype=torch.float64), torch.arange(w, dtype=torch.float64), indexing="ij")
    tx = torch.randint(0, w - 1, (h, w)).double() + 0.2 + 0.6 * torch.rand(h, w, dtype=torch.float64)
    ty = torch.randint(0, h - 1, (h, w)).double() + 0.2 + 0.6 * torch.rand(h, w, dtype=torch.float64)
    flow = torch.stack((tx - xs, ty - ys)).unsqueeze(0).requires_grad_(True)
    assert torch.autograd.gradcheck(backward_warp, (image, flow), eps=1e-6, atol=1e-6)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_low_precision_inputs_are_warped_in_fp32_and_cast_back(dtype):
    torch.manual_seed(3)
    image = torch.rand(1, 3, 6, 7)
    flow = torch.randn(1, 2, 6, 7) * 2
    reference = backward_warp(image.to(dtype).float(), flow.to(dtype).float())
    out = backward_warp(image.to(dtype), flow.to(dtype))
    assert out.dtype == dtype
    torch.testing.assert_close(out, reference.to(dtype), rtol=0, atol=0)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out_autocast = backward_warp(image, flow)
    assert out_autocast.dtype == torch.float32
    torch.testing.assert_close(out_autocast, backward_warp(image, flow), rtol=0, atol=0)


def test_module_agrees_with_function_and_inputs_are_untouched():
    torch.manual_seed(4)
    image, flow = torch.rand(2, 3, 6, 5), torch.randn(2, 2, 6, 5)
    image_copy, flow_copy = image.clone(), flow.clone()
    module = BackwardWarp()
    assert list(module.parameters()) == [] and list(module.buffers()) == []
    torch.testing.assert_close(module(image, flow), backward_warp(image, flow), rtol=0, atol=0)
    assert torch.equal(image, image_copy) and torch.equal(flow, flow_copy)


@pytest.mark.parametrize(
    "image_shape,flow_shape,match",
    [
        ((3, 5, 5), (1, 2, 5, 5), r"image must have shape \(B, C, H, W\)"),
        ((1, 3, 5, 5), (1, 3, 5, 5), r"flow_bw must have shape \(B, 2, H, W\)"),
        ((1, 3, 5, 5), (2, 5, 5), r"flow_bw must have shape \(B, 2, H, W\)"),
        ((1, 3, 5, 5), (1, 2, 5, 6), "must share batch size and H, W"),
        ((2, 3, 5, 5), (1, 2, 5, 5), "must share batch size and H, W"),
        ((1, 3, 1, 5), (1, 2, 1, 5), "at least 2x2"),
    ],
)
def test_shape_errors(image_shape, flow_shape, match):
    with pytest.raises(ValueError, match=match):
        backward_warp(torch.zeros(image_shape), torch.zeros(flow_shape))


def test_type_errors():
    with pytest.raises(ValueError, match="floating-point"):
        backward_warp(torch.zeros(1, 3, 4, 4, dtype=torch.uint8), torch.zeros(1, 2, 4, 4))
    with pytest.raises(ValueError, match="floating-point"):
        inbounds_mask(torch.zeros(1, 2, 4, 4, dtype=torch.int64))
    with pytest.raises(ValueError, match=r"\(B, 2, H, W\)"):
        inbounds_mask(torch.zeros(1, 1, 4, 4))
