"""The long-video, dial and weights-look benchmarks: their checks on known numbers, and tiny end-to-end runs."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))

import dial  # noqa: E402
import long_video  # noqa: E402


def _rows(style, inst):
    return [{"minute": i + 1, "style_loss": s, "instability": t} for i, (s, t) in enumerate(zip(style, inst))]


@pytest.mark.parametrize("style, inst, rss, flat", [
    ([1.0, 1.05, 0.95], [2.0, 2.1, 1.9], [(0.5, 300.0), (10.0, 310.0), (29.0, 340.0)], True),
    ([1.0, 1.05, 1.2], [2.0, 2.1, 1.9], [(0.5, 300.0), (10.0, 310.0), (29.0, 340.0)], False),  # style drifts
    ([1.0, 1.0, 1.0], [2.0, 2.0, 2.5], [(0.5, 300.0), (10.0, 310.0), (29.0, 340.0)], False),  # flicker grows
    ([1.0, 1.0, 1.0], [2.0, 2.0, 2.0], [(0.5, 300.0), (10.0, 310.0), (29.0, 380.0)], False),  # memory grows
])
def test_long_video_checks(style, inst, rss, flat):
    out = long_video.checks(_rows(style, inst), rss, seconds=30.0)
    assert out["flat"] is flat
    assert out["peak_rss_growth_after_first_minute_mb"] == pytest.approx(rss[-1][1] - 310.0)


def _curve(values):
    return [{"s": s, "instability": i, "style_loss": st, "mode": "weights"} for s, i, st in values]


def test_dial_checks_monotone_and_middle():
    good = dial._checks(_curve([(0.0, 5.0, 0.1), (0.5, 2.0, 0.15), (1.0, 1.0, 0.2)]))
    assert good["instability_monotone"] and good["instability_at_half_between"] and good["style_loss_at_half_between"]
    bad = dial._checks(_curve([(0.0, 5.0, 0.1), (0.5, 2.0, 0.3), (0.75, 0.8, 0.2), (1.0, 1.0, 0.2)]))
    assert not bad["instability_monotone"] and not bad["style_loss_at_half_between"]


def test_long_video_end_to_end_on_a_few_seconds(tmp_path, assets):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run([sys.executable, str(ROOT / "bench" / "long_video.py"), "--minutes", "0.04",
                           "--bucket-seconds", "0.8", "--work", str(tmp_path / "work"), "-o", str(tmp_path / "out")],
                          capture_output=True, text=True, timeout=1800, env=env, cwd=ROOT)  # hang guard only
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads((tmp_path / "out" / "long_video.json").read_text())
    assert set(report["inputs"]) == {"camera", "pingpong"} and len(report["weights_sha256"]) == 64
    for run in report["inputs"].values():
        assert [r["minute"] for r in run["per_minute"]] == [1, 2, 3]
        assert all(r["style_loss"] > 0 and r["instability"] > 0 for r in run["per_minute"])
        assert run["stylize"]["rss_mb"], "memory was not sampled"
    assert (tmp_path / "out" / "long_video.png").stat().st_size > 0


def test_weights_look_writes_the_strip_and_the_terms(tmp_path, assets):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run([sys.executable, str(ROOT / "bench" / "weights_look.py"), "--weights", "1", "4",
                           "--iterations", "2", "-o", str(tmp_path)], capture_output=True, text=True, timeout=1800,
                          env=env, cwd=ROOT)  # hang guard only
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads((tmp_path / "scream_100007.json").read_text())
    assert [r["style_weight"] for r in report["results"]] == [1.0, 4.0]
    assert all(r["style"] > 0 and r["content"] > 0 for r in report["results"])
    from PIL import Image

    with Image.open(tmp_path / "scream_100007.png") as strip:
        assert strip.width > 2.9 * strip.height  # the photo and two results side by side
