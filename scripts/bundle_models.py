"""Copy finished training runs into the package as bundled half-precision models.

Usage: python scripts/bundle_models.py RUNS_DIR [--results reports/paper/networks/results.json]
       python scripts/bundle_models.py RUNS_DIR --wip models-wip
       python scripts/bundle_models.py --pick configs/bundle.yaml [--results ...]

With ``--wip DIR`` it instead saves every run's latest weights (``final.pt``, else ``last.pt``) as
DIR/<run name>.pt: float16 weights, config and step, without the optimiser state. That is what a
training that has to continue on another machine commits; ``scripts/train_bundled.sh`` picks
such a file up with ``--init`` when the run folder itself is gone. The saved step counts the whole
stage: a run that continued DIR/<run name>.pt adds the step that file had when the run began.

For every RUNS_DIR/<style>-stable/final.pt this writes stablestyle/bundled/<style>.pt, and for
RUNS_DIR/<style>-perframe/final.pt stablestyle/bundled/<style>-perframe.pt: float16 weights, the
training config (machine paths reduced to file names), the style image's sha256, and measured
figures: the run's last held-out validation instability and, with --results, the instability,
style loss and content loss that `stablestyle evaluate` measured for the model on each clip.

With ``--pick FILE`` (YAML: bundled name -> checkpoint, paths relative to the repository) it bundles the
named checkpoints instead, e.g. the models-wip files chosen by measurement (configs/bundle.yaml): every name
is ``<style>``, ``<style>-perframe`` or ``<style>-small``, and a stable name needs a recurrent net, a
per-frame name a per-frame one.  Each bundled file records its source file's name and step.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from stablestyle.bundled import BUNDLED_DIR  # noqa: E402
from stablestyle.checkpoint import model_from_checkpoint, read_checkpoint, save_checkpoint  # noqa: E402
from stablestyle.errors import UserError  # noqa: E402


def _last_row(path: Path) -> dict:
    rows = list(csv.DictReader(path.open())) if path.is_file() else []
    return rows[-1] if rows else {}


def _strip_paths(config: dict) -> dict:
    out = dict(config)
    out["style"] = Path(config.get("style", "")).name
    out["content"] = [Path(c).name for c in config.get("content", [])]
    out["video"] = [Path(v).name for v in config.get("video", [])]
    for key in ("out", "vgg_weights", "val_image"):
        if out.get(key):
            out[key] = Path(out[key]).name
    return out


def _measured(results: dict | None, name: str) -> dict:
    metrics = {}
    for run in (results or {}).get("runs", []):
        if run.get("checkpoint") and Path(run["checkpoint"]).stem == name:
            for key in ("instability", "style_loss", "content_loss"):
                if run.get(key) is not None:
                    metrics[f"{run['clip']}_{key}"] = run[key]
    return metrics


def wip_step(run_name: str, payload: dict) -> tuple[int, int]:
    """``(step, base)``: a run's step counted from the stage's start, and the part done before this run.

    A run whose ``--init`` was this stage's own wip file (``<wip>/<run_name>.pt``: the stage continued on
    another machine) started at that file's step, recorded by the trainer as ``metrics["init_step"]``
    when the run began (the file itself is overwritten by the next save).  Any other init starts at 0.
    """
    init = (payload.get("config") or {}).get("init")
    base = 0
    if init and Path(init).stem == run_name:
        base = int((payload.get("metrics") or {}).get("init_step", 0))
    return base + int(payload["step"]), base


def save_wip(runs: Path, out: Path) -> int:
    """Each run's latest weights as ``out/<run>.pt`` (fp16, config, step; no optimiser state).

    The step counts the stage's steps before the run as well (:func:`wip_step`), so that
    ``scripts/train_bundled.sh`` knows how many remain.
    """
    done = 0
    for run in sorted(p for p in runs.iterdir() if p.is_dir()):
        source = next((run / n for n in ("final.pt", "last.pt") if (run / n).is_file()), None)
        if source is None:
            continue
        payload = read_checkpoint(source)
        model = model_from_checkpoint(payload, str(source))
        step, base = wip_step(run.name, payload)
        out.mkdir(parents=True, exist_ok=True)
        save_checkpoint(out / f"{run.name}.pt", model, config=_strip_paths(payload["config"]), step=step,
                        style_sha256=payload.get("style_sha256"),
                        metrics={"finished": source.name == "final.pt", "run_step": int(payload["step"]),
                                 "continued_from_step": base},
                        half=True)
        print(f"saved {source} (step {step}: {base} before this run + {payload['step']}) -> "
              f"{out / (run.name + '.pt')}")
        done += 1
    if not done:
        print(f"error: no run folder with final.pt or last.pt in {runs}", file=sys.stderr)
        return 2
    return 0


def read_picks(path: Path) -> dict[str, Path]:
    """The ``--pick`` file: ``{bundled name: checkpoint path}``; raises ValueError on a malformed entry."""
    import yaml

    try:
        picks = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise ValueError(f"{path}: not YAML ({exc})".splitlines()[0]) from exc
    if not isinstance(picks, dict) or not picks:
        raise ValueError(f"{path}: expected a mapping of bundled names to checkpoint files")
    out = {}
    for name, source in picks.items():
        if not isinstance(name, str) or not isinstance(source, str) or not name or name.startswith("-"):
            raise ValueError(f"{path}: {name!r}: {source!r} is not a bundled name and a file path")
        source_path = Path(source) if Path(source).is_absolute() else ROOT / source
        if not source_path.is_file():
            raise ValueError(f"{path}: {name}: no file {source}")
        out[name] = source_path
    return out


def bundle_picks(picks: dict[str, Path], results: dict | None, bundled_dir: Path = BUNDLED_DIR) -> int:
    """Write ``bundled_dir/<name>.pt`` from each picked checkpoint (fp16, paths stripped, source recorded);
    every pick is read and checked before the first file is written."""
    loaded = {}
    for name, source in picks.items():
        payload = read_checkpoint(source)
        model = model_from_checkpoint(payload, str(source))
        stable_name = not name.endswith("-perframe")
        if bool(model.recurrent) != stable_name:
            print(f"error: {name} needs a {'recurrent' if stable_name else 'per-frame'} net; {source} holds a "
                  f"{'recurrent' if model.recurrent else 'per-frame'} one", file=sys.stderr)
            return 2
        loaded[name] = (source, payload, model)
    for name, (source, payload, model) in loaded.items():
        metrics = {"source": source.name, "source_step": int(payload.get("step", 0))}
        metrics.update(_measured(results, name))
        save_checkpoint(bundled_dir / f"{name}.pt", model, config=_strip_paths(payload.get("config") or {}),
                        step=payload.get("step", 0), style_sha256=payload.get("style_sha256"), metrics=metrics,
                        half=True)
        print(f"bundled {source} -> {bundled_dir / (name + '.pt')}")
    return 0


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", type=Path, nargs="?")
    parser.add_argument("--results", type=Path, default=None)
    parser.add_argument("--wip", type=Path, default=None, help="save resumable fp16 weights here instead")
    parser.add_argument("--pick", type=Path, default=None,
                        help="YAML of bundled name -> checkpoint: bundle those files instead of run folders")
    args = parser.parse_args(argv)
    if (args.pick is None) == (args.runs is None):
        parser.error("give RUNS_DIR or --pick FILE (one of them)")
    results = json.loads(args.results.read_text()) if args.results else None
    if args.pick is not None:
        try:
            picks = read_picks(args.pick)
        except (OSError, ValueError) as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        try:
            return bundle_picks(picks, results)
        except UserError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
    if args.wip is not None:
        return save_wip(args.runs, args.wip)
    done = 0
    for final in sorted(args.runs.glob("*/final.pt")):
        style, _, mode = final.parent.name.rpartition("-")
        if mode not in ("stable", "perframe"):
            continue
        name = style if mode == "stable" else f"{style}-perframe"
        payload = read_checkpoint(final)
        model = model_from_checkpoint(payload, str(final))
        val = _last_row(final.parent / "val.csv")
        metrics = {"val_instability": float(val["instability"])} if val.get("instability") else {}
        metrics.update(_measured(results, name))
        save_checkpoint(BUNDLED_DIR / f"{name}.pt", model, config=_strip_paths(payload["config"]),
                        step=payload["step"], style_sha256=payload.get("style_sha256"), metrics=metrics, half=True)
        print(f"bundled {final} -> {BUNDLED_DIR / (name + '.pt')} ({metrics})")
        done += 1
    if not done:
        print(f"error: no finished runs (<style>-stable/final.pt, <style>-perframe/final.pt) in {args.runs}",
              file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
