"""TransformerNet: shapes, range, recurrence contract, width multiplier, config."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from stablestyle.models import InputPadder, TransformerNet, scaled_channels

# Johnson et al.'s net (pytorch/examples fast_neural_style), counted by hand:
# conv k x k: cin*cout*k*k + cout; instance norm (affine): 2*c.
_JOHNSON = (
    (3 * 32 * 81 + 32) + 2 * 32  # conv1 9x9 + in1
    + (32 * 64 * 9 + 64) + 2 * 64  # conv2 + in2
    + (64 * 128 * 9 + 128) + 2 * 128  # conv3 + in3
    + 5 * (2 * (128 * 128 * 9 + 128) + 2 * 2 * 128)  # residual blocks
    + (128 * 64 * 9 + 64) + 2 * 64  # deconv1 + in4
    + (64 * 32 * 9 + 32) + 2 * 32  # deconv2 + in5
    + (32 * 3 * 81 + 3)  # deconv3 9x9
)


@pytest.fixture(scope="module")
def small_net() -> TransformerNet:
    torch.manual_seed(0)
    return TransformerNet(width=0.25)


def test_johnson_parameter_count():
    assert _JOHNSON == 1_679_235
    assert TransformerNet(recurrent=False).num_parameters() == _JOHNSON
    # the recurrent net only widens conv1's input from 3 to 6 channels
    assert TransformerNet(recurrent=True).num_parameters() == _JOHNSON + 3 * 32 * 81


@pytest.mark.parametrize("width,expected", [(1.0, (32, 64, 128)), (0.5, (16, 32, 64)),
                                            (0.25, (8, 16, 32)), (0.1, (8, 8, 13)), (2.0, (64, 128, 256))])
def test_scaled_channels(width, expected):
    assert scaled_channels(width) == expected


@pytest.mark.parametrize("width", [0.0, -1.0])
def test_bad_width(width):
    with pytest.raises(ValueError, match="positive"):
        TransformerNet(width=width)


def test_width_reduces_parameters():
    counts = [TransformerNet(width=w).num_parameters() for w in (1.0, 0.5, 0.25)]
    assert counts[0] > counts[1] > counts[2]


@pytest.mark.parametrize("recurrent", [True, False])
@pytest.mark.parametrize("shape", [(1, 3, 37, 53), (3, 3, 16, 16), (2, 3, 5, 7)])
def test_output_shape_and_range(recurrent, shape):
    torch.manual_seed(0)
    net = TransformerNet(width=0.25, recurrent=recurrent)
    x = torch.rand(*shape)
    out, state = net(x)
    assert out.shape == x.shape
    assert out.min() > 0 and out.max() < 1
    if recurrent:
        assert state is out
    else:
        assert state is None


def test_recurrent_input_has_six_channels(small_net):
    assert small_net.conv1.conv2d.in_channels == 6
    assert TransformerNet(width=0.25, recurrent=False).conv1.conv2d.in_channels == 3


def test_first_frame_rule(small_net):
    x = torch.rand(2, 3, 21, 18)
    a, _ = small_net(x, None)
    b, _ = small_net(x, x.clone())
    assert torch.equal(a, b)


def test_state_changes_output(small_net):
    x = torch.rand(1, 3, 16, 16)
    a, _ = small_net(x, None)
    b, _ = small_net(x, torch.zeros_like(x))
    assert not torch.allclose(a, b)


def test_nonrecurrent_ignores_state():
    net = TransformerNet(width=0.25, recurrent=False)
    x = torch.rand(1, 3, 16, 16)
    assert torch.equal(net(x)[0], net(x, torch.zeros(1, 3, 8, 8))[0])


@pytest.mark.parametrize("state_shape", [(1, 3, 16, 20), (2, 3, 16, 16), (1, 6, 16, 16)])
def test_state_mismatch(small_net, state_shape):
    with pytest.raises(ValueError, match="reset the state"):
        small_net(torch.rand(1, 3, 16, 16), torch.rand(*state_shape))


@pytest.mark.parametrize("shape", [(1, 3, 4, 16), (1, 1, 16, 16), (3, 16, 16)])
def test_bad_frame(small_net, shape):
    with pytest.raises(ValueError, match="frame must"):
        small_net(torch.rand(*shape))


def test_state_carries_gradient(small_net):
    """Training backpropagates through the unroll: the returned state is not detached."""
    x1, x2 = torch.rand(1, 3, 12, 12, requires_grad=True), torch.rand(1, 3, 12, 12)
    _, state = small_net(x1)
    out, _ = small_net(x2, state)
    small_net.zero_grad()
    out.sum().backward()
    # x1 reaches the second output only through the state
    assert state.requires_grad and x1.grad is not None and x1.grad.abs().sum() > 0


def test_config_round_trip():
    net = TransformerNet(width=0.5, recurrent=False)
    clone = TransformerNet(**net.config())
    assert clone.config() == {"width": 0.5, "recurrent": False, "edge_margin": 0}
    clone.load_state_dict(net.state_dict())  # same architecture: keys and shapes match
    x = torch.rand(1, 3, 12, 12)
    assert torch.equal(net(x)[0], clone(x)[0])


def test_channels_last_and_autocast(small_net):
    x = torch.rand(1, 3, 19, 23)
    ref, _ = small_net(x)
    out, _ = small_net(x.contiguous(memory_format=torch.channels_last))
    torch.testing.assert_close(out, ref, atol=1e-5, rtol=0)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        low, state = small_net(x)
        low2, _ = small_net(x, state)  # bf16 state fed back with an fp32 frame
    assert low.shape == low2.shape == x.shape
    torch.testing.assert_close(low.float(), ref, atol=0.05, rtol=0)


@pytest.mark.parametrize("margin", [0, 8])
@pytest.mark.parametrize("size", [(37, 53), (16, 16), (5, 6)])
def test_input_padder_round_trip(size, margin):
    x = torch.rand(2, 3, *size)
    padder = InputPadder(x.shape, margin=margin)
    padded = padder.pad(x)
    assert padded.shape[-2] % 4 == 0 and padded.shape[-1] % 4 == 0
    used = min(margin, min(size) - 3)  # reflection needs less padding than the side is long
    assert 0 <= padded.shape[-2] - size[0] - 2 * used < 4 and 0 <= padded.shape[-1] - size[1] - 2 * used < 4
    assert torch.equal(padder.unpad(padded), x)


@pytest.mark.parametrize("recurrent", [False, True])
def test_edge_margin_runs_the_net_on_a_reflected_larger_frame_in_eval_mode_only(recurrent):
    torch.manual_seed(0)
    net = TransformerNet(width=0.25, recurrent=recurrent, edge_margin=8).eval()
    bare = TransformerNet(width=0.25, recurrent=recurrent).eval()
    bare.load_state_dict(net.state_dict())
    x, prev = torch.rand(1, 3, 20, 28), torch.rand(1, 3, 20, 28)
    with torch.no_grad():
        out, _ = net(x, prev)
        big = [F.pad(t, (8, 8, 8, 8), mode="reflect") for t in (x, prev)]
        ref = bare(*big)[0][..., 8:-8, 8:-8]  # 36 x 44: no further padding, so the same reflection
        torch.testing.assert_close(out, ref, atol=1e-6, rtol=0)
        assert (out - bare(x, prev)[0]).abs().max() > 1e-3  # the margin changes what the edges see
        net.train()
        assert torch.equal(net(x, prev)[0], bare(x, prev)[0])  # training sees the bare crop


def test_edge_margin_shrinks_for_tiny_frames_and_is_checked():
    net = TransformerNet(width=0.25, recurrent=False, edge_margin=32).eval()
    assert net(torch.rand(1, 3, 5, 6))[0].shape == (1, 3, 5, 6)
    for bad in (-1, 1.5, True, 257, "8"):
        with pytest.raises(ValueError, match="edge_margin"):
            TransformerNet(edge_margin=bad)


def test_set_edge_margin_reaches_every_net_inside():
    from stablestyle.models import set_edge_margin
    from stablestyle.models.dial import BlendNet

    blend = BlendNet(TransformerNet(0.25, recurrent=False), TransformerNet(0.25, recurrent=True), 0.5)
    assert set_edge_margin(blend, 12) == 2
    assert {m.edge_margin for m in blend.modules() if isinstance(m, TransformerNet)} == {12}
    with pytest.raises(ValueError, match="edge margin"):
        set_edge_margin(blend, -4)
