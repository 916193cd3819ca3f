"""Write the stable / per-frame ratios that the README quotes, computed from the committed evaluate reports.

Usage: python scripts/report_ratios.py [-o reports/ratios.json]

For every ``results.json`` under ``reports/`` (the archive included) and every clip and style in it,
each model's instability and style loss divided by those of each per-frame model (a method whose name
contains ``perframe``) of the same report, style and clip (the demo's report holds its own ratio,
``stable_over_perframe``). The README's "0.45x" figures are these values, so a test finds them in a
committed JSON without recomputing anything. Rerun after adding or changing a report.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def evaluate_ratios(report: dict) -> dict:
    """``{clip: {style: {"A / B": {"instability": ..., "style_loss": ...}}}}`` of one evaluate report."""
    out: dict = {}
    runs = report.get("runs", [])
    for base in runs:
        if "perframe" not in base["method"]:
            continue
        for run in runs:
            if run is base or run["clip"] != base["clip"] or run.get("style") != base.get("style"):
                continue
            ratio = {key: run[key] / base[key] for key in ("instability", "style_loss")
                     if run.get(key) is not None and base.get(key)}
            out.setdefault(base["clip"], {}).setdefault(base["style"], {})[
                f"{run['method']} / {base['method']}"] = ratio
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-o", "--output", type=Path, default=ROOT / "reports" / "ratios.json")
    args = parser.parse_args(argv)
    reports = {}
    for path in sorted((ROOT / "reports").rglob("results.json")):
        report = json.loads(path.read_text(encoding="utf-8"))
        if report.get("format") == "stablestyle-evaluation":
            reports[path.relative_to(ROOT).as_posix()] = evaluate_ratios(report)
    result = {"command": "python scripts/report_ratios.py", "ratios": reports}
    args.output.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {args.output} ({len(reports)} reports)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
