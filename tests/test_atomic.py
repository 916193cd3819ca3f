"""Atomic outputs: nothing half-written under a final name, nothing replaced that is not ours."""

from __future__ import annotations

import errno
from pathlib import Path

import pytest

from stablestyle.atomic import atomic_path, check_output_folder, staged_folder, temp_beside, write_text_atomic
from stablestyle.cli import main
from stablestyle.commands import models as models_command
from stablestyle.errors import UserError


def _names(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def test_temp_beside_keeps_suffix_and_hides_the_name(tmp_path):
    tmp = temp_beside(tmp_path / "out.mp4")
    assert tmp.parent == tmp_path and tmp.name.startswith(".out.tmp-") and tmp.suffix == ".mp4"
    assert tmp.is_file()
    assert temp_beside(tmp_path / "frames", folder=True).is_dir()


def test_temp_beside_missing_folder_is_a_user_error(tmp_path):
    with pytest.raises(UserError, match="does not exist"):
        temp_beside(tmp_path / "nope" / "out.mp4")


def test_temp_beside_unwritable_place_is_a_user_error(tmp_path, monkeypatch):
    def refuse(self, *args, **kwargs):
        raise PermissionError(errno.EACCES, "Permission denied", str(self))

    monkeypatch.setattr(Path, "touch", refuse)
    with pytest.raises(UserError, match=r"cannot write .*out\.png: Permission denied"):
        temp_beside(tmp_path / "out.png")


def test_atomic_path_replaces_only_on_success(tmp_path):
    target = tmp_path / "a.txt"
    target.write_text("old")
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            tmp.write_text("half")
            raise RuntimeError("crash part-way")
    assert target.read_text() == "old" and _names(tmp_path) == ["a.txt"]
    write_text_atomic(target, "new")
    assert target.read_text() == "new" and _names(tmp_path) == ["a.txt"]


def test_staged_folder_publishes_or_cleans_up(tmp_path):
    out = tmp_path / "run"
    with pytest.raises(RuntimeError):
        with staged_folder(out) as tmp:
            (tmp / "x").write_text("1")
            raise RuntimeError("crash")
    assert _names(tmp_path) == []
    with staged_folder(out) as tmp:
        (tmp / "x").write_text("1")
    assert _names(out) == ["x"]
    with pytest.raises(UserError, match="--overwrite"):
        with staged_folder(out):
            pass
    with staged_folder(out, overwrite=True) as tmp:
        (tmp / "y").write_text("2")
    assert _names(out) == ["y"] and _names(tmp_path) == ["run"]


@pytest.mark.parametrize("setup, kwargs, match", [
    (lambda d: None, {}, None),
    (lambda d: d.mkdir(), {}, "already exists"),
    (lambda d: d.mkdir(), {"overwrite": True}, None),
    (lambda d: (d.mkdir(), (d / "mine.txt").write_text("x")), {"overwrite": True}, "not a report folder"),
    (lambda d: (d.mkdir(), (d / "report.json").write_text("{}")), {"overwrite": True}, None),
    (lambda d: d.write_text("file"), {"overwrite": True}, "is a file"),
])
def test_check_output_folder(tmp_path, setup, kwargs, match):
    out = tmp_path / "out"
    setup(out)
    call = lambda: check_output_folder(out, marker="report.json", what="a report folder", noun="report",  # noqa: E731
                                       **kwargs)
    if match is None:
        assert call() == out
    else:
        with pytest.raises(UserError, match=match):
            call()


def test_check_output_folder_never_swallows_an_input(tmp_path):
    clip = tmp_path / "out" / "clip"
    clip.mkdir(parents=True)
    for out in (tmp_path / "out", clip):
        with pytest.raises(UserError, match="is or contains the input"):
            check_output_folder(out, overwrite=True, marker="report.json", what="a report folder",
                                noun="report", inputs=[clip])


def test_cli_reports_a_full_disk_in_one_line(monkeypatch, capsys):
    def full(args):
        raise OSError(errno.ENOSPC, "No space left on device", "/data/out.mp4")

    monkeypatch.setattr(models_command, "run", full)
    assert main(["models"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "error: /data/out.mp4: No space left on device" in err


def test_cli_lets_other_os_errors_through(monkeypatch):
    def bug(args):
        raise OSError(errno.EBADF, "Bad file descriptor")

    monkeypatch.setattr(models_command, "run", bug)
    with pytest.raises(OSError):
        main(["models"])


def test_cli_broken_pipe_is_not_reported_as_a_disk_error(monkeypatch, capsys):
    def piped(args):
        raise BrokenPipeError(errno.EPIPE, "Broken pipe")

    silenced = []
    monkeypatch.setattr(models_command, "run", piped)
    monkeypatch.setattr("stablestyle.cli.os.dup2", lambda fd, fd2: silenced.append(fd2))
    monkeypatch.setattr("sys.stdout.fileno", lambda: 1, raising=False)
    assert main(["models"]) == 141
    assert silenced == [1] and capsys.readouterr().err == ""
