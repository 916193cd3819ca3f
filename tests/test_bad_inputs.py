"""Bad-input battery: every command, given a hostile or broken input, answers with one line.

Each case runs ``stablestyle.cli.main`` in-process and asserts: the exit status, exactly one
``error: ...`` line that names the offending file (or option) and the problem, no traceback,
nothing new under the output name or hidden beside it, and the inputs byte-for-byte untouched.
The cases double as the table in docs/RELIABILITY.md.
"""

from __future__ import annotations

import hashlib
import io
import os
import pickle
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch
from PIL import Image, PngImagePlugin

from stablestyle.checkpoint import FORMAT, FORMAT_VERSION, save_checkpoint
from stablestyle.cli import main
from stablestyle.models import TransformerNet

pytestmark = pytest.mark.usefixtures("one_thread")

MARKER = "PWNED"


class CreatesAFile:
    """Unpickling this with a full pickle creates ``path`` (``open(path, "w")``): the payload of the attack."""

    def __init__(self, path: Path) -> None:
        self.path = str(path)

    def __reduce__(self):
        return (open, (self.path, "w"))


# ----------------------------------------------------------------------------- input makers

def rgb_png(path: Path, size=(24, 20)) -> Path:
    Image.new("RGB", size, (200, 120, 40)).save(path)
    return path


def ztxt_bomb(path: Path) -> Path:
    """An RGB PNG whose zTXt chunk inflates past Pillow's text limit (a few KB on disk)."""
    info = PngImagePlugin.PngInfo()
    info.add_text("Comment", "A" * (PngImagePlugin.MAX_TEXT_CHUNK + 1024), zip=True)
    Image.new("RGB", (24, 20), (10, 200, 30)).save(path, pnginfo=info)
    return path


def iccp_bomb(path: Path) -> Path:
    """An RGB PNG whose iCCP profile inflates past Pillow's text limit."""
    Image.new("RGB", (24, 20), (10, 200, 30)).save(path, icc_profile=b"\0" * (PngImagePlugin.MAX_TEXT_CHUNK + 1024))
    return path


def net_payload(**changes) -> dict:
    torch.manual_seed(0)
    net = TransformerNet(width=0.25, recurrent=True)
    payload = {"format": FORMAT, "format_version": FORMAT_VERSION, "version": "0", "model": net.config(),
               "state_dict": net.state_dict(), "config": {}, "style_sha256": None, "step": 1, "metrics": {}}
    payload.update(changes)
    return payload


def evil_checkpoint(path: Path, marker: Path) -> Path:
    """A checkpoint that looks right, but unpickling it with ``weights_only=False`` creates ``marker``."""
    torch.save(net_payload(metrics={"x": CreatesAFile(marker)}), path)
    return path


def evil_plain_pickle(path: Path, marker: Path) -> Path:
    """The same attack as a plain (non-zip) pickle, which ``torch.load`` also reads."""
    with open(path, "wb") as fh:
        pickle.dump(net_payload(metrics={"x": CreatesAFile(marker)}), fh, protocol=2)
    return path


def fifo(path: Path) -> Path:
    os.mkfifo(path)
    return path


# ----------------------------------------------------------------------------- the harness

@dataclass
class Case:
    id: str
    make: Callable[[Path, dict], list[str]]  # builds the inputs in a folder, returns the argv
    says: tuple[str, ...]  # fragments the error line must contain (``{dir}`` is the case folder)
    status: int = 2


def snapshot(folder: Path) -> dict[str, str]:
    """Relative path -> sha256 of every file under ``folder`` (folders as ``<dir>``, pipes as ``<fifo>``)."""
    out = {}
    for p in sorted(folder.rglob("*")):
        rel = str(p.relative_to(folder))
        if p.is_dir():
            out[rel] = "<dir>"
        elif not p.is_file():
            out[rel] = "<special>"
        else:
            out[rel] = hashlib.sha256(p.read_bytes()).hexdigest()
    return out


def run_case(case: Case, tmp_path: Path, capsys, clips: dict) -> None:
    work = tmp_path / "w"
    work.mkdir()
    argv = case.make(work, clips)
    before = snapshot(work)
    capsys.readouterr()
    status = main(argv)
    err = capsys.readouterr().err
    assert status == case.status, err
    assert "Traceback" not in err, err
    lines = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(lines) == 1, err
    for fragment in case.says:
        assert fragment.replace("{dir}", str(work)) in lines[0], lines[0]
    assert snapshot(work) == before, "files appeared, vanished or changed"
    assert not (work / MARKER).exists()


def stylize(*args: str) -> list[str]:
    return ["stylize", *args, "--quiet"]


def _model_case(name: str, build: Callable[[Path], None], *says: str) -> Case:
    """A ``stylize --model`` case for a checkpoint that ``build`` writes to ``bad.pt``."""
    def make(d: Path, clips: dict) -> list[str]:
        build(d / "bad.pt")
        return stylize(str(rgb_png(d / "in.png")), "-o", str(d / "out.mp4"), "--model", str(d / "bad.pt"))
    return Case(name, make, (f"{{dir}}/bad.pt", *says))


def _evil_run_folder(d: Path, clips: dict) -> list[str]:
    (d / "run").mkdir()
    evil_checkpoint(d / "run" / "final.pt", d / MARKER)
    return stylize(str(rgb_png(d / "in.png")), "-o", str(d / "out.png"), "--model", str(d / "run"))


def _evil_resume(d: Path, clips: dict) -> list[str]:
    from stablestyle.training import TrainConfig, save_config

    run = d / "run"
    run.mkdir()
    rgb_png(d / "style.png", (32, 32))
    (d / "content").mkdir()
    for i in range(3):
        rgb_png(d / "content" / f"c{i}.png", (40, 40))
    config = TrainConfig(style=str(d / "style.png"), content=[str(d / "content")], out=str(run), steps=2, crop=32,
                         width=0.25, batch=1, seq_len=2, style_size=32, num_workers=0, val_frames=2)
    save_config(run / "config.yaml", config)
    evil_checkpoint(run / "last.pt", d / MARKER)
    return ["train", "--resume", str(run), "--quiet"]


def _big_make_clip(d: Path, clips: dict) -> list[str]:
    return ["make-clip", str(rgb_png(d / "bg.png")), "-o", str(d / "clip"), "--frames", "3000", "--size",
            "1920x1080", "--quiet"]


CASES = [
    # 1. checkpoints that would run code when unpickled, through every command that takes a model
    Case("evil-stylize-model", lambda d, c: stylize(str(rgb_png(d / "in.png")), "-o", str(d / "out.png"), "--model",
                                                   str(evil_checkpoint(d / "evil.pt", d / MARKER))),
         ("{dir}/evil.pt", "refused unrun")),
    Case("evil-stylize-plain-pickle", lambda d, c: stylize(str(rgb_png(d / "in.png")), "-o", str(d / "out.png"),
                                                          "--model", str(evil_plain_pickle(d / "evil.pt", d / MARKER))),
         ("{dir}/evil.pt", "refused unrun")),
    Case("evil-stylize-run-folder", _evil_run_folder, ("{dir}/run/final.pt", "refused unrun")),
    Case("evil-export", lambda d, c: ["export", str(evil_checkpoint(d / "evil.pt", d / MARKER)), "--onnx",
                                      str(d / "out.onnx")], ("{dir}/evil.pt", "refused unrun")),
    Case("evil-evaluate-model", lambda d, c: ["evaluate", str(c["frames"]), "-o", str(d / "report"), "--model",
                                              f"evil={evil_checkpoint(d / 'evil.pt', d / MARKER)}", "--no-videos",
                                              "--quiet"], ("{dir}/evil.pt", "refused unrun")),
    Case("evil-webcam", lambda d, c: ["webcam", "--source", str(c["video"]), "--model",
                                      str(evil_checkpoint(d / "evil.pt", d / MARKER)), "--no-preview"],
         ("{dir}/evil.pt", "refused unrun")),
    Case("evil-demo", lambda d, c: ["demo", "--input", str(c["frames"]), "-o", str(d / "demo"), "--model",
                                    str(evil_checkpoint(d / "evil.pt", d / MARKER)), "--quiet"],
         ("{dir}/evil.pt", "refused unrun")),
    Case("evil-train-resume", _evil_resume, ("{dir}/run/last.pt", "refused unrun")),
    # 2. checkpoints with impossible settings or weights
    _model_case("ckpt-width-zero", lambda p: torch.save(net_payload(model={"width": 0, "recurrent": True}), p),
                "width 0"),
    _model_case("ckpt-width-negative", lambda p: torch.save(net_payload(model={"width": -1.0, "recurrent": True}), p),
                "width -1.0"),
    _model_case("ckpt-width-string", lambda p: torch.save(net_payload(model={"width": "wide", "recurrent": True}), p),
                "width 'wide'"),
    _model_case("ckpt-width-huge", lambda p: torch.save(net_payload(model={"width": 1e6, "recurrent": True}), p),
                "width 1000000.0"),
    _model_case("ckpt-recurrent-string", lambda p: torch.save(net_payload(model={"width": 0.25, "recurrent": "yes"}),
                                                              p), "recurrent='yes'"),
    _model_case("ckpt-nan-weights", lambda p: torch.save(net_payload(state_dict={
        k: torch.full_like(v, float("nan")) if v.is_floating_point() else v
        for k, v in net_payload()["state_dict"].items()}), p), "NaN or infinite"),
    _model_case("ckpt-truncated", lambda p: p.write_bytes(_saved_bytes()[:300]), "not a stablestyle checkpoint"),
    _model_case("ckpt-empty", lambda p: p.write_bytes(b""), "not a stablestyle checkpoint"),
    _model_case("ckpt-not-a-dict", lambda p: torch.save([1, 2, 3], p), "not a stablestyle checkpoint"),
    Case("ckpt-fifo", lambda d, c: stylize(str(rgb_png(d / "in.png")), "-o", str(d / "out.png"), "--model",
                                           str(fifo(d / "pipe.pt"))), ("{dir}/pipe.pt", "named pipe")),
    # 3. images whose metadata inflates past Pillow's limit, through every reader
    Case("ztxt-stylize-input", lambda d, c: stylize(str(ztxt_bomb(d / "in.png")), "-o", str(d / "out.png")),
         ("{dir}/in.png", "not an image")),
    Case("iccp-stylize-input", lambda d, c: stylize(str(iccp_bomb(d / "in.png")), "-o", str(d / "out.png")),
         ("{dir}/in.png", "not an image")),
    Case("ztxt-frame-folder", lambda d, c: stylize(str(_bomb_folder(d)), "-o", str(d / "out.mp4")),
         ("{dir}/frames/frame_0001.png", "not an image")),
    Case("ztxt-gatys-style", lambda d, c: stylize(str(rgb_png(d / "in.png")), "-o", str(d / "out.png"), "--method",
                                                  "gatys", "--style", str(ztxt_bomb(d / "style.png")),
                                                  "--iterations", "1"), ("{dir}/style.png", "not an image")),
    Case("ztxt-analyze-style", lambda d, c: ["analyze-style", str(ztxt_bomb(d / "style.png")), "--size", "32"],
         ("{dir}/style.png", "not an image")),
    Case("iccp-make-clip", lambda d, c: ["make-clip", str(iccp_bomb(d / "bg.png")), "-o", str(d / "clip"),
                                         "--frames", "2", "--size", "32x32", "--quiet"],
         ("{dir}/bg.png", "not an image")),
    # 4. sizes without sense
    Case("analyze-style-size-huge", lambda d, c: ["analyze-style", str(rgb_png(d / "s.png")), "--size", "1000000"],
         ("--size", "1000000")),
    Case("export-height-huge", lambda d, c: ["export", "scream-small", "--onnx", str(d / "out.onnx"), "--height",
                                             "1000000"], ("height", "1000000")),
    Case("export-width-zero", lambda d, c: ["export", "scream-small", "--onnx", str(d / "out.onnx"), "--width", "0"],
         ("width", "0")),
    Case("make-clip-too-big", _big_make_clip, ("--frames", "GiB")),
    Case("train-style-size-huge", lambda d, c: ["train", "--style", str(rgb_png(d / "s.png")), "--content",
                                                str(rgb_png(d / "c.png")), "--out", str(d / "run"),
                                                "--style-size", "1000000", "--quiet"], ("style_size", "1000000")),
    # 5. paths that are not what they seem
    Case("input-fifo", lambda d, c: stylize(str(fifo(d / "in.mp4")), "-o", str(d / "out.mp4")),
         ("{dir}/in.mp4", "named pipe")),
    Case("output-only-suffix", lambda d, c: stylize(str(rgb_png(d / "in.png")), "-o", str(d / ".mp4")),
         ("{dir}/.mp4", "no name")),
    Case("input-missing", lambda d, c: stylize(str(d / "nope.mp4"), "-o", str(d / "out.mp4")),
         ("{dir}/nope.mp4", "does not exist")),
    Case("input-empty-folder", lambda d, c: stylize(str(_mkdir(d / "empty")), "-o", str(d / "out.mp4")),
         ("{dir}/empty", "holds no frames")),
    Case("input-not-a-video", lambda d, c: stylize(str(_write(d / "in.mp4", b"\0" * 64)), "-o", str(d / "out.mp4")),
         ("{dir}/in.mp4",)),
    Case("analyze-style-fifo", lambda d, c: ["analyze-style", str(fifo(d / "s.png")), "--size", "32"],
         ("{dir}/s.png", "named pipe")),
]


def _saved_bytes() -> bytes:
    buf = io.BytesIO()
    torch.save(net_payload(), buf)
    return buf.getvalue()


def _mkdir(path: Path) -> Path:
    path.mkdir()
    return path


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def _bomb_folder(d: Path) -> Path:
    folder = _mkdir(d / "frames")
    rgb_png(folder / "frame_0000.png")
    ztxt_bomb(folder / "frame_0001.png")
    return folder


@pytest.fixture(scope="module")
def clips(frames_dir, bikes_clip) -> dict:
    return {"frames": frames_dir, "video": bikes_clip}


def test_battery_has_at_least_30_cases():
    assert len(CASES) >= 30 and len({c.id for c in CASES}) == len(CASES)


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input_is_one_line_and_leaves_no_trace(case, tmp_path, capsys, clips):
    run_case(case, tmp_path, capsys, clips)


def test_the_attack_works_without_the_safe_loader(tmp_path):
    """The payload is real: a full unpickle creates the file (so the cases above prove something)."""
    evil_checkpoint(tmp_path / "evil.pt", tmp_path / MARKER)
    torch.load(tmp_path / "evil.pt", weights_only=False)
    assert (tmp_path / MARKER).exists()


def test_bomb_images_are_small_on_disk(tmp_path):
    assert ztxt_bomb(tmp_path / "a.png").stat().st_size < 10_000
    assert zlib.compress(b"A") and iccp_bomb(tmp_path / "b.png").stat().st_size < 10_000
