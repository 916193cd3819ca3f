"""Every measured figure in README.md is a value of some committed JSON under ``reports/``.

A figure counts as backed when some number in some JSON under ``reports/`` (any depth, any key) rounds
to it at the README's precision: ``0.00014`` is matched by 0.000142, ``6.31e4`` by 63094.6, ``110.7k`` by
110715, ``0.35x`` by a ratio a report holds (``reports/ratios.json``, ``scripts/report_ratios.py``). Checked: every decimal number (and ``e`` notation, and
``k`` counts) in the README's prose and tables. Skipped: fenced code blocks, inline code spans, link
targets, dates, version strings and the short list of settings below, which are not measurements.
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

# Settings, thresholds and definitions written as decimals: not measurements, so no report holds them.
NOT_MEASURED = {
    "0.5",  # the paper-level target "stable <= 0.5x the per-frame instability", the risk score's "0.5 log2",
    #         and the net width 0.5
    "1.2",  # the paper-level target "style loss <= 1.2x"
    "0.25",  # the quarter net width (`--widths 0.25,0.5`, "width 0.25")
    "1.0",  # the full net width ("width 1.0")
}

_FENCE = re.compile(r"^```.*?^```", re.S | re.M)
_CODE = re.compile(r"`[^`\n]*`")
_LINK_TARGET = re.compile(r"\]\([^)]*\)")
_DATE = re.compile(r"\b\d{4}-\d{2}-\d{2}\b")
_VERSION = re.compile(r"(?:\b(?:torch|Python|python|PyTorch)\s*(?:[<>=]=?\s*)?|==)\d+(?:\.\d+)+")
_NUMBER = re.compile(r"(?<![\w.])(\d+(?:\.\d+)?k\b|\d+(?:\.\d+)?e[+-]?\d+|\d+\.\d+)(?![\w.]*\d)")


def readme_figures(text: str) -> list[str]:
    """The figures of ``text`` to check, in order, as written (``0.00014``, ``6.31e4``, ``110.7k``)."""
    for pattern in (_FENCE, _CODE, _LINK_TARGET, _DATE, _VERSION):
        text = pattern.sub(" ", text)
    return [f for f in _NUMBER.findall(text) if f not in NOT_MEASURED]


def _target(figure: str) -> tuple[float, float]:
    """``(value, half a unit in the last written digit)`` of a figure as written."""
    if figure.endswith("k"):
        value, scale = figure[:-1], 1e3
    elif "e" in figure:
        value, _, exp = figure.partition("e")
        scale = 10.0 ** int(exp)
    else:
        value, scale = figure, 1.0
    decimals = len(value.partition(".")[2])
    return float(value) * scale, 0.5 * 10.0 ** -decimals * scale


def backs(number: float, figure: str) -> bool:
    """Whether a JSON number, rounded at the figure's precision, is the figure."""
    value, half = _target(figure)
    return math.isfinite(number) and abs(number - value) <= half * (1 + 1e-9)


def _noise(key: str) -> bool:
    """Keys whose many numbers no README figure quotes and that would otherwise back figures by chance:
    per-frame series, the load average around a benchmark, evaluate's per-run timing, format versions."""
    return key.endswith("_per_frame") or key.startswith("load_average") or key in ("speed", "format_version")


def json_numbers() -> list[float]:
    """Every number in every JSON file under reports/ (but the :func:`_noise` keys), sorted."""
    found: list[float] = []

    def walk(node) -> None:
        if isinstance(node, dict):
            for key, item in node.items():
                if not _noise(str(key)):
                    walk(item)
        elif isinstance(node, list):
            for item in node:
                walk(item)
        elif isinstance(node, (int, float)) and not isinstance(node, bool):
            found.append(float(node))

    for path in sorted((ROOT / "reports").rglob("*.json")):
        walk(json.loads(path.read_text(encoding="utf-8")))
    return sorted(found)


def test_every_readme_figure_is_in_a_committed_report():
    import bisect

    numbers = json_numbers()
    figures = readme_figures((ROOT / "README.md").read_text(encoding="utf-8"))
    assert len(figures) > 20, "the README parser found too few figures"

    def backed(figure: str) -> bool:
        value, half = _target(figure)
        i = bisect.bisect_left(numbers, value - half * (1 + 1e-9))
        return i < len(numbers) and backs(numbers[i], figure)

    missing = sorted({f for f in figures if not backed(f)}, key=figures.index)
    assert not missing, (f"README figures no JSON under reports/ holds: {', '.join(missing)}; commit the report "
                         "that measured them (with its command) or drop them from the README")


@pytest.mark.parametrize(("text", "expected"), [
    ("instability 0.00014 at 33.4 frames/s, 0.35x the per-frame model", ["0.00014", "33.4", "0.35"]),
    ("in 13.4-15.3 s; style loss 6.31e4 -> 4.51e4; 110.7k parameters", ["13.4", "15.3", "6.31e4", "4.51e4",
                                                                        "110.7k"]),
    ("`--widths 0.25,0.6` and [doc](docs/A.md#v1.5) on 2026-11-27", []),
    ("Python >= 3.10, `torch==2.13.0`, torch 2.11, stable <= 0.5x", []),
    ("```bash\nstablestyle stylize --size 2.5\n```\n1.8x", ["1.8"]),
    ("from 200 to 700 steps, 2-core, 640x360, H.264", []),
])
def test_readme_figures_parsing(text, expected):
    assert readme_figures(text) == expected


@pytest.mark.parametrize(("number", "figure", "ok"), [
    (0.000142, "0.00014", True), (0.000146, "0.00014", False), (0.3466, "0.35", True), (0.354, "0.35", True),
    (0.356, "0.35", False), (63094.6, "6.31e4", True), (110715, "110.7k", True), (0.81, "0.81", True),
    (33.44, "33.4", True), (float("nan"), "33.4", False),
])
def test_rounding_match(number, figure, ok):
    assert backs(number, figure) is ok
