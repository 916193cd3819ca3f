"""``train --teacher``: a student net learns a trained model's output, with no loss network in its steps."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
import torch

from stablestyle.checkpoint import load_checkpoint
from stablestyle.cli import main
from stablestyle.errors import UserError
from stablestyle.models import TransformerNet
from stablestyle.training import Trainer, TrainConfig
from stablestyle.training.distill import distill_loss, load_teacher, teacher_outputs

from test_train import StandInEncoder, tiny_config

pytestmark = pytest.mark.usefixtures("one_thread")


class CountingEncoder(StandInEncoder):
    """The stand-in loss network, counting its forward passes."""

    calls = 0

    def forward(self, x):
        CountingEncoder.calls += 1
        return super().forward(x)


def read_log(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


@pytest.fixture(scope="module")
def teachers(assets, content_dir, tmp_path_factory, one_thread_block) -> dict[str, Path]:
    """A per-frame and a stable width-0.5 run (a few perceptual steps, so their outputs are not trivial)."""
    root = tmp_path_factory.mktemp("teachers")
    runs = {"perframe": root / "pf", "stable": root / "st"}
    with one_thread_block():
        for mode, out in runs.items():
            seq = {"seq_len": None} if mode == "perframe" else {}
            config = tiny_config(assets, content_dir, out, mode=mode, width=0.5, steps=3, **seq)
            Trainer(config, loss_net=StandInEncoder(), quiet=True).fit()
    return runs


def test_teacher_outputs_unroll_on_the_teachers_own_previous_output():
    torch.manual_seed(0)
    net = TransformerNet(width=0.25, recurrent=True).eval()
    frames = torch.rand(2, 3, 3, 24, 24)
    got = teacher_outputs(net, frames)
    with torch.no_grad():
        state, expected = None, []
        for t in range(3):
            out, state = net(frames[:, t], state)
            expected.append(out)
    torch.testing.assert_close(got, torch.stack(expected, 1), rtol=0, atol=0)
    assert not got.requires_grad
    # the second frame's output depends on the first: the recurrence is really used
    assert not torch.allclose(got[:, 1], net(frames[:, 1], None)[0].detach())
    with pytest.raises(ValueError, match="must be"):
        teacher_outputs(net, frames[:, 0])


def test_distill_loss_is_the_mean_absolute_difference_and_pulls_towards_the_teacher():
    targets = torch.rand(2, 3, 3, 8, 8)
    outputs = (targets + 0.25 * torch.randn_like(targets)).requires_grad_(True)
    loss, metrics = distill_loss(outputs, targets)
    assert float(loss.detach()) == pytest.approx(float((outputs - targets).abs().mean().detach()), rel=1e-6)
    assert float(metrics["distill"]) == float(metrics["total"]) == float(loss)
    loss.backward()
    step = outputs.detach() - 0.01 * outputs.grad.sign()
    assert float(distill_loss(step, targets)[0]) < float(loss)
    assert float(distill_loss(targets, targets)[0]) == 0.0
    with pytest.raises(ValueError, match="differ in shape"):
        distill_loss(outputs, targets[:, :2])


def test_load_teacher_is_frozen_and_refuses_the_other_kind(teachers):
    net, meta = load_teacher(str(teachers["stable"]), recurrent=True, device=torch.device("cpu"))
    assert not net.training and not any(p.requires_grad for p in net.parameters())
    assert meta["model"]["recurrent"]
    with pytest.raises(UserError, match=r"is a recurrent net, width 0.5.*student is per-frame.*--mode stable"):
        load_teacher(str(teachers["stable"]), recurrent=False, device=torch.device("cpu"))
    with pytest.raises(UserError, match=r"is a per-frame net.*student is recurrent.*--mode perframe"):
        load_teacher(str(teachers["perframe"]), recurrent=True, device=torch.device("cpu"))


@pytest.mark.parametrize("mode", ["perframe", "stable"])
def test_distilled_student_moves_towards_its_teacher_without_the_loss_network(assets, content_dir, tmp_path,
                                                                              teachers, mode):
    seq = {"seq_len": None} if mode == "perframe" else {}
    config = tiny_config(assets, content_dir, tmp_path / "student", mode=mode, teacher=str(teachers[mode]),
                         width=0.25, steps=30, lr=3e-3, **seq)
    trainer = Trainer(config, loss_net=CountingEncoder(), quiet=True)
    teacher = trainer.teacher
    frames = torch.stack([trainer.validation_clip()["frames"][:2]])  # (1, 2, 3, H, W): a held-out pair
    frames = frames if mode == "stable" else frames[:, :1]

    def gap() -> float:
        trainer.net.eval()
        with torch.no_grad():
            state, outs = None, []
            for t in range(frames.shape[1]):
                out, state = trainer.net(frames[:, t], state)
                outs.append(out)
        return float((torch.stack(outs, 1) - teacher_outputs(teacher, frames)).abs().mean())

    before = gap()
    CountingEncoder.calls = 0
    trainer.fit()
    # validation runs the loss network once at the end (validate_every 1000 > steps): the steps never do
    assert CountingEncoder.calls <= 2 * (config.val_frames + 1)
    rows = read_log(tmp_path / "student" / "log.csv")
    assert "distill" in rows[0] and "style" not in rows[0]
    assert float(rows[-1]["distill"]) < float(rows[0]["distill"])
    assert gap() < 0.8 * before
    student, _ = load_checkpoint(tmp_path / "student")
    assert student.width == 0.25 and student.recurrent == (mode == "stable")


def test_teacher_excludes_the_loss_windows():
    for changes in ({"loss_margin": 8}, {"context_margin": True, "edge_margin": 8}):
        config = TrainConfig(style="s.jpg", content=["c"], out="o", crop=32, teacher="scream", **changes)
        with pytest.raises(UserError, match="teacher|context_margin"):
            config.validate()


def test_cli_teacher_of_the_other_kind_is_a_one_line_error(assets, content_dir, teachers, tmp_path, capsys):
    args = ["train", "--style", str(assets / "styles" / "candy.jpg"), "--content", str(content_dir),
            "--out", str(tmp_path / "run"), "--steps", "2", "--crop", "32", "--width", "0.25", "--batch", "1",
            "--style-size", "32", "--workers", "0", "--quiet", "--mode", "perframe",
            "--teacher", str(teachers["stable"])]
    assert main(args) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: --teacher ") and "--mode stable" in err[0], err
    assert not (tmp_path / "run" / "last.pt").exists()


def test_distill_temporal_adds_the_students_own_temporal_loss():
    torch.manual_seed(0)
    targets = torch.rand(2, 3, 3, 8, 8)
    outputs = (targets + 0.25 * torch.randn_like(targets)).requires_grad_(True)
    flow = torch.zeros(2, 3, 2, 8, 8)  # a still scene: the temporal loss is the frame-to-frame difference
    mask = torch.ones(2, 3, 1, 8, 8)
    plain, _ = distill_loss(outputs, targets)
    loss, metrics = distill_loss(outputs, targets, temporal_weight=5.0, flow_bw=flow, mask=mask)
    flicker = (outputs[:, 1:] - outputs[:, :-1]).square().mean()
    assert float(metrics["temporal"]) == pytest.approx(float(flicker), rel=1e-5)
    assert float(loss) == pytest.approx(float(plain) + 5.0 * float(flicker), rel=1e-5)
    assert float(metrics["total"]) == float(loss) and float(metrics["distill"]) == float(plain)
    # the gradient goes through the previous output too, and a step along it lowers the flicker
    loss.backward()
    step = (outputs - 0.02 * outputs.grad).detach()
    assert float((step[:, 1:] - step[:, :-1]).square().mean()) < float(flicker)
    with pytest.raises(ValueError, match="flow_bw and mask"):
        distill_loss(outputs, targets, temporal_weight=5.0)


def test_distill_temporal_needs_a_stable_distillation():
    base = dict(style="s.jpg", content=["c"], out="o", crop=32)
    for changes in ({"distill_temporal": 5.0}, {"distill_temporal": 5.0, "teacher": "scream", "mode": "perframe"},
                    {"distill_temporal": -1.0, "teacher": "scream"}):
        with pytest.raises(UserError, match="distill_temporal"):
            TrainConfig(**base, **changes).validate()
    TrainConfig(**base, teacher="scream", distill_temporal=5.0).validate()


def test_stable_student_logs_its_temporal_term_in_the_total(assets, content_dir, tmp_path, teachers):
    config = tiny_config(assets, content_dir, tmp_path / "student", mode="stable", teacher=str(teachers["stable"]),
                         width=0.25, steps=4, distill_temporal=50.0)
    Trainer(config, loss_net=CountingEncoder(), quiet=True).fit()
    rows = read_log(tmp_path / "student" / "log.csv")
    assert rows and "temporal" in rows[0] and "style" not in rows[0]
    for row in rows:
        assert float(row["temporal"]) > 0
        assert float(row["total"]) == pytest.approx(float(row["distill"]) + 50.0 * float(row["temporal"]), rel=1e-4)
