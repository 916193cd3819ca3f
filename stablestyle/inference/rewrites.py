"""Rewrites of the transformation net that keep its function and give the kernels faster shapes.

Owns three module rewrites, each a module that computes the same function (up to summation order)
and a function that swaps it in, in place:

* :func:`split_thin_convs` -> :class:`PhaseSplitConv2d`: a stride-1 ``k x k`` convolution with few
  output channels computed as ``s x s`` output phases of one strided convolution (CPU and GPU, and
  the ONNX export);
* :func:`subpixel_upsample_convs` -> :class:`SubpixelUpsampleConv`: nearest x2 upsampling, reflection
  padding and a 3x3 convolution computed at the low resolution (CPU and GPU);
* :func:`group_instance_norms` -> :class:`GroupInstanceNorm2d`: instance norm as ``group_norm`` with a
  group per channel (CPU).

What each rewrite gains, measured, is in docs/PERFORMANCE.md (``bench/cpu_variants.py``,
``bench/norm_kernels.py``, ``bench/stylize_speed.py --rewrites``).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

#: Convolutions that :func:`split_thin_convs` rewrites: stride 1, kernel >= 5, and fewer output channels
#: than one AVX-512 register holds in fp32 (16).  In this network: the 9x9 ``deconv3`` (to RGB) and, for
#: widths < 0.5, the 9x9 ``conv1``.
SPLIT_MIN_KERNEL, SPLIT_MAX_OUT_CHANNELS = 5, 15
#: On CUDA the limit is wider: tensor-core convolutions want many output channels (implicit GEMM's N), and
#: both 9x9 layers have few (3 and 32 at width 1.0), so both are split there
#: (torch.compile's autotuning log: reports/bench/gpu_h100_autotune_convs.md).
SPLIT_MAX_OUT_CHANNELS_CUDA = 32


class PhaseSplitConv2d(nn.Module):
    """A stride-1 ``k x k`` convolution computed as ``s x s`` output phases in one strided convolution.

    Output pixel ``(s i + a, s j + b)`` of the original convolution is output
    ``(i, j)`` of a stride-``s`` convolution whose ``(k+s-1)^2`` kernel holds
    the original kernel shifted by ``(a, b)``; the ``s^2`` phases become
    ``s^2`` times the output channels and :func:`torch.nn.functional.pixel_shuffle`
    puts them back in place.  The result is the same (up to summation order);
    the arithmetic grows by ``((k+s-1)/k)^2`` (1.23x for ``k=9, s=2``) but a
    CPU convolution with 3 or 8 output channels wastes most of each SIMD
    register, and ``s^2`` times the channels fill them (the gain is measured
    by ``bench/cpu_variants.py``; docs/PERFORMANCE.md).
    Frames whose output size is not a multiple of ``s`` use the original conv.
    Input: ``(B, C_in, H + k - 1, W + k - 1)`` (already padded, as the
    network's ``ConvLayer`` does); output ``(B, C_out, H, W)``.
    """

    def __init__(self, conv: nn.Conv2d, phases: int = 2) -> None:
        super().__init__()
        c_out, c_in, k, k2 = conv.weight.shape
        if conv.stride != (1, 1) or conv.groups != 1 or conv.dilation != (1, 1) or conv.padding != (0, 0) \
                or k != k2 or conv.padding_mode != "zeros":
            raise ValueError("PhaseSplitConv2d needs a square, unpadded, stride-1, ungrouped Conv2d")
        s, big = phases, k + phases - 1
        weight = conv.weight.detach()
        split = weight.new_zeros(c_out, s, s, c_in, big, big)
        for a in range(s):
            for b in range(s):
                split[:, a, b, :, a:a + k, b:b + k] = weight
        self.conv = conv
        self.phases, self.kernel = s, k
        self.register_buffer("split_weight", split.reshape(c_out * s * s, c_in, big, big))
        bias = conv.bias.detach().repeat_interleave(s * s) if conv.bias is not None else None
        self.register_buffer("split_bias", bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s, k = self.phases, self.kernel
        if (x.shape[-2] - k + 1) % s or (x.shape[-1] - k + 1) % s:
            return self.conv(x)
        return F.pixel_shuffle(F.conv2d(x, self.split_weight, self.split_bias, stride=s), s)


def split_thin_convs(net: nn.Module, phases: int = 2, max_out_channels: int = SPLIT_MAX_OUT_CHANNELS) -> list[str]:
    """Replace (in place) every qualifying ``nn.Conv2d`` of ``net`` by a :class:`PhaseSplitConv2d`.

    Qualifying: stride 1, square kernel >= :data:`SPLIT_MIN_KERNEL`, at most
    ``max_out_channels`` output channels (:data:`SPLIT_MAX_OUT_CHANNELS` for CPU
    kernels, :data:`SPLIT_MAX_OUT_CHANNELS_CUDA` for GPU ones), no padding /
    groups / dilation.  Returns the names of the replaced modules.
    """
    def thin(m: nn.Module) -> bool:
        return (isinstance(m, nn.Conv2d) and m.stride == (1, 1) and m.groups == 1 and m.dilation == (1, 1)
                and m.padding == (0, 0) and m.padding_mode == "zeros"
                and m.kernel_size[0] == m.kernel_size[1] >= SPLIT_MIN_KERNEL and m.out_channels <= max_out_channels)

    return _replace_children(net, thin, lambda conv: PhaseSplitConv2d(conv, phases))


def _replace_children(net: nn.Module, match: Callable[[nn.Module], bool],
                      replace: Callable[[nn.Module], nn.Module]) -> list[str]:
    """Put ``replace(child)`` in place of every submodule of ``net`` that ``match``-es (in place); returns
    the replaced modules' names.  The three rewrites share it."""
    replaced = []
    for parent_name, parent in list(net.named_modules()):
        for name, child in list(parent.named_children()):
            if match(child):
                setattr(parent, name, replace(child))
                replaced.append(f"{parent_name}.{name}" if parent_name else name)
    return replaced


class SubpixelUpsampleConv(nn.Module):
    """Nearest x2 upsampling, reflection padding 1 and a 3x3 convolution, computed at the low resolution.

    The network's :class:`~stablestyle.models.transformer.UpsampleConvLayer`
    builds the 4x larger upsampled (and padded) map and convolves it.  Each
    output pixel ``(2i + a, 2j + b)`` only sees low-resolution pixels around
    ``(i, j)``: reflection-padding a nearest-upsampled map by one pixel equals
    upsampling the map padded by one pixel with edge replication, and along each
    axis the three taps fall on two low-resolution pixels (phase 0: ``w0`` and
    ``w1 + w2``; phase 1: ``w0 + w1`` and ``w2``).  So one 3x3 convolution of
    the edge-padded low-resolution map with ``4 x C_out`` channels (one kernel
    per output phase, folded from the original) followed by
    :func:`torch.nn.functional.pixel_shuffle` gives the same output (up to
    summation order), with the same arithmetic, without the upsampled
    intermediate, and with 4x the output channels per convolution (tensor-core
    convolutions want many).  Input ``(B, C_in, h, w)``, output ``(B, C_out, 2h, 2w)``.
    """

    #: ``_FOLD[a][t, i]``: 1 where tap ``i`` of the original kernel lands on low-resolution offset ``t``
    #: for output phase ``a``.
    _FOLD = ((
        (1.0, 0.0, 0.0), (0.0, 1.0, 1.0), (0.0, 0.0, 0.0)), (
        (0.0, 0.0, 0.0), (1.0, 1.0, 0.0), (0.0, 0.0, 1.0)))

    def __init__(self, layer: nn.Module) -> None:
        super().__init__()
        conv, pad = getattr(layer, "conv2d", None), getattr(layer, "pad", None)
        if (not isinstance(conv, nn.Conv2d) or not isinstance(pad, nn.ReflectionPad2d)
                or tuple(pad.padding) != (1, 1, 1, 1) or conv.kernel_size != (3, 3) or conv.stride != (1, 1)
                or conv.padding != (0, 0) or conv.dilation != (1, 1) or conv.groups != 1):
            raise ValueError("SubpixelUpsampleConv needs an upsample layer with ReflectionPad2d(1) and an "
                             "unpadded, stride-1, ungrouped 3x3 Conv2d")
        weight = conv.weight.detach()
        fold = weight.new_tensor(self._FOLD)  # (phase, t, i)
        # (C_out, a, b, C_in, t_y, t_x) = sum_ij fold[a, t_y, i] * W[o, c, i, j] * fold[b, t_x, j]
        folded = torch.einsum("ayi,ocij,bxj->oabcyx", fold, weight, fold)
        self.register_buffer("weight", folded.reshape(4 * conv.out_channels, conv.in_channels, 3, 3).contiguous())
        self.register_buffer("bias", conv.bias.detach().repeat_interleave(4) if conv.bias is not None else None)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # edge replication by concatenation: F.pad(mode="replicate") (or clamped indexing) between two
        # pixel shuffles fails in torch.compile's index simplification ("vr must not be None", torch 2.13)
        x = torch.cat([x[:, :, :1], x, x[:, :, -1:]], dim=2)
        x = torch.cat([x[:, :, :, :1], x, x[:, :, :, -1:]], dim=3)
        return F.pixel_shuffle(F.conv2d(x, self.weight, self.bias), 2)


def subpixel_upsample_convs(net: nn.Module) -> list[str]:
    """Replace (in place) every upsample-then-conv layer of ``net`` by a :class:`SubpixelUpsampleConv`.

    Returns the names of the replaced modules (``deconv1``, ``deconv2`` in a
    :class:`~stablestyle.models.TransformerNet`).
    """
    from ..models.transformer import UpsampleConvLayer

    return _replace_children(net, lambda m: isinstance(m, UpsampleConvLayer), SubpixelUpsampleConv)

#: Below this many channels CPU bf16 ``group_norm`` on channels-last tensors takes a slow path
#: (``bench/norm_kernels.py``); those layers keep ``instance_norm``.
GROUP_NORM_MIN_BF16_CHANNELS = 16


class GroupInstanceNorm2d(nn.Module):
    """Affine instance norm computed as ``group_norm`` with one group per channel (the same function).

    PyTorch's CPU ``instance_norm`` reshapes its input to ``(1, B*C, H, W)`` for
    a batch norm, which copies channels-last tensors twice; ``group_norm`` has a
    native channels-last kernel (``bench/cpu_variants.py``'s ``instance-norm``
    variants measure the difference; docs/PERFORMANCE.md).
    bf16 inputs with fewer than :data:`GROUP_NORM_MIN_BF16_CHANNELS` channels still go
    through ``instance_norm``.
    """

    def __init__(self, norm: nn.InstanceNorm2d) -> None:
        super().__init__()
        if not norm.affine or norm.track_running_stats:
            raise ValueError("GroupInstanceNorm2d needs an affine InstanceNorm2d without running stats")
        self.num_features, self.eps = norm.num_features, norm.eps
        self.weight, self.bias = norm.weight, norm.bias

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dtype == torch.bfloat16 and self.num_features < GROUP_NORM_MIN_BF16_CHANNELS:
            return F.instance_norm(x, weight=self.weight, bias=self.bias, eps=self.eps)
        return F.group_norm(x, self.num_features, self.weight, self.bias, self.eps)


def group_instance_norms(net: nn.Module) -> list[str]:
    """Replace (in place) every affine ``nn.InstanceNorm2d`` of ``net`` by a :class:`GroupInstanceNorm2d`.

    The parameters are shared, not copied.  Returns the names of the replaced modules.
    """
    return _replace_children(
        net, lambda m: isinstance(m, nn.InstanceNorm2d) and m.affine and not m.track_running_stats,
        GroupInstanceNorm2d)

