"""Two training runs' held-out validation rows side by side, and when the second reaches the first.

Usage: python scripts/compare_val.py NAME=RUN_DIR NAME=RUN_DIR [--window N] -o OUT.json

Reads each run's ``val.csv`` (instability of the validation clip with exact flow, content, style, tv;
written every ``validate_every`` steps) and its ``config.yaml``, and writes as one JSON, with the command and
the runs' configs (e.g. a warm-started stable run against one trained from scratch with the same settings):

- ``steps``: the rows at the steps both runs reached;
- ``reach``: for every validation step of the first run, its instability and style loss (trailing means over
  ``--window`` rows, which tames the validation clip's noise) and the first step at which the second run's
  trailing means are at or below both (null where it never gets there): training to equal instability *and*
  style, the comparison a warm start is judged by.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from pathlib import Path


def trailing_mean(rows: dict[int, dict[str, float]], key: str, window: int) -> dict[int, float]:
    """Each step's mean of ``key`` over its own and the ``window - 1`` validation rows before it."""
    steps = sorted(rows)
    out = {}
    for i, step in enumerate(steps):
        last = steps[max(0, i - window + 1):i + 1]
        out[step] = sum(rows[s][key] for s in last) / len(last)
    return out


def first_reaching(rows: dict[int, dict[str, float]], instability: float, style: float, window: int) -> int | None:
    """The first step whose trailing-mean instability and style loss are both at or below the given values."""
    inst, sty = trailing_mean(rows, "instability", window), trailing_mean(rows, "style", window)
    return next((s for s in sorted(rows) if inst[s] <= instability and sty[s] <= style), None)


def reach_table(first: dict[int, dict[str, float]], second: dict[int, dict[str, float]], window: int) -> dict:
    """For each validation step of ``first``: its trailing means and when ``second`` reaches both."""
    inst, sty = trailing_mean(first, "instability", window), trailing_mean(first, "style", window)
    return {str(s): {"instability": inst[s], "style": sty[s],
                     "second_reaches_at": first_reaching(second, inst[s], sty[s], window)} for s in sorted(first)}


def _read_run(folder: Path) -> tuple[dict[int, dict[str, float]], dict]:
    import yaml

    try:
        with open(folder / "val.csv", newline="") as fh:
            rows = {int(r["step"]): {k: float(v) for k, v in r.items() if k != "step"} for r in csv.DictReader(fh)}
        config = yaml.safe_load((folder / "config.yaml").read_text())
    except (OSError, KeyError, ValueError) as exc:
        raise ValueError(f"{folder} is not a run folder with val.csv and config.yaml ({exc})") from None
    if not rows:
        raise ValueError(f"{folder}/val.csv has no validation rows yet")
    return rows, config


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("runs", nargs=2, metavar="NAME=RUN_DIR")
    p.add_argument("--window", type=int, default=3, help="validation rows per trailing mean (default 3)")
    p.add_argument("-o", "--out", required=True)
    args = p.parse_args(argv)
    if args.window < 1:
        print("error: --window must be at least 1", file=sys.stderr)
        return 2
    rows, configs = {}, {}
    for spec in args.runs:
        name, _, folder = spec.partition("=")
        if not folder:
            print(f"error: give NAME=RUN_DIR, got {spec!r}", file=sys.stderr)
            return 2
        try:
            rows[name], configs[name] = _read_run(Path(folder))
        except ValueError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
    names = list(rows)
    if len(names) != 2:
        print("error: give the two runs different names", file=sys.stderr)
        return 2
    steps = sorted(set(rows[names[0]]) & set(rows[names[1]]))
    report = {"command": "python scripts/compare_val.py " + " ".join(argv if argv is not None else sys.argv[1:]),
              "steps": {str(s): {n: rows[n][s] for n in names} for s in steps},
              "reach": {"first": names[0], "second": names[1], "window": args.window,
                        "rows": reach_table(rows[names[0]], rows[names[1]], args.window)},
              "configs": configs}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(args.out).with_suffix(".tmp")
    tmp.write_text(json.dumps(report, indent=1))
    tmp.replace(args.out)
    for s, row in report["reach"]["rows"].items():
        print(f"{names[0]} step {s}: instability {row['instability']:.3g} style {row['style']:.3g} -> "
              f"{names[1]} reaches both at step {row['second_reaches_at']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
