"""Arithmetic of the network: :func:`conv_flops`, for the benchmarks' GFLOP/frame and device utilisation."""

from __future__ import annotations

import copy

import torch
from torch import nn


def conv_flops(model: nn.Module, height: int, width: int, batch: int = 1) -> dict[str, int]:
    """Floating-point operations of every ``nn.Conv2d`` in one forward pass at ``height x width``.

    Per convolution: ``2 * C_out * H_out * W_out * (C_in / groups) * k_h * k_w``
    (a multiply and an add per weight per output pixel; the bias adds,
    instance norms, pads, upsampling and the sigmoid are not counted -- they
    are < 1% of the total for this network).  Sizes come from forward hooks
    on a ``meta``-device copy, so nothing is computed and any size is cheap.

    Returns ``{module name: flops}`` plus ``"total"``, for ``batch`` frames.
    """
    net = copy.deepcopy(model).to("meta")
    counts: dict[str, int] = {}
    handles = []
    for name, module in net.named_modules():
        if isinstance(module, nn.Conv2d):
            def hook(mod, _inputs, output, name=name):
                _, c_out, h_out, w_out = output.shape
                k_h, k_w = mod.kernel_size
                per_batch = 2 * c_out * h_out * w_out * (mod.in_channels // mod.groups) * k_h * k_w
                counts[name] = counts.get(name, 0) + per_batch * output.shape[0]
            handles.append(module.register_forward_hook(hook))
    try:
        with torch.no_grad():
            net(torch.empty(batch, 3, height, width, device="meta"))
    finally:
        for h in handles:
            h.remove()
    counts["total"] = sum(counts.values())
    return counts
