"""Write the sha256 of every bundled checkpoint, so reports can say which weights a model name meant.

Usage: python scripts/weights_hashes.py [-o reports/bundled_weights.json]
       python scripts/weights_hashes.py --annotate reports/*/results.json

Names such as ``udnie`` change meaning whenever the bundled models are retrained; a report names the
weights it measured by their hash (``weights_sha256``, the sha256 of the ``.pt`` file's bytes, as
``stablestyle.checkpoint.file_sha256`` computes it and ``stablestyle evaluate`` records it). Next to
each hash: the file size, the net's width and parameter count, whether it is recurrent, the training
step and the style image's hash, read from the checkpoint. Rerun after retraining and commit the result
together with the new weights.

``--annotate`` adds ``weights_sha256`` to the models of existing ``evaluate`` reports that were
written before ``evaluate`` recorded it, for the models given by a bundled name: the hash of the
bundled file as it is now, or of the version in this repository's git history, whose training step,
net and style hash equal the ones the report recorded (``weights_source`` says which commit). Models
from training runs that are not kept are left without a hash.
"""

from __future__ import annotations

import argparse
import json
import functools
from datetime import datetime
import io
import shlex
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from stablestyle.bundled import BUNDLED_DIR, available  # noqa: E402
from stablestyle.checkpoint import file_sha256, model_from_checkpoint, read_checkpoint  # noqa: E402


def describe(name: str) -> dict:
    """Hash, size and recorded training facts of the bundled model ``name``."""
    path = BUNDLED_DIR / f"{name}.pt"
    payload = read_checkpoint(path, "cpu")
    model = model_from_checkpoint(payload, source=str(path))
    params = sum(p.numel() for p in model.parameters())
    return {"file": path.relative_to(ROOT).as_posix(), "weights_sha256": file_sha256(path),
            "size_bytes": path.stat().st_size, "size_mb": round(path.stat().st_size / 1e6, 4),
            "parameters": params, **{k: payload.get(k) for k in ("model", "step", "style_sha256", "version")}}


def _identity(meta: dict) -> tuple:
    return meta.get("step"), json.dumps(meta.get("model"), sort_keys=True), meta.get("style_sha256")


@functools.cache
def bundled_versions(name: str) -> list[dict]:
    """Every committed version of ``stablestyle/bundled/<name>.pt``, newest first, with its identity."""
    import hashlib

    import torch

    rel = f"stablestyle/bundled/{name}.pt"
    log = subprocess.run(["git", "log", "--format=%h %cI", "--", rel], cwd=ROOT, check=True,
                         capture_output=True, text=True).stdout.split("\n")
    versions = []
    for commit, date in (line.split() for line in log if line.strip()):
        data = subprocess.run(["git", "show", f"{commit}:{rel}"], cwd=ROOT, check=True, capture_output=True).stdout
        meta = torch.load(io.BytesIO(data), map_location="cpu", weights_only=False)
        versions.append({"commit": commit, "date": datetime.fromisoformat(date), "sha256": hashlib.sha256(data).hexdigest(), "id": _identity(meta),
                         "sintel": (meta.get("metrics") or {}).get("sintel_ambush_4_instability")})
    return versions


def _measured(report: dict, model: dict, clip: str) -> float | None:
    """The instability the report measured for ``model`` on ``clip`` (None if it has no such run)."""
    for run in report.get("runs", []):
        if run["method"] == model["name"] and run.get("style") == model.get("style") and run["clip"] == clip:
            return run["instability"]
    return None


def _version_for(report: dict, model: dict, versions: list[dict]) -> dict | None:
    """The committed version (newest first in ``versions``) that a report's model was.

    It has the step, net and style hash the report recorded; where several versions do, the ones whose
    recorded Sintel instability is the one the report measured, and of those the version in effect at
    the report's date (the newest committed before it, else the first committed after it: models
    are bundled right after the report that measured them).
    """
    same = [v for v in versions if v["id"] == _identity(model)]
    if len({v["sha256"] for v in same}) > 1:
        measured = _measured(report, model, "sintel_ambush_4")
        agree = [v for v in same if measured is not None and v["sintel"] is not None
                 and abs(v["sintel"] - measured) <= 1e-6 * abs(measured)]
        same = agree or same
    if len({v["sha256"] for v in same}) > 1:
        date = datetime.fromisoformat(report["provenance"]["date"])
        before = [v for v in same if v["date"] <= date]
        same = before[:1] or same[-1:]
    return same[0] if len({v["sha256"] for v in same}) == 1 else None


def annotate(path: Path) -> list[str]:
    """Add ``weights_sha256`` / ``weights_source`` to the bundled models of the report at ``path``."""
    report = json.loads(path.read_text(encoding="utf-8"))
    notes = []
    for model in report.get("models", []):
        name = model.get("checkpoint")
        if model.get("weights_sha256") or name not in available():
            continue
        version = _version_for(report, model, bundled_versions(name))
        if version is None:
            notes.append(f"{path}: {model['name']}={name}: no single committed version matches; left out")
            continue
        model["weights_sha256"] = version["sha256"]
        model["weights_source"] = f"stablestyle/bundled/{name}.pt at commit {version['commit']}"
        notes.append(f"{path}: {model['name']}={name} ({model['style']}): {version['sha256'][:12]} "
                     f"({model['weights_source']})")
    if not notes:
        return notes
    report.setdefault("provenance", {})["weights_sha256_added_by"] = "python scripts/weights_hashes.py --annotate"
    path.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    return notes


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-o", "--output", type=Path, default=ROOT / "reports" / "bundled_weights.json")
    parser.add_argument("--annotate", type=Path, nargs="+", metavar="RESULTS_JSON",
                        help="add weights_sha256 to these evaluate reports instead")
    args = parser.parse_args(argv)
    if args.annotate:
        for path in args.annotate:
            print("\n".join(annotate(path)))
        return 0
    report = {"command": "python scripts/weights_hashes.py" + "".join(f" {shlex.quote(a)}" for a in argv or []),
              "hash": "sha256 of the checkpoint file's bytes (stablestyle.checkpoint.file_sha256)",
              "models": {name: describe(name) for name in available()}}
    args.output.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {args.output} ({len(report['models'])} models)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
