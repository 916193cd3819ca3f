"""The stability dial: output mixing for unrelated pairs, twin lookup, ``--stability`` on the commands."""

import numpy as np
import pytest
import torch

from stablestyle.checkpoint import save_checkpoint
from stablestyle.cli import main
from stablestyle.errors import UserError
from stablestyle.models import TransformerNet
from stablestyle.models.dial import BlendNet, dial
from stablestyle.stability import bundled_twin, find_twin, load_at_stability
from test_warmstart import _twins

pytestmark = pytest.mark.usefixtures("one_thread")


def _pair(related: bool, seed: int = 0):
    """A per-frame net and a stable one: its fine-tuned twin (``related``) or one trained apart."""
    if related:
        return _twins()
    torch.manual_seed(seed)
    return TransformerNet(width=0.25, recurrent=False).eval(), TransformerNet(width=0.25, recurrent=True).eval()


def test_blend_is_the_mix_of_the_two_outputs_and_feeds_the_mix_back():
    perframe, stable = _pair(related=False)
    blend = BlendNet(perframe, stable, 0.3)
    x0, x1 = torch.rand(2, 1, 3, 16, 20)
    with torch.no_grad():
        y0, state = blend(x0)
        torch.testing.assert_close(y0, 0.7 * perframe(x0)[0] + 0.3 * stable(x0, None)[0])
        y1, _ = blend(x1, state)
        torch.testing.assert_close(y1, 0.7 * perframe(x1)[0] + 0.3 * stable(x1, y0)[0])
        torch.testing.assert_close(BlendNet(perframe, stable, 1.0)(x1, y0)[0], stable(x1, y0)[0], rtol=0, atol=0)
        torch.testing.assert_close(BlendNet(perframe, stable, 0.0)(x1, y0)[0], perframe(x1)[0], rtol=0, atol=0)


def test_dial_mixes_weights_of_twins_and_outputs_of_strangers():
    perframe, twin = _pair(related=True)
    _, stranger = _pair(related=False, seed=1)
    net, mode = dial(perframe, twin, 0.5)
    assert mode == "weights" and isinstance(net, TransformerNet)
    net, mode = dial(perframe, stranger, 0.5)
    assert mode == "outputs" and isinstance(net, BlendNet)
    assert dial(perframe, twin, 0.5, mode="outputs")[1] == "outputs"
    with pytest.raises(UserError, match=r"in \[0, 1\] for two unrelated"):
        dial(perframe, stranger, 1.2)
    with pytest.raises(UserError, match="unknown dial mode"):
        dial(perframe, twin, 0.5, mode="both")


def test_the_bundled_twin_and_the_warm_start_source_are_found(tmp_path):
    assert bundled_twin("scream") == "scream-perframe"
    assert bundled_twin("udnie-small") == "udnie-perframe"
    perframe, stable = _pair(related=True)
    save_checkpoint(tmp_path / "pf.pt", perframe)
    assert find_twin("mine.pt", {"config": {"init": str(tmp_path / "pf.pt")}}) == str(tmp_path / "pf.pt")
    assert find_twin("mine.pt", {}, perframe="given.pt") == "given.pt"
    with pytest.raises(UserError, match="--perframe-model"):
        find_twin("mine.pt", {"config": {"init": str(tmp_path / "gone.pt")}})
    with pytest.raises(UserError, match="pass it as --baseline PATH"):  # the demo's name for the twin
        find_twin("mine.pt", {}, twin_flag="--baseline")


def test_load_at_stability_endpoints_are_the_models_themselves_and_between_is_a_mix(tmp_path):
    perframe, stable = _pair(related=True)
    save_checkpoint(tmp_path / "pf.pt", perframe)
    save_checkpoint(tmp_path / "st.pt", stable, config={"init": str(tmp_path / "pf.pt")})
    x = torch.rand(1, 3, 16, 20)
    with torch.no_grad():
        net, meta = load_at_stability(str(tmp_path / "st.pt"), 1.0)
        torch.testing.assert_close(net(x)[0], stable(x)[0])
        net, meta = load_at_stability(str(tmp_path / "st.pt"), 0.0)
        assert not net.recurrent
        torch.testing.assert_close(net(x)[0], perframe(x)[0])
        net, meta = load_at_stability(str(tmp_path / "st.pt"), 0.5)
    assert meta["stability"] == {"s": 0.5, "mode": "weights", "perframe": str(tmp_path / "pf.pt")}
    net, meta = load_at_stability("scream", 0.5)
    assert meta["stability"]["mode"] == "weights"  # the bundled stable net was warm-started from its twin


@pytest.mark.parametrize("model, s, perframe, match", [
    ("scream", 2.0, None, r"in \[0, 1.5\]"),
    ("scream", float("nan"), None, r"in \[0, 1.5\]"),
    ("scream-perframe", 0.5, None, "needs a stable"),
    ("scream", 0.5, "udnie", "recurrent"),
])
def test_load_at_stability_refuses_in_one_line(model, s, perframe, match):
    with pytest.raises(UserError, match=match) as info:
        load_at_stability(model, s, perframe=perframe)
    assert "\n" not in str(info.value)


def test_stylize_cli_at_half_stability_lies_between_the_two_models(tmp_path, capsys):
    from stablestyle.video import read_image

    photo = tmp_path / "in.png"
    from PIL import Image

    Image.fromarray((np.random.default_rng(0).random((40, 48, 3)) * 255).astype(np.uint8)).save(photo)
    outs = {}
    for s in ("0", "0.5", "1"):
        out = tmp_path / f"s{s}.png"
        assert main(["stylize", str(photo), "-o", str(out), "--stability", s, "--no-half", "--quiet"]) == 0
        outs[s] = read_image(out).astype(np.float64)
    # the bundled pair is interpolated in weight space: the middle net's image lies between the two, nearer each
    # than they are to one another, and is neither
    apart = np.abs(outs["0"] - outs["1"]).mean()
    assert apart > 5
    for end in ("0", "1"):
        assert 0.5 < np.abs(outs["0.5"] - outs[end]).mean() < apart


def test_cli_stability_errors_are_one_line(tmp_path, capsys):
    photo = tmp_path / "in.png"
    from PIL import Image

    Image.fromarray(np.zeros((40, 48, 3), np.uint8)).save(photo)
    style = tmp_path / "style.png"
    Image.fromarray(np.zeros((40, 48, 3), np.uint8)).save(style)
    assert main(["stylize", str(photo), "-o", str(tmp_path / "o.png"), "--method", "gatys", "--style", str(style),
                 "--stability", "0.5"]) == 2
    assert main(["webcam", "--model", "x.onnx", "--backend", "onnx", "--stability", "0.5", "--source",
                 str(photo), "--no-preview"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 2 and all(line.startswith("error: ") for line in err)
    assert not (tmp_path / "o.png").exists()
