"""``stablestyle models``: list the bundled models with how they were trained and what they measure."""

from __future__ import annotations

import argparse
import json

HELP = "list the bundled models and their measured flicker (--details: training settings, all figures)"


#: The measured figures the table shows (``evaluate`` on the Sintel clip, written by scripts/bundle_models.py).
TABLE_METRICS = (("sintel_ambush_4_instability", "Sintel instability"), ("sintel_ambush_4_style_loss", "style loss"))


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--details", action="store_true", help="training settings and every measured figure per model")
    p.add_argument("--json", action="store_true", help="print machine-readable JSON")
    p.add_argument("--styles", action="store_true",
                   help="print only the names of the main bundled models, one per style, on one line (for scripts)")


def describe(name: str) -> dict:
    """Metadata of one bundled model, without loading its weights into a network."""
    from ..bundled import DEFAULT_MODEL, bundled_path
    from ..checkpoint import read_checkpoint

    payload = read_checkpoint(bundled_path(name))
    cfg = payload.get("config", {})
    return {
        "name": name,
        "default": name == DEFAULT_MODEL,
        "mode": cfg.get("mode"),
        "style": cfg.get("style"),
        "style_sha256": payload.get("style_sha256"),
        "network": payload["model"],
        "step": payload["step"],
        "training": _training(cfg),
        "metrics": payload.get("metrics", {}),
        "version": payload.get("version"),
        "dial": _dial(name, payload),
    }


def _dial(name: str, payload: dict) -> dict | None:
    """How ``--stability`` treats a bundled stable model: its twin and whether their weights can be mixed."""
    from ..bundled import bundled_path
    from ..checkpoint import read_checkpoint
    from ..models.dial import MIN_RELATED_COSINE, weight_cosine
    from ..models.warmstart import adapt_state_dict
    from ..stability import bundled_twin

    twin = bundled_twin(name) if payload["model"].get("recurrent", True) else None
    if twin is None:
        return None
    twin_payload = read_checkpoint(bundled_path(twin))
    if twin_payload["model"].get("width") != payload["model"].get("width"):
        return None  # no per-frame twin of its width (the -small nets)
    state = twin_payload["state_dict"]
    cosine = weight_cosine(adapt_state_dict(state, recurrent=True), payload["state_dict"])
    return {"perframe": twin, "weight_cosine": round(cosine, 4),
            "mode": "weights" if cosine >= MIN_RELATED_COSINE else "outputs"}


def _training(cfg: dict) -> dict:
    """The settings that shaped a model; a per-frame model's config also holds the temporal weight it never used."""
    training = {k: cfg[k] for k in ("crop", "batch", "seq_len", "steps", "lr", "weights") if k in cfg}
    if cfg.get("mode") == "perframe" and isinstance(training.get("weights"), dict):
        training["weights"] = {k: v for k, v in training["weights"].items() if k != "temporal"}
    return training


def _table(rows: list[dict]) -> str:
    """One aligned line per model: name, kind, width, steps and the Sintel figures."""
    from ..checkpoint import describe_net

    header = ["model", "net", "steps", *(label for _, label in TABLE_METRICS), "--stability"]
    body = []
    for r in rows:
        metrics = r["metrics"]
        body.append([r["name"] + (" (default)" if r["default"] else ""), describe_net(r["network"]), str(r["step"]),
                     *(f"{metrics[key]:.3g}" if isinstance(metrics.get(key), (int, float)) else "-"
                       for key, _ in TABLE_METRICS),
                     f"{r['dial']['mode']} with {r['dial']['perframe']}" if r["dial"] else "-"])
    widths = [max(len(line[i]) for line in [header, *body]) for i in range(len(header))]
    return "\n".join("  ".join(cell.ljust(w) for cell, w in zip(line, widths)).rstrip() for line in [header, *body])


def run(args: argparse.Namespace) -> int:
    from ..bundled import available, styles
    from ..checkpoint import describe_net

    if args.styles:
        print(" ".join(styles()))
        return 0
    rows = [describe(name) for name in available()]
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    if not rows:
        print("no bundled models installed")
        return 0
    if not args.details:
        print(_table(rows))
        print("(--details: training settings and all measured figures; the figures: README 'Results'; "
              "--stability: how the dial mixes a stable model with its per-frame twin)")
        return 0
    for r in rows:
        net = r["network"]
        flag = " (default)" if r["default"] else ""
        style = r["style"] or "?"
        print(f"{r['name']}{flag}: {r['mode']} model, style {style}, {describe_net(net)}, {r['step']} steps")
        if r["dial"]:
            d = r["dial"]
            how = ("weights interpolated" if d["mode"] == "weights"
                   else "outputs mixed: the pair was trained apart, two networks' time")
            print(f"    --stability: with {d['perframe']} (weight cosine {d['weight_cosine']:.3f}), {how}")
        if r["training"]:
            print("    trained with " + ", ".join(
                f"{k}=" + ("/".join(f"{n} {w:g}" for n, w in v.items()) if isinstance(v, dict) else f"{v}")
                for k, v in r["training"].items()))
        if r["metrics"]:
            print("    measured: " + ", ".join(
                f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in r["metrics"].items()))
    return 0
