"""Warm starts: a per-frame net inside a recurrent one, and pytorch/examples' fast_neural_style layout."""

import pickle

import pytest
import torch

from stablestyle.errors import UserError
from stablestyle.models import TransformerNet
from stablestyle.models.warmstart import FNS_OUTPUT_GAIN, adapt_state_dict, load_init_state, width_of


def _net(width=0.25, recurrent=False, seed=0):
    torch.manual_seed(seed)
    net = TransformerNet(width=width, recurrent=recurrent)
    with torch.no_grad():  # instance-norm affine parameters start at 1 / 0: make them informative
        for name, p in net.named_parameters():
            if ".in" in f".{name}" or name.startswith("in"):
                p.add_(0.1 * torch.randn_like(p))
    return net.eval()


@pytest.mark.parametrize("width", [0.25, 0.5, 1.0])
def test_width_is_read_from_the_channel_counts(width):
    assert width_of(TransformerNet(width=width).state_dict()) == width


def test_recurrent_net_from_a_per_frame_net_computes_the_same_output_whatever_the_state():
    perframe = _net()
    state = adapt_state_dict(perframe.state_dict(), recurrent=True)
    recurrent = TransformerNet(width=0.25, recurrent=True)
    recurrent.load_state_dict(state)
    frame, previous = torch.rand(2, 1, 3, 20, 24)
    with torch.no_grad():
        expected, _ = perframe(frame)
        out_first, _ = recurrent(frame)
        out_later, _ = recurrent(frame, previous)
    torch.testing.assert_close(out_first, expected, rtol=0, atol=1e-6)
    torch.testing.assert_close(out_later, expected, rtol=0, atol=1e-6)
    assert state["conv1.conv2d.weight"].shape[1] == 6 and not state["conv1.conv2d.weight"][:, 3:].any()


def _fast_neural_style_output(net: TransformerNet, x255: torch.Tensor) -> torch.Tensor:
    """pytorch/examples' forward: the same layers on 0-255 input, no output nonlinearity."""
    import torch.nn.functional as F
    y = F.relu(net.in1(net.conv1(x255)))
    y = F.relu(net.in2(net.conv2(y)))
    y = F.relu(net.in3(net.conv3(y)))
    y = net.res5(net.res4(net.res3(net.res2(net.res1(y)))))
    y = F.relu(net.in4(net.deconv1(y)))
    y = F.relu(net.in5(net.deconv2(y)))
    return net.deconv3(y)


def test_fast_neural_style_checkpoint_written_by_the_test_becomes_a_stable_model(tmp_path):
    fns = _net(width=1.0, seed=3)
    state = fns.state_dict()
    for i in range(1, 6):  # what pre-0.4 pytorch/examples checkpoints carry (and the loader drops)
        channels = state[f"in{i}.weight"].shape[0]
        state[f"in{i}.running_mean"] = torch.zeros(channels)
        state[f"in{i}.running_var"] = torch.ones(channels)
    path = tmp_path / "candy.pth"
    torch.save(state, path)  # a bare state dict, as pytorch/examples' neural_style.py saves it

    adapted, width, layout, _ = load_init_state(path, recurrent=True)
    assert (width, layout) == (1.0, "fast_neural_style")
    stable = TransformerNet(width=1.0, recurrent=True)
    stable.load_state_dict(adapted)
    frame = torch.rand(1, 3, 16, 20)  # height and width multiples of 4: no padding on either side
    with torch.no_grad():
        y = _fast_neural_style_output(fns, frame * 255.0)
        out, _ = stable(frame, torch.rand_like(frame))
    expected = torch.sigmoid(FNS_OUTPUT_GAIN * (y / 255.0 - 0.5))
    torch.testing.assert_close(out, expected, rtol=0, atol=2e-4)


def test_a_stablestyle_checkpoint_is_read_as_stablestyle(tmp_path):
    from stablestyle.checkpoint import save_checkpoint
    net = _net(width=0.5)
    path = tmp_path / "perframe.pt"
    save_checkpoint(path, net, config={}, step=1, style_sha256=None)
    adapted, width, layout, _ = load_init_state(path, recurrent=True)
    assert (width, layout) == (0.5, "stablestyle")
    torch.testing.assert_close(adapted["conv1.conv2d.weight"][:, :3], net.state_dict()["conv1.conv2d.weight"])


class _Payload:
    def __reduce__(self):
        return (open, ("/tmp/stablestyle-warmstart-pwned", "w"))


def test_init_file_cannot_run_code(tmp_path):
    marker = "/tmp/stablestyle-warmstart-pwned"
    path = tmp_path / "evil.pt"
    path.write_bytes(pickle.dumps({"state_dict": _Payload()}))
    with pytest.raises(UserError, match="loads safely"):
        load_init_state(path, recurrent=True)
    import os
    assert not os.path.exists(marker)


def test_recurrent_weights_cannot_start_a_per_frame_net(tmp_path):
    path = tmp_path / "r.pt"
    torch.save(TransformerNet(width=0.25, recurrent=True).state_dict(), path)
    with pytest.raises(UserError, match="per-frame"):
        load_init_state(path, recurrent=False, layout="stablestyle")


@pytest.mark.parametrize("bad", ["nan", "keys", "missing"])
def test_bad_init_files_are_one_line_errors(tmp_path, bad):
    state = TransformerNet(width=0.25, recurrent=False).state_dict()
    if bad == "nan":
        state["res1.conv1.conv2d.weight"].fill_(float("nan"))
    elif bad == "keys":
        state = {"features.0.weight": torch.zeros(1)}
    path = tmp_path / "w.pt"
    if bad != "missing":
        torch.save(state, path)
    with pytest.raises(UserError) as info:
        load_init_state(path, recurrent=True)
    assert "\n" not in str(info.value)


# ----------------------------------------------------------------------------- the stability dial


def _twins():
    """A per-frame net and a 'fine-tuned' stable twin: its weights moved a little, the state channels learnt."""
    perframe = _net(width=0.25)
    stable = TransformerNet(width=0.25, recurrent=True)
    stable.load_state_dict(adapt_state_dict(perframe.state_dict(), recurrent=True))
    with torch.no_grad():
        for p in stable.parameters():
            p.add_(0.05 * torch.randn_like(p) * p.abs().mean())
        stable.conv1.conv2d.weight[:, 3:].normal_(0, 0.05)
    return perframe, stable.eval()


def test_dial_endpoints_are_the_two_models_and_the_middle_is_the_mean():
    from stablestyle.models.dial import dial_model, related

    perframe, stable = _twins()
    assert related(perframe, stable) > 0.9
    frame, prev = torch.rand(2, 1, 3, 16, 20)
    with torch.no_grad():
        torch.testing.assert_close(dial_model(perframe, stable, 0.0)(frame, prev)[0], perframe(frame)[0],
                                   rtol=0, atol=1e-6)
        torch.testing.assert_close(dial_model(perframe, stable, 1.0)(frame, prev)[0], stable(frame, prev)[0],
                                   rtol=0, atol=1e-6)
    middle = dial_model(perframe, stable, 0.5).state_dict()
    key = "res3.conv1.conv2d.weight"
    torch.testing.assert_close(middle[key], (perframe.state_dict()[key] + stable.state_dict()[key]) / 2)


def test_dial_refuses_unrelated_nets_and_bad_positions():
    from stablestyle.models.dial import dial_model

    perframe, stable = _twins()
    stranger = TransformerNet(width=0.25, recurrent=True)  # trained on its own: no shared origin
    with pytest.raises(UserError, match="not warm-start twins"):
        dial_model(perframe, stranger, 0.5)
    with pytest.raises(UserError, match=r"must be in \[0, 1.5\]"):
        dial_model(perframe, stable, 2.0)
    with pytest.raises(UserError, match="a per-frame network and a stable"):
        dial_model(stable, perframe, 0.5)


def test_a_runs_last_checkpoint_with_numpy_rng_state_initialises(tmp_path):
    """``train --init runs/x/last.pt``: the resumable file holds numpy RNG state, which is inert data."""
    import numpy as np

    from stablestyle.checkpoint import save_checkpoint

    net = _net(width=0.25)
    save_checkpoint(tmp_path / "last.pt", net, training_state={"numpy_rng": np.random.get_state()})
    state, width, layout, _ = load_init_state(tmp_path / "last.pt", recurrent=False)
    assert width == 0.25 and layout == "stablestyle"
    torch.testing.assert_close(state["conv1.conv2d.weight"], net.state_dict()["conv1.conv2d.weight"])


def test_init_step_is_a_stablestyle_checkpoints_step_and_zero_for_other_layouts(tmp_path):
    from stablestyle.checkpoint import save_checkpoint

    save_checkpoint(tmp_path / "ours.pt", TransformerNet(width=0.25, recurrent=False), step=1234)
    torch.save(TransformerNet(width=0.25, recurrent=False).state_dict(), tmp_path / "bare.pth")
    assert load_init_state(tmp_path / "ours.pt", recurrent=True).step == 1234
    assert load_init_state(tmp_path / "bare.pth", recurrent=True).step == 0
