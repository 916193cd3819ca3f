"""Two training runs' held-out validation rows at the steps both reached, as one JSON.

Usage: python scripts/compare_val.py NAME=RUN_DIR NAME=RUN_DIR -o OUT.json

Reads each run's ``val.csv`` (instability of the validation clip with exact flow, content, style, tv;
written every ``validate_every`` steps) and its ``config.yaml``, keeps the steps present in both and
writes them side by side with the command and the runs' configs (e.g. a warm-started stable run against
one trained from scratch with the same settings).
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    import yaml

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("runs", nargs=2, metavar="NAME=RUN_DIR")
    p.add_argument("-o", "--out", required=True)
    args = p.parse_args(argv)
    rows, configs = {}, {}
    for spec in args.runs:
        name, _, folder = spec.partition("=")
        if not folder:
            print(f"error: give NAME=RUN_DIR, got {spec!r}", file=sys.stderr)
            return 2
        with open(Path(folder) / "val.csv", newline="") as fh:
            rows[name] = {int(r["step"]): {k: float(v) for k, v in r.items() if k != "step"} for r in csv.DictReader(fh)}
        configs[name] = yaml.safe_load((Path(folder) / "config.yaml").read_text())
    names = list(rows)
    steps = sorted(set(rows[names[0]]) & set(rows[names[1]]))
    report = {"command": "python scripts/compare_val.py " + " ".join(argv if argv is not None else sys.argv[1:]),
              "steps": {str(s): {n: rows[n][s] for n in names} for s in steps}, "configs": configs}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(report, indent=1))
    for s in steps:
        print(s, {n: rows[n][s] for n in names})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
