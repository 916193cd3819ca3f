"""Assemble reports/paper/REPORT.md from the JSON that scripts/reproduce_paper.sh wrote.

Usage: python scripts/paper_report.py REPORT_DIR

Reads REPORT_DIR/networks/results.json, REPORT_DIR/baselines/results.json (optional),
REPORT_DIR/figure3_analysis.json (optional) and writes REPORT_DIR/REPORT.md: the table of
instability / style / content loss / speed per clip, style and method; the paper's acceptance
check (stable instability <= 0.5x per-frame with style loss <= 1.2x, per style, on the Sintel
clip) with the measured ratios; and Figure 3 (Gram trace vs per-frame instability).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from stablestyle.atomic import write_text_atomic

METHOD_ORDER = ["input", "perframe", "stable", "gatys", "ruder", "ruder-long"]


def _load(path: Path) -> dict | None:
    return json.loads(path.read_text()) if path.is_file() else None


def _fmt(value, digits: int = 4) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.{digits}g}"
    return str(value)


def _table(runs: list[dict]) -> list[str]:
    lines = ["| clip | style | method | instability | warping error | style loss | content loss | fps (model) |",
             "|---|---|---|---|---|---|---|---|"]
    key = lambda r: (r["clip"], r["style"], METHOD_ORDER.index(r["method"]) if r["method"] in METHOD_ORDER else 99)
    for r in sorted(runs, key=key):
        lines.append(f"| {r['clip']} | {r['style']} | {r['method']} | {_fmt(r['instability'])} | "
                     f"{_fmt(r['warping_error'])} | {_fmt(r['style_loss'])} | {_fmt(r['content_loss'])} | "
                     f"{_fmt(r['speed'].get('fps_model'), 3)} |")
    return lines


def _checks(runs: list[dict], clip: str) -> tuple[list[str], bool]:
    by = {(r["style"], r["method"]): r for r in runs if r["clip"] == clip}
    lines = ["| style | instability stable / per-frame | style loss stable / per-frame | target met |",
             "|---|---|---|---|"]
    all_ok = True
    for style in sorted({s for s, _ in by}):
        st, pf = by.get((style, "stable")), by.get((style, "perframe"))
        if st is None or pf is None:
            continue
        ri = st["instability"] / pf["instability"]
        rs = st["style_loss"] / pf["style_loss"]
        ok = ri <= 0.5 and rs <= 1.2
        all_ok &= ok
        miss = []
        if ri > 0.5:
            miss.append(f"instability ratio {ri:.3f} misses 0.5 by {ri - 0.5:.3f}")
        if rs > 1.2:
            miss.append(f"style ratio {rs:.3f} misses 1.2 by {rs - 1.2:.3f}")
        lines.append(f"| {style} | {ri:.3f} | {rs:.3f} | {'yes' if ok else 'no: ' + '; '.join(miss)} |")
    return lines, all_ok


def _baseline_section(base: dict) -> list[str]:
    """The optimisation baselines beside the networks, all on the same frames at the same size."""
    cfg = base["config"]
    lines = ["## The optimisation baselines beside the networks, like with like", "",
             f"Every method on the same first {cfg.get('max_frames')} frames of each clip at the same size "
             f"(long side {cfg.get('max_size')} px), the optimisations with {cfg.get('iterations')} L-BFGS "
             "iterations per frame; style and content loss as `evaluate` defines them in this run "
             "(its definitions below the table).", ""]
    for clip, info in base["clips"].items():
        lines.append(f"- clip `{clip}`: {info['frames']} frames at {info['size'][0]}x{info['size'][1]}, "
                     f"instability flow: {info['instability_flow']}")
    lines += ["", *_table(base["runs"]), "",
              "Definitions: " + "; ".join(f"**{k}**: {v}" for k, v in base.get("definitions", {}).items()
                                          if k in ("style loss", "content loss")),
              "", "Plot: `baselines/instability_over_time.png`.", ""]
    return lines


def _provenance_line(part: str, prov: dict) -> str:
    return (f"- {part}: device {prov.get('device')} ({prov.get('cpu_threads')} threads), "
            f"stablestyle {prov.get('stablestyle_version')}, torch {prov.get('torch_version')}, {prov.get('date')}")


def _header(nets: dict, parts: list[tuple[str, dict | None]]) -> list[str]:
    """The title, where each part was measured, and the metrics' definitions."""
    return [
        "# Reproducing Gupta et al. 2017 with stablestyle",
        "",
        "Produced by `scripts/reproduce_paper.sh` (this file by `scripts/paper_report.py`). Where and when each "
        "part was measured (frames/s compare only within one machine):",
        "",
        *[_provenance_line(name, results["provenance"]) for name, results in parts if results],
        "",
        "Definitions (from `stablestyle evaluate`): " + "; ".join(f"**{k}**: {v}" for k, v in
                                                               nets.get("definitions", {}).items()),
        "",
    ]


def _networks_section(nets: dict) -> list[str]:
    """The bundled models, the stable-vs-per-frame table and the paper-level target per clip."""
    lines = ["## Models", ""]
    for m in nets.get("models", []):
        net = m.get("model", {})
        lines.append(f"- {m.get('name')} ({m.get('style')}): bundled `{m.get('checkpoint')}`, width {net.get('width')}, "
                     f"recurrent {net.get('recurrent')}, {m.get('step')} training steps")
    lines += ["", "## Stable vs per-frame", ""]
    for clip, info in nets["clips"].items():
        lines.append(f"- clip `{clip}`: {info['frames']} frames at {info['size'][0]}x{info['size'][1]}, "
                     f"instability flow: {info['instability_flow']}")
    lines += ["", *_table(nets["runs"]), ""]
    sintel = next((c for c in nets["clips"] if "sintel" in c), None)
    if sintel:
        check, ok = _checks(nets["runs"], sintel)
        lines += [f"### Target on `{sintel}`: stable instability <= 0.5x per-frame, style loss <= 1.2x", "",
                  *check, "", f"All bundled styles meet the target: **{'yes' if ok else 'no'}**.", ""]
    for clip in nets["clips"]:
        if clip != sintel:
            check, ok = _checks(nets["runs"], clip)
            lines += [f"### The same ratios on `{clip}` (exact flow)", "", *check, ""]
    return lines + ["Plots: `networks/instability_over_time.png`, `networks/instability_vs_style.png`.", ""]


def _figure3_section(fig: dict) -> list[str]:
    """Figure 3: the per-frame instability of each style against its Gram trace, with the correlation."""
    corr = fig.get("correlation", {})
    lines = ["## Figure 3: per-frame instability vs Gram trace of the style image", "",
             "![Figure 3](figure3_trace_vs_instability.png)", "",
             f"Pearson r = {corr.get('pearson', float('nan')):.3f}, Spearman rho = "
             f"{corr.get('spearman', float('nan')):.3f} over {corr.get('n')} styles "
             f"(traces at {fig.get('size')} px; instability of short per-frame trainings on the Sintel clip).",
             "", "| style | total Gram trace | risk | instability |", "|---|---|---|---|"]
    for s in sorted(fig["styles"], key=lambda s: s["total_trace"]):
        lines.append(f"| {s['name']} | {s['total_trace']:.4g} | {s['risk']:+.2f} | {_fmt(s.get('instability'))} |")
    return lines + [""]


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print(__doc__, file=sys.stderr)
        return 2
    out = Path(argv[0])
    nets = _load(out / "networks" / "results.json")
    if nets is None:
        print(f"error: {out}/networks/results.json not found; run scripts/reproduce_paper.sh", file=sys.stderr)
        return 2
    base = _load(out / "baselines" / "results.json")
    fig = _load(out / "figure3_analysis.json")
    fig_runs = _load(out / "figure3" / "results.json")
    # The parts may be measured on different days and machines (speeds only compare within one).
    parts = [("bundled networks", nets), ("optimisation baselines", base), ("Figure 3", fig_runs)]
    lines = _header(nets, parts) + _networks_section(nets)
    if base:
        lines += _baseline_section(base)
    if fig:
        lines += _figure3_section(fig)
    write_text_atomic(out / "REPORT.md", "\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
