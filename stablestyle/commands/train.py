"""``stablestyle train``: train a transformation network (stable: Gupta et al. 2017; perframe: Johnson et al. 2016).

Settings come from :class:`stablestyle.train.TrainConfig` defaults, then a
YAML file (``--config``), then flags.  ``--resume RUN_DIR`` continues a run
with its saved ``config.yaml``; only run-control flags (steps, workers,
device, intervals) may change then.  Runs under ``torchrun --nproc_per_node N``
as data-parallel training.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

HELP = "train a style network: --mode stable (recurrent + temporal loss) or perframe (Johnson et al.)"

log = logging.getLogger(__name__)

# flag dest -> TrainConfig key ("weights.<name>" for loss weights)
FLAG_KEYS: dict[str, str] = {
    "style": "style", "content": "content", "video": "video", "mode": "mode", "out": "out",
    "steps": "steps", "device": "device", "width": "width", "crop": "crop", "batch": "batch",
    "seq_len": "seq_len", "amp": "amp", "workers": "num_workers", "lr": "lr", "seed": "seed",
    "style_size": "style_size", "content_layer": "content_layer", "style_layers": "style_layers",
    "flow_method": "flow_method", "video_ratio": "video_ratio", "val_image": "val_image",
    "val_frames": "val_frames", "vgg_weights": "vgg_weights", "detach_previous": "detach_previous",
    "channels_last": "channels_last", "log_every": "log_every", "sample_every": "sample_every",
    "validate_every": "validate_every", "checkpoint_every": "checkpoint_every",
    "content_weight": "weights.content", "style_weight": "weights.style", "tv_weight": "weights.tv",
    "temporal_weight": "weights.temporal",
}
#: Settings that ``--resume`` may change: they steer the run, not what it learns.
RESUME_CHANGEABLE = ("steps", "num_workers", "device", "log_every", "sample_every", "validate_every",
                     "checkpoint_every")


#: In a help text, replaced by the flag's :class:`~stablestyle.train.TrainConfig` default when help is shown.
DEFAULT = "%(config_default)s"


def config_default(key: str) -> str:
    """The :class:`~stablestyle.train.TrainConfig` default of ``key`` (``weights.style``: a loss weight), as text."""
    from ..train import TrainConfig

    value: object = TrainConfig()
    for part in key.split("."):
        value = getattr(value, part)
    if isinstance(value, bool):
        return "on" if value else "off"
    if isinstance(value, list):
        return " ".join(map(str, value))
    return f"{value:g}" if isinstance(value, float) else str(value)


class _HelpFormatter(argparse.HelpFormatter):
    """Fills :data:`DEFAULT` in help texts from the dataclass defaults (the flags themselves default to
    ``None``, meaning "not given"), so the numbers are written once.  Only when help is shown: importing
    :mod:`stablestyle.train` loads torch, and the CLI builds every parser on each call."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = super()._get_help_string(action) or ""
        if DEFAULT in text:
            text = text.replace(DEFAULT, config_default(FLAG_KEYS[action.dest]).replace("%", "%%"))
        return text


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.formatter_class = _HelpFormatter
    g = p.add_argument_group("data")
    g.add_argument("--style", help="style image file")
    g.add_argument("--content", action="append", metavar="DIR_OR_IMAGE",
                   help="still images: a folder or an image file (repeat for more)")
    g.add_argument("--video", action="append", metavar="FILE", help="training video (repeat for more)")
    g.add_argument("--video-ratio", type=float, help=f"fraction of sequences from --video (default {DEFAULT})")
    g.add_argument("--flow-method", help=f"flow estimator for videos (default {DEFAULT})")
    g.add_argument("--val-image", help="image for the held-out validation clip (default: last content image)")
    g.add_argument("--val-frames", type=int, help=f"frames of the validation clip (default {DEFAULT})")
    g = p.add_argument_group("model and losses")
    g.add_argument("--mode", help=f"stable (recurrent + temporal loss) or perframe (default {DEFAULT})")
    g.add_argument("--seq-len", type=int, help="frames per training sequence (default 4 stable, 1 perframe)")
    g.add_argument("--width", type=float, help=f"channel multiplier of the net (default {DEFAULT})")
    g.add_argument("--crop", type=int, help=f"training crop side in px (default {DEFAULT})")
    g.add_argument("--style-size", type=int, help=f"style image long side in px (default {DEFAULT})")
    g.add_argument("--content-layer", help=f"VGG-16 content tap (default {DEFAULT})")
    g.add_argument("--style-layers", nargs="+", metavar="LAYER", help=f"VGG-16 style taps (default {DEFAULT})")
    g.add_argument("--content-weight", type=float, help=f"weight of the content loss (default {DEFAULT})")
    g.add_argument("--style-weight", type=float, help=f"weight of the style loss (default {DEFAULT})")
    g.add_argument("--tv-weight", type=float, help=f"weight of the total-variation loss (default {DEFAULT})")
    g.add_argument("--temporal-weight", type=float,
                   help=f"weight of the temporal loss, mode stable only (default {DEFAULT})")
    g.add_argument("--detach-previous", action="store_const", const=True,
                   help="no gradient through the previous output (default: backpropagate through it)")
    g.add_argument("--vgg-weights", help="VGG-16 state dict (default: STABLESTYLE_VGG16 / STABLESTYLE_ASSETS)")
    g = p.add_argument_group("optimisation and speed")
    g.add_argument("--steps", type=int, help=f"optimiser steps (default {DEFAULT})")
    g.add_argument("--batch", type=int, help=f"sequences per step per process (default {DEFAULT})")
    g.add_argument("--lr", type=float, help=f"Adam learning rate (default {DEFAULT})")
    g.add_argument("--seed", type=int, help=f"random seed of the weights and the data order (default {DEFAULT})")
    g.add_argument("--device", help=f"auto, cpu or cuda (default {DEFAULT})")
    g.add_argument("--amp", help="off, bf16, fp16 or auto (default auto: bf16/fp16 on GPU, off on CPU)")
    g.add_argument("--channels-last", dest="channels_last", action="store_const", const=True,
                   help=f"channels-last memory layout, often faster on GPUs (default {DEFAULT})")
    g.add_argument("--no-channels-last", dest="channels_last", action="store_const", const=False,
                   help="the usual (channels-first) memory layout")
    g.add_argument("--workers", type=int, help=f"DataLoader worker processes (default {DEFAULT})")
    g.add_argument("--time-limit", metavar="DURATION",
                   help="stop earlier, when this much time has passed (90s, 20m, 1.5h; a bare number is minutes): "
                        "final.pt then holds the weights so far and --resume trains on (default: no limit)")
    g = p.add_argument_group("run folder")
    g.add_argument("--out", help="run folder (config.yaml, log.csv, val.csv, samples/, last.pt, final.pt)")
    g.add_argument("--config", help="YAML config (see configs/); flags override it")
    g.add_argument("--resume", metavar="RUN_DIR", help="continue a stopped run from RUN_DIR/last.pt")
    g.add_argument("--overwrite", action="store_true", help="start an existing run folder afresh")
    g.add_argument("--log-every", type=int, help=f"steps between rows of log.csv (default {DEFAULT})")
    g.add_argument("--sample-every", type=int, help=f"steps between images in samples/ (default {DEFAULT})")
    g.add_argument("--validate-every", type=int, help=f"steps between rows of val.csv (default {DEFAULT})")
    g.add_argument("--checkpoint-every", type=int, help=f"steps between saves of last.pt (default {DEFAULT})")
    g.add_argument("--quiet", action="store_true", help="no progress bar or info messages (warnings still show)")


def _overrides(args: argparse.Namespace) -> dict:
    """Config keys set on the command line (``weights`` nested)."""
    data: dict = {}
    for dest, key in FLAG_KEYS.items():
        value = getattr(args, dest, None)
        if value is None:
            continue
        if key.startswith("weights."):
            data.setdefault("weights", {})[key.split(".", 1)[1]] = value
        else:
            data[key] = value
    return data


def _resume_config(args: argparse.Namespace, overrides: dict):
    from ..errors import UserError
    from ..train import CONFIG_NAME, LAST_NAME, config_from_dict, config_to_dict, load_config

    run_dir = Path(args.resume).expanduser()
    if args.config:
        raise UserError("--config cannot be combined with --resume: a resumed run keeps its config.yaml")
    if args.overwrite:
        raise UserError("--overwrite and --resume contradict each other; pass one of them")
    if args.out and Path(args.out).expanduser().resolve() != run_dir.resolve():
        raise UserError(f"--out {args.out} differs from --resume {run_dir}; a resumed run stays in its folder")
    if not (run_dir / CONFIG_NAME).is_file():
        raise UserError(f"{run_dir} is not a run folder (no {CONFIG_NAME}); start a run with --out")
    if not (run_dir / LAST_NAME).is_file():
        raise UserError(f"{run_dir} has no {LAST_NAME} to resume from (it stopped before its first "
                        "checkpoint); start it afresh with --overwrite")
    overrides.pop("out", None)  # checked above; a moved run folder resumes where it now is
    saved = load_config(run_dir / CONFIG_NAME)
    merged = config_from_dict(overrides, saved, source="command line")
    before, after = config_to_dict(saved), config_to_dict(merged)
    changed = [k for k in after if after[k] != before[k] and k not in RESUME_CHANGEABLE]
    if changed:
        flags = ", ".join(f"{k} (saved {before[k]!r}, given {after[k]!r})" for k in changed)
        raise UserError(f"--resume continues a run with its saved settings; cannot change {flags}. "
                        f"Changeable: {', '.join(RESUME_CHANGEABLE)}")
    merged.out = str(run_dir)
    return merged, run_dir / LAST_NAME


def run(args: argparse.Namespace) -> int:
    from .. import distributed
    from ..runtime import parse_duration, resolve_device
    from ..train import Trainer, TrainConfig, check_inputs, clear_run_dir, config_from_dict, load_config, \
        prepare_run_dir, resolve_amp

    time_limit = parse_duration(args.time_limit) if args.time_limit is not None else None
    overrides = _overrides(args)
    resume_from = None
    if args.resume:
        config, resume_from = _resume_config(args, overrides)
    else:
        base = load_config(args.config) if args.config else TrainConfig()
        if overrides.get("mode", base.mode) != base.mode and "seq_len" not in overrides and base.seq_len is not None:
            # --mode over a config of the other mode: its sequence length belongs to the mode the flag replaces
            log.info("--mode %s: the config's seq_len %d (for mode %s) gives way to mode %s's default",
                     overrides["mode"], base.seq_len, base.mode, overrides["mode"])
            base.seq_len = None
        config = config_from_dict(overrides, base, source="command line")
        config.validate()
        prepare_run_dir(config.out, overwrite=args.overwrite)
    check_inputs(config)
    device = resolve_device(config.device)
    resolve_amp(config.amp, device)

    ctx = distributed.setup(device)
    trainer = None
    finished = False
    try:
        trainer = Trainer(config, ctx=ctx, quiet=args.quiet)
        if resume_from is not None:
            trainer.restore(resume_from)
        elif args.overwrite and ctx.is_main:
            clear_run_dir(Path(config.out).expanduser())
        distributed.barrier(ctx)
        trainer.fit(time_limit=time_limit)
        finished = True
    finally:
        del trainer  # drop the DDP wrapper (it holds the process group) before leaving the group
        distributed.cleanup(ctx, together=finished)
    return 0
