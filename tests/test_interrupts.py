"""Interrupts, kills and full disks: no temporary output survives, and a resumed run matches.

SIGTERM / SIGHUP must clean up like Ctrl-C (a real process, killed part-way); what a SIGKILL left
behind is removed by the next write of the same output; a full disk is one line naming the output.
"""

from __future__ import annotations

import errno
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from stablestyle import atomic
from stablestyle.atomic import final_name, remove_stale_temps, temp_beside
from stablestyle.checkpoint import atomic_torch_save, read_checkpoint, save_checkpoint
from stablestyle.cli import environment_error_line, main
from stablestyle.models import TransformerNet
from stablestyle.video import write_image

ROOT = Path(__file__).resolve().parents[1]
HANG_GUARD_S = 1800  # a hung child fails the test eventually; never a speed limit

# A CLI run whose every written frame takes 0.2 s, so a signal reliably lands mid-run.
_SLOW_CLI = """
import sys, time
from stablestyle import video
write = video.FrameSink.write
def slow(self, frame):
    write(self, frame)
    time.sleep(0.2)
video.FrameSink.write = slow
from stablestyle.cli import main
sys.exit(main(sys.argv[1:]))
"""


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory) -> Path:
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("model") / "tiny.pt"
    save_checkpoint(path, TransformerNet(width=0.25, recurrent=True), step=1)
    return path


@pytest.fixture(scope="module")
def many_frames(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("frames")
    rng = np.random.default_rng(0)
    for i in range(40):
        write_image(folder / f"frame_{i:04d}.png", rng.integers(0, 256, (32, 48, 3), dtype=np.uint8))
    return folder


def _hidden(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP], ids=["SIGTERM", "SIGHUP"])
@pytest.mark.parametrize("output", ["out.mp4", "out"], ids=["video", "frame-folder"])
def test_killed_stylize_leaves_no_temporary_output(tmp_path, tiny_model, many_frames, sig, output):
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen([sys.executable, "-c", _SLOW_CLI, "stylize", str(many_frames), "-o",
                             str(tmp_path / output), "--model", str(tiny_model), "--quiet"], env=env,
                            stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + HANG_GUARD_S
        while not _hidden(tmp_path) and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)  # wait until the temporary output exists: the run is part-way
        assert _hidden(tmp_path), "the run never started writing"
        time.sleep(0.3)
        proc.send_signal(sig)
        _, err = proc.communicate(timeout=HANG_GUARD_S)
    finally:
        proc.kill()
    assert proc.returncode == 128 + sig, err
    assert "Traceback" not in err and f"terminated by signal {int(sig)}" in err
    assert list(tmp_path.iterdir()) == [], "a temporary or partial output survived"


def _dead_pid() -> int:
    done = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True,
                          check=True)
    return int(done.stdout)


def test_stale_temporary_of_a_dead_process_is_removed_at_the_next_write(tmp_path):
    pid = _dead_pid()
    stale_file = tmp_path / f".last.tmp-{pid}-0123abcd.pt"
    stale_file.write_bytes(b"x" * 100)
    stale_dir = tmp_path / f".out.tmp-{pid}-89abcdef"
    stale_dir.mkdir()
    (stale_dir / "frame_00001.png").write_bytes(b"png")
    live = tmp_path / f".last.tmp-{os.getpid()}-fedcba98.pt"  # ours: still being written
    live.write_bytes(b"y")
    other = tmp_path / f".lastly.tmp-{pid}-0123abcd.pt"  # another output's: not ours to judge
    other.write_bytes(b"z")
    save_checkpoint(tmp_path / "last.pt", TransformerNet(width=0.25), step=1)
    assert not stale_file.exists() and live.exists() and other.exists()
    assert remove_stale_temps(tmp_path / "out") == [stale_dir] and not stale_dir.exists()


def test_legacy_temporary_without_pid_is_removed_only_when_old(tmp_path):
    legacy = tmp_path / ".out.tmp-0123abcd.mp4"
    legacy.write_bytes(b"x")
    assert remove_stale_temps(tmp_path / "out.mp4") == [] and legacy.exists()
    old = time.time() - atomic.LEGACY_STALE_SECONDS - 10
    os.utime(legacy, (old, old))
    assert remove_stale_temps(tmp_path / "out.mp4") == [legacy] and not legacy.exists()


@pytest.mark.parametrize("tmp_name, final", [
    (".out.tmp-123-0123abcd.mp4", "out.mp4"), (".out.tmp-0123abcd.mp4", "out.mp4"),
    (".frames.tmp-9-89abcdef", "frames"), ("plain.mp4", "plain.mp4"), (".mp4", ".mp4"),
])
def test_final_name_maps_a_temporary_name_to_its_output(tmp_name, final):
    assert final_name(Path("/x") / tmp_name) == Path("/x") / final


def test_temp_names_carry_the_pid(tmp_path):
    assert temp_beside(tmp_path / "a.png").name.startswith(f".a.tmp-{os.getpid()}-")


def test_rename_is_preceded_by_fsync_of_file_and_followed_by_fsync_of_folder(tmp_path, monkeypatch):
    synced = []
    real = atomic.fsync_path
    monkeypatch.setattr(atomic, "fsync_path", lambda p: (synced.append(Path(p)), real(p)))
    atomic.write_text_atomic(tmp_path / "a.txt", "hi")
    assert synced[0].name.startswith(".a.tmp-") and synced[-1] == tmp_path
    assert (tmp_path / "a.txt").read_text() == "hi"


def test_full_disk_during_torch_save_is_an_os_error_naming_the_checkpoint(tmp_path, monkeypatch):
    def full(obj, f, *a, **k):
        raise RuntimeError("[enforce fail at inline_container.cc:626] . unexpected pos 64 vs 0; "
                           "PytorchStreamWriter failed writing file data/0: file write failed")

    class Statvfs:
        f_bavail, f_frsize = 0, 4096

    monkeypatch.setattr(torch, "save", full)
    monkeypatch.setattr(os, "statvfs", lambda p: Statvfs())
    with pytest.raises(OSError) as info:
        atomic_torch_save({"a": 1}, tmp_path / "last.pt")
    assert info.value.errno == errno.ENOSPC and info.value.filename == str(tmp_path / "last.pt")
    assert list(tmp_path.iterdir()) == []
    line = environment_error_line(info.value)
    assert line.startswith(f"error: {tmp_path / 'last.pt'}: ") and "\n" not in line


def test_full_disk_in_a_file_write_is_an_os_error_naming_the_checkpoint(tmp_path, monkeypatch):
    """The payload goes through a file object, whose write raises ENOSPC without a file name."""
    def full(obj, f, *a, **k):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(torch, "save", full)
    with pytest.raises(OSError) as info:
        atomic_torch_save({"a": 1}, tmp_path / "last.pt")
    assert info.value.errno == errno.ENOSPC and info.value.filename == str(tmp_path / "last.pt")
    assert list(tmp_path.iterdir()) == []
    assert environment_error_line(info.value).startswith(f"error: {tmp_path / 'last.pt'}: No space left on device")


def test_disk_full_message_names_the_output_not_the_hidden_temporary(tmp_path):
    exc = OSError(errno.ENOSPC, "No space left on device", str(tmp_path / ".out.tmp-77-0123abcd.mp4"))
    assert environment_error_line(exc) == (f"error: {tmp_path / 'out.mp4'}: No space left on device "
                                           "(free space or fix permissions, then run again)")


def test_cli_reports_a_full_disk_in_the_middle_of_a_command(tmp_path, monkeypatch, capsys, tiny_model):
    """A write that fails with ENOSPC inside a command: exit 1, one line naming the output, nothing left."""
    from stablestyle.video import sink

    def full(img, path, fmt):
        raise OSError(errno.ENOSPC, "No space left on device", str(path))

    monkeypatch.setattr(sink, "save_pil", full)  # how a sink writes an image
    src = tmp_path / "in.png"
    Image = pytest.importorskip("PIL.Image")
    Image.new("RGB", (32, 32)).save(src)
    assert main(["stylize", str(src), "-o", str(tmp_path / "out.png"), "--model", str(tiny_model), "--quiet"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1] == f"error: {tmp_path / 'out.png'}: No space left on device (free space or fix permissions, " \
                      "then run again)"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.png"]


def _train_args(assets, content_dir, out) -> list[str]:
    return ["train", "--style", str(assets / "styles" / "candy.jpg"), "--content", str(content_dir), "--out", str(out),
            "--steps", "4", "--crop", "32", "--width", "0.25", "--batch", "1", "--seq-len", "2", "--style-size", "32",
            "--workers", "0", "--log-every", "1", "--validate-every", "2", "--sample-every", "4",
            "--checkpoint-every", "2", "--val-frames", "2", "--quiet"]


@pytest.mark.usefixtures("one_thread")
def test_sigterm_stops_training_cleanly_and_the_resumed_run_matches(assets, content_dir, tmp_path, monkeypatch):
    from stablestyle.training import Trainer

    straight, stopped = tmp_path / "straight", tmp_path / "stopped"
    assert main(_train_args(assets, content_dir, straight)) == 0
    original = Trainer.train_step

    def train_step(self, batch):
        metrics = original(self, batch)
        if self.step == 2:
            os.kill(os.getpid(), signal.SIGTERM)  # mid-run: the step completes, last.pt is written, the run stops
        return metrics

    with monkeypatch.context() as patch:
        patch.setattr(Trainer, "train_step", train_step)
        assert main(_train_args(assets, content_dir, stopped)) == 130
    assert read_checkpoint(stopped / "last.pt")["step"] == 2 and not (stopped / "final.pt").exists()
    assert _hidden(stopped) == [] and _hidden(tmp_path) == []
    assert main(["train", "--resume", str(stopped), "--quiet"]) == 0
    got, want = read_checkpoint(stopped / "final.pt"), read_checkpoint(straight / "final.pt")
    assert got["step"] == want["step"] == 4
    for name, value in want["state_dict"].items():
        assert torch.equal(got["state_dict"][name], value), name
    assert _hidden(stopped) == []
