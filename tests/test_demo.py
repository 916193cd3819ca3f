"""`stablestyle demo` end to end with tiny checkpoints, and the side-by-side composer."""

from __future__ import annotations

import json

import av
import numpy as np
import pytest
import torch

from stablestyle.checkpoint import load_checkpoint, save_checkpoint
from stablestyle.cli import main
from stablestyle.demo import side_by_side
from stablestyle.models import TransformerNet
from stablestyle.stylize import stylize_frames
from stablestyle.video import open_source


@pytest.fixture(scope="module")
def ckpts(tmp_path_factory):
    d = tmp_path_factory.mktemp("demo_ckpt")
    torch.manual_seed(0)
    save_checkpoint(d / "stable.pt", TransformerNet(width=0.25, recurrent=True), config={"mode": "stable"})
    save_checkpoint(d / "perframe.pt", TransformerNet(width=0.25, recurrent=False), config={"mode": "perframe"})
    return d / "stable.pt", d / "perframe.pt"


def test_side_by_side_layout():
    a = np.zeros((90, 160, 3), np.uint8)
    b = np.full((90, 160, 3), 200, np.uint8)
    out = side_by_side([a, b], ["in", "out"])
    assert out.shape == (90, 320, 3)
    assert np.array_equal(out[40:, 160:], b[40:]) and np.array_equal(out[40:, :160], a[40:])
    assert not np.array_equal(out[:40, 160:], b[:40])  # the label is drawn at the top
    assert a.max() == 0  # inputs untouched
    with pytest.raises(ValueError):
        side_by_side([a], ["x", "y"])


def test_demo_writes_videos_and_report(tmp_path, bbb_clip, ckpts, capsys):
    stable, perframe = ckpts
    out = tmp_path / "demo"
    rc = main(["demo", "-o", str(out), "--input", str(bbb_clip), "--model", str(stable),
               "--baseline", str(perframe), "--quiet", "--max-size", "64"])
    assert rc == 0
    assert sorted(p.name for p in out.iterdir()) == ["report.json", "report.md", "side_by_side.mp4", "stylized.mp4"]
    with av.open(str(out / "stylized.mp4")) as c:
        assert sorted(s.type for s in c.streams) == ["audio", "video"]
    with open_source(out / "side_by_side.mp4") as sbs, open_source(out / "stylized.mp4") as st:
        assert sbs.size == (3 * st.size[0], st.size[1])
        stylized = list(st)
        assert len(stylized) == 8
    # stylized.mp4 holds the stable model's output, not the input
    with open_source(bbb_clip, max_size=64) as src:
        inputs = list(src)
    expected = list(stylize_frames(load_checkpoint(stable)[0], inputs))
    for got, want, raw in zip(stylized, expected, inputs):
        assert np.abs(got.astype(float) - want).mean() < 15 < 40 < np.abs(got.astype(float) - raw).mean()
    report = json.loads((out / "report.json").read_text())
    assert set(report["instability"]) == {"input", "per-frame", "stable"}
    assert report["side_by_side"] == ["input", "per-frame", "stable"]
    assert "`side_by_side.mp4` (input | per-frame | stable)" in (out / "report.md").read_text()
    assert all(v > 0 for v in report["instability"].values())
    assert len(set(report["instability"].values())) == 3  # three different videos were measured
    assert report["stable_over_perframe"] == pytest.approx(
        report["instability"]["stable"] / report["instability"]["per-frame"])
    assert "instability" in capsys.readouterr().out


def test_demo_refuses_existing_output_and_bad_model(tmp_path, bbb_clip, ckpts, capsys):
    out = tmp_path / "demo"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    assert main(["demo", "-o", str(out), "--input", str(bbb_clip), "--model", str(ckpts[0])]) == 2
    assert "--overwrite" in capsys.readouterr().err
    assert (out / "keep.txt").read_text() == "mine"
    assert main(["demo", "-o", str(tmp_path / "d2"), "--input", str(bbb_clip), "--model",
                 str(tmp_path / "nope.pt")]) == 2
    assert capsys.readouterr().err.startswith("error: ")
    assert not (tmp_path / "d2").exists()


def test_demo_reruns_into_its_own_folder_with_overwrite_and_never_over_its_input(tmp_path, bbb_clip, ckpts, capsys):
    """The README runs `demo -o stablestyle-demo --overwrite`: a second run must replace the first one's folder."""
    out = tmp_path / "demo"
    args = ["demo", "-o", str(out), "--input", str(bbb_clip), "--model", str(ckpts[0]), "--baseline", str(ckpts[1]),
            "--quiet", "--max-size", "64", "--max-frames", "4", "--overwrite"]
    assert main(args) == 0
    (out / "stylized.mp4").write_bytes(b"stale")
    assert main(args) == 0
    assert (out / "stylized.mp4").read_bytes() != b"stale"
    capsys.readouterr()
    inside = out / "input.mp4"  # an input inside the output folder would be lost when the folder is replaced
    inside.write_bytes(bbb_clip.read_bytes())
    assert main(["demo", "-o", str(out), "--input", str(inside), "--model", str(ckpts[0]), "--overwrite"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "contains the input" in err[0] and inside.read_bytes() == bbb_clip.read_bytes()


def test_demo_without_a_baseline_describes_the_two_panels_it_writes(tmp_path, bbb_clip, ckpts):
    """A checkpoint with no bundled per-frame twin: input | stable, and the report says so."""
    out = tmp_path / "demo"
    assert main(["demo", "-o", str(out), "--input", str(bbb_clip), "--model", str(ckpts[0]), "--quiet",
                 "--max-size", "64", "--max-frames", "3"]) == 0
    with open_source(out / "side_by_side.mp4") as sbs, open_source(out / "stylized.mp4") as st:
        assert sbs.size == (2 * st.size[0], st.size[1])
    report = json.loads((out / "report.json").read_text())
    assert report["side_by_side"] == ["input", "stable"] and set(report["models"]) == {"stable"}
    md = (out / "report.md").read_text()
    assert "`side_by_side.mp4` (input | stable)" in md and "per-frame" not in md


@pytest.mark.parametrize("which, message", [
    ("model", "--model {perframe} is a per-frame (non-recurrent) model, but the demo's stable slot needs a "
              "recurrent one"),
    ("baseline", "--baseline {stable} is a recurrent (stable) model, but the demo compares against a per-frame one"),
])
def test_demo_refuses_a_model_of_the_wrong_kind(tmp_path, bbb_clip, ckpts, capsys, which, message):
    stable, perframe = ckpts
    model, baseline = (perframe, perframe) if which == "model" else (stable, stable)
    out = tmp_path / "demo"
    assert main(["demo", "-o", str(out), "--input", str(bbb_clip), "--model", str(model), "--baseline",
                 str(baseline), "--quiet", "--max-size", "64"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: " + message.format(stable=stable, perframe=perframe))
    assert not out.exists()


def test_demo_stability_with_a_perframe_model_names_the_demos_own_flag(tmp_path, bbb_clip, ckpts, capsys):
    stable, perframe = ckpts
    assert main(["demo", "-o", str(tmp_path / "demo"), "--input", str(bbb_clip), "--model", str(perframe),
                 "--stability", "0.5", "--quiet", "--max-size", "64"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "as --baseline" in err[0] and "--perframe-model" not in err[0]


def test_default_baseline_is_the_bundled_perframe_twin():
    from stablestyle.demo import default_baseline

    assert default_baseline("scream") == "scream-perframe"
    assert default_baseline("scream-small") == "scream-perframe"  # same style, the half-width per-frame net
    assert default_baseline("runs/mine/final.pt") is None
