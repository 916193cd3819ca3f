"""``stablestyle analyze-style IMG... [--size 256] [--plot FIG.png --instability results.json] [--json]``."""

from __future__ import annotations

import argparse

HELP = "rank style images by their Gram-matrix trace, a predictor of flicker (Gupta et al. 2017, Sec. 4)"

PLOT_SUFFIXES = (".png", ".pdf", ".svg", ".jpg", ".jpeg")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("images", nargs="+", metavar="IMG", help="style image files or folders of them")
    p.add_argument("--size", type=int, default=256,
                   help="long side in px the styles are measured at (training's style size; default 256)")
    p.add_argument("--reference", action="append", default=None, metavar="PATH",
                   help="style images (files or folders; repeatable) the risk score and percentile are relative "
                        "to; default: $STABLESTYLE_ASSETS/styles when present, else the given images")
    p.add_argument("--plot", default=None, metavar="FIG.png",
                   help="write the trace-vs-instability figure (the paper's Fig. 3); needs --instability")
    p.add_argument("--instability", default=None, metavar="JSON",
                   help="measured instability per style: `stablestyle evaluate`'s results.json or a JSON object "
                        '{"style_name": instability}')
    p.add_argument("--method", default=None,
                   help="which method's runs to take from a results.json (default: perframe, or the only one)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing --plot file")
    p.add_argument("--json", action="store_true", help="print the analysis as JSON instead of a table")
    p.add_argument("--device", default="auto", help="auto, cpu or cuda")


def _expand_images(values, what: str) -> list:
    """Image files and the images in folders, in order; a missing path or an empty folder is a UserError."""
    from pathlib import Path

    from ..analysis import style_files
    from ..errors import UserError
    from ..inputs import check_input_file

    files = []
    for value in values:
        path = Path(value)
        if path.is_dir():
            found = style_files(path)
            if not found:
                raise UserError(f"{what} {path}: the folder holds no images (.jpg, .png, ...)")
            files += found
        elif path.is_file():
            files.append(path)
        elif path.exists():
            files.append(check_input_file(path, what))  # a pipe or device: its error
        else:
            raise UserError(f"{what} {path}: no such file or folder")
    return files


def _reference_files(args, images: list) -> tuple[list, str]:
    from ..analysis import default_reference_dir, style_files

    if args.reference:
        return _expand_images(args.reference, "--reference"), ", ".join(args.reference)
    folder = default_reference_dir()
    found = style_files(folder) if folder is not None else []
    if found:
        return found, str(folder)
    return images, "the analysed images"


def run(args: argparse.Namespace) -> int:
    from ..analysis import analyze_styles, reference_totals
    from ..models import load_vgg16
    from ..runtime import resolve_device
    from ..trace_correlation import load_instability, plot_trace_vs_instability
    from ..video import check_side

    # ---- user errors first, before any network work
    check_side(args.size, "--size", 32)
    images = _expand_images(args.images, "style image")
    if args.plot is not None:
        _check_plot(args, images)
    instability = load_instability(args.instability, args.method) if args.instability is not None else None
    reference, reference_source = _reference_files(args, images)
    device = resolve_device(args.device)

    vgg = load_vgg16(device=device)
    stats = analyze_styles(images, vgg, size=args.size, reference=reference)
    ref_totals = reference_totals(reference, vgg, args.size)
    order = sorted(range(len(stats)), key=lambda i: -stats[i].total_trace)
    rank = {i: r + 1 for r, i in enumerate(order)}

    if args.json:
        correlation = plot_trace_vs_instability(stats, instability, args.plot) if args.plot is not None else None
        _print_json(args, device, stats, rank, instability, ref_totals, reference_source, correlation)
        return 0
    # the table first: a plot that cannot be drawn (too few matched styles) still leaves the analysis shown
    _print_table(args.size, stats, order, rank, instability, ref_totals, reference_source)
    correlation = plot_trace_vs_instability(stats, instability, args.plot) if args.plot is not None else None
    if correlation is not None:
        print(f"trace vs instability over {correlation['n']} styles: Pearson r = {correlation['pearson']:.3f}, "
              f"Spearman rho = {correlation['spearman']:.3f} -> {args.plot}")
    return 0


def _check_plot(args: argparse.Namespace, images: list) -> None:
    """``--plot``: a figure file name that is new (or ``--overwrite``), no input, with ``--instability`` given."""
    from pathlib import Path

    from ..errors import UserError
    from ..video import same_path

    plot = Path(args.plot)
    if plot.suffix.lower() not in PLOT_SUFFIXES:
        raise UserError(f"--plot {plot}: unknown figure type; valid: {', '.join(PLOT_SUFFIXES)}")
    if not plot.parent.is_dir():
        raise UserError(f"--plot {plot}: folder {plot.parent} does not exist; create it first")
    if plot.is_dir():
        raise UserError(f"--plot {plot} is a folder; give a file name such as {plot / 'fig3.png'}")
    inputs = [*images, *(args.reference or []), *([args.instability] if args.instability else [])]
    if any(same_path(plot, p) for p in inputs):
        raise UserError(f"--plot {plot} is also an input; choose another file name")
    if plot.exists() and not args.overwrite:
        raise UserError(f"--plot {plot} already exists; pass --overwrite to replace it")
    if args.instability is None:
        raise UserError("--plot needs --instability (evaluate's results.json or a {style: instability} JSON)")


def _print_json(args, device, stats, rank, instability, ref_totals, reference_source, correlation) -> None:
    import json
    import sys

    import numpy as np

    from ..report import provenance

    report = {
        "provenance": provenance(getattr(args, "_argv", None) or sys.argv, device),
        "size": args.size,
        "risk_formula": "0.5 * log2(total_trace / median(reference total traces))",
        "reference": {"source": reference_source, "n": len(ref_totals),
                      "median_total_trace": float(np.median(ref_totals))},
        "styles": [s.as_dict() | {"rank": rank[i], "instability": (instability or {}).get(s.name)}
                   for i, s in enumerate(stats)],
        "correlation": correlation,
        "plot": args.plot,
    }
    print(json.dumps(report, indent=2))


def _print_table(size, stats, order, rank, instability, ref_totals, reference_source) -> None:
    import sys

    layers = list(stats[0].traces)
    header = f"{'rank':>4}  {'style':<28} {'total trace':>12} {'risk':>6} {'pct':>5}  " + \
             " ".join(f"{name:>8}" for name in layers) + (f" {'instability':>11}" if instability is not None else "")
    print(f"Gram-matrix trace at long side {size} px; risk = 0.5*log2(trace / median of {len(ref_totals)} "
          f"reference styles: {reference_source}); higher = more flicker expected")
    print(header)
    for i in order:
        s = stats[i]
        shares = " ".join(f"{100 * s.shares[name]:7.1f}%" for name in layers)
        measured = ""
        if instability is not None:
            measured = f" {instability[s.name]:11.3g}" if s.name in instability else f" {'-':>11}"
        print(f"{rank[i]:>4}  {s.name[:28]:<28} {s.total_trace:12.4g} {s.risk:+6.2f} {s.percentile:5.0f}  {shares}"
              f"{measured}")
    sys.stdout.flush()
