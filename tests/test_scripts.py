"""The training and report scripts' own logic: when a run counts as finished, and their bad-input errors."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from stablestyle.checkpoint import FINAL_NAME, save_checkpoint
from stablestyle.models import TransformerNet
from stablestyle.training.rundir import run_finished

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("step, steps, done", [(4, 10, False), (10, 10, True), (12, 10, True)])
def test_run_finished_compares_the_step_with_the_configured_steps(tmp_path, step, steps, done):
    save_checkpoint(tmp_path / FINAL_NAME, TransformerNet(width=0.25), config={"steps": steps}, step=step)
    assert run_finished(tmp_path) is done


def test_a_run_without_final_or_steps_is_not_finished(tmp_path):
    assert not run_finished(tmp_path)
    save_checkpoint(tmp_path / FINAL_NAME, TransformerNet(width=0.25), step=5)  # no config: steps unknown
    assert not run_finished(tmp_path)


def test_train_bundled_reads_a_time_limited_final_as_unfinished(tmp_path):
    """The script's ``finished`` shell function, run as the script defines it, on both kinds of final.pt."""
    script = (ROOT / "scripts" / "train_bundled.sh").read_text()
    func = script[script.index("finished() {"):script.index("\n}\n", script.index("finished() {")) + 3]
    for name, step in (("stopped", 3), ("done", 8)):
        (tmp_path / name).mkdir()
        save_checkpoint(tmp_path / name / FINAL_NAME, TransformerNet(width=0.25), config={"steps": 8}, step=step)
    out = subprocess.run(["bash", "-c", f'{func}\nfor d in "$@"; do finished "$d" && echo "$d yes" || echo "$d no"; done',
                          "x", str(tmp_path / "stopped"), str(tmp_path / "done"), str(tmp_path / "absent")],
                         capture_output=True, text=True, cwd=ROOT, env={"PY": sys.executable, "PATH": "/usr/bin:/bin"})
    assert out.returncode == 0, out.stderr
    assert out.stdout.split("\n")[:3] == [f"{tmp_path / 'stopped'} no", f"{tmp_path / 'done'} yes",
                                          f"{tmp_path / 'absent'} no"]


FAKE_TRAIN = """#!{python}
# stands in for the venv's python: `-m stablestyle train ...` is logged and writes a finished final.pt at once
import os, sys
args = sys.argv[1:]
if args[:3] == ["-m", "stablestyle", "train"]:
    with open(os.environ["TRAIN_LOG"], "a") as fh:
        fh.write(" ".join(args[3:]) + "\\n")
    from stablestyle.checkpoint import save_checkpoint
    from stablestyle.models import TransformerNet
    value = lambda flag: args[args.index(flag) + 1]
    os.makedirs(value("--out"))
    net = TransformerNet(width=float(value("--width")), recurrent=value("--mode") == "stable")
    steps = int(value("--steps"))
    save_checkpoint(os.path.join(value("--out"), "final.pt"), net, config={{"steps": steps}}, step=steps)
    sys.exit(0)
os.execv({python!r}, [{python!r}, *args])
"""


def _train_bundled(tmp_path, assets, style="scream", **extra):
    fake = tmp_path / "python"
    fake.write_text(FAKE_TRAIN.format(python=sys.executable))
    fake.chmod(0o755)
    runs, log = tmp_path / "runs", tmp_path / "train.log"
    env = {"PATH": "/usr/bin:/bin", "PYTHON": str(fake), "STABLESTYLE_ASSETS": str(assets), "TRAIN_LOG": str(log),
           "WIP": str(tmp_path / "wip"), "HOME": str(tmp_path), **extra}
    out = subprocess.run(["bash", str(ROOT / "scripts" / "train_bundled.sh"), str(runs), style], cwd=ROOT,
                         capture_output=True, text=True, env=env)
    assert out.returncode == 0, out.stderr[-2000:]
    calls = [line.split() for line in log.read_text().splitlines()] if log.exists() else []
    return runs, calls


def _flag(call, name):
    return call[call.index(name) + 1] if name in call else None


def test_train_bundled_runs_the_three_stages_and_distils_the_small_pair(assets, tmp_path):
    runs, calls = _train_bundled(tmp_path, assets, SMALL="1")
    names = [_flag(c, "--out") for c in calls]
    assert names == [str(runs / n) for n in ("scream-base", "scream-perframe", "scream-stable",
                                             "scream-small-perframe", "scream-small-stable")]
    assert [_flag(c, "--width") for c in calls] == ["0.5", "0.5", "0.5", "0.25", "0.25"]
    assert [_flag(c, "--crop") for c in calls] == ["128", "256", "128", "128", "128"]
    assert [_flag(c, "--loss-margin") for c in calls] == [None, "64", None, None, None]
    assert [_flag(c, "--init") for c in calls] == [None, str(runs / "scream-base"), str(runs / "scream-perframe"),
                                                   None, str(runs / "scream-small-perframe")]
    assert [_flag(c, "--teacher") for c in calls] == [None, None, None, str(runs / "scream-perframe"),
                                                      str(runs / "scream-stable")]
    assert [_flag(c, "--mode") for c in calls] == ["perframe", "perframe", "stable", "perframe", "stable"]
    assert _flag(calls[2], "--lr") == "3e-4"
    assert _flag(calls[2], "--max-speed") == "16" and _flag(calls[2], "--steps") == "400"
    assert "--temporal-weight" not in calls[4] and "--max-speed" not in calls[0]
    assert _flag(calls[4], "--max-speed") == "16"
    _assert_style_weights(calls, "scream")
    # a second call finds every run finished and trains nothing
    _, again = _train_bundled(tmp_path, assets, SMALL="1")
    assert len(again) == 5


def _assert_style_weights(calls, style, temporal=None):
    """configs/style_weights.yaml's weights of ``style`` in a SMALL=1 run's stages: `temporal` (400 where
    it has none; ``temporal`` stands for TEMPORAL_WEIGHT) and `stable_style` (the style weight where it has
    none) reach the stable stage alone; `small_temporal` reaches the -small stable distillation alone, as
    --distill-temporal (a style without it is distilled without the temporal term); `small_tune` adds a sixth
    stage, the -small stable net fine-tuned with the stable stage's objective at that temporal weight."""
    import yaml

    table = yaml.safe_load((ROOT / "configs" / "style_weights.yaml").read_text())[style]
    stages = ["base", "perframe", "stable", "small-perframe", "small-stable"] + ["small-tune"] * ("small_tune" in table)
    assert [_flag(c, "--out").rsplit("/", 1)[1] for c in calls] == [f"{style}-{n}" for n in stages]
    perceptual_stable = {2: temporal or str(table.get("temporal", 400)), 5: str(table.get("small_tune"))}
    for i, call in enumerate(calls):
        assert _flag(call, "--temporal-weight") == perceptual_stable.get(i)
        weight = table.get("stable_style", table["style"]) if i in perceptual_stable else table["style"]
        assert float(_flag(call, "--style-weight")) == weight and call.count("--style-weight") == 1
        assert _flag(call, "--distill-temporal") == (str(table["small_temporal"]) if i == 4 and "small_temporal"
                                                     in table else None)
    if "small_tune" in table:  # from the distilled net, at the stable stage's rate and motion, with no teacher
        tune = calls[5]
        assert _flag(tune, "--init") == _flag(calls[4], "--out") and "--teacher" not in tune
        assert (_flag(tune, "--lr"), _flag(tune, "--max-speed"), _flag(tune, "--width")) == ("3e-4", "16", "0.25")
        assert _flag(tune, "--mode") == "stable" and _flag(tune, "--steps") == "400"


@pytest.mark.parametrize("style, env", [("WomenHat", {}), ("udnie", {"TEMPORAL_WEIGHT": "123"})])
def test_each_styles_weights_reach_their_stages(assets, tmp_path, style, env):
    """Each style's row is read (scream's in the three-stage test above; udnie's run checks that the
    TEMPORAL_WEIGHT override beats the yaml's temporal weight while its stable_style still reaches the stage):
    one run per case, each a few seconds of interpreter starts."""
    _, calls = _train_bundled(tmp_path, assets, style=style, SMALL="1", BASE_STEPS="2", PERFRAME_STEPS="2", **env)
    _assert_style_weights(calls, style, temporal=env.get("TEMPORAL_WEIGHT"))


def test_train_bundled_continues_from_models_wip_without_run_folders(assets, tmp_path):
    """A stage whose models-wip file reached its steps is done; the next stage starts from that file."""
    wip = tmp_path / "wip"
    wip.mkdir()
    save_checkpoint(wip / "scream-base.pt", TransformerNet(width=0.5), config={"steps": 9000}, step=5000)
    save_checkpoint(wip / "scream-perframe.pt", TransformerNet(width=0.5), config={"steps": 4000}, step=1500)
    runs, calls = _train_bundled(tmp_path, assets, BASE_STEPS="5000", PERFRAME_STEPS="4000")
    assert [_flag(c, "--out") for c in calls] == [str(runs / "scream-perframe"), str(runs / "scream-stable")]
    assert _flag(calls[0], "--init") == str(wip / "scream-perframe.pt") and _flag(calls[0], "--steps") == "2500"
    assert _flag(calls[1], "--init") == str(runs / "scream-perframe")


def test_refresh_reports_unknown_step_is_one_line(assets):
    out = subprocess.run(["bash", str(ROOT / "scripts" / "refresh_reports.sh"), "hashes", "nosuch"],
                         capture_output=True, text=True, env={"STABLESTYLE_ASSETS": str(assets), "PATH": "/usr/bin:/bin"})
    assert out.returncode == 2
    assert out.stderr.strip().splitlines() == [
        "unknown step 'nosuch'; steps: hashes paper small quality demo app scene_cuts dial long_video ratios"]


def _speed_ab(*args, **env) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", str(ROOT / "scripts" / "speed_weights_ab.sh"), *map(str, args)], capture_output=True,
                          text=True, timeout=1800, cwd=ROOT,
                          env={"PATH": "/usr/bin:/bin", "PYTHON": sys.executable, "OMP_NUM_THREADS": "1", **env})


def test_speed_weights_ab_times_both_bundles_and_writes_both_ratios(tmp_path):
    """One tiny round against a folder holding copies of the bundled files (what a git revision gives the
    script; no history needed): every arm's report names the weights it timed, the old arm's are the
    folder's, and both comparisons pair the two widths."""
    import json

    from stablestyle.bundled import bundled_path
    from stablestyle.checkpoint import file_sha256

    old = tmp_path / "old"
    old.mkdir()
    for name in ("scream", "scream-small"):
        (old / f"{name}.pt").write_bytes(bundled_path(name).read_bytes())
    done = _speed_ab(old, tmp_path / "ab", 1, SIZES="32x32", BACKENDS="torch", FRAMES="1", E2E_FRAMES="2")
    assert done.returncode == 0, done.stderr[-3000:]
    weights = json.loads((tmp_path / "ab" / "weights.json").read_text())
    assert [(r["width"], r["precision"]) for r in weights["rows"]] == [(0.25, "fp32"), (0.5, "fp32")]
    small = weights["rows"][0]
    assert small["old"]["weights"][0]["weights_sha256"] == file_sha256(old / "scream-small.pt")
    assert small["new"]["weights"] == [{"weights": "scream-small",
                                        "weights_sha256": file_sha256(bundled_path("scream-small"))}]
    assert set(small["ratio_new_over_old"]) == {"model_fps", "e2e_fps", "e2e_encode_ms"}
    margin = json.loads((tmp_path / "ab" / "edge_margin.json").read_text())
    for row in margin["rows"]:  # the default arm stylizes with the bundled nets' own margin: more FLOPs
        reports = [json.loads(Path(f).read_text()) for f in margin["arms"]["default"]["reports"]]
        [entry] = [e for e in reports[0]["results"] if e["width"] == row["width"]]
        assert entry["edge_margin"] > 0 and row["ratio_default_over_margin0"]["model_fps"] > 0


@pytest.mark.parametrize("rev, message", [("no-such-revision", "no stablestyle/bundled/scream.pt at revision"),
                                          ("FOLDER", "no scream.pt in folder")])
def test_speed_weights_ab_bad_revision_is_one_line(tmp_path, rev, message):
    done = _speed_ab(tmp_path if rev == "FOLDER" else rev, tmp_path / "ab")
    assert done.returncode == 2
    [line] = done.stderr.strip().splitlines()
    assert line.startswith("error: " + message)


def test_paper_report_rebuilds_the_committed_report(tmp_path):
    """REPORT.md is made from the JSON beside it alone: rebuilt from a copy, it matches the committed file, and a
    change in the JSON shows in the rebuilt report."""
    import json
    import shutil

    paper = tmp_path / "paper"
    shutil.copytree(ROOT / "reports" / "paper", paper)
    (paper / "REPORT.md").unlink()
    run = subprocess.run([sys.executable, str(ROOT / "scripts" / "paper_report.py"), str(paper)],
                         capture_output=True, text=True, cwd=ROOT)
    assert run.returncode == 0, run.stderr
    assert (paper / "REPORT.md").read_text() == (ROOT / "reports" / "paper" / "REPORT.md").read_text()
    results = json.loads((paper / "networks" / "results.json").read_text())
    results["models"][0]["step"] = 123456789
    (paper / "networks" / "results.json").write_text(json.dumps(results))
    subprocess.run([sys.executable, str(ROOT / "scripts" / "paper_report.py"), str(paper)], check=True, cwd=ROOT)
    assert "123456789 training steps" in (paper / "REPORT.md").read_text()


def test_paper_report_without_results_is_one_line(tmp_path):
    run = subprocess.run([sys.executable, str(ROOT / "scripts" / "paper_report.py"), str(tmp_path)],
                         capture_output=True, text=True, cwd=ROOT)
    assert run.returncode == 2
    assert run.stderr.strip().count("\n") == 0 and "networks/results.json not found" in run.stderr


def _average(*args) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(ROOT / "scripts" / "average_checkpoints.py"), *map(str, args)],
                          capture_output=True, text=True, cwd=ROOT)


def test_average_checkpoints_writes_the_mean_of_the_weights(tmp_path):
    import torch

    from stablestyle.checkpoint import load_checkpoint, read_checkpoint

    nets = []
    for step in (2, 4):
        torch.manual_seed(step)
        nets.append(TransformerNet(width=0.25, recurrent=True))
        save_checkpoint(tmp_path / f"s{step}.pt", nets[-1], config={"steps": 4}, step=step, style_sha256="ab")
    (tmp_path / "run").mkdir()  # a run folder stands for its final.pt
    (tmp_path / "s4.pt").rename(tmp_path / "run" / FINAL_NAME)
    run = _average(tmp_path / "avg.pt", tmp_path / "s2.pt", tmp_path / "run")
    assert run.returncode == 0, run.stderr
    assert "the average of 2 checkpoints (steps 2, 4)" in run.stdout
    avg, meta = load_checkpoint(tmp_path / "avg.pt")
    for name, value in avg.state_dict().items():
        assert torch.allclose(value, (nets[0].state_dict()[name] + nets[1].state_dict()[name]) / 2, atol=1e-6)
    assert meta["step"] == 4 and meta["style_sha256"] == "ab" and meta["model"]["recurrent"] is True
    averaged = read_checkpoint(tmp_path / "avg.pt")["metrics"]["averaged"]
    assert [a["step"] for a in averaged] == [2, 4] and averaged[1]["path"] == str(tmp_path / "run" / FINAL_NAME)


def test_average_states_keeps_dtypes_and_refuses_other_shapes():
    import torch

    sys.path.insert(0, str(ROOT / "scripts"))
    from average_checkpoints import average_states

    half = {"w": torch.tensor([1.0, 2.0], dtype=torch.float16), "n": torch.tensor(3)}
    other = {"w": torch.tensor([3.0, 6.0], dtype=torch.float16), "n": torch.tensor(5)}
    mean = average_states([half, other])
    assert mean["w"].dtype == torch.float16 and mean["w"].tolist() == [2.0, 4.0] and mean["n"].item() == 5
    with pytest.raises(ValueError, match="keys or shapes"):
        average_states([half, {"w": torch.zeros(3), "n": torch.tensor(1)}])


@pytest.mark.parametrize("case, message", [
    ("width", "is a different net"), ("style", "another style image"), ("one", "at least two checkpoints"),
    ("exists", "exists; pass --overwrite"), ("missing", "does not exist"),
])
def test_average_checkpoints_bad_input_is_one_line(tmp_path, case, message):
    save_checkpoint(tmp_path / "a.pt", TransformerNet(width=0.25), step=1, style_sha256="ab")
    second = {"width": TransformerNet(width=0.5)}.get(case, TransformerNet(width=0.25))
    save_checkpoint(tmp_path / "b.pt", second, step=2, style_sha256="cd" if case == "style" else "ab")
    inputs = {"one": ["a.pt"], "missing": ["a.pt", "nope.pt"]}.get(case, ["a.pt", "b.pt"])
    if case == "exists":
        (tmp_path / "avg.pt").write_text("keep me")
    run = _average(tmp_path / "avg.pt", *(tmp_path / name for name in inputs))
    assert run.returncode == 2 and run.stderr.count("\n") == 1 and message in run.stderr, run.stderr
    assert (tmp_path / "avg.pt").exists() == (case == "exists")
