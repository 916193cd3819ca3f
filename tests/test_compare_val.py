"""scripts/compare_val.py: when a second training run reaches a first one's instability and style."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("compare_val", ROOT / "scripts" / "compare_val.py")
cv = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(cv)


def _rows(instability, style, every=50):
    return {every * (i + 1): {"instability": a, "content": 0.5, "style": b, "tv": 0.001}
            for i, (a, b) in enumerate(zip(instability, style))}


def test_trailing_mean_averages_the_rows_so_far_up_to_the_window():
    rows = _rows([4.0, 2.0, 6.0, 1.0], [0.0] * 4)
    assert cv.trailing_mean(rows, "instability", 2) == {50: 4.0, 100: 3.0, 150: 4.0, 200: 3.5}
    assert cv.trailing_mean(rows, "instability", 1) == {s: r["instability"] for s, r in rows.items()}


def test_first_reaching_needs_both_terms_at_once():
    # steady early but unstyled, styled later: only step 200 has both at or below (3, 0.3)
    rows = _rows([1.0, 2.0, 4.0, 3.0], [0.9, 0.5, 0.3, 0.3])
    assert cv.first_reaching(rows, 3.0, 0.3, window=1) == 200
    assert cv.first_reaching(rows, 0.5, 0.3, window=1) is None
    # a single lucky row does not count once it is averaged with its neighbours
    noisy = _rows([5.0, 1.0, 5.0, 5.0], [0.2] * 4)
    assert cv.first_reaching(noisy, 2.0, 0.2, window=1) == 100
    assert cv.first_reaching(noisy, 2.0, 0.2, window=3) is None


def _run(folder: Path, rows: dict) -> Path:
    folder.mkdir()
    lines = ["step,instability,content,style,tv"] + [
        f"{s},{r['instability']},{r['content']},{r['style']},{r['tv']}" for s, r in sorted(rows.items())]
    (folder / "val.csv").write_text("\n".join(lines) + "\n")
    (folder / "config.yaml").write_text("mode: stable\n")
    return folder


def test_the_report_says_when_the_run_from_scratch_catches_up(tmp_path):
    warm = _run(tmp_path / "warm", _rows([3.0, 2.0], [0.3, 0.3]))
    scratch = _run(tmp_path / "scratch", _rows([1.0, 1.0, 2.0, 2.0, 2.0, 2.0], [0.9, 0.6, 0.4, 0.3, 0.3, 0.3]))
    out = tmp_path / "ab.json"
    assert cv.main([f"warm={warm}", f"scratch={scratch}", "--window", "1", "-o", str(out)]) == 0
    report = json.loads(out.read_text())
    assert report["reach"]["first"] == "warm" and report["reach"]["second"] == "scratch"
    assert {s: r["second_reaches_at"] for s, r in report["reach"]["rows"].items()} == {"50": 200, "100": 200}
    assert set(report["steps"]) == {"50", "100"} and not out.with_suffix(".tmp").exists()


@pytest.mark.parametrize("bad", ["nofolder", "noname"])
def test_a_wrong_run_is_one_line_and_writes_nothing(tmp_path, bad):
    good = _run(tmp_path / "good", _rows([1.0], [0.3]))
    second = f"b={tmp_path / 'missing'}" if bad == "nofolder" else str(good)
    out = tmp_path / "ab.json"
    proc = subprocess.run([sys.executable, str(ROOT / "scripts" / "compare_val.py"), f"a={good}", second,
                           "-o", str(out)], capture_output=True, text=True)
    assert proc.returncode == 2 and len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert proc.stderr.startswith("error:") and not out.exists()
