"""Gather what the two GPU calls brought back (``bench/gpu/gpu_run.sh bench|train``) into the repository.

Usage: python bench/gpu/gpu_collect.py FILES_AT [--runs runs/gpu] [--reports reports/bench] [--prefix gpu_h200]

* ``speed_<variant>.json`` -> ``<reports>/<prefix>_<variant>.json``, and a Markdown table of every
  measured combination on stdout (variant, size, width, precision, model and end-to-end frames/s, the
  device as the JSON names it), followed by the issue's 1080p targets against the best figures;
* ``encode_<size>.json`` (``bench/encode_speed.py``) -> ``<reports>/<prefix>_encode_<size>.json``, and a
  table of the encoder's frames/s per preset and threading; ``pipeline_<size>.json`` (``bench/pipeline_io.py``)
  likewise, with its medians;
* ``<run>.tar`` -> ``<runs>/<run>/`` (``final.pt``, ``config.yaml``, ``log.csv``, ``val.csv``, ``train.stdout``), and
  the next commands: evaluate them beside the bundled models and bundle them;
* ``tests_*.txt``: their last line (the pytest summary); ``*.log``: their "tests exit" lines.

Everything is checked before anything is written; nothing is overwritten without ``--overwrite``.  What it prints is what the README and
docs/PERFORMANCE.md want, with the device named.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tarfile
import tempfile
from pathlib import Path

from stablestyle.atomic import atomic_path

#: docs/PERFORMANCE.md's targets for 1920x1080 on the GPU (issue #6).
TARGETS = {"model_fps": 200.0, "e2e_fps": 60.0}
TARGET_SIZE = "1920x1080"


def speed_rows(variant: str, data: dict) -> tuple[str, list[dict]]:
    """``(device, result rows)`` of one ``bench/stylize_speed.py`` JSON; rows carry the variant name."""
    return str(data.get("device", "?")), [{**r, "variant": variant} for r in data.get("results", [])]


def _fps(value) -> str:
    return f"{value:.1f}" if isinstance(value, (int, float)) else "-"


def _rewrites(row: dict) -> str:
    """Which function-preserving rewrites a row ran with (``split``, ``subpixel``; JSON before them: ``-``)."""
    names = [name for name, key in (("split", "split_convs"), ("subpixel", "subpixel")) if row.get(key)]
    return "+".join(names) or ("none" if "subpixel" in row else "-")


def speed_table(rows: list[dict]) -> str:
    lines = ["| variant | size | width | precision | rewrites | weights | model fps | end-to-end fps | x264 preset |",
             "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        # the end-to-end rate depends on the weights (a random net's frames are x264's worst case); JSON from
        # before the bench recorded them always used random-init nets
        head = (f"| {r['variant']} | {r.get('size')} | {r.get('width')} | {r.get('precision')} | {_rewrites(r)} "
                f"| {r.get('weights', 'random')} |")
        if "error" in r:
            lines.append(f"{head} error: {r['error'][:80]} | | |")
            continue
        lines.append(f"{head} {_fps(r.get('model_fps'))} | {_fps(r.get('e2e_fps'))} "
                     f"| {r.get('e2e_x264_preset', '-')} |")
    return "\n".join(lines)


def target_lines(rows: list[dict]) -> list[str]:
    """For each width measured at 1080p: the best model-only and end-to-end figures against the targets."""
    out = []
    at_size = [r for r in rows if r.get("size") == TARGET_SIZE and "error" not in r]
    for width in sorted({r["width"] for r in at_size}, reverse=True):
        parts = []
        for key, target in TARGETS.items():
            best = max((r for r in at_size if r["width"] == width and isinstance(r.get(key), (int, float))),
                       key=lambda r: r[key], default=None)
            if best is None:
                parts.append(f"{key} not measured")
                continue
            verdict = "reached" if best[key] >= target else "missed"
            parts.append(f"{key} {best[key]:.1f} ({best['variant']}) vs >= {target:g}: {verdict}")
        out.append(f"- {TARGET_SIZE}, width {width}: " + "; ".join(parts))
    return out or [f"- {TARGET_SIZE}: not measured"]


def encode_table(data: dict) -> str:
    """The encoder alone (``bench/encode_speed.py``'s JSON): frames/s, CPU ms, size and PSNR per setting."""
    lines = [f"Encoder alone, {data.get('size')}, {data.get('frames')} frames, {data.get('cpus')} CPUs:", "",
             "| preset / threading | frames/s | CPU ms a frame | KiB | PSNR dB |", "|---|---|---|---|---|"]
    for name, r in data.get("results", {}).items():
        lines.append(f"| {name} | {_fps(r.get('fps'))} | {r.get('cpu_ms_per_frame', '-')} | {r.get('kib', '-')} "
                     f"| {r.get('psnr_db', '-')} |")
    return "\n".join(lines)


def check_run_tar(tar_path: Path) -> None:
    """Refuse a run tar with entries other than ``<name>/...`` and ``<name>.stdout`` (``gpu_run.sh``'s layout)."""
    name = tar_path.stem
    with tarfile.open(tar_path) as tar:
        bad = [m.name for m in tar.getmembers()
               if not (m.isfile() or m.isdir()) or ".." in Path(m.name).parts or Path(m.name).is_absolute()
               or not (Path(m.name).parts[:1] == (name,) or m.name == f"{name}.stdout")]
    if bad:
        raise SystemExit(f"error: {tar_path} holds unexpected entries: {', '.join(bad)}")


def unpack_run(tar_path: Path, runs: Path) -> Path:
    """Extract a checked run tar into ``runs/<name>/`` (its log as ``train.stdout`` inside); returns the folder.

    Extracted beside the target first, so an existing run folder is only replaced by a complete one.
    """
    name = tar_path.stem
    target = runs / name
    runs.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{name}.tmp-", dir=runs))
    try:
        with tarfile.open(tar_path) as tar:
            try:
                tar.extractall(staging, filter="data")
            except TypeError:  # Python without extraction filters (before 3.10.12 / 3.11.4): checked already
                tar.extractall(staging)
        (staging / name).mkdir(exist_ok=True)
        if (staging / f"{name}.stdout").is_file():
            (staging / f"{name}.stdout").replace(staging / name / "train.stdout")
        if target.exists():
            shutil.rmtree(target)
        (staging / name).replace(target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target


def print_test_summaries(files_at: Path) -> None:
    """The last line of each ``tests_*.txt`` and the tests' exit lines of each ``*.log``."""
    for tests in sorted(files_at.glob("tests_*.txt")):
        lines = tests.read_text(errors="replace").strip().splitlines()
        print(f"{tests.name}: {lines[-1] if lines else '(empty)'}")
    for log in sorted(files_at.glob("*.log")):  # gpu_run.sh bench logs its tests' summary
        for line in log.read_text(errors="replace").splitlines():
            if "] tests exit " in line:
                print(f"{log.name}: {line.split('] ', 1)[1]}")


def plan_copies(files_at: Path, reports: Path, runs: Path, prefix: str, overwrite: bool
                ) -> tuple[dict[Path, Path], dict[Path, dict], list[Path]]:
    """``(copies, loaded, tars)``: where each JSON goes, its parsed content, and the run tars; everything is
    checked (no clash without ``overwrite``, safe tars, complete JSON) before anything is written."""
    speeds = sorted(files_at.glob("speed_*.json"))
    tars = sorted(files_at.glob("*.tar"))
    others = sorted([*files_at.glob("encode_*.json"), *files_at.glob("pipeline_*.json")])
    copies = {path: reports / f"{prefix}_{path.stem.removeprefix('speed_')}.json" for path in speeds}
    copies.update({path: reports / f"{prefix}_{path.stem}.json" for path in others})
    targets = [*copies.values(), *(runs / t.stem for t in tars)]
    clash = [str(t) for t in targets if t.exists()]
    if clash and not overwrite:
        raise SystemExit(f"error: {', '.join(clash)} exist(s); pass --overwrite to replace")
    for tar_path in tars:
        check_run_tar(tar_path)
    loaded = {}  # a stage cut short can leave an empty or partial file: refuse before copying any
    for path in copies:
        try:
            loaded[path] = json.loads(path.read_text())
        except ValueError:
            raise SystemExit(f"error: {path} is not complete JSON (a stage cut short?); move it aside and run again")
    return copies, loaded, tars


def print_speed_summary(speeds: dict[Path, dict]) -> int:
    """The speed table, the targets and the pipeline-without-network rows of the ``speed_*.json`` files;
    returns the number of speed rows."""
    devices, rows = set(), []
    for path, data in speeds.items():
        device, found = speed_rows(path.stem.removeprefix("speed_"), data)
        devices.add(device)
        rows += found
    if not rows:
        return 0
    print(f"\nDevice: {', '.join(sorted(devices))}\n")
    print(speed_table(rows))
    print("\nTargets:")
    print("\n".join(target_lines(rows)))
    io_rows = [(path.stem.removeprefix("speed_"), r) for path, data in speeds.items() for r in data.get("io_only", [])]
    if io_rows:
        print("\nThe same pipeline without the network (io_only), end-to-end frames/s:")
        for variant, r in io_rows:
            print(f"- {variant}, {r.get('size')}, {r.get('e2e_x264_preset', '-')}: "
                  f"{_fps(r.get('e2e_fps')) if 'error' not in r else 'error: ' + r['error'][:80]}")
    return len(rows)


def print_io_summaries(loaded: dict[Path, dict]) -> None:
    """The encoder table of each ``encode_*.json`` and the medians of each ``pipeline_*.json``."""
    for path, data in loaded.items():
        if path.name.startswith("encode_"):
            print(f"\n{encode_table(data)}")
    for path, data in loaded.items():
        if path.name.startswith("pipeline_"):
            medians = ", ".join(f"{k} {v['median_e2e_fps']}" for k, v in data.get("results", {}).items())
            print(f"\nPipeline with a stand-in GPU ({data.get('gpu_ms')} ms a frame), {data.get('size')}, "
                  f"{data.get('preset')}, {data.get('cpus')} CPUs: median frames/s by host copy: {medians}")


def print_runs(runs: list[Path], runs_folder: Path) -> None:
    """Whether each unpacked run finished, and the commands that evaluate and bundle them."""
    for run in runs:
        final = run / "final.pt"
        print(f"{run}: {'final.pt' if final.is_file() else 'NO final.pt'}")
    if runs:
        models = " ".join(f"--model {r.name}={r / 'final.pt'}" for r in runs)
        print("\nNext (see scripts/reproduce_paper.sh for the bundled models' settings):\n"
              "  STABLESTYLE_ASSETS=../shared/assets stablestyle evaluate ../shared/assets/clips/sintel_ambush_4 "
              f"--max-size 320 --max-frames 16 --no-videos {models} --model cpu-stable=scream "
              "--model cpu-perframe=scream-perframe -o reports/gpu_models\n"
              f"  python scripts/bundle_models.py {runs_folder}   # once the figures say the GPU models are better")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("files_at", type=Path, help="the folder the device call's files were copied to")
    p.add_argument("--runs", type=Path, default=Path("runs/gpu"), help="where trained runs go (default runs/gpu)")
    p.add_argument("--reports", type=Path, default=Path("reports/bench"),
                   help="where the speed JSON goes (default reports/bench)")
    p.add_argument("--prefix", default="gpu", help="file name prefix of the copied JSON (default gpu)")
    p.add_argument("--overwrite", action="store_true", help="replace earlier copies and run folders")
    args = p.parse_args(argv)
    if not args.files_at.is_dir():
        raise SystemExit(f"error: {args.files_at} is not a folder")

    print_test_summaries(args.files_at)
    copies, loaded, tars = plan_copies(args.files_at, args.reports, args.runs, args.prefix, args.overwrite)
    for path, copy in copies.items():
        args.reports.mkdir(parents=True, exist_ok=True)
        with atomic_path(copy) as tmp:
            shutil.copyfile(path, tmp)
        print(f"{path.name} -> {copy}")
    speeds = {path: data for path, data in loaded.items() if path.name.startswith("speed_")}
    rows = print_speed_summary(speeds)
    print_io_summaries(loaded)
    runs = [unpack_run(t, args.runs) for t in tars]
    print_runs(runs, args.runs)
    if not rows and not runs and len(loaded) == len(speeds):  # no encode_*.json or pipeline_*.json either
        print(f"nothing to collect in {args.files_at} (no speed_*.json, encode_*.json, pipeline_*.json or *.tar)",
              file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
