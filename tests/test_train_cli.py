"""``stablestyle train`` end to end: real VGG-16 at 32 px, Ctrl-C and --resume, torchrun, and user errors."""

from __future__ import annotations

import csv
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from stablestyle.checkpoint import load_checkpoint, read_checkpoint
from stablestyle.cli import main
from stablestyle.training import TrainConfig, Trainer

ROOT = Path(__file__).resolve().parents[1]


pytestmark = pytest.mark.usefixtures("one_thread")


def train_args(assets, content_dir, out, steps=6, *extra) -> list[str]:
    return ["train", "--style", str(assets / "styles" / "candy.jpg"), "--content", str(content_dir), "--out", str(out),
            "--steps", str(steps), "--crop", "32", "--width", "0.25", "--batch", "1", "--seq-len", "2",
            "--style-size", "32", "--workers", "0", "--log-every", "1", "--validate-every", "3",
            "--sample-every", "6", "--checkpoint-every", "3", "--val-frames", "3", "--quiet", *extra]


def read_log(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


@pytest.fixture(scope="module")
def cli_run(assets, content_dir, tmp_path_factory, one_thread_block) -> Path:
    """An uninterrupted 6-step stable run with the real VGG-16."""
    run = tmp_path_factory.mktemp("cli") / "run"
    with one_thread_block():
        assert main(train_args(assets, content_dir, run)) == 0
    return run


def test_cli_run_lowers_the_loss_and_its_model_stylizes(cli_run, tmp_path):
    rows = read_log(cli_run / "log.csv")
    totals = [float(r["total"]) for r in rows]
    assert [r["step"] for r in rows] == ["1", "2", "3", "4", "5", "6"]
    assert np.mean(totals[3:]) < 0.97 * np.mean(totals[:3]), totals  # deterministic; measured 0.955 (relative terms)
    assert (cli_run / "samples" / "step_00000006.png").is_file()
    model, meta = load_checkpoint(cli_run / "final.pt")
    assert meta["step"] == 6 and meta["config"]["mode"] == "stable" and meta["model"]["recurrent"]
    assert len(meta["style_sha256"]) == 64
    assert model.edge_margin == meta["model"]["edge_margin"] == TrainConfig().edge_margin > 0
    with torch.no_grad():
        out, _ = model(torch.rand(1, 3, 24, 40))
    assert out.shape == (1, 3, 24, 40)

    from stablestyle.video import read_image, write_image

    frame = tmp_path / "frame.png"
    write_image(frame, (np.random.default_rng(0).random((30, 44, 3)) * 255).astype(np.uint8))
    styled = tmp_path / "styled.png"
    assert main(["stylize", str(frame), "-o", str(styled), "--model", str(cli_run / "final.pt"),
                 "--device", "cpu", "--quiet"]) == 0
    assert read_image(styled).shape == (30, 44, 3)


def test_ctrl_c_saves_last_and_resume_matches_the_uninterrupted_run(assets, content_dir, cli_run, tmp_path,
                                                                    monkeypatch):
    run = tmp_path / "run"
    original = Trainer.train_step

    def train_step(self, batch):
        metrics = original(self, batch)
        if self.step == 2:
            os.kill(os.getpid(), signal.SIGINT)  # Ctrl-C during step 2: it completes, then the run stops
        return metrics

    with monkeypatch.context() as patch:
        patch.setattr(Trainer, "train_step", train_step)
        assert main(train_args(assets, content_dir, run)) == 130
    assert read_checkpoint(run / "last.pt")["step"] == 2 and not (run / "final.pt").exists()

    assert main(["train", "--resume", str(run), "--quiet"]) == 0
    got, want = read_checkpoint(run / "final.pt"), read_checkpoint(cli_run / "final.pt")
    assert got["step"] == 6
    for name, value in want["state_dict"].items():
        assert torch.equal(got["state_dict"][name], value), name
    assert [r["total"] for r in read_log(run / "log.csv")] == [r["total"] for r in read_log(cli_run / "log.csv")]


def test_time_limit_flag_stops_early_with_a_usable_model_and_resumes(assets, content_dir, tmp_path, caplog):
    """A time limit too short for any step still runs one (real clock, so no later step is asserted)."""
    run = tmp_path / "run"
    assert main(train_args(assets, content_dir, run, 1000, "--time-limit", "0.001s")) == 0
    final = read_checkpoint(run / "final.pt")
    assert final["step"] == read_checkpoint(run / "last.pt")["step"] == 1
    assert "time limit reached at step 1 of 1000" in caplog.text and f"--resume {run}" in caplog.text
    assert [r["step"] for r in read_log(run / "val.csv")] == ["1"]
    assert [p.name for p in (run / "samples").iterdir()] == ["step_00000001.png"]  # before --sample-every: the end
    model, _ = load_checkpoint(run / "final.pt")
    assert model(torch.rand(1, 3, 32, 32))[0].shape == (1, 3, 32, 32)
    assert main(["train", "--resume", str(run), "--steps", "3", "--keep-every", "1", "--quiet"]) == 0
    assert read_checkpoint(run / "final.pt")["step"] == 3 and "time_limit" not in read_checkpoint(run / "final.pt")["config"]
    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == ["step_00000002.pt"]  # a resume may add it


def test_torchrun_two_processes_train_and_resume(assets, content_dir, tmp_path):
    run = tmp_path / "ddp"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    launcher = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
                "-m", "stablestyle"]

    def launch(args: list[str]) -> None:
        # a hang guard, not a speed limit: a slow machine must not fail the test
        proc = subprocess.run(launcher + args, env=env, capture_output=True, text=True, timeout=1800)
        assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]

    launch(train_args(assets, content_dir, run, 2))
    launch(["train", "--resume", str(run), "--steps", "3", "--quiet"])
    final = read_checkpoint(run / "final.pt")
    assert final["step"] == 3
    digests = final["metrics"]["replica_sha256"]  # each rank hashed its own weights at the end
    assert len(digests) == 2 and digests[0] == digests[1]
    assert [r["step"] for r in read_log(run / "log.csv")] == ["1", "2", "3"]
    assert read_checkpoint(run / "last.pt")["training_state"]["data"]["world_size"] == 2


def _existing(tmp_path: Path, run_folder: bool, checkpoint: bool = True) -> Path:
    folder = tmp_path / "out"
    folder.mkdir()
    (folder / ("config.yaml" if run_folder else "notes.txt")).write_text("mode: stable\n")
    if run_folder and checkpoint:
        (folder / "last.pt").write_bytes(b"")
    return folder


@pytest.mark.parametrize("case, message", [
    ("missing style", "style image"),
    ("empty content", "has no images"),
    ("unknown mode", "unknown mode 'fast'; valid: stable, perframe"),
    ("perframe sequences", "seq_len must be 1"),
    ("existing run", "already exists; pass --resume"),
    ("existing run without checkpoint", "holds no checkpoint (an earlier run stopped before its first last.pt); "
                                        "pass --overwrite"),
    ("overwrite other folder", "refuses to delete"),
    ("unknown config key", "unknown setting(s) learning_rate"),
    ("fp16 on cpu", "needs a CUDA GPU"),
    ("resume non-run", "is not a run folder"),
    ("resume changes width", "cannot change width"),
    ("bad time limit", "--time-limit must be a positive duration such as 90s, 20m or 1.5h"),
    ("infinite weight", "loss weight tv (--tv-weight) must be a finite number >= 0, got inf"),
    ("negative edge margin", "edge_margin must be 0..256 pixels, got -1"),
    ("negative keep-every", "keep_every must be 0 (none) or a positive integer, got -1"),
    ("latin-1 config", "is not a UTF-8 text YAML file"),
    ("binary config", "is not a UTF-8 text YAML file"),
    ("style folder", "is a folder, not an image file"),
    ("config folder", "is a folder, not a YAML file"),
    ("vgg folder", "is a folder, not a weights file"),
    ("garbage vgg", "is not a VGG-16 weights file readable by torch.load (UnpicklingError: "),
    ("empty vgg", "is empty, not a VGG-16 weights file; point --vgg-weights or STABLESTYLE_VGG16 at"),
    ("video as content", "is a video; --content takes images or folders of images, pass videos with --video"),
    ("one usable image", "was held back as the validation image, so training needs at least two usable images"),
    ("greyscale held-out image", "the validation image (the last content image, held out of training) is unusable"),
])
def test_bad_input_is_a_one_line_error(assets, content_dir, cli_run, tmp_path, capsys, case, message):
    out = tmp_path / "new_run"
    args = train_args(assets, content_dir, out)

    def setflag(flag: str, value: str) -> None:
        args[args.index(flag) + 1] = value

    before = None
    if case == "missing style":
        setflag("--style", str(tmp_path / "nope.jpg"))
    elif case == "empty content":
        (tmp_path / "empty").mkdir()
        setflag("--content", str(tmp_path / "empty"))
    elif case == "unknown mode":
        args += ["--mode", "fast"]
    elif case == "perframe sequences":
        args += ["--mode", "perframe"]
    elif case in ("existing run", "existing run without checkpoint", "overwrite other folder"):
        out = _existing(tmp_path, run_folder=case != "overwrite other folder", checkpoint=case == "existing run")
        setflag("--out", str(out))
        args += ["--overwrite"] if case == "overwrite other folder" else []
        before = sorted(p.name for p in out.iterdir())
    elif case == "unknown config key":
        (tmp_path / "c.yaml").write_text("learning_rate: 0.1\n")
        args += ["--config", str(tmp_path / "c.yaml")]
    elif case == "fp16 on cpu":
        args += ["--amp", "fp16", "--device", "cpu"]
    elif case == "bad time limit":
        args += ["--time-limit", "soon"]
    elif case == "infinite weight":
        args += ["--tv-weight", "inf"]
    elif case == "negative edge margin":
        args += ["--edge-margin", "-1"]
    elif case == "negative keep-every":
        args += ["--keep-every", "-1"]
    elif case in ("latin-1 config", "binary config"):
        jpeg = (assets / "styles" / "candy.jpg").read_bytes()
        (tmp_path / "c.yaml").write_bytes(b"# r\xe9glages\nsteps: 2\n" if case == "latin-1 config" else jpeg)
        args += ["--config", str(tmp_path / "c.yaml")]
    elif case == "style folder":
        setflag("--style", str(assets / "styles"))
    elif case == "config folder":
        args += ["--config", str(tmp_path)]
    elif case in ("vgg folder", "garbage vgg", "empty vgg"):
        weights = tmp_path / ("vgg" if case == "vgg folder" else "vgg.pt")
        if case == "vgg folder":
            weights.mkdir()
        else:
            weights.write_bytes(bytes(range(256)) * 4 if case == "garbage vgg" else b"")
        args += ["--vgg-weights", str(weights)]
    elif case == "video as content":
        setflag("--content", str(tmp_path / "clip.mp4"))
        (tmp_path / "clip.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42")  # the suffix decides, not the bytes
    elif case == "one usable image":
        folder = tmp_path / "one"
        folder.mkdir()
        shutil.copy(next(content_dir.iterdir()), folder / "photo.jpg")
        (folder / "broken.jpg").write_text("not a photo")
        setflag("--content", str(folder))
    elif case == "greyscale held-out image":  # trains (converted), but validation reads strictly (issue #20)
        from PIL import Image

        folder = tmp_path / "grey"
        shutil.copytree(content_dir, folder)
        Image.open(sorted(folder.iterdir())[0]).convert("L").save(folder / "zz_grey.jpg")
        setflag("--content", str(folder))
    elif case == "resume non-run":
        args = ["train", "--resume", str(tmp_path)]
    elif case == "resume changes width":
        args = ["train", "--resume", str(cli_run), "--width", "0.5"]
        out = cli_run
        before = sorted(p.name for p in out.iterdir())
    capsys.readouterr()
    assert main(args) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and message in err[0], err
    if before is None:
        assert not out.exists()  # nothing written
    else:
        assert sorted(p.name for p in out.iterdir()) == before


def test_divergence_is_one_line_and_the_rerun_says_what_to_do(assets, content_dir, tmp_path, capsys):
    """A huge-but-finite weight overflows the loss: exit 2 with one line; the run folder then holds no checkpoint,
    and the rerun says so directly (not "already exists; pass --resume", then "no last.pt")."""
    run = tmp_path / "run"
    args = train_args(assets, content_dir, run, 2, "--style-weight", "1e40")
    capsys.readouterr()
    assert main(args) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: training diverged: non-finite loss terms"), err
    assert "style 1e+40" in err[0] and "--overwrite" in err[0]
    assert not (run / "last.pt").exists()
    assert main(args) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "holds no checkpoint" in err[0] and "pass --overwrite" in err[0], err


@pytest.mark.parametrize("flag", ["--content-weight", "--style-weight", "--tv-weight", "--temporal-weight", "--seed",
                                  "--channels-last", "--log-every", "--sample-every", "--validate-every",
                                  "--checkpoint-every", "--lr", "--steps", "--vflip", "--max-speed",
                                  "--edge-margin", "--margin-in-training", "--context-margin"])
def test_help_states_each_default(flag, capsys):
    from stablestyle.commands.train import FLAG_KEYS, config_default

    with pytest.raises(SystemExit) as info:
        main(["train", "--help"])
    assert info.value.code == 0
    help_text = " ".join(capsys.readouterr().out.split())  # argparse wraps lines
    entry = help_text.split(f" {flag} ", 1)[1].split(" --", 1)[0]
    default = config_default(FLAG_KEYS[flag[2:].replace("-", "_")])
    assert f"(default {default})" in entry and "%(" not in help_text, entry


def test_config_default_reads_the_dataclasses():
    from stablestyle.commands.train import config_default
    from stablestyle.losses import LossWeights

    assert config_default("weights.style") == f"{LossWeights().style:g}" == "10"
    assert (config_default("steps"), config_default("channels_last")) == ("40000", "off")
    assert config_default("style_layers") == "relu1_2 relu2_2 relu3_3 relu4_3"


def test_perframe_flag_over_a_stable_config_trains_single_frames(assets, content_dir, tmp_path, caplog):
    """--mode perframe with configs/cpu_small.yaml-like settings: the config's seq_len goes with its mode."""
    cfg = tmp_path / "stable.yaml"
    cfg.write_text("mode: stable\nseq_len: 4\ncrop: 32\nwidth: 0.25\nbatch: 1\nstyle_size: 32\nnum_workers: 0\n"
                   "val_frames: 3\n")
    run = tmp_path / "run"
    args = ["train", "--config", str(cfg), "--mode", "perframe", "--style", str(assets / "styles" / "candy.jpg"),
            "--content", str(content_dir), "--out", str(run), "--steps", "1", "--quiet"]
    with caplog.at_level("INFO"):
        assert main(args) == 0
    saved = read_checkpoint(run / "final.pt")["config"]
    assert saved["mode"] == "perframe" and saved["seq_len"] == 1
    assert "the config's seq_len 4 (for mode stable) gives way to mode perframe's default" in caplog.text
    assert "finished 1 step;" in caplog.text and "; validation instability " in caplog.text
    # an explicit --seq-len is the user's word: refused as before
    assert main([*args, "--seq-len", "4", "--overwrite"]) == 2


def test_stable_flag_over_a_perframe_config_trains_sequences(assets, content_dir, tmp_path):
    cfg = tmp_path / "perframe.yaml"
    cfg.write_text("mode: perframe\nseq_len: 1\ncrop: 32\nwidth: 0.25\nbatch: 1\nstyle_size: 32\nnum_workers: 0\n"
                   "val_frames: 3\n")
    run = tmp_path / "run"
    assert main(["train", "--config", str(cfg), "--mode", "stable", "--style", str(assets / "styles" / "candy.jpg"),
                 "--content", str(content_dir), "--out", str(run), "--steps", "1", "--quiet"]) == 0
    saved = read_checkpoint(run / "final.pt")["config"]
    assert saved["mode"] == "stable" and saved["seq_len"] == 4  # stable's default


@pytest.mark.parametrize("limit, warned", [(0.0, True), (1e9, False)])  # never a wall-clock test
def test_a_slow_cpu_step_suggests_a_smaller_setting(assets, content_dir, tmp_path, caplog, monkeypatch, limit,
                                                    warned):
    """Measured on the second step of a run (the first warms up): over SLOW_CPU_STEP_S (10 s) it warns, once."""
    import stablestyle.training.loop as train_module

    assert train_module.SLOW_CPU_STEP_S == 10.0
    monkeypatch.setattr(train_module, "SLOW_CPU_STEP_S", limit)
    with caplog.at_level("WARNING"):
        assert main(train_args(assets, content_dir, tmp_path / "run", 3, "--device", "cpu")) == 0
    warnings = [r.getMessage() for r in caplog.records if "on this CPU" in r.getMessage()]
    assert len(warnings) == int(warned)
    if warned:
        assert "(3 steps: ~0 h)" in warnings[0] and "--width 0.5 --crop 128 --batch 2" in warnings[0]


def test_held_out_validation_image_is_named_once(assets, content_dir, tmp_path, caplog):
    with caplog.at_level("INFO"):
        assert main(train_args(assets, content_dir, tmp_path / "run", 1)) == 0
    held = [r.getMessage() for r in caplog.records if "is held out of training" in r.getMessage()]
    assert len(held) == 1 and sorted(p.name for p in content_dir.iterdir())[-1] in held[0]


def test_init_from_a_fast_neural_style_checkpoint_makes_a_stable_model(assets, content_dir, tmp_path):
    """`train --init x.pth`: a pytorch/examples state dict (written here) becomes a stable model after a fine-tune."""
    from stablestyle.models import TransformerNet

    torch.manual_seed(0)
    state = TransformerNet(width=0.25, recurrent=False).state_dict()
    state["in1.running_mean"] = torch.zeros(8)  # as the published pytorch/examples models carry
    torch.save(state, tmp_path / "mosaic.pth")
    run = tmp_path / "run"
    assert main(train_args(assets, content_dir, run, 2, "--init", str(tmp_path / "mosaic.pth"))) == 0
    model, meta = load_checkpoint(run / "final.pt")
    assert meta["model"]["recurrent"] and meta["config"]["init"] == str(tmp_path / "mosaic.pth")
    assert meta["config"]["init_layout"] == "auto"


def test_init_that_is_not_a_network_is_a_one_line_error(assets, content_dir, tmp_path, capsys):
    (tmp_path / "notes.pth").write_text("not weights")
    assert main(train_args(assets, content_dir, tmp_path / "run", 2, "--init", str(tmp_path / "notes.pth"))) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "notes.pth" in err and "\n" not in err
    assert not (tmp_path / "run" / "last.pt").exists()
