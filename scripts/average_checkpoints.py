"""Average the weights of several checkpoints of one net into one checkpoint (a "weight average" / model soup).

Usage: python scripts/average_checkpoints.py OUT CHECKPOINT CHECKPOINT [...] [--overwrite]

Typical inputs are the checkpoints a run keeps with ``stablestyle train --keep-every N`` (``checkpoints/
step_XXXXXXXX.pt``) plus its ``final.pt``. Every input must be the same net (width, recurrence, edge margin)
trained for the same style image; floating-point weights are averaged in float32, anything else (none in
today's nets) is taken from the last input. OUT keeps the last input's training config, step and style hash,
and lists the averaged files' steps and sha256 under ``metrics["averaged"]``, so a report that measures it can
say what it is. Checkpoints are read with :func:`stablestyle.checkpoint.load_checkpoint` (no code runs).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from stablestyle.checkpoint import file_sha256, load_checkpoint, save_checkpoint  # noqa: E402
from stablestyle.errors import UserError  # noqa: E402


def average_states(states: list[dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
    """The element-wise mean of ``states`` (same keys and shapes): floating tensors averaged in float32 and
    returned in the last state's dtype; other tensors taken from the last state."""
    if not states:
        raise ValueError("nothing to average")
    last = states[-1]
    for state in states:
        if state.keys() != last.keys() or any(state[k].shape != last[k].shape for k in last):
            raise ValueError("the states differ in their keys or shapes")
    return {k: (torch.stack([s[k].float() for s in states]).mean(0).to(v.dtype) if v.is_floating_point() else v)
            for k, v in last.items()}


def average_checkpoints(paths: list[str], out: str) -> list[dict]:
    """Write the average of the checkpoints ``paths`` to ``out``; returns its ``metrics["averaged"]``."""
    loaded = [load_checkpoint(p) for p in paths]
    net, meta = loaded[-1]
    for path, (_, other) in zip(paths, loaded):
        if other["model"] != meta["model"]:
            raise UserError(f"{path} is a different net ({other['model']}) from {paths[-1]} ({meta['model']}); "
                            "average checkpoints of one run")
        if other.get("style_sha256") != meta.get("style_sha256"):
            raise UserError(f"{path} was trained for another style image than {paths[-1]}; average checkpoints "
                            "of one run")
    net.load_state_dict(average_states([n.state_dict() for n, _ in loaded]))
    # meta["path"]: the file read (a run folder's final.pt)
    averaged = [{"path": m["path"], "step": int(m["step"]), "weights_sha256": file_sha256(m["path"])}
                for _, m in loaded]
    save_checkpoint(out, net, config=meta.get("config"), step=int(meta["step"]), style_sha256=meta.get("style_sha256"),
                    metrics={**(meta.get("metrics") or {}), "averaged": averaged})
    return averaged


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("out", help="the averaged checkpoint to write")
    p.add_argument("checkpoints", nargs="+", help="two or more checkpoints of one net (run folders give final.pt)")
    p.add_argument("--overwrite", action="store_true", help="replace OUT if it exists")
    args = p.parse_args(argv)
    try:
        if len(args.checkpoints) < 2:
            raise UserError("give at least two checkpoints to average")
        if Path(args.out).exists() and not args.overwrite:
            raise UserError(f"{args.out} exists; pass --overwrite to replace it")
        averaged = average_checkpoints(args.checkpoints, args.out)
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    steps = ", ".join(str(a["step"]) for a in averaged)
    print(f"{args.out}: the average of {len(averaged)} checkpoints (steps {steps})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
