"""``stablestyle train``: train a transformation network (stable: Gupta et al. 2017; perframe: Johnson et al. 2016).

Settings come from :class:`stablestyle.training.TrainConfig` defaults, then a
YAML file (``--config``), then flags (:func:`stablestyle.training.new_run_config`).
``--resume RUN_DIR`` continues a run with its saved ``config.yaml``; only
run-control flags (steps, workers, device, intervals) may change then
(:func:`stablestyle.training.resume_config`).  This module only maps flags to
settings; the policy and the run are the library's.  Runs under ``torchrun --nproc_per_node N``
as data-parallel training.
"""

from __future__ import annotations

import argparse
from pathlib import Path

HELP = "train a style network: --mode stable (recurrent + temporal loss) or perframe (Johnson et al.)"

# flag dest -> TrainConfig key ("weights.<name>" for loss weights)
FLAG_KEYS: dict[str, str] = {
    "style": "style", "content": "content", "video": "video", "mode": "mode", "out": "out",
    "steps": "steps", "device": "device", "width": "width", "crop": "crop", "batch": "batch",
    "loss_margin": "loss_margin", "vflip": "vflip", "max_speed": "max_speed", "edge_margin": "edge_margin",
    "margin_in_training": "margin_in_training", "context_margin": "context_margin",
    "seq_len": "seq_len", "amp": "amp", "workers": "num_workers", "lr": "lr", "seed": "seed",
    "style_size": "style_size", "content_layer": "content_layer", "style_layers": "style_layers",
    "flow_method": "flow_method", "video_ratio": "video_ratio", "val_image": "val_image",
    "val_frames": "val_frames", "vgg_weights": "vgg_weights", "detach_previous": "detach_previous",
    "init": "init", "init_layout": "init_layout", "teacher": "teacher", "distill_temporal": "distill_temporal",
    "channels_last": "channels_last", "log_every": "log_every", "sample_every": "sample_every",
    "validate_every": "validate_every", "checkpoint_every": "checkpoint_every",
    "keep_every": "keep_every",
    "content_weight": "weights.content", "style_weight": "weights.style", "tv_weight": "weights.tv",
    "temporal_weight": "weights.temporal",
}
#: In a help text, replaced by the flag's :class:`~stablestyle.training.TrainConfig` default when help is shown.
DEFAULT = "%(config_default)s"


def config_default(key: str) -> str:
    """The :class:`~stablestyle.training.TrainConfig` default of ``key`` (``weights.style``: a loss weight), as text."""
    from ..training import TrainConfig

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
    :mod:`stablestyle.training` loads torch, and the CLI builds every parser on each call."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = super()._get_help_string(action) or ""
        if DEFAULT in text:
            text = text.replace(DEFAULT, config_default(FLAG_KEYS[action.dest]).replace("%", "%%"))
        return text


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.formatter_class = _HelpFormatter
    _data_arguments(p.add_argument_group("data"))
    _model_arguments(p.add_argument_group("model and losses"))
    _run_arguments(p)


def _data_arguments(g) -> None:
    g.add_argument("--style", help="style image file")
    g.add_argument("--content", action="append", metavar="DIR_OR_IMAGE",
                   help="still images: a folder or an image file (repeat for more)")
    g.add_argument("--video", action="append", metavar="FILE", help="training video (repeat for more)")
    g.add_argument("--video-ratio", type=float, help=f"fraction of sequences from --video (default {DEFAULT})")
    g.add_argument("--vflip", type=float, metavar="P",
                   help="probability of turning a still photo upside down, so the net cannot learn that the "
                        f"top of a frame is sky (default {DEFAULT})")
    g.add_argument("--max-speed", type=float, metavar="PX",
                   help="fastest virtual-camera pan over the still photos, pixels per frame; the other speeds "
                        f"scale along; raise it for footage with fast motion (default {DEFAULT})")
    g.add_argument("--flow-method", help=f"flow estimator for videos (default {DEFAULT})")
    g.add_argument("--val-image", help="image for the held-out validation clip (default: last content image)")
    g.add_argument("--val-frames", type=int, help=f"frames of the validation clip (default {DEFAULT})")


def _model_arguments(g) -> None:
    g.add_argument("--mode", help=f"stable (recurrent + temporal loss) or perframe (default {DEFAULT})")
    g.add_argument("--seq-len", type=int, help="frames per training sequence (default 4 stable, 1 perframe)")
    g.add_argument("--width", type=float, help=f"channel multiplier of the net (default {DEFAULT})")
    g.add_argument("--crop", type=int, help=f"training crop side in px (default {DEFAULT})")
    g.add_argument("--loss-margin", type=int, metavar="PX",
                   help="content/style losses on a random window PX smaller than the crop, so the net cannot "
                        f"learn where the loss's image border is (default {DEFAULT}: the whole crop)")
    g.add_argument("--edge-margin", type=int, metavar="PX",
                   help="reflect margin the trained net adds around each frame at inference and crops off, so "
                        f"bands it paints along its input's edges fall outside the frame (default {DEFAULT})")
    g.add_argument("--margin-in-training", dest="margin_in_training", action="store_const", const=True,
                   help="train with the edge margin too, so the losses never see the net's own edges and a band "
                        f"there buys nothing; the net then runs on the margin's pixels too (default {DEFAULT})")
    g.add_argument("--context-margin", dest="context_margin", action="store_const", const=True,
                   help="train on crops the edge margin larger on each side, losses on the centre crop only: the "
                        "net's edges lie in real context the losses never see, and no reflection seam is there to "
                        f"mark (default {DEFAULT})")
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
    g.add_argument("--init", metavar="CHECKPOINT",
                   help="start from these weights: a trained per-frame model (a stable run then only learns to "
                        "use the previous frame), a run folder, or a pytorch/examples fast_neural_style .pth")
    g.add_argument("--init-layout", choices=("auto", "stablestyle", "fast_neural_style"),
                   help="layout of --init (default auto: stablestyle checkpoints by their metadata, any other "
                        "state dict as fast_neural_style)")
    g.add_argument("--teacher", metavar="MODEL",
                   help="distil: train the net to reproduce this model's output (a bundled name, checkpoint or "
                        "run folder; stable for --mode stable, per-frame for perframe) instead of the perceptual "
                        "losses, with no loss network: a fast way to make a narrower --width copy of a model")
    g.add_argument("--distill-temporal", type=float, metavar="W",
                   help="with --teacher and --mode stable: add W times the temporal loss of the net's own outputs "
                        "to the distillation, for a student steadier than its teacher (default 0: none)")


def _run_arguments(p: argparse.ArgumentParser) -> None:
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
    g.add_argument("--keep-every", type=int, metavar="N",
                   help="also keep the weights every N steps as checkpoints/step_XXXXXXXX.pt, e.g. to average "
                        f"them with scripts/average_checkpoints.py (default {DEFAULT}: none)")
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


def run(args: argparse.Namespace) -> int:
    from .. import distributed
    from ..runtime import parse_duration, resolve_device
    from ..training import Trainer, check_inputs, clear_run_dir, new_run_config, prepare_run_dir, resolve_amp, \
        resume_config

    time_limit = parse_duration(args.time_limit) if args.time_limit is not None else None
    overrides = _overrides(args)
    resume_from = None
    if args.resume:
        config, resume_from = resume_config(args.resume, overrides, config_file=args.config,
                                            overwrite=args.overwrite)
    else:
        config = new_run_config(overrides, args.config)
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
