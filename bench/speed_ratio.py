"""Two arms of bench/stylize_speed.py runs side by side: each rate's median per arm and their ratio.

Usage: python bench/speed_ratio.py NAME=JSON[,JSON...] NAME=JSON[,JSON...] [-o OUT.json]

Each arm is one or more stylize_speed.py reports of the same settings, best run alternately (A B A B) so
that a drift of the machine's speed falls on both.  Rows are matched by (size, width, backend, precision);
for each, every arm's runs give the median of ``model_fps``, ``e2e_fps`` and ``e2e_encode_ms``, and the
ratio of the second arm's median to the first's.  Each arm's weights and their hashes are kept, so the
comparison names what it compared (e.g. the same nets with two sets of weights: the network's speed should
not move, the encoder's may, since it depends on what the frames look like).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

from stablestyle.errors import UserError
from stablestyle.report import emit_json

METRICS = ("model_fps", "e2e_fps", "e2e_encode_ms")
KEY = ("size", "width", "backend", "precision")


def parse_arm(text: str) -> tuple[str, list[Path]]:
    """``NAME=JSON[,JSON...]`` as (name, paths)."""
    name, sep, files = text.partition("=")
    paths = [Path(f) for f in files.split(",") if f]
    if not sep or not name or not paths:
        raise UserError(f"an arm is NAME=JSON[,JSON...], got {text!r}")
    return name, paths


def read_report(path: Path) -> dict:
    try:
        report = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise UserError(f"cannot read {path} as a bench/stylize_speed.py report: {exc}") from None
    if not isinstance(report, dict) or not isinstance(report.get("results"), list):
        raise UserError(f"{path} is not a bench/stylize_speed.py report (no results list)")
    return report


def arm_rows(reports: list[dict]) -> dict[tuple, dict]:
    """Per row key: each metric's values over the reports, and the weights the rows used."""
    rows: dict[tuple, dict] = {}
    for report in reports:
        for entry in report["results"]:
            if "error" in entry:
                continue
            row = rows.setdefault(tuple(entry[k] for k in KEY), {"values": {m: [] for m in METRICS},
                                                                  "weights": set()})
            row["weights"].add((entry.get("weights"), entry.get("weights_sha256")))
            for m in METRICS:
                if m in entry:
                    row["values"][m].append(entry[m])
    return rows


def compare(first: dict[tuple, dict], second: dict[tuple, dict], names: tuple[str, str]) -> list[dict]:
    """One row per key both arms timed: each arm's medians and weights, and second / first per metric."""
    out = []
    for key in sorted(set(first) & set(second), key=str):
        row = dict(zip(KEY, key))
        for name, arm in zip(names, (first[key], second[key])):
            row[name] = {"weights": [{"weights": w, "weights_sha256": h} for w, h in sorted(arm["weights"], key=str)],
                         "runs": {m: v for m, v in arm["values"].items() if v},
                         "median": {m: statistics.median(v) for m, v in arm["values"].items() if v}}
        a, b = row[names[0]]["median"], row[names[1]]["median"]
        row[f"ratio_{names[1]}_over_{names[0]}"] = {m: round(b[m] / a[m], 4) for m in METRICS
                                                    if m in a and m in b and a[m]}
        out.append(row)
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("arms", nargs=2, metavar="NAME=JSON[,JSON...]")
    p.add_argument("-o", "--out", default=None, help="also write the JSON here")
    args = p.parse_args(argv)
    (n1, f1), (n2, f2) = (parse_arm(a) for a in args.arms)
    if n1 == n2:
        raise UserError(f"the two arms need different names, got {n1!r} twice")
    reports = {n1: [read_report(f) for f in f1], n2: [read_report(f) for f in f2]}
    rows = compare(arm_rows(reports[n1]), arm_rows(reports[n2]), (n1, n2))
    if not rows:
        raise UserError("the two arms share no (size, width, backend, precision) row without an error")
    result = {"command": " ".join(["speed_ratio.py", *(argv if argv is not None else sys.argv[1:])]),
              "arms": {n: {"reports": [str(f) for f in fs],
                           "devices": sorted({r.get("device", "?") for r in reports[n]}),
                           "peaks_tflops": [{p: v["measured"]["tflops"] for p, v in r.get("peak", {}).items()}
                                            for r in reports[n]]}
                       for n, fs in ((n1, f1), (n2, f2))},
              "rows": rows}
    emit_json(result, args.out)
    return 0


if __name__ == "__main__":
    from stablestyle.errors import run_script

    run_script(main)
