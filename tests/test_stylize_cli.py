"""`stablestyle stylize` end to end on real clips, and its user errors."""

from __future__ import annotations

import re

import av
import numpy as np
import pytest
import torch

from stablestyle.checkpoint import save_checkpoint
from stablestyle.cli import main
from stablestyle.models import TransformerNet
from stablestyle.stylize import stylize_frames
from stablestyle.video import open_source, read_image


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory):
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("ckpt") / "tiny.pt"
    save_checkpoint(path, TransformerNet(width=0.25, recurrent=True), config={"mode": "stable"}, step=3)
    return path


def _streams(path):
    with av.open(str(path)) as c:
        return sorted(s.type for s in c.streams)


def test_stylize_keeps_audio_size_and_frame_count(tmp_path, bbb_clip, ckpt, capsys):
    out = tmp_path / "out.mp4"
    assert main(["stylize", str(bbb_clip), "-o", str(out), "--model", str(ckpt), "--quiet"]) == 0
    assert _streams(out) == ["audio", "video"]
    with open_source(bbb_clip) as src, open_source(out) as res:
        assert res.size == src.size
        assert len(list(res)) == len(list(src))
        assert res.fps == pytest.approx(src.fps)
    assert "stylized" in capsys.readouterr().out


def test_stylize_bikes_without_audio_and_max_size(tmp_path, bikes_clip, ckpt):
    out = tmp_path / "bikes.mp4"
    assert main(["stylize", str(bikes_clip), "-o", str(out), "--model", str(ckpt), "--quiet",
                 "--max-size", "64", "--max-frames", "3"]) == 0
    assert _streams(out) == ["video"]
    with open_source(out) as res:
        assert max(res.size) <= 64
        assert len(list(res)) == 3


def test_edge_margin_flag_replaces_the_model_setting(tmp_path, frames_dir, ckpt, caplog):
    first = sorted(frames_dir.glob("*.png"))[0]
    outs = {}
    for margin in (None, "0", "16"):
        out = tmp_path / f"m{margin}.png"
        flag = [] if margin is None else ["--edge-margin", margin]
        with caplog.at_level("INFO", logger="stablestyle"):
            assert main(["stylize", str(first), "-o", str(out), "--model", str(ckpt), *flag]) == 0
        outs[margin] = read_image(out).astype(int)
    assert "edge margin 16 px" in caplog.text
    assert np.array_equal(outs[None], outs["0"])  # the fixture was saved without a margin
    assert np.abs(outs["16"] - outs["0"]).max() > 0


def test_frames_folder_to_frames_folder_and_image(tmp_path, frames_dir, ckpt):
    out = tmp_path / "styled"
    assert main(["stylize", str(frames_dir), "-o", str(out), "--model", str(ckpt), "--quiet"]) == 0
    assert len(list(out.glob("*.png"))) == len(list(frames_dir.glob("*.png")))
    first = sorted(frames_dir.glob("*.png"))[0]
    img = tmp_path / "one.png"
    assert main(["stylize", str(first), "-o", str(img), "--model", str(ckpt), "--quiet"]) == 0
    assert img.is_file()


def test_recurrent_state_resets_per_input(ckpt):
    """Stylizing the same clip twice gives identical frames: no state leaks between calls."""
    from stablestyle.checkpoint import load_checkpoint

    model, _ = load_checkpoint(ckpt)
    rng = np.random.default_rng(0)
    frames = [rng.integers(0, 256, (20, 24, 3), dtype=np.uint8) for _ in range(3)]
    a = list(stylize_frames(model, frames))
    b = list(stylize_frames(model, frames))
    assert all(np.array_equal(x, y) for x, y in zip(a, b))
    # and the recurrence matters: frame 2 depends on frame 1's output
    c = list(stylize_frames(model, frames[1:]))
    assert not np.array_equal(a[2], c[1])


def _error(capsys):
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: "), err
    return err[0]


@pytest.mark.parametrize(
    "make_input, match",
    [
        (lambda d: d / "missing.mp4", "does not exist"),
        (lambda d: ((d / "t.mp4").write_text("hello"), d / "t.mp4")[1], "cannot be read as a video"),
        (lambda d: (d / "empty").mkdir() or d / "empty", "holds no frames"),
    ],
)
def test_bad_inputs(tmp_path, ckpt, capsys, make_input, match):
    src = make_input(tmp_path)
    out = tmp_path / "o.mp4"
    assert main(["stylize", str(src), "-o", str(out), "--model", str(ckpt), "--quiet"]) == 2
    assert match in _error(capsys)
    assert not out.exists() and not [p for p in tmp_path.iterdir() if p.name.startswith(".o.mp4")]


def test_bad_model_and_output_folder(tmp_path, bbb_clip, capsys):
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"xx")
    assert main(["stylize", str(bbb_clip), "-o", str(tmp_path / "o.mp4"), "--model", str(junk)]) == 2
    assert "checkpoint" in _error(capsys)
    assert main(["stylize", str(bbb_clip), "-o", str(tmp_path / "no" / "o.mp4"), "--model", str(junk)]) == 2
    assert f"output folder {tmp_path / 'no'} does not exist" in _error(capsys)
    assert not (tmp_path / "o.mp4").exists()


def test_existing_output_needs_overwrite(tmp_path, bbb_clip, ckpt, capsys):
    out = tmp_path / "o.mp4"
    out.write_bytes(b"precious")
    assert main(["stylize", str(bbb_clip), "-o", str(out), "--model", str(ckpt), "--quiet"]) == 2
    assert "--overwrite" in _error(capsys)
    assert out.read_bytes() == b"precious"
    assert main(["stylize", str(bbb_clip), "-o", str(out), "--model", str(ckpt), "--quiet", "--overwrite",
                 "--max-frames", "2"]) == 0
    assert out.read_bytes() != b"precious"


def test_input_is_never_the_output(tmp_path, bbb_clip, ckpt, capsys):
    before = bbb_clip.read_bytes()
    assert main(["stylize", str(bbb_clip), "-o", str(bbb_clip), "--model", str(ckpt), "--overwrite"]) == 2
    assert "is also an input; choose another output path" in _error(capsys)
    assert bbb_clip.read_bytes() == before


@pytest.mark.parametrize("flag, match", [
    (["--max-size", "0"], "--max-size must be a whole number of pixels >= 16"),
    (["--device", "tpu"], "unknown device 'tpu'"),
    (["--style", "x.jpg"], "--style is for --method gatys|ruder"),
    (["--threads", "0"], "--threads must be a positive integer"),
    (["--backend", "tensorrt"], "unknown backend 'tensorrt'"),
    # the optimisation methods take no --model
    (["--method", "gatys"], "--method gatys needs --style STYLE_IMAGE"),
    (["--method", "ruder", "--style", "x.jpg"], "x.jpg does not exist"),
    (["--method", "ruder", "--style", "x.jpg", "--model", "scream"], "are for a trained network"),
    (["--method", "gatys", "--style", "x.jpg", "--edge-margin", "8"], "--edge-margin are for a trained network"),
    (["--edge-margin", "-3"], "--edge-margin: edge margin must be a whole number of pixels in [0, 256], got -3"),
])
def test_bad_options(tmp_path, bbb_clip, ckpt, capsys, flag, match):
    model = [] if "--method" in flag else ["--model", str(ckpt)]
    assert main(["stylize", str(bbb_clip), "-o", str(tmp_path / "o.mp4"), *model, *flag]) == 2
    assert match in _error(capsys)
    assert not (tmp_path / "o.mp4").exists()


@pytest.mark.parametrize("flag", [["--iterations", "5"], ["--size", "64"], ["--flow", "deepflow"]])
def test_optimisation_settings_are_refused_for_a_network(tmp_path, bbb_clip, ckpt, capsys, flag):
    """They used to be ignored without a word; a network has no per-frame optimisation to set."""
    assert main(["stylize", str(bbb_clip), "-o", str(tmp_path / "o.mp4"), "--model", str(ckpt), *flag]) == 2
    assert f"{flag[0]} set the optimisation of --method gatys|ruder" in _error(capsys)
    assert not (tmp_path / "o.mp4").exists()


@pytest.mark.parametrize("value", ["8", "0", "-1"])
def test_max_size_is_checked_first_and_named(tmp_path, bbb_clip, value, capsys):
    """Checked before the model loads: a missing checkpoint does not hide it."""
    assert main(["stylize", str(bbb_clip), "-o", str(tmp_path / "o.mp4"), "--model", str(tmp_path / "absent.pt"),
                 "--max-size", value]) == 2
    assert f"--max-size must be a whole number of pixels >= 16 (the long side of the frames), got {value}" in \
        _error(capsys)


def _png_bytes():
    import io

    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (24, 24), (0, 90, 200)).save(buf, format="PNG")
    return buf.getvalue()


@pytest.mark.parametrize("content", [pytest.param(_png_bytes(), id="png"), pytest.param(bytes(range(256)) * 4,
                                                                                        id="random")])
def test_model_that_is_not_a_checkpoint(tmp_path, bbb_clip, capsys, content):
    bad = tmp_path / "img.pt"
    bad.write_bytes(content)
    assert main(["stylize", str(bbb_clip), "-o", str(tmp_path / "o.mp4"), "--model", str(bad)]) == 2
    assert f"error: {bad} is not a stablestyle checkpoint (UnpicklingError: " in _error(capsys)  # one line
    assert not (tmp_path / "o.mp4").exists()


@pytest.mark.parametrize("holds, match", [
    ([], "run is a folder without final.pt; give a checkpoint file (e.g. {run}/final.pt)"),
    (["last.pt"], "(it holds last.pt); give a checkpoint file (e.g. {run}/last.pt)"),
])
def test_model_folder_without_final_checkpoint(tmp_path, bbb_clip, ckpt, capsys, holds, match):
    run = tmp_path / "run"
    run.mkdir()
    for name in holds:
        (run / name).write_bytes(ckpt.read_bytes())
    assert main(["stylize", str(bbb_clip), "-o", str(tmp_path / "o.mp4"), "--model", str(run)]) == 2
    assert match.format(run=run) in _error(capsys)


@pytest.mark.parametrize("native, extra, hinted", [(True, [], True), (False, [], False), (None, [], False),
                                                   (True, ["--no-half"], False), (True, ["--half"], False)])
def test_cpu_with_native_bf16_suggests_half(tmp_path, bikes_clip, ckpt, caplog, monkeypatch, native, extra, hinted):
    """stylize stays fp32 unless asked, but says when --half would be fast on this CPU."""
    import stablestyle.inference.precision as inference_precision

    monkeypatch.setattr(inference_precision, "cpu_has_native_bf16", lambda: native)
    with caplog.at_level("INFO"):
        assert main(["stylize", str(bikes_clip), "-o", str(tmp_path / "o.mp4"), "--model", str(ckpt), "--device",
                     "cpu", "--max-frames", "2", *extra]) == 0
    assert ("--half runs the network in bf16, several times faster" in caplog.text) is hinted


def test_model_run_folder_uses_its_final_checkpoint(tmp_path, bikes_clip, ckpt, caplog):
    run = tmp_path / "run"
    run.mkdir()
    (run / "final.pt").write_bytes(ckpt.read_bytes())
    with caplog.at_level("INFO"):
        assert main(["stylize", str(bikes_clip), "-o", str(tmp_path / "o.mp4"), "--model", str(run), "--quiet",
                     "--max-frames", "1", "--max-size", "48"]) == 0
    assert f"{run} is a run folder: using its final.pt" in caplog.text
    assert (tmp_path / "o.mp4").is_file()


@pytest.mark.parametrize("names, warned", [
    (["beach.png", "cat.png", "dog.png"], True),
    (["IMG_0001.png", "DSC_0002.png"], True),
    (["frame_0001.png", "frame_0002.png", "frame_0003.png"], False),
    (["0001.png", "0002.png"], False),
])
def test_folder_of_unrelated_photos_warns(tmp_path, frames_dir, ckpt, caplog, names, warned):
    folder = tmp_path / "photos"
    folder.mkdir()
    for name, frame in zip(names, sorted(frames_dir.glob("*.png"))):
        (folder / name).write_bytes(frame.read_bytes())
    with caplog.at_level("WARNING"):
        assert main(["stylize", str(folder), "-o", str(tmp_path / "styled"), "--model", str(ckpt), "--quiet",
                     "--max-size", "48"]) == 0
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    hint = f"are not numbered frames, but a folder is stylized as the consecutive frames of one clip; to " \
           f"stylize them as independent images run `stablestyle stylize {folder}/*.png -o {tmp_path / 'styled'}`"
    assert [hint in w for w in warnings] == ([True] if warned else [])
    assert len(list((tmp_path / "styled").glob("frame_*.png"))) == len(names)  # still one clip, as documented


def test_onnx_backend_matches_torch(tmp_path, bikes_clip, ckpt):
    outs = {}
    for backend in ("torch", "onnx"):
        out = tmp_path / backend
        assert main(["stylize", str(bikes_clip), "-o", str(out), "--model", str(ckpt), "--quiet", "--max-frames",
                     "3", "--backend", backend, "--threads", "1", "--no-half"]) == 0
        outs[backend] = [read_image(p) for p in sorted(out.glob("*.png"))]
    assert len(outs["onnx"]) == len(outs["torch"]) == 3
    for a, b in zip(outs["torch"], outs["onnx"]):
        assert np.abs(a.astype(int) - b.astype(int)).max() <= 1  # fp32 both ways; rounding at most


@pytest.mark.parametrize("method", ["gatys", "ruder", "ruder-long"])
def test_optimisation_methods_through_stylize(tmp_path, frames_dir, assets, method):
    out = tmp_path / method
    assert main(["stylize", str(frames_dir), "-o", str(out), "--method", method, "--style",
                 str(assets / "styles" / "candy.jpg"), "--size", "48", "--iterations", "2", "--max-frames", "2",
                 "--quiet"]) == 0
    frames = sorted(out.glob("*.png"))
    assert len(frames) == 2
    assert read_image(frames[0]).shape == read_image(sorted(frames_dir.glob("*.png"))[0]).shape


def test_single_input_runs_pipelined_and_matches_the_frame_by_frame_result(tmp_path, frames_dir, ckpt):
    """One input goes through the decode / network / encode threads; the frames are those of the plain loop."""
    from stablestyle.checkpoint import load_checkpoint

    out = tmp_path / "styled"
    assert main(["stylize", str(frames_dir), "-o", str(out), "--model", str(ckpt), "--quiet", "--no-half"]) == 0
    model, _ = load_checkpoint(ckpt)
    with open_source(frames_dir) as src:
        want = list(stylize_frames(model, list(src)))
    got = [read_image(p) for p in sorted(out.glob("*.png"))]
    assert len(got) == len(want) == 5
    for a, b in zip(got, want):
        assert np.abs(a.astype(int) - b.astype(int)).max() <= 1


def test_several_inputs_are_batched_into_a_folder(tmp_path, bbb_clip, bikes_clip, frames_dir, ckpt, capsys):
    out = tmp_path / "styled"
    first = sorted(frames_dir.glob("*.png"))[0]
    assert main(["stylize", str(bbb_clip), str(bikes_clip), str(frames_dir), str(first), "-o", str(out), "--model",
                 str(ckpt), "--quiet", "--max-frames", "4", "--batch", "2", "--no-half"]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["bbb.mp4", "bikes.mp4", "frame_00001.png", "sintel.mp4"]
    assert _streams(out / "bbb.mp4") == ["audio", "video"] and _streams(out / "bikes.mp4") == ["video"]
    for name, src in (("bbb.mp4", bbb_clip), ("bikes.mp4", bikes_clip), ("sintel.mp4", frames_dir)):
        with open_source(out / name) as res, open_source(src) as inp:
            assert res.size == inp.size and len(list(res)) == 4
    # each input keeps its own recurrent state: the batched result equals stylizing the input alone
    # (the image shared its network call with same-size frames of two videos; PNG keeps it exact)
    alone = tmp_path / "alone.png"
    assert main(["stylize", str(first), "-o", str(alone), "--model", str(ckpt), "--quiet", "--no-half"]) == 0
    batched = read_image(out / "frame_00001.png")
    assert batched.shape == read_image(first).shape
    assert np.abs(batched.astype(int) - read_image(alone).astype(int)).max() <= 1
    assert "4 inputs, 13 frames" in capsys.readouterr().out


@pytest.mark.parametrize("case, message", [
    ("file output", "with several inputs -o is a folder"),
    ("same names", "would both be written to"),
    ("existing result", "already exists; pass --overwrite"),
    ("gatys", "--method gatys takes one input at a time"),
    ("batch 0", "--batch must be a positive integer"),
])
def test_several_inputs_user_errors(tmp_path, bbb_clip, bikes_clip, ckpt, capsys, case, message):
    out = tmp_path / "styled"
    inputs = [str(bbb_clip), str(bikes_clip)]
    extra: list[str] = []
    if case == "file output":
        out = tmp_path / "styled.mp4"
    elif case == "same names":
        (tmp_path / "other").mkdir()
        inputs.append(str(tmp_path / "other" / "bikes.mp4"))
        (tmp_path / "other" / "bikes.mp4").write_bytes(bikes_clip.read_bytes())
    elif case == "existing result":
        out.mkdir()
        (out / "bikes.mp4").write_bytes(b"precious")
    elif case == "gatys":
        extra = ["--method", "gatys", "--style", str(bbb_clip)]
    elif case == "batch 0":
        extra = ["--batch", "0"]
    model = [] if case == "gatys" else ["--model", str(ckpt)]
    assert main(["stylize", *inputs, "-o", str(out), *model, "--quiet", *extra]) == 2
    assert message in _error(capsys)
    if case == "existing result":
        assert sorted(p.name for p in out.iterdir()) == ["bikes.mp4"] and (out / "bikes.mp4").read_bytes() == b"precious"
    else:
        assert not out.exists()


def test_compile_flag(tmp_path, frames_dir, ckpt, capsys, caplog):
    out = tmp_path / "compiled"
    with caplog.at_level("INFO"):
        assert main(["stylize", str(frames_dir), "-o", str(out), "--model", str(ckpt), "--max-frames", "3",
                     "--compile"]) == 0
    assert len(list(out.glob("*.png"))) == 3
    # the summary's frames/s counts the compile wait; a note gives the rate after it
    assert re.search(r"the first frame came after \d+\.\d s \(compiling\); \d+\.\d frames/s after it", caplog.text)
    for flags, message in ((["--compile", "turbo"], None), (["--compile", "--backend", "onnx"], "are for --backend torch"),
                           (["--cuda-graphs"], None if torch.cuda.is_available() else "CUDA graphs need a CUDA device")):
        if message is None:
            if flags[0] == "--compile":  # argparse rejects an unknown mode (exit status 2, usage on stderr)
                with pytest.raises(SystemExit) as exc:
                    main(["stylize", str(frames_dir), "-o", str(tmp_path / "x"), "--model", str(ckpt), *flags])
                assert exc.value.code == 2 and "invalid choice: 'turbo'" in capsys.readouterr().err
            continue
        assert main(["stylize", str(frames_dir), "-o", str(tmp_path / "x"), "--model", str(ckpt), *flags]) == 2
        assert message in _error(capsys)
    assert not (tmp_path / "x").exists()


_WITHOUT_PYAV = """
import sys
sys.modules["av"] = None  # `import av` now raises ImportError, as where PyAV is not installed
from stablestyle.cli import main
sys.exit(main(sys.argv[1:]))
"""


def test_frame_folders_and_images_need_no_pyav(tmp_path, frames_dir, bbb_clip, ckpt):
    """Without PyAV, frame folders and images still work; a video file is a one-line user error."""
    import subprocess
    import sys

    def cli(*argv):
        return subprocess.run([sys.executable, "-c", _WITHOUT_PYAV, *map(str, argv)], capture_output=True,
                              text=True, timeout=1800)  # hang guard only

    out = tmp_path / "styled"
    done = cli("stylize", frames_dir, "-o", out, "--model", ckpt, "--quiet")
    assert done.returncode == 0, done.stderr
    assert len(list(out.glob("*.png"))) == 5
    img = tmp_path / "one.png"
    assert cli("stylize", sorted(frames_dir.glob("*.png"))[0], "-o", img, "--model", ckpt, "--quiet").returncode == 0
    assert read_image(img).shape[:2] == read_image(sorted(frames_dir.glob("*.png"))[0]).shape[:2]
    for argv in (("stylize", bbb_clip, "-o", tmp_path / "a.png"), ("stylize", frames_dir, "-o", tmp_path / "b.mp4")):
        failed = cli(*argv, "--model", ckpt, "--quiet")
        assert failed.returncode == 2
        assert "pip install av" in failed.stderr.strip().splitlines()[-1] and "Traceback" not in failed.stderr
    assert not (tmp_path / "b.mp4").exists() and not list(tmp_path.glob(".*b.mp4*"))


def test_quiet_silences_info_messages_but_not_warnings(tmp_path, frames_dir, ckpt):
    """In a real process (pytest's own log handlers keep basicConfig from acting in-process)."""
    import subprocess
    import sys

    def cli(*argv):
        return subprocess.run([sys.executable, "-m", "stablestyle", *map(str, argv)], capture_output=True,
                              text=True, timeout=1800)  # hang guard only

    loud = cli("stylize", frames_dir, "-o", tmp_path / "a", "--model", ckpt)
    assert loud.returncode == 0 and "INFO " in loud.stderr
    quiet = cli("stylize", frames_dir, "-o", tmp_path / "b", "--model", ckpt, "--quiet")
    assert quiet.returncode == 0 and quiet.stderr == "", quiet.stderr
    photos = tmp_path / "photos"
    photos.mkdir()
    for name in ("beach.png", "cat.png"):
        (photos / name).write_bytes(sorted(frames_dir.glob("*.png"))[0].read_bytes())
    warned = cli("stylize", photos, "-o", tmp_path / "c", "--model", ckpt, "--quiet")
    assert warned.returncode == 0 and "WARNING " in warned.stderr and "INFO " not in warned.stderr


def test_cli_choices_match_the_library():
    """The command repeats these lists so that --help imports neither torch nor PyAV; they must agree."""
    from stablestyle.inference import COMPILE_MODES
    from stablestyle.commands import stylize
    from stablestyle.video import X264_PRESETS

    assert stylize.COMPILE_MODES == COMPILE_MODES and stylize.X264_PRESETS == X264_PRESETS
    from stablestyle.baselines import OPTIMIZATION_METHODS

    assert set(stylize.METHODS) == {"network", *OPTIMIZATION_METHODS}


def test_preset_changes_the_encoder_setting(tmp_path, bikes_clip, ckpt, capsys):
    sizes = {}
    for preset in ("ultrafast", "veryslow"):
        out = tmp_path / f"{preset}.mp4"
        assert main(["stylize", str(bikes_clip), "-o", str(out), "--model", str(ckpt), "--quiet", "--preset",
                     preset]) == 0
        with av.open(str(out)) as c:
            assert len(list(c.decode(video=0))) == 8
        sizes[preset] = out.stat().st_size
    assert sizes["ultrafast"] > sizes["veryslow"]  # ultrafast gives up compression for speed
    with pytest.raises(SystemExit):
        main(["stylize", str(bikes_clip), "-o", str(tmp_path / "x.mp4"), "--preset", "warp"])
    assert "invalid choice: 'warp'" in capsys.readouterr().err


@pytest.mark.parametrize("waits, preset, expected", [
    ((0.1, 3.0), "medium", "the H.264 encoder held the network up for 3.0 of 8.0 s (--preset medium); --preset "
                           "veryfast encodes about twice as fast"),
    ((0.1, 3.0), "veryfast", "(--preset veryfast); --preset superfast is faster still (1080p file to file on a "
                             "16-core GPU machine: 74 frames/s against 58 at veryfast), ultrafast fastest"),
    ((0.1, 3.0), "superfast", "(--preset superfast); --preset ultrafast is faster still, with files about 3x"),
    ((0.1, 3.0), "ultrafast", "(--preset ultrafast)"),
    ((4.0, 0.5), "medium", "reading the input held the network up for 4.0 of 8.0 s"),
    ((0.1, 3.0), None, "writing the output images held the network up for 3.0 of 8.0 s"),  # PNG: no preset
    ((1.5, 1.9), "medium", None),  # neither wait reaches a quarter of the run: the network set the pace
])
def test_bottleneck_note(waits, preset, expected):
    from stablestyle.inference import PipelineStats
    from stablestyle.advice import bottleneck_note

    stats = PipelineStats(frames=240, seconds=8.0, decode_wait_s=waits[0], encode_wait_s=waits[1])
    note = bottleneck_note(stats, preset)
    if expected is None:
        assert note is None and stats.held_up_by() is None
    else:
        assert expected in note
        assert note.endswith("(--preset ultrafast)") == (preset == "ultrafast")  # nothing faster to suggest
        assert ("--preset" in note) == (preset is not None and waits[1] > waits[0])  # only an encoder note
        assert stats.held_up_by() == ("decode" if waits[0] > waits[1] else "encode")
