"""``stablestyle export CKPT --onnx OUT.onnx``: write a trained network as an ONNX graph.

The graph takes ``frame`` and (recurrent nets) ``prev`` and returns ``out``;
see :mod:`stablestyle.inference.onnx_export`.  After writing, the file is checked with
``onnx.checker`` and run once with onnxruntime against PyTorch on a short
recurrent sequence.
"""

from __future__ import annotations

import argparse
import logging

from ..stability import add_stability_arguments

HELP = "export a trained network to ONNX (recurrent state as an explicit input/output)"

log = logging.getLogger(__name__)

#: Largest max-abs difference between onnxruntime and PyTorch (fp32) accepted by the check after
#: export; measured differences are ~1e-6 (tests/test_export.py).
VERIFY_TOLERANCE = 1e-4


def add_arguments(p: argparse.ArgumentParser) -> None:
    from ..inference.onnx_export import DEFAULT_OPSET, MAX_OPSET, MIN_OPSET

    p.add_argument("checkpoint", help="checkpoint path or bundled model name (see `stablestyle models`)")
    p.add_argument("--onnx", required=True, metavar="OUT.onnx", help="output file")
    p.add_argument("--height", type=int, default=360, help="example frame height in pixels (default 360)")
    p.add_argument("--width", type=int, default=640, help="example frame width in pixels (default 640)")
    p.add_argument("--dynamic", action="store_true",
                   help="free batch/height/width axes (otherwise the graph accepts only 1 x HEIGHT x WIDTH)")
    p.add_argument("--opset", type=int, default=DEFAULT_OPSET,
                   help=f"ONNX opset, {MIN_OPSET}..{MAX_OPSET} (default {DEFAULT_OPSET})")
    p.add_argument("--split-convs", action="store_true",
                   help="compute the thin 9x9 convolutions as strided phases: same outputs, faster with "
                        "onnxruntime on a CPU (docs/PERFORMANCE.md)")
    p.add_argument("--no-verify", dest="verify", action="store_false",
                   help="skip running the exported file with onnxruntime against PyTorch")
    p.add_argument("--overwrite", action="store_true", help="replace OUT.onnx if it exists")
    add_stability_arguments(p)


def verify_onnx(model, path, height: int, width: int, frames: int = 3) -> float:
    """Max-abs difference between onnxruntime and PyTorch over a ``frames``-long recurrent sequence."""
    import torch

    from ..inference import make_backend

    backend = make_backend("onnx", str(path), device="cpu")
    gen = torch.Generator().manual_seed(0)
    worst, state_ref, state_onnx = 0.0, None, None
    for _ in range(frames):
        x = torch.rand(1, 3, height, width, generator=gen)
        with torch.no_grad():
            ref, state_ref = model(x, state_ref)
        out, state_onnx = backend.step(x, state_onnx)
        worst = max(worst, (out - ref).abs().max().item())
    return worst


def run(args: argparse.Namespace) -> int:
    from ..checkpoint import describe_net
    from ..stability import load_at_stability
    from ..inference.onnx_export import OnnxExportConfig, check_onnx_output, export_onnx
    from ..video import check_side

    config = OnnxExportConfig(height=args.height, width=args.width, dynamic=args.dynamic, opset=args.opset,
                              split_convs=args.split_convs)
    config.validate()
    check_side(args.height, "--height")
    check_side(args.width, "--width")
    path = check_onnx_output(args.onnx, args.overwrite)
    model, meta = load_at_stability(args.checkpoint, args.stability, perframe=args.perframe_model,
                                    edge_margin=args.edge_margin)
    metadata = {"checkpoint": meta["path"], "step": meta["step"], "style_sha256": meta.get("style_sha256"),
                "edge_margin": meta["edge_margin"]}
    if "stability" in meta:
        metadata["stability"] = meta["stability"]
    export_onnx(model, path, config, metadata=metadata, overwrite=args.overwrite)
    if args.verify:
        worst = verify_onnx(model, path, args.height, args.width)
        if worst > VERIFY_TOLERANCE:
            path.unlink(missing_ok=True)
            raise RuntimeError(f"the exported graph differs from PyTorch by {worst:.2e} (> {VERIFY_TOLERANCE}); "
                               "removed it -- please report this as a bug")
        log.info("onnxruntime matches PyTorch within %.1e (max abs, 3 recurrent frames)", worst)
    shape = "any batch x height x width" if args.dynamic else f"1 x 3 x {args.height} x {args.width}"
    print(f"exported {args.checkpoint} ({describe_net(meta['model'])}) to {path} (opset {args.opset}, input {shape})")
    return 0
