"""``stablestyle webcam``: a video file stands in for the camera; the preview window is faked."""

from __future__ import annotations

import itertools
import logging
from pathlib import Path

import av
import cv2
import numpy as np
import pytest
import torch
from PIL import Image

from stablestyle.checkpoint import load_checkpoint, save_checkpoint
from stablestyle.cli import main
from stablestyle import live
from stablestyle.commands import webcam
from stablestyle.models import TransformerNet
from stablestyle.stylize import stylize_frames
from stablestyle.video import open_source


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory) -> Path:
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("ckpt") / "tiny.pt"
    save_checkpoint(path, TransformerNet(width=0.25), step=1)
    return path


def _read(path: Path) -> list[np.ndarray]:
    with open_source(path) as src:
        return list(src)


def _cmd(ckpt, clip, *extra: str) -> list[str]:
    return ["webcam", "--source", str(clip), "--model", str(ckpt), "--max-size", "64", *extra]


@pytest.mark.parametrize("backend", ["torch", "onnx", "torch --compile"])
def test_records_from_a_video_source(tmp_path, ckpt, bbb_clip, capsys, backend):
    out = tmp_path / "rec.mp4"
    assert main(_cmd(ckpt, bbb_clip, "--no-preview", "--record", str(out), "--max-frames", "4",
                     "--backend", *backend.split())) == 0
    assert "4 frames" in capsys.readouterr().out
    frames = _read(out)
    assert len(frames) == 4 and frames[0].shape == (36, 64, 3)
    # the recording holds the network's frames, not the camera's (the untrained net's noisy output costs H.264
    # ~10 grey levels at this size; network vs camera frames differ by ~70)
    with open_source(bbb_clip, max_size=64) as src:
        inputs = list(itertools.islice(src, 4))
    expected = list(stylize_frames(load_checkpoint(ckpt)[0], inputs))
    for got, want, raw in zip(frames, expected, inputs):
        assert np.abs(got.astype(float) - want).mean() < 15
        assert np.abs(got.astype(float) - raw).mean() > 40


def _x264_subme(path: Path) -> int:
    """libx264 writes its settings into the stream (an SEI message); ``subme`` differs between presets."""
    data = path.read_bytes()
    at = data.index(b"subme=") + len(b"subme=")
    return int(data[at:data.index(b" ", at)])


def test_records_with_a_live_preset_by_default(tmp_path, ckpt, bikes_clip):
    """--record encodes with veryfast (subme=2) unless --preset says otherwise (medium: subme=7)."""
    assert webcam.LIVE_PRESET == "veryfast"
    for extra, subme in (((), 2), (("--preset", "medium"), 7)):
        out = tmp_path / f"rec{subme}.mp4"
        assert main(_cmd(ckpt, bikes_clip, "--no-preview", "--record", str(out), "--max-frames", "2", *extra)) == 0
        assert _x264_subme(out) == subme
    with pytest.raises(SystemExit):
        main(_cmd(ckpt, bikes_clip, "--preset", "warp"))


@pytest.mark.parametrize("native, precision, expected", [
    (True, "auto", "bf16"), (False, "auto", "fp32"), (None, "auto", "fp32"), (True, "fp32", "fp32"),
])
def test_auto_precision_is_bf16_on_a_cpu_with_native_bf16(ckpt, bikes_clip, monkeypatch, caplog, native,
                                                           precision, expected):
    import stablestyle.inference.precision as inference_precision

    monkeypatch.setattr(inference_precision, "cpu_has_native_bf16", lambda: native)
    with caplog.at_level(logging.INFO, logger="stablestyle.commands.webcam"):
        assert main(_cmd(ckpt, bikes_clip, "--no-preview", "--max-frames", "2", "--device", "cpu",
                         "--precision", precision)) == 0
    assert f": torch {expected} on cpu" in caplog.text


def test_preview_off_without_a_display(tmp_path, ckpt, bikes_clip, monkeypatch, caplog):
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    with caplog.at_level(logging.INFO, logger="stablestyle.commands.webcam"):
        assert main(_cmd(ckpt, bikes_clip, "--max-frames", "2")) == 0
    assert "preview off: no DISPLAY" in caplog.text


def test_preview_off_with_a_headless_opencv(ckpt, bikes_clip, monkeypatch, caplog):
    def no_gui(*args):
        raise cv2.error("The function is not implemented. Rebuild the library with GTK+ support")

    monkeypatch.setenv("DISPLAY", ":99")
    monkeypatch.setattr(cv2, "namedWindow", no_gui)
    with caplog.at_level(logging.INFO, logger="stablestyle.commands.webcam"):
        assert main(_cmd(ckpt, bikes_clip, "--max-frames", "2")) == 0
    assert "cannot open windows" in caplog.text


def test_preview_shows_fps_and_q_quits(tmp_path, ckpt, bbb_clip, monkeypatch):
    shown, keys = [], iter([-1, ord("q")])
    monkeypatch.setenv("DISPLAY", ":99")
    monkeypatch.setattr(cv2, "namedWindow", lambda *a: None)
    monkeypatch.setattr(cv2, "imshow", lambda name, img: shown.append(img.copy()))
    monkeypatch.setattr(cv2, "waitKey", lambda delay: next(keys))
    monkeypatch.setattr(cv2, "destroyAllWindows", lambda: None)
    out = tmp_path / "rec.mp4"
    assert main(_cmd(ckpt, bbb_clip, "--record", str(out))) == 0
    assert len(shown) == 2 and shown[0].shape == (36, 64, 3)  # stopped by q on the second frame
    recorded = _read(out)
    assert len(recorded) == 2
    # the preview (BGR) carries the fps text in its top-left corner; the recording does not
    plain = cv2.cvtColor(webcam_frame := recorded[0], cv2.COLOR_RGB2BGR).astype(int)
    corner = (slice(0, 14), slice(0, 40))
    assert np.abs(shown[0][corner].astype(int) - plain[corner]).max() > 100
    assert webcam_frame.dtype == np.uint8


def test_camera_frames_and_ctrl_c_finalises_the_recording(tmp_path, ckpt, bbb_clip, monkeypatch):
    """A fake camera (OpenCV reading a file) that is interrupted on its 4th read."""
    real = cv2.VideoCapture
    opened = []

    class InterruptedCamera:
        def __init__(self, index):
            opened.append(index)
            self.cap, self.reads = real(str(bbb_clip)), 0

        def read(self):
            self.reads += 1
            if self.reads == 4:
                raise KeyboardInterrupt
            return self.cap.read()

        def __getattr__(self, name):
            return getattr(self.cap, name)

    monkeypatch.setattr(cv2, "VideoCapture", InterruptedCamera)
    out = tmp_path / "rec.mp4"
    assert main(["webcam", "--camera", "2", "--model", str(ckpt), "--max-size", "64", "--no-preview",
                 "--record", str(out)]) == 0
    assert opened == [2]
    recorded = _read(out)
    assert len(recorded) == 3 and recorded[0].shape == (36, 64, 3)
    assert [p.name for p in tmp_path.iterdir()] == ["rec.mp4"]  # no temporary file left


def test_source_frame_folder_with_a_bad_frame_is_an_error(tmp_path, ckpt, frames_dir, capsys):
    """Unlike a video damaged part-way (kept, with a warning), a folder's odd frame is the user's to fix."""
    folder = tmp_path / "frames"
    folder.mkdir()
    for p in sorted(frames_dir.glob("*.png")):
        (folder / p.name).write_bytes(p.read_bytes())
    last = sorted(folder.glob("*.png"))[-1]
    Image.fromarray(np.zeros((20, 30, 3), np.uint8)).save(last)  # another size
    out = tmp_path / "rec.mp4"
    assert main(_cmd(ckpt, folder, "--no-preview", "--record", str(out))) == 2
    assert "all frames of a folder (one clip) must have one size" in capsys.readouterr().err
    assert not out.exists()


def test_source_frame_folder(tmp_path, ckpt, frames_dir, capsys):
    out = tmp_path / "rec.mp4"
    assert main(_cmd(ckpt, frames_dir, "--no-preview", "--record", str(out))) == 0
    assert f"5 frames from frame folder {frames_dir}" in capsys.readouterr().out
    assert len(_read(out)) == 5


def _damaged_clip(path: Path, bad_sample: int = 5) -> Path:
    """12 noise frames whose 6th compressed sample is zeroed: decoding fails part-way."""
    import av

    from stablestyle.video import open_sink

    rng = np.random.default_rng(1)
    with open_sink(path, 25) as sink:
        for frame in rng.integers(0, 256, (12, 48, 64, 3), dtype=np.uint8):
            sink.write(frame)
    with av.open(str(path)) as c:
        entries = [(e.pos, e.size) for e in c.streams.video[0].index_entries]
    pos, size = entries[bad_sample]
    data = bytearray(path.read_bytes())
    data[pos:pos + size] = bytes(size)
    path.write_bytes(bytes(data))
    return path


@pytest.mark.parametrize("record", [True, False])
def test_source_that_ends_early_keeps_the_recording_and_warns(tmp_path, ckpt, capsys, caplog, record):
    clip = _damaged_clip(tmp_path / "damaged.mp4")
    out = tmp_path / "rec.mp4"
    extra = ["--record", str(out)] if record else []
    with caplog.at_level(logging.WARNING):
        assert main(_cmd(ckpt, clip, "--no-preview", *extra)) == 0
    captured = capsys.readouterr()
    warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warnings) == 1 and "\n" not in warnings[0], warnings
    assert f"video {clip} ended early at frame " in warnings[0] and " of 12: video is corrupt or truncated" in \
        warnings[0]
    n = int(warnings[0].split("ended early at frame ")[1].split()[0])
    assert 1 <= n <= 5
    assert f"{n} frames from video {clip}" in captured.out and "source ended early" in captured.out
    if record:
        assert f"{out} holds the {n} frames before it" in warnings[0]
        assert len(_read(out)) == n
    else:
        assert not out.exists()


def test_draw_fps_writes_text():
    img = np.zeros((90, 160, 3), np.uint8)
    live.draw_fps(cv2, img, 12.3)
    assert img[:30, :80].max() == 255 and img[40:].max() == 0


@pytest.mark.parametrize("extra, match", [
    (["--camera", "97"], "cannot open camera 97"),
    (["--camera", "-1"], "--camera must be a camera index from 0 to 199 (0 is the first camera), got -1"),
    (["--camera", "99999999999"], "--camera must be a camera index from 0 to 199"),
    (["--camera", "200"], "--camera must be a camera index from 0 to 199"),
    (["--source", "{tmp}/nope.mp4"], "does not exist"),
    (["--source", "{tmp}/cut.mp4"], "may be truncated or incomplete"),
    (["--source", "{clip}", "--record", "{tmp}/r.png"], "ending in .mp4"),
    (["--source", "{clip}", "--record", "{tmp}/exists.mp4"], "already exists"),
    (["--source", "{clip}", "--max-size", "0"], "--max-size must be a whole number of pixels >= 16"),
    (["--source", "{clip}", "--max-size", "8"], "--max-size must be a whole number of pixels >= 16"),
    (["--source", "{clip}", "--model", "{tmp}/m.onnx"], "run it with --backend onnx"),
    (["--source", "{clip}", "--backend", "onnx", "--compile"], "--compile and --cuda-graphs are for --backend torch"),
    (["--source", "{clip}", "--backend", "onnx", "--model", "{tmp}/m.onnx", "--edge-margin", "8"],
     "--edge-margin is fixed inside the exported"),
    (["--source", "{clip}", "--edge-margin", "300"], "--edge-margin: edge margin must be a whole number of pixels"),
])
def test_user_errors(tmp_path, ckpt, bbb_clip, capfd, extra, match):
    (tmp_path / "exists.mp4").write_bytes(b"keep")
    if "{tmp}/cut.mp4" in extra:  # the first half of a file whose index comes last (as PyAV writes by default)
        with av.open(str(tmp_path / "cut.mp4"), "w") as container:
            stream = container.add_stream("libx264", rate=25)
            stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
            for i in range(8):
                frame = av.VideoFrame.from_ndarray(np.full((48, 64, 3), 30 * i, np.uint8), format="rgb24")
                for packet in (*stream.encode(frame), *(stream.encode(None) if i == 7 else ())):
                    container.mux(packet)
        data = (tmp_path / "cut.mp4").read_bytes()
        (tmp_path / "cut.mp4").write_bytes(data[: len(data) // 2])
    extra = [e.format(tmp=tmp_path, clip=bbb_clip) for e in extra]
    args = ["webcam", "--model", str(ckpt), "--no-preview", *extra]
    assert main(args) == 2
    err = capfd.readouterr().err
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and match in errors[0] and "Traceback" not in err and "WARN" not in err
    assert sorted(p.name for p in tmp_path.iterdir() if p.name != "cut.mp4") == ["exists.mp4"]
    assert (tmp_path / "exists.mp4").read_bytes() == b"keep"
