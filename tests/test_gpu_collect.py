"""bench/gpu/gpu_collect.py: what the GPU calls bring back lands in the repository, with the targets checked."""

from __future__ import annotations

import json
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def collect(*args) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(ROOT / "bench" / "gpu" / "gpu_collect.py"), *map(str, args)],
                          capture_output=True, text=True, timeout=1800, cwd=ROOT)  # a hang guard only


def _speed(path: Path, rows: list[dict]) -> None:
    path.write_text(json.dumps({"device": "NVIDIA H100 80GB HBM3", "results": rows}))


def _row(size, width, model_fps, e2e_fps=None, **extra):
    row = {"size": size, "width": width, "backend": "torch", "precision": "fp16", "model_fps": model_fps, **extra}
    if e2e_fps is not None:
        row.update(e2e_fps=e2e_fps, e2e_x264_preset="medium")
    return row


def test_collects_speed_tables_targets_and_runs(tmp_path):
    back = tmp_path / "files"
    back.mkdir()
    _speed(back / "speed_graphs.json", [_row("1920x1080", 1.0, 250.0, 40.0), _row("1920x1080", 0.25, 900.0, 55.0),
                                         _row("640x360", 1.0, 1500.0, 300.0)])
    data = json.loads((back / "speed_graphs.json").read_text())
    data["io_only"] = [{"size": "1920x1080", "e2e_fps": 88.5, "e2e_x264_preset": "medium"}]
    (back / "speed_graphs.json").write_text(json.dumps(data))
    _speed(back / "speed_graphs_veryfast.json", [_row("1920x1080", 1.0, 240.0, 70.0),
                                                  {"size": "1920x1080", "width": 0.5, "error": "RuntimeError: x"},
                                                  _row("1920x1080", 0.5, 260.0, 65.0, split_convs=["conv1.conv2d"],
                                                       subpixel=["deconv1"], weights="scream"),
                                                  _row("1920x1080", 0.5, 200.0, 61.0, split_convs=[], subpixel=[],
                                                       weights="random")])
    (back / "tests_bench.txt").write_text("....\n34 passed in 20.1s\n")
    (back / "bench.log").write_text("[23:30:13] tests (CUDA)\n[23:30:43] tests exit 0 (37 passed in 24.87s)\n")
    (back / "encode_1920x1080.json").write_text(json.dumps(
        {"size": "1920x1080", "frames": 132, "cpus": 16,
         "results": {"veryfast/frame": {"fps": 110.1, "cpu_ms_per_frame": 81.3, "kib": 3381, "psnr_db": 39.99}}}))
    (back / "pipeline_1920x1080.json").write_text(json.dumps(
        {"size": "1920x1080", "preset": "veryfast", "gpu_ms": 1.0, "cpus": 16,
         "results": {"torch": {"median_e2e_fps": 40.0}, "numpy": {"median_e2e_fps": 80.5}}}))
    run = tmp_path / "made" / "scream-stable"
    run.mkdir(parents=True)
    for name in ("final.pt", "config.yaml", "log.csv", "val.csv"):
        (run / name).write_text(name)
    (run.parent / "scream-stable.stdout").write_text("log")
    with tarfile.open(back / "scream-stable.tar", "w") as tar:  # gpu_run.sh's layout: the run and its stdout
        tar.add(run, arcname="scream-stable")
        tar.add(run.parent / "scream-stable.stdout", arcname="scream-stable.stdout")
    runs, reports = tmp_path / "runs", tmp_path / "reports"
    done = collect(back, "--runs", runs, "--reports", reports, "--prefix", "h100")
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert "tests_bench.txt: 34 passed in 20.1s" in out and "bench.log: tests exit 0 (37 passed in 24.87s)" in out
    assert "Device: NVIDIA H100 80GB HBM3" in out
    # JSON from before the rewrites and the weights were recorded
    assert "| graphs | 1920x1080 | 1.0 | fp16 | - | random | 250.0 | 40.0 | medium |" in out
    assert "| graphs_veryfast | 1920x1080 | 0.5 | fp16 | split+subpixel | scream | 260.0 | 65.0 | medium |" in out
    assert "| graphs_veryfast | 1920x1080 | 0.5 | fp16 | none | random | 200.0 | 61.0 | medium |" in out
    assert "error: RuntimeError: x" in out and "- graphs, 1920x1080, medium: 88.5" in out
    # width 1.0: model-only from graphs, end to end from the veryfast preset; width 0.25 misses end to end
    assert ("- 1920x1080, width 1.0: model_fps 250.0 (graphs) vs >= 200: reached; e2e_fps 70.0 (graphs_veryfast) "
            "vs >= 60: reached") in out
    assert "- 1920x1080, width 0.25: model_fps 900.0 (graphs) vs >= 200: reached; e2e_fps 55.0 (graphs) vs >= 60: " \
           "missed" in out
    assert json.loads((reports / "h100_graphs.json").read_text())["device"] == "NVIDIA H100 80GB HBM3"
    assert (reports / "h100_graphs_veryfast.json").is_file()
    assert "Encoder alone, 1920x1080, 132 frames, 16 CPUs:" in out
    assert "| veryfast/frame | 110.1 | 81.3 | 3381 | 39.99 |" in out
    assert json.loads((reports / "h100_encode_1920x1080.json").read_text())["cpus"] == 16
    assert ("Pipeline with a stand-in GPU (1.0 ms a frame), 1920x1080, veryfast, 16 CPUs: median frames/s by host "
            "copy: torch 40.0, numpy 80.5") in out
    assert (reports / "h100_pipeline_1920x1080.json").is_file()
    assert sorted(p.name for p in (runs / "scream-stable").iterdir()) == ["config.yaml", "final.pt", "log.csv",
                                                                          "train.stdout", "val.csv"]
    assert sorted(p.name for p in runs.iterdir()) == ["scream-stable"]  # nothing beside the run, no staging left
    assert f"--model scream-stable={runs / 'scream-stable' / 'final.pt'}" in out
    # a second collection does not overwrite without being asked
    (reports / "h100_graphs.json").unlink()  # only some outputs exist: still nothing is written
    again = collect(back, "--runs", runs, "--reports", reports, "--prefix", "h100")
    assert again.returncode != 0 and "pass --overwrite" in again.stderr
    assert not (reports / "h100_graphs.json").exists()
    assert collect(back, "--runs", runs, "--reports", reports, "--prefix", "h100", "--overwrite").returncode == 0


@pytest.mark.parametrize("entry", ["../escaped.txt", "other/final.pt", "run.stdout.bak"])
def test_refuses_a_tar_that_writes_outside_its_run(tmp_path, entry):
    back = tmp_path / "files"
    back.mkdir()
    evil = tmp_path / "evil.txt"
    evil.write_text("x")
    with tarfile.open(back / "run.tar", "w") as tar:
        tar.add(evil, arcname=entry)
    runs = tmp_path / "runs"
    (runs / "run").mkdir(parents=True)
    (runs / "run" / "final.pt").write_text("earlier")
    done = collect(back, "--runs", runs, "--reports", tmp_path / "reports", "--overwrite")
    assert done.returncode != 0 and f"unexpected entries: {entry}" in done.stderr
    assert (runs / "run" / "final.pt").read_text() == "earlier"  # checked before anything was replaced
    assert not (tmp_path / "escaped.txt").exists() and not (runs / "other").exists()


def test_nothing_to_collect(tmp_path):
    done = collect(tmp_path, "--runs", tmp_path / "runs", "--reports", tmp_path / "reports")
    assert done.returncode == 1 and "nothing to collect" in done.stderr


def test_refuses_an_empty_json_before_writing_anything(tmp_path):
    """A bench stage cut short can leave an empty file behind: nothing is copied, one line says why."""
    back = tmp_path / "files"
    back.mkdir()
    _speed(back / "speed_graphs.json", [_row("1920x1080", 1.0, 250.0, 40.0)])
    (back / "pipeline_1920x1080.json").write_text("")
    reports = tmp_path / "reports"
    done = collect(back, "--runs", tmp_path / "runs", "--reports", reports, "--prefix", "h100")
    assert done.returncode != 0 and "pipeline_1920x1080.json is not complete JSON" in done.stderr
    assert "Traceback" not in done.stderr and not reports.exists()
