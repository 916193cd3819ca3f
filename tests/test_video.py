"""Tests for stablestyle.video: conversions, sources, sinks, atomic writes and every user error."""

from __future__ import annotations

import os
import warnings
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np
import pytest
import torch
from PIL import Image

from stablestyle.errors import UserError
from stablestyle.paths import sample_video
from stablestyle.video import (
    check_output_path,
    frame_rate,
    is_numbered_sequence,
    natural_key,
    open_sink,
    open_source,
    read_image,
    resized_size,
    rgb_to_yuv420p,
    to_tensor,
    to_uint8,
    write_image,
)


def smooth_frames(n: int, w: int = 96, h: int = 64) -> np.ndarray:
    """``(n, h, w, 3)`` uint8: smooth colour gradients that drift slowly (easy for H.264 at crf 18)."""
    y, x = np.mgrid[0:h, 0:w].astype(np.float64)
    frames = []
    for t in range(n):
        r = 128 + 100 * np.sin(2 * np.pi * (x + 2 * t) / w)
        g = 128 + 100 * np.cos(2 * np.pi * y / h)
        b = 40 + 150 * (x + y) / (w + h)
        frames.append(np.stack([r, g, b], -1))
    return np.clip(np.round(frames), 0, 255).astype(np.uint8)


def write_video(path: Path, frames: np.ndarray, fps=25, **kwargs) -> Path:
    with open_sink(path, fps, **kwargs) as sink:
        for f in frames:
            sink.write(f)
    return path


def read_all(path, **kwargs) -> tuple[np.ndarray, object]:
    with open_source(path, **kwargs) as src:
        return np.stack(list(src)), src


def listing(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def video_streams(path: Path) -> dict[str, int]:
    with av.open(str(path)) as c:
        return {"video": len(c.streams.video), "audio": len(c.streams.audio)}


# ----------------------------------------------------------------------------- conversions

def test_to_tensor_shapes_values_and_no_mutation():
    frame = np.arange(4 * 5 * 3, dtype=np.uint8).reshape(4, 5, 3)
    before = frame.copy()
    t = to_tensor(frame)
    assert t.shape == (1, 3, 4, 5) and t.dtype == torch.float32
    assert torch.equal(t[0, 1], torch.from_numpy(frame[..., 1].astype(np.float32) / 255))
    assert np.array_equal(frame, before)
    clip = np.stack([frame, 255 - frame])
    assert to_tensor(clip).shape == (2, 3, 4, 5)
    assert torch.equal(to_tensor([frame, 255 - frame]), to_tensor(clip))
    assert to_tensor(frame, dtype=torch.float64).dtype == torch.float64


def test_to_tensor_read_only_input_without_warning():
    frame = np.full((4, 4, 3), 255, np.uint8)
    frame.flags.writeable = False
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert to_tensor(frame).max().item() == 1.0


@pytest.mark.parametrize("bad", [np.zeros((4, 4, 3), np.float32), np.zeros((4, 4), np.uint8),
                                 np.zeros((4, 4, 4), np.uint8)])
def test_to_tensor_rejects_non_rgb_uint8(bad):
    with pytest.raises(ValueError):
        to_tensor(bad)


@pytest.mark.parametrize("dtype,tol", [(torch.float64, 0), (torch.float32, 0), (torch.float16, 0),
                                       (torch.bfloat16, 1)])
def test_uint8_round_trip_every_level(dtype, tol):
    levels = np.arange(256, dtype=np.uint8)
    frame = np.stack([levels, levels[::-1], levels], -1).reshape(16, 16, 3)
    back = to_uint8(to_tensor(frame).to(dtype))
    assert back.dtype == np.uint8 and back.shape == (16, 16, 3)
    assert np.abs(back.astype(int) - frame).max() <= tol


def test_to_uint8_clamps_rounds_and_maps_nan_to_zero():
    values = torch.tensor([-0.5, 0.0, 0.4 / 255, 0.6 / 255, 127.5 / 255 - 1e-4, 1.0, 1.7, float("nan")])
    image = values.view(1, 1, 8).expand(3, 1, 8).clone().requires_grad_(True)
    out = to_uint8(image)
    assert out.shape == (1, 8, 3)
    assert out[0, :, 0].tolist() == [0, 0, 0, 1, 127, 255, 255, 0]


@pytest.mark.parametrize("shape", [(2, 3, 4, 4), (4, 4, 3), (1, 1, 4, 4), (3, 4)])
def test_to_uint8_rejects_other_shapes(shape):
    with pytest.raises(ValueError):
        to_uint8(torch.zeros(shape))


@pytest.mark.parametrize("size,max_size,expected", [
    ((1280, 720), 160, (160, 90)), ((640, 272), 160, (160, 68)), ((91, 161), 100, (57, 100)),
    ((100, 50), 200, (100, 50)), ((100, 50), None, (100, 50)), ((100, 50), 100, (100, 50)),
])
def test_resized_size(size, max_size, expected):
    assert resized_size(size, max_size) == expected


def test_natural_key_orders_numbers_numerically():
    names = ["frame_10.png", "frame_2.png", "Frame_1.png", "frame_0009.png"]
    assert sorted(names, key=natural_key) == ["Frame_1.png", "frame_2.png", "frame_0009.png", "frame_10.png"]


@pytest.mark.parametrize("fps,expected", [
    (25, Fraction(25)), (25.0, Fraction(25)), (29.97, Fraction(30000, 1001)),
    (30000 / 1001, Fraction(30000, 1001)), (23.976, Fraction(24000, 1001)), (59.94, Fraction(60000, 1001)),
    (Fraction(30000, 1001), Fraction(30000, 1001)), (12.5, Fraction(25, 2)), (30, Fraction(30)), (1, Fraction(1)),
])
def test_frame_rate_is_exact(fps, expected):
    assert frame_rate(fps) == expected


@pytest.mark.parametrize("fps", [0, -25, float("nan"), float("inf"), "25", True])
def test_frame_rate_rejects_nonsense(fps):
    with pytest.raises(UserError, match="frame rate"):
        frame_rate(fps)


# ----------------------------------------------------------------------------- images

def test_write_image_read_image_round_trip_png(tmp_path):
    img = smooth_frames(1, 33, 17)[0]
    write_image(tmp_path / "a.png", img)
    assert np.array_equal(read_image(tmp_path / "a.png"), img)
    assert listing(tmp_path) == ["a.png"]
    write_image(tmp_path / "a.png", 255 - img)  # write_image replaces; commands check first
    assert np.array_equal(read_image(tmp_path / "a.png"), 255 - img)
    write_image(tmp_path / "b.jpg", img)
    assert np.abs(read_image(tmp_path / "b.jpg").astype(int) - img).mean() < 3
    assert listing(tmp_path) == ["a.png", "b.jpg"]


def test_write_image_errors(tmp_path):
    with pytest.raises(UserError, match="does not exist"):
        write_image(tmp_path / "missing" / "a.png", np.zeros((20, 20, 3), np.uint8))
    with pytest.raises(ValueError):
        write_image(tmp_path / "a.png", np.zeros((20, 20, 3), np.float32))
    with pytest.raises(UserError, match="unknown image type"):
        write_image(tmp_path / "a.gifx", np.zeros((20, 20, 3), np.uint8))
    assert listing(tmp_path) == []


def test_read_image_applies_exif_orientation(tmp_path):
    img = np.zeros((40, 60, 3), np.uint8)
    img[:20, :30] = (255, 0, 0)  # red top-left quadrant as stored
    exif = Image.Exif()
    exif[0x0112] = 6  # display = stored image rotated 90 degrees clockwise
    Image.fromarray(img).save(tmp_path / "rot.jpg", exif=exif, quality=95)
    out = read_image(tmp_path / "rot.jpg")
    assert out.shape == (60, 40, 3)
    assert out[:30, 20:, 0].mean() > 200 and out[:30, :20, 0].mean() < 50  # red is now top-right


@pytest.mark.parametrize("mode,what", [("RGBA", "alpha"), ("LA", "alpha"), ("L", "single channel"),
                                       ("1", "single channel"), ("I;16", "single channel"),
                                       ("CMYK", "colour mode")])
def test_read_image_rejects_non_rgb_with_conversion_hint(tmp_path, mode, what):
    path = tmp_path / ("img.jpg" if mode == "CMYK" else "img.png")
    Image.new(mode, (20, 20)).save(path)
    with pytest.raises(UserError, match=what) as info:
        read_image(path)
    assert "must be RGB" in str(info.value) and "convert('RGB')" in str(info.value) and str(path) in str(info.value)


def test_read_image_palette(tmp_path):
    rgb = Image.fromarray(smooth_frames(1, 20, 20)[0])
    pal = rgb.quantize(16)
    pal.save(tmp_path / "p.png")
    assert np.array_equal(read_image(tmp_path / "p.png"), np.array(pal.convert("RGB")))
    pal.info["transparency"] = 0
    pal.save(tmp_path / "pt.png", transparency=0)
    with pytest.raises(UserError, match="alpha"):
        read_image(tmp_path / "pt.png")


@pytest.mark.parametrize("size,ok", [((15, 40), False), ((40, 15), False), ((16, 16), True)])
def test_read_image_minimum_size(tmp_path, size, ok):
    Image.new("RGB", size).save(tmp_path / "s.png")
    if ok:
        assert read_image(tmp_path / "s.png").shape == (size[1], size[0], 3)
    else:
        with pytest.raises(UserError, match="at least 16"):
            read_image(tmp_path / "s.png")


def test_read_image_bad_paths(tmp_path):
    (tmp_path / "text.png").write_text("not an image")
    with pytest.raises(UserError, match="text.png"):
        read_image(tmp_path / "text.png")
    with pytest.raises(UserError, match="does not exist"):
        read_image(tmp_path / "none.png")
    with pytest.raises(UserError, match="folder"):
        read_image(tmp_path)


# ----------------------------------------------------------------------------- sources

def test_source_video_with_audio(bbb_clip):
    frames, src = read_all(bbb_clip)
    assert (src.kind, src.fps, src.rate, src.size, src.num_frames, src.has_audio) == \
        ("video", 25.0, Fraction(25), (160, 90), 8, True)
    assert frames.shape == (8, 90, 160, 3) and frames.dtype == np.uint8
    assert frames.std() > 20  # real picture content, not a blank frame


def test_source_video_iterates_again_and_streams(bikes_clip):
    with open_source(bikes_clip) as src:
        assert (src.kind, src.size, src.has_audio, src.num_frames) == ("video", (160, 68), False, 8)
        it = iter(src)
        first = next(it)
        del it  # abandoned part-way: the next iteration starts again from the first frame
        again = list(src)
    assert len(again) == 8 and np.array_equal(again[0], first)
    with pytest.raises(ValueError, match="closed"):
        iter(src)
    with open_source(bikes_clip) as src:
        paused = iter(src)
        next(paused)
    with pytest.raises(ValueError, match="closed during iteration"):
        next(paused)


def test_source_frames_folder_and_fps(frames_dir):
    frames, src = read_all(frames_dir)
    assert (src.kind, src.fps, src.size, src.num_frames, src.has_audio) == ("frames", 25.0, (160, 68), 5, False)
    assert frames.shape == (5, 68, 160, 3)
    assert open_source(frames_dir, fps=12).fps == 12.0
    assert open_source(frames_dir, fps=29.97).rate == Fraction(30000, 1001)


def test_source_fps_override_for_video(bikes_clip):
    with open_source(bikes_clip, fps=10) as src:
        assert src.fps == 10.0


def test_source_single_image(tmp_path):
    img = smooth_frames(1, 40, 30)[0]
    write_image(tmp_path / "one.png", img)
    frames, src = read_all(tmp_path / "one.png", fps=5)
    assert (src.kind, src.num_frames, src.size, src.fps) == ("image", 1, (40, 30), 5.0)
    assert np.array_equal(frames[0], img)


def test_source_max_size_area_resize(tmp_path):
    img = smooth_frames(1, 200, 100)[0]
    write_image(tmp_path / "big.png", img)
    frames, src = read_all(tmp_path / "big.png", max_size=50)
    assert src.size == (50, 25) and frames.shape == (1, 25, 50, 3)
    assert np.array_equal(frames[0], cv2.resize(img, (50, 25), interpolation=cv2.INTER_AREA))
    assert open_source(tmp_path / "big.png", max_size=1000).size == (200, 100)  # never enlarged


def test_source_max_size_on_video_and_frames(bbb_clip, frames_dir):
    frames, src = read_all(bbb_clip, max_size=64)
    assert src.size == (64, 36) and frames.shape == (8, 36, 64, 3)
    assert open_source(frames_dir, max_size=80).size == (80, 34)


def test_source_frames_folder_natural_sort(tmp_path):
    for index in (10, 2, 1):
        write_image(tmp_path / f"frame_{index}.png", np.full((20, 20, 3), index, np.uint8))
    (tmp_path / "notes.txt").write_text("ignored")
    write_image(tmp_path / ".hidden.png", np.zeros((20, 20, 3), np.uint8))
    frames, src = read_all(tmp_path)
    assert src.num_frames == 3
    assert [int(f[0, 0, 0]) for f in frames] == [1, 2, 10]


@pytest.mark.parametrize("names, expected", [
    (["frame_0001.png", "frame_0002.png", "frame_0010.png"], True),
    (["00001.jpg", "00002.jpg"], True),
    (["shot2_frame_1.png", "shot2_frame_2.png"], True),
    (["frame_1_left.png", "frame_2_left.png"], True),
    (["only.jpg"], True),
    (["beach.jpg", "cat.jpg"], False),
    (["IMG_1.jpg", "DSC_2.jpg"], False),
    (["frame_0001.png", "frame_0002.jpg"], False),
    (["frame_0001.png", "notes.png"], False),
])
def test_is_numbered_sequence(names, expected):
    assert is_numbered_sequence(names) is expected


def test_source_frames_folder_mismatched_size(tmp_path):
    write_image(tmp_path / "f1.png", np.zeros((20, 20, 3), np.uint8))
    write_image(tmp_path / "f2.png", np.zeros((20, 24, 3), np.uint8))
    with pytest.raises(UserError, match="f2.png"):
        read_all(tmp_path)


def test_source_frames_folder_with_alpha_frame(tmp_path):
    write_image(tmp_path / "f1.png", np.zeros((20, 20, 3), np.uint8))
    Image.new("RGBA", (20, 20)).save(tmp_path / "f2.png")
    with pytest.raises(UserError, match="f2.png.*alpha.*RGB"):
        read_all(tmp_path)


def test_source_rotated_video_is_displayed_upright(tmp_path):
    frame = np.zeros((32, 48, 3), np.uint8)
    frame[:16, :16] = 255  # white top-left block as stored
    with av.open(str(tmp_path / "rot.mp4"), "w") as c:
        s = c.add_stream("libx264", rate=25)
        s.width, s.height, s.pix_fmt = 48, 32, "yuv420p"
        s.set_display_rotation(-90)  # display = stored turned 90 degrees clockwise (a portrait phone video)
        for i in range(2):
            vf = av.VideoFrame.from_ndarray(frame, format="rgb24")
            vf.pts = i
            for p in s.encode(vf):
                c.mux(p)
        for p in s.encode(None):
            c.mux(p)
    frames, src = read_all(tmp_path / "rot.mp4")
    assert src.size == (32, 48) and frames.shape == (2, 48, 32, 3)
    assert frames[0, :16, 16:].mean() > 200 and frames[0, :16, :16].mean() < 50  # block is now top-right


def _audio_only(tmp_path: Path) -> Path:
    out = tmp_path / "sound.m4a"
    with av.open(str(sample_video())) as inp, av.open(str(out), "w", format="mp4") as c:
        stream = c.add_stream_from_template(inp.streams.audio[0])
        for i, packet in enumerate(inp.demux(inp.streams.audio[0])):
            if packet.dts is None or i > 5:
                continue
            packet.stream = stream
            c.mux(packet)
    return out


@pytest.mark.parametrize("case,match", [
    ("missing", "does not exist"), ("text_as_mp4", "not a video or image"), ("empty_dir", "holds no frames"),
    ("dir_of_dirs", "pick one"), ("audio_only", "no video stream"), ("tiny_resize", "at least 16"),
    ("max_size_too_small", "max size must be a whole number of pixels >= 16"), ("rgba_image", "alpha"),
    ("bad_fps", "frame rate"),
])
def test_source_user_errors(tmp_path, bikes_clip, case, match):
    path = tmp_path / case
    kwargs = {}
    if case == "text_as_mp4":
        path = tmp_path / "clip.mp4"
        path.write_text("this is not a video\n" * 50)
    elif case == "empty_dir":
        path.mkdir()
    elif case == "dir_of_dirs":
        (path / "ambush_4").mkdir(parents=True)
    elif case == "audio_only":
        path = _audio_only(tmp_path)
    elif case == "tiny_resize":
        path, kwargs = bikes_clip, {"max_size": 20}  # 160x68 -> 20x8
    elif case == "max_size_too_small":
        path, kwargs = bikes_clip, {"max_size": 8}
    elif case == "rgba_image":
        path = tmp_path / "a.png"
        Image.new("RGBA", (20, 20)).save(path)
    elif case == "bad_fps":
        path, kwargs = bikes_clip, {"fps": 0}
    with pytest.raises(UserError, match=match) as info:
        read_all(path, **kwargs)
    assert str(path) in str(info.value) or case in ("max_size_too_small", "bad_fps")
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("fraction", [0.5, 0.15, 0.9])
def test_source_truncated_video(tmp_path, fraction):
    rng = np.random.default_rng(0)
    frames = rng.integers(0, 256, (12, 48, 64, 3), dtype=np.uint8)  # noise: many bytes per frame
    path = write_video(tmp_path / "full.mp4", frames)
    data = path.read_bytes()
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[: int(len(data) * fraction)])
    with pytest.raises(UserError, match="cut.mp4.*(corrupt|truncated|read)"):
        read_all(cut)


def write_moov_at_end(path: Path, frames: np.ndarray, fmt: str = "mp4") -> Path:
    """Encode with PyAV's defaults: the index (moov atom) goes after the samples, as most recorders write it."""
    with av.open(str(path), "w", format=fmt) as container:
        stream = container.add_stream("libx264", rate=25)
        stream.width, stream.height, stream.pix_fmt = frames.shape[2], frames.shape[1], "yuv420p"
        for f in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(f, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    return path


@pytest.mark.parametrize("name, fmt, match", [
    ("cut.mp4", "mp4", r"cut\.mp4: cannot be read as a video: the file may be truncated or incomplete \(e\.g\. a copy"),
    ("cut.MOV", "mov", r"cut\.MOV: cannot be read as a video: the file may be truncated"),
    ("cut.m4v", "mp4", r"cut\.m4v: cannot be read as a video: the file may be truncated"),
    ("cut.bin", "mp4", r"cut\.bin: not a video or image that can be read \("),  # no video suffix: no guess
])
def test_source_truncated_video_with_index_at_the_end(tmp_path, name, fmt, match):
    path = write_moov_at_end(tmp_path / f"full.{fmt}", smooth_frames(10, 48, 32), fmt)
    data = path.read_bytes()
    assert data.find(b"mdat") < data.find(b"moov")  # the index really is at the end
    read_all(path)  # the whole file is fine
    cut = tmp_path / name
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(UserError, match=match) as info:
        read_all(cut)
    assert "\n" not in str(info.value)


def test_source_corrupt_sample_mid_video(tmp_path):
    """Garbage in the 6th compressed frame: the frames before it come out, then a UserError (no PyAV error)."""
    rng = np.random.default_rng(1)
    path = write_video(tmp_path / "c.mp4", rng.integers(0, 256, (12, 48, 64, 3), dtype=np.uint8))
    with av.open(str(path)) as c:
        entries = [(e.pos, e.size) for e in c.streams.video[0].index_entries]
    pos, size = entries[5]
    data = bytearray(path.read_bytes())
    data[pos:pos + size] = bytes(size)
    path.write_bytes(bytes(data))
    got = []
    with pytest.raises(UserError, match=r"c\.mp4: video is corrupt or truncated; decoding failed after \d+ frames"):
        with open_source(path) as src:
            for frame in src:
                got.append(frame)
    assert 1 <= len(got) <= 5


# ----------------------------------------------------------------------------- sinks

@pytest.mark.parametrize("suffix", [".mp4", ".mov", ".mkv"])
def test_sink_video_round_trip(tmp_path, suffix):
    frames = smooth_frames(6)
    path = write_video(tmp_path / f"out{suffix}", frames)
    back, src = read_all(path)
    assert (src.kind, src.size, src.fps, src.has_audio) == ("video", (96, 64), 25.0, False)
    assert back.shape == frames.shape
    assert np.abs(back.astype(float) - frames).mean() < 3
    assert listing(tmp_path) == [f"out{suffix}"]
    assert os.stat(path).st_mode & 0o044  # normal permissions, not a private temp file's 0600


@pytest.mark.parametrize("threads", ["frame", "slice"])
def test_sink_encoder_threading(tmp_path, threads):
    frames = smooth_frames(6)
    with open_sink(tmp_path / "out.mp4", 25, threads=threads) as sink:
        for f in frames:
            sink.write(f)
    back, _ = read_all(tmp_path / "out.mp4")
    assert back.shape == frames.shape and np.abs(back.astype(float) - frames).mean() < 3


def test_rgb_to_yuv420p_is_swscale_with_area_chroma():
    rng = np.random.default_rng(0)
    frame = cv2.GaussianBlur(rng.integers(0, 256, (64, 96, 3), dtype=np.uint8), (5, 5), 1.5)
    frame[:4, :4] = 0  # the range ends: limited range puts black at 16 and white at 235
    frame[4:8, :4] = 255
    ours = rgb_to_yuv420p(frame)
    theirs = av.VideoFrame.from_ndarray(frame, format="rgb24").reformat(format="yuv420p",
                                                                        interpolation="AREA").to_ndarray()
    assert ours.shape == theirs.shape == (96, 96) and ours.dtype == np.uint8
    assert np.abs(ours.astype(int) - theirs).max() <= 1
    assert ours[0, 0] == 16 and ours[4, 0] == 235
    # chroma of a flat block is its colour: pure red -> Cb 90, Cr 240 (BT.601 limited range)
    red = np.zeros((4, 4, 3), np.uint8)
    red[..., 0] = 255
    assert np.abs(rgb_to_yuv420p(red)[4:].astype(int) - [[90] * 4, [240] * 4]).max() <= 1
    # chroma planes with an odd number of rows (90 / 2 = 45) do not fill whole rows of the layout
    tall = cv2.resize(frame, (64, 90))
    theirs = av.VideoFrame.from_ndarray(tall, format="rgb24").reformat(format="yuv420p",
                                                                       interpolation="AREA").to_ndarray()
    assert np.abs(rgb_to_yuv420p(tall).astype(int) - theirs).max() <= 1
    with pytest.raises(ValueError, match="even sides"):
        rgb_to_yuv420p(frame[:63])


@pytest.mark.parametrize("kwargs, message", [(dict(crf=60), "crf must be a whole number"),
                                             (dict(preset="warp"), "unknown H.264 preset 'warp'; valid: ultrafast"),
                                             (dict(threads="auto"), "unknown encoder threading 'auto'; valid: frame")])
def test_sink_rejects_bad_encoder_settings(tmp_path, kwargs, message):
    with pytest.raises(UserError, match=message):
        open_sink(tmp_path / "o.mp4", 25, **kwargs)
    assert not list(tmp_path.iterdir())


def test_sink_keeps_ntsc_rate(tmp_path):
    with open_sink(tmp_path / "ntsc.mp4", 30000 / 1001) as sink:
        for f in smooth_frames(4):
            sink.write(f)
        assert sink.rate == Fraction(30000, 1001)
    with open_source(tmp_path / "ntsc.mp4") as src:
        assert src.rate == Fraction(30000, 1001) and src.num_frames == 4


def test_sink_odd_size_is_padded_by_replication(tmp_path):
    frames = smooth_frames(3, 161, 91)
    frames[:, :, -1] = (250, 10, 10)  # last column red, last row blue: the padding must copy them
    frames[:, -1, :] = (10, 10, 250)
    with open_sink(tmp_path / "odd.mp4", 25) as sink:
        for f in frames:
            sink.write(f)
        assert sink.size == (162, 92)
    back, src = read_all(tmp_path / "odd.mp4")
    assert src.size == (162, 92) and back.shape == (3, 92, 162, 3)
    assert np.abs(back[:, :91, :161].astype(float) - frames).mean() < 3
    assert back[:, 10:80, -1, 0].mean() > 200 and back[:, -1, 10:150, 2].mean() > 200


def test_sink_frame_folder(tmp_path):
    frames = smooth_frames(3, 40, 30)
    write_video(tmp_path / "frames", frames, fps=12)
    assert listing(tmp_path) == ["frames"]
    assert listing(tmp_path / "frames") == ["frame_00001.png", "frame_00002.png", "frame_00003.png"]
    back, src = read_all(tmp_path / "frames")
    assert src.kind == "frames" and np.array_equal(back, frames)  # PNG is lossless


@pytest.mark.parametrize("suffix,tol", [(".png", 0), (".jpg", 3)])
def test_sink_single_image(tmp_path, suffix, tol):
    frame = smooth_frames(1, 40, 30)[0]
    write_video(tmp_path / f"still{suffix}", frame[None])
    assert listing(tmp_path) == [f"still{suffix}"]
    assert np.abs(read_image(tmp_path / f"still{suffix}").astype(float) - frame).mean() <= tol


def test_sink_single_image_rejects_second_frame(tmp_path):
    with pytest.raises(UserError, match="single image.*more than one frame"):
        write_video(tmp_path / "still.png", smooth_frames(2, 40, 30))
    assert listing(tmp_path) == []


def _audio_packets(path: Path, n: int) -> list[bytes]:
    with av.open(str(path)) as c:
        packets = [bytes(p) for p in c.demux(c.streams.audio[0]) if p.size]
    return packets[:n]


def test_sink_copies_audio_without_reencoding(tmp_path, bbb_clip, bikes_clip):
    frames, _ = read_all(bbb_clip)
    out = write_video(tmp_path / "with_audio.mp4", frames, audio_from=bbb_clip)
    assert video_streams(out) == {"video": 1, "audio": 1}
    assert _audio_packets(out, 10) == _audio_packets(bbb_clip, 10)  # the very same AAC packets
    silent = write_video(tmp_path / "silent.mp4", frames, audio_from=bikes_clip)
    assert video_streams(silent) == {"video": 1, "audio": 0}
    assert not open_source(silent).has_audio
    folder = write_video(tmp_path / "frames", frames[:2], audio_from=bbb_clip)  # audio ignored, no error
    assert len(listing(folder)) == 2


@pytest.mark.parametrize("suffix", [".mp4", ".mkv"])
def test_sink_audio_stops_at_video_end(tmp_path, suffix):
    """bigbuckbunny's audio lasts 5.3 s; three frames at 25 fps last 0.12 s."""
    frames = smooth_frames(3)
    out = write_video(tmp_path / f"short{suffix}", frames, audio_from=sample_video())
    with av.open(str(out)) as c:
        ends = [float((p.pts + p.duration) * p.time_base) for p in c.demux(c.streams.audio[0]) if p.size]
    assert len(ends) >= 5  # 0.12 s of 48 kHz AAC (1024-sample packets) is about 6 packets
    assert max(ends) <= 3 / 25 + 1024 / 48000 + 1e-3


@pytest.mark.parametrize("name", ["out.mp4", "out.png", "out"])
def test_sink_exception_leaves_nothing(tmp_path, name):
    (tmp_path / "keep.txt").write_text("x")
    with pytest.raises(RuntimeError, match="boom"):
        with open_sink(tmp_path / name, 25) as sink:
            sink.write(smooth_frames(1)[0])
            raise RuntimeError("boom")
    assert listing(tmp_path) == ["keep.txt"]


def test_sink_zero_frames_is_user_error_and_leaves_nothing(tmp_path):
    for name in ("out.mp4", "out.png", "out"):
        with pytest.raises(UserError, match="no frames"):
            with open_sink(tmp_path / name, 25):
                pass
    assert listing(tmp_path) == []


@pytest.mark.parametrize("name", ["old.mp4", "old.png", "old"])
def test_sink_existing_output_untouched_without_overwrite(tmp_path, name):
    first, second = smooth_frames(2), 255 - smooth_frames(3)
    write_video(tmp_path / name, first[:1] if name.endswith(".png") else first)
    target = tmp_path / name
    snapshot = {p: p.read_bytes() for p in ([target] if target.is_file() else sorted(target.iterdir()))}
    with pytest.raises(UserError, match="--overwrite"):
        write_video(target, second)
    assert {p: p.read_bytes() for p in snapshot} == snapshot and listing(tmp_path) == [name]
    write_video(target, second[:1] if name.endswith(".png") else second, overwrite=True)
    assert listing(tmp_path) == [name]
    back, _ = read_all(target)
    assert back.shape[0] == (1 if name.endswith(".png") else 3)
    assert np.abs(back.astype(float) - second[: back.shape[0]]).mean() < 3


def test_sink_refuses_to_replace_a_folder_with_other_files(tmp_path):
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "thesis.tex").write_text("precious")
    with pytest.raises(UserError, match="other than frame"):
        open_sink(tmp_path / "mine", 25, overwrite=True)
    assert (tmp_path / "mine" / "thesis.tex").read_text() == "precious"


def test_check_output_path_errors(tmp_path, bikes_clip, frames_dir):
    with pytest.raises(UserError, match="does not exist"):
        check_output_path(tmp_path / "nope" / "out.mp4")
    with pytest.raises(UserError, match="also an input"):
        check_output_path(bikes_clip, [bikes_clip], overwrite=True)
    with pytest.raises(UserError, match="also an input"):
        check_output_path(frames_dir, [frames_dir], overwrite=True)
    with pytest.raises(UserError, match="contains the input"):
        check_output_path(frames_dir, [frames_dir / "frame_00001.png"], overwrite=True)
    with pytest.raises(UserError, match=r"\.avi.*valid: \.mp4"):
        check_output_path(tmp_path / "out.avi")
    (tmp_path / "dir.mp4").mkdir()
    with pytest.raises(UserError, match="is a folder"):
        check_output_path(tmp_path / "dir.mp4", overwrite=True)
    (tmp_path / "file").write_text("x")
    with pytest.raises(UserError, match="is a file"):
        check_output_path(tmp_path / "file", overwrite=True)
    assert check_output_path(str(tmp_path / "new.mp4"), [bikes_clip]) == tmp_path / "new.mp4"


def test_open_sink_user_errors_touch_nothing(tmp_path, bikes_clip):
    before = bikes_clip.read_bytes()
    with pytest.raises(UserError, match="also an input"):
        open_sink(bikes_clip, 25, audio_from=bikes_clip, overwrite=True)
    assert bikes_clip.read_bytes() == before
    with pytest.raises(UserError, match="crf"):
        open_sink(tmp_path / "a.mp4", 25, crf=60)
    with pytest.raises(UserError, match="frame rate"):
        open_sink(tmp_path / "a.mp4", 0)
    with pytest.raises(UserError, match="does not exist"):
        open_sink(tmp_path / "a.mp4", 25, audio_from=tmp_path / "missing.mp4")
    assert listing(tmp_path) == []


def test_sink_rejects_bad_frames(tmp_path):
    with pytest.raises(ValueError, match="uint8"):
        with open_sink(tmp_path / "a.mp4", 25) as sink:
            sink.write(np.zeros((32, 32, 3), np.float32))
    with pytest.raises(ValueError, match="first had"):
        with open_sink(tmp_path / "a.mp4", 25) as sink:
            sink.write(np.zeros((32, 32, 3), np.uint8))
            sink.write(np.zeros((32, 34, 3), np.uint8))
    assert listing(tmp_path) == []


def test_open_input_without_metadata_errors_argument(tmp_path):
    """PyAV 19 dropped ``av.open``'s ``metadata_errors``: reading falls back to the plain call."""
    from stablestyle.video.decode import open_input

    path = write_video(tmp_path / "a.mp4", smooth_frames(2))
    calls = []

    class PyAV19:
        @staticmethod
        def open(name, **kwargs):
            calls.append(kwargs)
            if kwargs:
                raise TypeError("open() got an unexpected keyword argument 'metadata_errors'")
            return av.open(name)

    with open_input(PyAV19, path) as container:
        assert container.streams.video[0].frames == 2
    assert calls == [{"metadata_errors": "ignore"}, {}]

    class Broken:
        @staticmethod
        def open(name, **kwargs):
            raise TypeError("something else")

    with pytest.raises(TypeError, match="something else"):
        open_input(Broken, path)
