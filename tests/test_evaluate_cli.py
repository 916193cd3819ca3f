"""`stablestyle evaluate` end to end on tiny clips, and its user errors."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from stablestyle.checkpoint import file_sha256, save_checkpoint
from stablestyle.cli import main
from stablestyle.models import TransformerNet

REPORT = ("results.json", "results.md", "instability_over_time.png", "instability_vs_style.png")


@pytest.fixture(scope="module")
def candy(assets):
    return assets / "styles" / "candy.jpg"


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory, candy):
    """Tiny untrained networks 'trained' on candy (the checkpoint records its hash)."""
    folder = tmp_path_factory.mktemp("ckpts")
    torch.manual_seed(0)
    sha = file_sha256(candy)
    paths = {}
    for name, recurrent in (("stable", True), ("perframe", False)):
        paths[name] = folder / f"{name}.pt"
        save_checkpoint(paths[name], TransformerNet(width=0.25, recurrent=recurrent), step=1, style_sha256=sha,
                        config={"mode": name})
    return paths


@pytest.fixture(scope="module")
def full_run(tmp_path_factory, frames_dir, candy, checkpoints):
    """One evaluation of every method on 3 frames of Sintel at 48x20."""
    out = tmp_path_factory.mktemp("eval") / "report"
    rc = main(["evaluate", str(frames_dir), "--style", str(candy), "-o", str(out), "--quiet",
               "--model", f"stable={checkpoints['stable']}", "--model", f"perframe={checkpoints['perframe']}",
               "--method", "input,gatys", "--method", "ruder", "--iterations", "2",
               "--max-size", "48", "--max-frames", "3", "--style-size", "64", "--device", "cpu"])
    return rc, out


def test_evaluate_writes_the_report_for_every_method(full_run, checkpoints):
    rc, out = full_run
    assert rc == 0
    for name in REPORT:
        assert (out / name).is_file() and (out / name).stat().st_size > 0, name
    assert not [p for p in out.parent.iterdir() if p.name.startswith(".")]  # no staging leftovers
    results = json.loads((out / "results.json").read_text())
    assert results["format"] == "stablestyle-evaluation"
    assert results["methods"] == ["input", "gatys", "ruder", "stable", "perframe"]
    assert {r["method"] for r in results["runs"]} == set(results["methods"])
    for key in ("command", "stablestyle_version", "torch_version", "python_version", "device", "date"):
        assert results["provenance"][key]
    clip = results["clips"]["sintel"]
    assert clip["frames"] == 3 and clip["size"] == [48, 20] and clip["instability_flow"] == "estimated (dis)"
    for run in results["runs"]:
        assert run["style"] == "candy" and run["frames"] == 3
        assert len(run["instability_per_frame"]) == 2 and len(run["style_loss_per_frame"]) == 3
        for key in ("instability", "warping_error", "style_loss", "content_loss"):
            assert run[key] is not None and math.isfinite(run[key]) and run[key] >= 0, (run["method"], key)
        assert run["instability"] == pytest.approx(np.mean(run["instability_per_frame"]))
        speed = run["speed"]
        assert speed["frames"] == 3 and 0 < speed["total_seconds"]
        assert speed["model_seconds"] <= speed["total_seconds"]
        assert speed["fps_total"] <= speed["fps_model"]
        assert (out / run["video"]).is_file()
    by_method = {r["method"]: r for r in results["runs"]}
    assert by_method["input"]["content_loss"] == 0  # the input is its own content
    # every other method is scored on its own output, not the input
    assert all(r["content_loss"] > 0 for m, r in by_method.items() if m != "input")
    # 2 iterations per frame: gatys (each frame afresh) flickers far more than ruder (from the warped previous
    # result); measured 4.9x-25x
    assert by_method["gatys"]["instability"] > 2 * by_method["ruder"]["instability"]
    assert by_method["stable"]["checkpoint"].endswith("stable.pt")
    assert results["models"][0]["style"] == "candy"
    # the report names the exact weights, not only a name that retraining reuses
    assert {m["name"]: m["weights_sha256"] for m in results["models"]} == {
        name: file_sha256(path) for name, path in checkpoints.items()}


def test_model_method_describes_its_weights_hash(checkpoints):
    from stablestyle.evaluate.methods import load_model_method

    method = load_model_method(f"stable={checkpoints['stable']}")
    assert method.describe()["weights_sha256"] == file_sha256(checkpoints["stable"])
    method.meta.pop("path")  # built by hand, without a file: the hash is unknown, not an error
    assert method.describe()["weights_sha256"] is None


def test_evaluate_markdown_table(full_run):
    _, out = full_run
    md = (out / "results.md").read_text()
    assert "| method | style | clip | instability | warping error |" in md
    for method in ("input", "gatys", "ruder", "stable", "perframe"):
        assert f"| {method} | candy | sintel |" in md
    assert "- command: `" in md and "instability_over_time.png" in md
    rows = {line.split("|")[1].strip(): [c.strip() for c in line.split("|")[1:-1]] for line in md.splitlines()
            if line.startswith("| ") and line.count("|") == 11}  # the per-run table
    assert rows["input"][-3:] == ["-", "-", "-"]  # copying frames has no speed worth a column
    assert all(float(c) > 0 for c in rows["stable"][-3:])


@pytest.fixture(scope="module")
def gt_clip(tmp_path_factory, assets):
    from stablestyle.synthetic import render_clip, save_clip
    from stablestyle.video import read_image

    bg = read_image(sorted((assets / "content").glob("*.jpg"))[2])
    clip = render_clip(bg, 4, (48, 32), rng=np.random.default_rng(7))
    return save_clip(clip, tmp_path_factory.mktemp("gt") / "pan")


def test_evaluate_ground_truth_clip_video_clip_and_overwrite(tmp_path, gt_clip, bbb_clip, candy, capsys):
    out = tmp_path / "gt_report"
    args = ["evaluate", str(gt_clip), str(bbb_clip), "--style", str(candy), "--method", "input", "-o", str(out),
            "--quiet", "--no-videos", "--style-size", "64", "--device", "cpu", "--max-size", "48",
            "--max-frames", "3"]
    assert main(args) == 0
    results = json.loads((out / "results.json").read_text())
    run, video_run = results["runs"]
    assert results["clips"]["pan"]["instability_flow"] == "ground truth (flow_bw)"
    assert results["clips"]["bbb"] == {**results["clips"]["bbb"], "frames": 3, "size": [48, 27],
                                       "instability_flow": "estimated (dis)"}
    assert run["clip"] == "pan" and video_run["clip"] == "bbb"
    assert run["instability"] < 5e-4  # exact flow: only interpolation / rounding left
    assert run["video"] is None and not (out / "videos").exists()
    # an existing report is kept unless --overwrite
    capsys.readouterr()
    assert main(args) == 2
    assert "--overwrite" in capsys.readouterr().err
    assert main([*args, "--overwrite"]) == 0
    assert json.loads((out / "results.json").read_text())["runs"][0]["instability"] == pytest.approx(
        run["instability"])  # deterministic


@pytest.mark.parametrize("change, message", [
    ({"--style": "missing.jpg"}, "no such file"),
    ({"--method": "magic"}, "unknown method 'magic'; valid: input"),
    ({"clip": "nowhere.mp4"}, "no such file"),
    ({"--model": "input=x.pt"}, "built-in method"),
    ({"--model": "stable=absent.pt"}, "does not exist"),
    ({"--style": "{frames_dir}"}, "--style {frames_dir} is a folder; give a style image file"),
    ({"--model": "stable={frames_dir}"}, "{frames_dir} is a folder without final.pt; give a checkpoint file"),
    ({"--max-frames": "1"}, "--max-frames"),
    ({"--flow": "magic"}, "unknown flow method"),
])
def test_evaluate_user_errors(tmp_path, monkeypatch, frames_dir, candy, capsys, change, message):
    monkeypatch.chdir(tmp_path)
    options = {"clip": str(frames_dir), "--style": str(candy), "--method": "input", "--max-frames": "2"}
    options.update({k: v.format(frames_dir=frames_dir) for k, v in change.items()})
    message = message.format(frames_dir=frames_dir)
    args = ["evaluate", options.pop("clip"), "-o", "report", "--quiet"]
    for key, value in options.items():
        args += [key, value]
    assert main(args) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and message in err[0], err
    assert list(tmp_path.iterdir()) == []  # no report, no staging folder


def test_evaluate_needs_a_method_and_a_matching_style(tmp_path, frames_dir, candy, assets, checkpoints, capsys):
    out = tmp_path / "r"
    assert main(["evaluate", str(frames_dir), "--style", str(candy), "-o", str(out)]) == 2
    assert "nothing to evaluate" in capsys.readouterr().err
    udnie, scream = assets / "styles" / "udnie.jpg", assets / "styles" / "scream.jpg"
    assert main(["evaluate", str(frames_dir), "--style", str(udnie), "--style", str(scream), "-o", str(out),
                 "--model", f"stable={checkpoints['stable']}"]) == 2
    assert "matches none of --style" in capsys.readouterr().err
    assert not out.exists()


def test_provenance_records_command_versions_device_and_date():
    from stablestyle import __version__
    from stablestyle.report import cpu_name, provenance, provenance_markdown

    info = provenance(["stablestyle", "evaluate", "my clip.mp4"], device="cpu")
    assert info["command"] == "stablestyle evaluate 'my clip.mp4'"
    assert info["stablestyle_version"] == __version__ and info["torch_version"] == torch.__version__
    assert info["device"] == cpu_name() and info["device"]
    assert info["date"].endswith("+00:00")
    assert json.loads(json.dumps(info)) == info
    assert "`stablestyle evaluate 'my clip.mp4'`" in provenance_markdown(info)


def test_evaluate_never_writes_over_an_input(tmp_path, frames_dir, candy, capsys):
    """A report folder replaced with --overwrite would take any input inside it along."""
    report = tmp_path / "report"
    report.mkdir()
    (report / "results.json").write_text("{}")  # an earlier report, so --overwrite may replace it ...
    style = report / "candy.jpg"  # ... but not while an input lives in it
    style.write_bytes(candy.read_bytes())
    for out in (report, frames_dir):
        assert main(["evaluate", str(frames_dir), "--style", str(style), "--method", "input", "-o", str(out),
                     "--overwrite", "--quiet", "--max-frames", "2"]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and "is or contains the input" in err[0], err
    assert style.read_bytes() == candy.read_bytes() and len(list(frames_dir.glob("*.png"))) == 5


def test_without_style_models_bring_the_style_they_were_trained_on(tmp_path, frames_dir, checkpoints, assets,
                                                                    capsys):
    """Bundled scream records scream.jpg and its hash: found in $STABLESTYLE_ASSETS/styles, it is the style."""
    out = tmp_path / "report"
    base = ["evaluate", str(frames_dir), "--quiet", "--no-videos", "--style-size", "64", "--device", "cpu",
            "--max-size", "48", "--max-frames", "2"]
    # a second model recording another copy of the same image (the path it was trained with): one style
    copy = tmp_path / "elsewhere" / "scream.jpg"
    copy.parent.mkdir()
    shutil.copyfile(assets / "styles" / "scream.jpg", copy)
    mine = tmp_path / "mine.pt"
    save_checkpoint(mine, TransformerNet(width=0.25), step=1, style_sha256=file_sha256(copy),
                    config={"mode": "stable", "style": str(copy)})
    assert main([*base, "--model", "s=scream-small", "--model", f"m={mine}", "-o", str(out)]) == 0
    results = json.loads((out / "results.json").read_text())
    assert list(results["styles"]) == ["scream"] and [r["style"] for r in results["runs"]] == ["scream", "scream"]
    assert Path(results["styles"]["scream"]["path"]).name == "scream.jpg"
    # a checkpoint that records no style image: the error says what to pass
    assert main([*base, "--model", f"stable={checkpoints['stable']}", "-o", str(tmp_path / "r2")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "stable records no style image" in err[0]
    assert "pass --style IMG" in err[0] and not (tmp_path / "r2").exists()
    # a recorded image that is not the one trained on (another file under that name): said as such
    other = tmp_path / "other" / "scream.jpg"
    other.parent.mkdir()
    shutil.copyfile(assets / "styles" / "candy.jpg", other)
    wrong = tmp_path / "wrong.pt"
    save_checkpoint(wrong, TransformerNet(width=0.25), step=1, style_sha256="0" * 64,
                    config={"mode": "stable", "style": str(other)})
    assert main([*base, "--model", f"w={wrong}", "-o", str(tmp_path / "r3")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and f"w: {other} or " in err[0] and "differs from the image it was trained on" in err[0]


def test_edge_margins_score_each_model_again_under_its_own_name(tmp_path, frames_dir, candy, checkpoints, capsys):
    out = tmp_path / "report"
    base = ["evaluate", str(frames_dir), "--style", str(candy), "--quiet", "--no-videos", "--style-size", "64",
            "--device", "cpu", "--max-size", "48", "--max-frames", "2", "--model", f"stable={checkpoints['stable']}"]
    assert main([*base, "--edge-margin", "8", "-o", str(out)]) == 0
    runs = {r["method"]: r for r in json.loads((out / "results.json").read_text())["runs"]}
    assert set(runs) == {"stable", "stable+m8"}
    assert runs["stable"]["style_loss"] != runs["stable+m8"]["style_loss"]
    methods = {m["name"]: m for m in json.loads((out / "results.json").read_text())["models"]}
    assert methods["stable+m8"]["edge_margin"] == 8 and methods["stable"]["edge_margin"] == 0
    assert methods["stable+m8"]["weights_sha256"] == methods["stable"]["weights_sha256"]
    assert main([*base, "--edge-margin", "-2", "-o", str(tmp_path / "r2")]) == 2
    assert "--edge-margin takes pixels from 0 to 256" in capsys.readouterr().err
