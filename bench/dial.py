"""The stability dial along S, from ``stablestyle evaluate --stability ...`` reports: a JSON and a plot.

Usage::

    stablestyle evaluate CLIP --model scream --stability 0 0.25 0.5 0.75 1 -o OUT/a ...
    python bench/dial.py OUT/a/results.json [OUT/b/results.json ...] -o OUT/dial.json --plot OUT/dial.png

For every model evaluated at several dial positions (runs named ``NAME@S``) it lists instability and
style / content loss per ``S`` and checks what a dial must do: instability monotone (non-increasing) in
``S``; at ``S = 0.5`` instability and style loss between the endpoints'; the endpoints against the
twin and the stable model scored as plain models when the report has them (``--model NAME=CKPT``
without ``@``).  Plain models of the same style (e.g. stable nets trained at intermediate temporal
weights) are drawn as points beside the dial's curve.  Each entry names the weights hashes used.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def _curves(results: dict) -> tuple[dict[str, list[dict]], dict[str, dict]]:
    """``({name: [{s, instability, style_loss, content_loss}, ...]}, {plain model name: run})``."""
    models = {m["name"]: m for m in results["models"]}
    curves, plain = {}, {}
    for run in results["runs"]:
        if run["kind"] != "network":
            continue
        name, at, s = run["method"].rpartition("@")[0], "@" in run["method"], run["method"].rpartition("@")[2]
        model = models[run["method"]]
        row = {"instability": run["instability"], "style_loss": run["style_loss"],
               "content_loss": run["content_loss"], "style": run["style"]}
        if at:
            dial = model["stability"]
            curves.setdefault(name, []).append({"s": float(s), "mode": dial["mode"], **row,
                                                "weights_sha256": model["weights_sha256"],
                                                "perframe_weights_sha256": dial["perframe_weights_sha256"]})
        else:
            plain[run["method"]] = {**row, "weights_sha256": model["weights_sha256"], "checkpoint": model["path"],
                                    "recurrent": model["model"]["recurrent"]}
    return {k: sorted(v, key=lambda r: r["s"]) for k, v in curves.items()}, plain


def _checks(curve: list[dict]) -> dict:
    """Monotone instability, and ``S = 0.5`` between the endpoints (instability and style loss)."""
    by_s = {r["s"]: r for r in curve}
    inst = [r["instability"] for r in curve]
    out = {"instability_monotone": all(b <= a for a, b in zip(inst, inst[1:]))}
    if {0.0, 0.5, 1.0} <= by_s.keys():
        lo, mid, hi = by_s[0.0], by_s[0.5], by_s[1.0]
        for key in ("instability", "style_loss"):
            a, b = sorted((lo[key], hi[key]))
            out[f"{key}_at_half_between"] = a <= mid[key] <= b
    out["modes"] = sorted({r["mode"] for r in curve if 0 < r["s"] < 1})
    return out


def summarise(paths: list[Path]) -> dict:
    entries, points = {}, {}
    for path in paths:
        results = json.loads(path.read_text())
        curves, plain = _curves(results)
        for name, curve in curves.items():
            entries[name] = {"report": str(path), "clips": list(results["clips"]),
                             "curve": curve, "checks": _checks(curve)}
        points.update({k: {**v, "report": str(path)} for k, v in plain.items()})
    return {"dials": entries, "separately_trained": points}


def plot(summary: dict, out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    for name, entry in summary["dials"].items():
        c = entry["curve"]
        s = [r["s"] for r in c]
        line, = axes[0].plot(s, [r["instability"] for r in c], "o-", label=f"{name} ({'/'.join(entry['checks']['modes'])})")
        axes[1].plot([r["instability"] for r in c], [r["style_loss"] for r in c], "o-", color=line.get_color(),
                     label=name)
        for r in c:
            axes[1].annotate(f"{r['s']:g}", (r["instability"], r["style_loss"]), fontsize=7,
                             textcoords="offset points", xytext=(3, 3))
    for name, p in summary["separately_trained"].items():
        axes[1].plot(p["instability"], p["style_loss"], "k*" if p["recurrent"] else "kx", markersize=9)
        axes[1].annotate(name, (p["instability"], p["style_loss"]), fontsize=7, textcoords="offset points",
                         xytext=(4, -9))
    axes[0].set(xlabel="stability S (0 per-frame twin, 1 stable model)", ylabel="instability (lower = steadier)",
                yscale="log", title="instability along the dial")
    axes[1].set(xlabel="instability", ylabel="style loss (lower = closer to the painting)", xscale="log",
                title="trade-off (labels: S; stars: trained models)")
    axes[0].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(out, dpi=110)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("results", nargs="+", type=Path, help="results.json of stablestyle evaluate --stability")
    p.add_argument("-o", "--out", type=Path, required=True)
    p.add_argument("--plot", type=Path, default=None)
    args = p.parse_args(argv)
    summary = {"command": "python bench/dial.py " + " ".join(sys.argv[1:] if argv is None else argv),
               **summarise(args.results)}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(summary, indent=1) + "\n")
    if args.plot:
        plot(summary, args.plot)
    for name, entry in summary["dials"].items():
        print(name, entry["checks"])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
