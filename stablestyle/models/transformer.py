"""The image transformation network (Johnson et al. 2016), optionally recurrent (Gupta et al. 2017).

Architecture as in pytorch/examples ``fast_neural_style``: a 9x9 stride-1 conv,
two 3x3 stride-2 convs, five residual blocks, two upsampling layers
(nearest-neighbour x2, then a 3x3 conv) and a 9x9 conv to RGB; instance
normalisation (affine) and ReLU after every conv except the last; reflection
padding everywhere.

Departures from pytorch/examples, and why:

* **Output head**: a sigmoid maps the last conv to ``(0, 1)``, the package's
  image range.  Clamping would zero the gradient of every pixel outside
  ``[0, 1]`` so such pixels could never recover during training; a sigmoid is
  smooth with a non-zero gradient everywhere.  (pytorch/examples outputs
  unbounded 0-255 values and clamps only when saving.)
* **Recurrence** (Gupta et al. 2017, Sec. 4): the recurrent net sees
  ``concat(frame_t, output_{t-1})``, 6 input channels.
* **Any input size**: frames are reflect-padded to a multiple of 4 (the two
  stride-2 convs) and the output is cropped back (:class:`InputPadder`).
* **Edge margin** (inference only): in eval mode a net with ``edge_margin=M``
  reflect-pads each frame by ``M`` more pixels per side and crops them off
  again.  A net learns to tell its input's edges apart (reflection padding,
  the stride-2 grid starts at the top-left) and paints bands or stripes
  along them; with the margin those fall outside the frame.  Training
  (train mode) sees the bare crop, so the margin costs nothing there,
  unless ``margin_in_training`` is set (``train --margin-in-training``: a
  band along the net's own edges then buys the losses nothing).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

#: Base channel counts of Johnson et al. (conv1, conv2, conv3 / residual blocks).
BASE_CHANNELS = (32, 64, 128)
#: No layer is narrower than this, whatever ``width`` is.
MIN_CHANNELS = 8
#: Smallest frame side the net accepts: after padding to a multiple of 4 the
#: 1/4-resolution feature map must be at least 2 pixels for reflection padding.
MIN_SIZE = 5
#: Largest ``edge_margin`` a net accepts (pixels per side).
MAX_MARGIN = 256


def scaled_channels(width: float) -> tuple[int, int, int]:
    """Channel counts for a width multiplier: ``max(8, round(base * width))`` for each base count.

    ``width=1`` gives Johnson's (32, 64, 128); ``width=0.5`` gives (16, 32, 64);
    ``width=0.25`` gives (8, 16, 32).  Python's ``round`` rounds halves to even.
    """
    if not width > 0:
        raise ValueError(f"width must be a positive number (1.0 = Johnson et al.'s net), got {width!r}")
    return tuple(max(MIN_CHANNELS, int(round(c * width))) for c in BASE_CHANNELS)  # type: ignore[return-value]


def set_edge_margin(module: nn.Module, margin: int) -> int:
    """Give every :class:`TransformerNet` inside ``module`` (itself included) ``edge_margin=margin``.

    Returns how many nets were changed; raises ``ValueError`` for a margin outside ``[0, MAX_MARGIN]``.
    """
    if isinstance(margin, bool) or not isinstance(margin, int) or not 0 <= margin <= MAX_MARGIN:
        raise ValueError(f"edge margin must be a whole number of pixels in [0, {MAX_MARGIN}], got {margin!r}")
    nets = [m for m in module.modules() if isinstance(m, TransformerNet)]
    for net in nets:
        net.edge_margin = margin
    return len(nets)


class InputPadder:
    """Reflect-pad ``(B, C, H, W)`` tensors so ``H`` and ``W`` are multiples of ``multiple``; crop back.

    As in RAFT: the padding is split between both sides (the extra pixel of an
    odd amount goes to the bottom / right).  ``margin`` pixels more go on every
    side (reflection needs less padding than the side is long, so frames
    shorter than ``margin + 3`` pixels get a smaller margin).
    """

    def __init__(self, shape: torch.Size | tuple[int, ...], multiple: int = 4, margin: int = 0) -> None:
        # no int(): under ONNX tracing the sizes stay symbolic, so the padding follows the input
        height, width = shape[-2], shape[-1]
        if margin and isinstance(height, int) and isinstance(width, int):
            margin = max(0, min(margin, height - 3, width - 3))
        pad_h = (multiple - height % multiple) % multiple
        pad_w = (multiple - width % multiple) % multiple
        # F.pad order: (left, right, top, bottom)
        self.padding = (margin + pad_w // 2, margin + pad_w - pad_w // 2,
                        margin + pad_h // 2, margin + pad_h - pad_h // 2)
        self.size = (height, width)

    def pad(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, C, H, W) -> (B, C, H', W')`` with ``H', W'`` multiples of ``multiple``."""
        if not any(self.padding):
            return x
        return F.pad(x, self.padding, mode="reflect")

    def unpad(self, x: torch.Tensor) -> torch.Tensor:
        """Crop a padded ``(B, C, H', W')`` tensor back to ``(B, C, H, W)``."""
        left, _, top, _ = self.padding
        height, width = self.size
        return x[..., top:top + height, left:left + width]


class ConvLayer(nn.Module):
    """Reflection padding then a convolution (keeps ``H/stride x W/stride``)."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, stride: int = 1) -> None:
        super().__init__()
        self.pad = nn.ReflectionPad2d(kernel_size // 2)
        self.conv2d = nn.Conv2d(in_channels, out_channels, kernel_size, stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv2d(self.pad(x))


class UpsampleConvLayer(ConvLayer):
    """Nearest-neighbour upsampling x2 then a stride-1 :class:`ConvLayer` (avoids checkerboard artefacts)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(F.interpolate(x, scale_factor=2, mode="nearest"))


class ResidualBlock(nn.Module):
    """conv-IN-ReLU-conv-IN plus identity (He et al. 2016, as used by Johnson et al.)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv1 = ConvLayer(channels, channels, 3)
        self.in1 = nn.InstanceNorm2d(channels, affine=True)
        self.conv2 = ConvLayer(channels, channels, 3)
        self.in2 = nn.InstanceNorm2d(channels, affine=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.relu(self.in1(self.conv1(x)))
        return x + self.in2(self.conv2(y))


class TransformerNet(nn.Module):
    """Feed-forward style transformation network, recurrent by default (Gupta et al. 2017).

    Args:
        width: channel multiplier; layer ``c`` gets ``max(8, round(c * width))``
            channels (:func:`scaled_channels`).  ``1.0`` is Johnson et al.'s net
            (1,679,235 parameters non-recurrent).
        recurrent: feed the previous output back as 3 extra input channels.
        edge_margin: pixels of reflected frame added per side in eval mode
            and cropped off after (see the module docstring); 0 = none.

    ``forward(frame, state=None) -> (out, state)``:

    * ``frame``: ``(B, 3, H, W)`` RGB in ``[0, 1]``, any ``H, W >= 5``.
    * ``out``: ``(B, 3, H, W)`` in ``(0, 1)`` (sigmoid head), in the dtype that
      autocast gives (else the input's).
    * Recurrent nets: ``state`` is the previous output ``(B, 3, H, W)`` or
      ``None`` at the start of a clip; the returned state is ``out`` itself,
      *not detached*, so training can backpropagate through an unrolled
      sequence (run inference under ``torch.no_grad()``).  When ``state`` is
      ``None`` the frame itself stands in for the previous output: it is an
      image in the same range with the same content, so the first output is a
      per-frame stylisation, and training sees exactly the same input at every
      sequence start.
    * Non-recurrent nets ignore ``state`` and return ``None`` as the state.
    """

    def __init__(self, width: float = 1.0, recurrent: bool = True, edge_margin: int = 0) -> None:
        super().__init__()
        if isinstance(edge_margin, bool) or not isinstance(edge_margin, int) or not 0 <= edge_margin <= MAX_MARGIN:
            raise ValueError(f"edge_margin must be a whole number of pixels in [0, {MAX_MARGIN}], got {edge_margin!r}")
        self.width = float(width)
        self.recurrent = bool(recurrent)
        self.edge_margin = edge_margin
        self.margin_in_training = False  # a training switch, not an architecture setting: not in config()
        c1, c2, c3 = scaled_channels(self.width)
        in_channels = 6 if self.recurrent else 3
        self.conv1 = ConvLayer(in_channels, c1, 9)
        self.in1 = nn.InstanceNorm2d(c1, affine=True)
        self.conv2 = ConvLayer(c1, c2, 3, stride=2)
        self.in2 = nn.InstanceNorm2d(c2, affine=True)
        self.conv3 = ConvLayer(c2, c3, 3, stride=2)
        self.in3 = nn.InstanceNorm2d(c3, affine=True)
        self.res1 = ResidualBlock(c3)
        self.res2 = ResidualBlock(c3)
        self.res3 = ResidualBlock(c3)
        self.res4 = ResidualBlock(c3)
        self.res5 = ResidualBlock(c3)
        self.deconv1 = UpsampleConvLayer(c3, c2, 3)
        self.in4 = nn.InstanceNorm2d(c2, affine=True)
        self.deconv2 = UpsampleConvLayer(c2, c1, 3)
        self.in5 = nn.InstanceNorm2d(c1, affine=True)
        self.deconv3 = ConvLayer(c1, 3, 9)

    def config(self) -> dict:
        """Constructor arguments: ``TransformerNet(**net.config())`` rebuilds the architecture."""
        return {"width": self.width, "recurrent": self.recurrent, "edge_margin": self.edge_margin}

    def num_parameters(self) -> int:
        """Number of trainable scalars."""
        return sum(p.numel() for p in self.parameters())

    def forward(self, frame: torch.Tensor,
                state: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor | None]:
        if frame.dim() != 4 or frame.shape[1] != 3:
            raise ValueError(f"frame must be (B, 3, H, W) RGB, got shape {tuple(frame.shape)}")
        if frame.shape[-2] < MIN_SIZE or frame.shape[-1] < MIN_SIZE:
            raise ValueError(f"frame must be at least {MIN_SIZE}x{MIN_SIZE} pixels, got "
                             f"{frame.shape[-1]}x{frame.shape[-2]}")
        x = frame
        if self.recurrent:
            if state is None:
                state = frame  # first frame: see the class docstring
            elif state.shape != frame.shape:
                raise ValueError(
                    f"recurrent state has shape {tuple(state.shape)} but the frame has {tuple(frame.shape)}; "
                    "reset the state (pass state=None) when the resolution or batch size changes")
            # under autocast the previous output may be half precision; conv casts anyway
            x = torch.cat([frame, state.to(frame.dtype)], dim=1)
        margin = self.edge_margin if self.margin_in_training or not self.training else 0
        padder = InputPadder(x.shape, margin=margin)
        out = torch.sigmoid(padder.unpad(self.body(padder.pad(x))))
        return out, (out if self.recurrent else None)

    def body(self, x: torch.Tensor) -> torch.Tensor:
        """The layers, before the sigmoid, on an input already padded to multiples of 4 (3 or 6 channels)."""
        y = F.relu(self.in1(self.conv1(x)))
        y = F.relu(self.in2(self.conv2(y)))
        y = F.relu(self.in3(self.conv3(y)))
        y = self.res5(self.res4(self.res3(self.res2(self.res1(y)))))
        y = F.relu(self.in4(self.deconv1(y)))
        y = F.relu(self.in5(self.deconv2(y)))
        return self.deconv3(y)
