"""``stablestyle make-clip``: end to end on tiny clips, and its user errors."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from stablestyle.cli import main
from stablestyle.synthetic import load_ground_truth


@pytest.fixture(scope="module")
def images(assets, tmp_path_factory):
    """Two small RGB photos, a greyscale image and a file that is not an image."""
    folder = tmp_path_factory.mktemp("make_clip_inputs")
    for name in ("ccpl_golden_gate", "ccpl_lenna"):
        with Image.open(assets / "content" / f"{name}.jpg") as img:
            img.convert("RGB").resize((160, 120)).save(folder / f"{name}.png")
    Image.fromarray(np.full((40, 40), 128, np.uint8), "L").save(folder / "grey.png")
    (folder / "notes.jpg").write_text("not an image")
    return folder


def _run(images, out, *extra):
    return main(["make-clip", str(images / "ccpl_golden_gate.png"), str(images / "ccpl_lenna.png"),
                 "-o", str(out), "--frames", "5", "--size", "64x48", "--quiet", *extra])


def test_make_clip_writes_the_layout(images, tmp_path, capsys):
    assert _run(images, tmp_path / "a", "--seed", "3", "--foregrounds", "2") == 0
    summary = capsys.readouterr().out.strip()  # printed even with --quiet, like the other commands' summaries
    assert summary.startswith(f"made 5 frames at 64x48 with exact flow -> {tmp_path / 'a'} (") and " MB, " in summary
    gt = load_ground_truth(tmp_path / "a")
    assert gt.frames.shape == (5, 48, 64, 3) and gt.flow_bw.shape == (5, 48, 64, 2)
    assert gt.valid_bw[1:].mean() > 0.5 and not gt.valid_bw[0].any()
    assert len(list((tmp_path / "a" / "flow").iterdir())) == 4
    meta = json.loads((tmp_path / "a" / "clip.json").read_text())
    assert meta["seed"] == 3 and meta["layers"] == ["full", meta["layers"][1], meta["layers"][2]]
    assert meta["sources"]["foregrounds"] == [str(images / "ccpl_lenna.png")] * 2
    # same seed, same clip; another seed, another clip
    assert _run(images, tmp_path / "b", "--seed", "3", "--foregrounds", "2") == 0
    assert _run(images, tmp_path / "c", "--seed", "4", "--foregrounds", "2") == 0
    np.testing.assert_array_equal(load_ground_truth(tmp_path / "b").flow_bw, gt.flow_bw)
    assert not np.array_equal(load_ground_truth(tmp_path / "c").frames, gt.frames)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a", "b", "c"]


def test_overwrite_replaces_an_existing_clip(images, tmp_path, capsys):
    assert _run(images, tmp_path / "clip", "--foregrounds", "0") == 0
    assert _run(images, tmp_path / "clip", "--foregrounds", "1") == 2
    assert "--overwrite" in capsys.readouterr().err
    assert _run(images, tmp_path / "clip", "--foregrounds", "1", "--overwrite") == 0
    assert json.loads((tmp_path / "clip" / "clip.json").read_text())["layers"][0] == "full"
    assert len(json.loads((tmp_path / "clip" / "clip.json").read_text())["layers"]) == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == ["clip"]


@pytest.mark.parametrize("args, match", [
    (["notes.jpg"], "not an image"),
    (["grey.png"], "single channel"),
    (["missing.png"], "missing.png"),
    (["ccpl_lenna.png", "--size", "64by48"], "WIDTHxHEIGHT"),
    (["ccpl_lenna.png", "--size", "8x48"], "sides must be"),
    (["ccpl_lenna.png", "--frames", "1"], "--frames"),
    (["ccpl_lenna.png", "--foregrounds", "-1"], "--foregrounds"),
    (["ccpl_lenna.png", "--speed", "-2"], "max_speed"),
    (["ccpl_lenna.png", "--seed", "-1"], "--seed must be a whole number from 0 to 4294967295, got -1"),
    (["ccpl_lenna.png", "--seed", str(2**32)], "--seed must be a whole number from 0 to 4294967295"),
])
def test_user_errors_exit_2_with_one_line_and_no_output(images, tmp_path, capsys, args, match):
    first, *rest = args
    argv = ["make-clip", str(images / first), "-o", str(tmp_path / "out"), "--frames", "3", "--size", "32x24",
            "--quiet"] + rest
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error:") and match in err[0]
    assert list(tmp_path.iterdir()) == []


def test_missing_output_parent_is_a_user_error(images, tmp_path, capsys):
    assert _run(images, tmp_path / "no" / "clip") == 2
    assert "does not exist" in capsys.readouterr().err


@pytest.mark.parametrize("name, kind", [("clip.mp4", "video"), ("clip.MOV", "video"), ("clip.avi", "video"),
                                        ("clip.png", "image"), ("clip.jpg", "image")])
def test_output_with_a_file_suffix_is_refused(images, tmp_path, capsys, name, kind):
    assert _run(images, tmp_path / name) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0] == (f"error: -o {tmp_path / name}: make-clip writes a folder (frames/, flow/, "
                                        f"... and clip.json), not a {kind} file; give a folder name without suffix, "
                                        f"e.g. -o {tmp_path / 'clip'}")
    assert list(tmp_path.iterdir()) == []


def test_seed_bounds_are_accepted(images, tmp_path):
    assert _run(images, tmp_path / "a", "--seed", str(2**32 - 1), "--foregrounds", "0") == 0
    assert json.loads((tmp_path / "a" / "clip.json").read_text())["seed"] == 2**32 - 1


def test_help_names_the_output_folder_consistently(capsys):
    with pytest.raises(SystemExit):
        main(["make-clip", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "-o FOLDER, --output FOLDER" in text and "replace FOLDER if it is an existing clip folder" in text
    assert "OUTPUT" not in text
