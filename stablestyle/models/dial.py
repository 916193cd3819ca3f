"""A stability dial without retraining: one network between a per-frame model and its stable twin.

A stable model warm-started from its per-frame twin (:mod:`stablestyle.models.warmstart`)
stays close to it in weight space, so the two can be interpolated: with
``w(S) = (1 - S) * w_perframe + S * w_stable`` (the per-frame net's missing
previous-output channels taken as zero), ``S = 0`` is exactly the per-frame
model (the lively look), ``S = 1`` exactly the stable one, values between
mix them and values a little above 1 extrapolate towards more stability, all
at the speed of one network.

Interpolating two networks that were trained *independently* is meaningless
(their hidden units need not correspond), so :func:`related` checks that the
pair shares its origin: the cosine similarity of their convolution kernels,
which is near 0 for independent nets and near 1 after a fine-tune.  Such a
pair gets the other dial, :class:`BlendNet`: the two networks' *outputs*
mixed, ``(1 - S) * perframe(x_t) + S * stable(x_t, y_{t-1})`` with the mix fed
back as ``y_{t-1}``; it works for any pair, only for ``0 <= S <= 1`` (beyond
it would amplify the difference of two images), at the cost of two networks.
:func:`dial` chooses: weights where the pair is related, outputs otherwise.
"""

from __future__ import annotations

import torch
from torch import nn

from ..errors import UserError
from .transformer import TransformerNet
from .warmstart import adapt_state_dict

__all__ = ["MIN_RELATED_COSINE", "DIAL_MODES", "weight_cosine", "related", "dial_state_dict", "dial_model",
           "BlendNet", "dial"]

#: Least weight cosine for a pair to count as warm-start twins.
MIN_RELATED_COSINE = 0.5
#: Dial values accepted: 0 (per-frame) .. 1 (stable) and a little beyond.
DIAL_RANGE = (0.0, 1.5)
#: How :func:`dial` mixes the pair: ``auto`` (weights where related, else outputs), ``weights``, ``outputs``.
DIAL_MODES = ("auto", "weights", "outputs")


def _flat(state: dict[str, torch.Tensor]) -> torch.Tensor:
    # convolution kernels only: instance-norm scales start at 1 in every net and would make any two nets look alike
    return torch.cat([v.detach().float().flatten() for k, v in sorted(state.items()) if k.endswith("conv2d.weight")])


def weight_cosine(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> float:
    """Cosine similarity of two state dicts' convolution kernels (same keys and shapes; flattened, float32)."""
    if a.keys() != b.keys() or any(a[k].shape != b[k].shape for k in a):
        raise ValueError("the two networks differ in layout")
    x, y = _flat(a), _flat(b)
    return float(torch.nn.functional.cosine_similarity(x, y, dim=0))


def _pair(perframe: nn.Module, stable: nn.Module) -> tuple[dict, dict]:
    if not (isinstance(perframe, TransformerNet) and isinstance(stable, TransformerNet)):
        raise UserError("the stability dial needs two stablestyle transformation networks")
    if perframe.recurrent or not stable.recurrent:
        raise UserError("the stability dial needs a per-frame network and a stable (recurrent) one")
    if perframe.width != stable.width:
        raise UserError(f"the per-frame net has width {perframe.width:g}, the stable one {stable.width:g}")
    return adapt_state_dict(perframe.state_dict(), recurrent=True), stable.state_dict()


def related(perframe: nn.Module, stable: nn.Module) -> float:
    """The weight cosine of the pair (per-frame weights padded to the recurrent layout)."""
    a, b = _pair(perframe, stable)
    return weight_cosine(a, b)


def dial_state_dict(perframe: nn.Module, stable: nn.Module, s: float) -> dict[str, torch.Tensor]:
    """``(1 - s) * perframe + s * stable``, weight by weight; refuses unrelated pairs and ``s`` out of range."""
    if not (DIAL_RANGE[0] <= s <= DIAL_RANGE[1]):
        raise UserError(f"--stability must be in [{DIAL_RANGE[0]:g}, {DIAL_RANGE[1]:g}] (0 per-frame, 1 stable), "
                        f"got {s}")
    a, b = _pair(perframe, stable)
    cosine = weight_cosine(a, b)
    if cosine < MIN_RELATED_COSINE:
        raise UserError(f"the per-frame and stable networks are not warm-start twins (weight cosine {cosine:.2f} < "
                        f"{MIN_RELATED_COSINE}); the dial needs a stable model trained with --init from the "
                        "per-frame one")
    return {k: (1 - s) * a[k].float() + s * b[k].float() if b[k].is_floating_point() else b[k] for k in b}


def dial_model(perframe: nn.Module, stable: nn.Module, s: float) -> TransformerNet:
    """A recurrent :class:`TransformerNet` at dial position ``s`` (eval mode, float32)."""
    net = TransformerNet(width=stable.width, recurrent=True, edge_margin=getattr(stable, "edge_margin", 0))
    net.load_state_dict(dial_state_dict(perframe, stable, s))
    return net.eval()


class BlendNet(nn.Module):
    """Output-space dial: ``y_t = (1 - s) * perframe(x_t) + s * stable(x_t, y_{t-1})`` (recurrent).

    Works for any per-frame / stable pair (no shared origin needed) at the cost of running both; the
    mix is what is fed back, so the state stays one image like a :class:`TransformerNet`'s.
    """

    def __init__(self, perframe: nn.Module, stable: nn.Module, s: float) -> None:
        super().__init__()
        _pair(perframe, stable)
        if not 0.0 <= s <= 1.0:
            raise UserError(f"--stability must be in [0, 1] for two unrelated networks (their outputs are mixed), "
                            f"got {s}")
        self.perframe, self.stable, self.s = perframe, stable, float(s)
        self.recurrent, self.width = True, stable.width

    def config(self) -> dict:
        return {"width": self.width, "recurrent": True}

    def forward(self, frame: torch.Tensor,
                state: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        if self.s == 1.0:
            out = self.stable(frame, state)[0]
        elif self.s == 0.0:
            out = self.perframe(frame)[0]
        else:
            out = torch.lerp(self.perframe(frame)[0], self.stable(frame, state)[0], self.s)
        return out, out


def dial(perframe: nn.Module, stable: nn.Module, s: float, mode: str = "auto") -> tuple[nn.Module, str]:
    """``(network, mode used)`` at dial position ``s``: one interpolated network for warm-start twins
    (``weights``), the two networks' outputs mixed otherwise (``outputs``); ``mode`` forces one."""
    if mode not in DIAL_MODES:
        raise UserError(f"unknown dial mode {mode!r}; choose one of {', '.join(DIAL_MODES)}")
    if mode == "auto":
        a, b = _pair(perframe, stable)
        mode = "weights" if weight_cosine(a, b) >= MIN_RELATED_COSINE else "outputs"
    if mode == "weights":
        return dial_model(perframe, stable, s), mode
    return BlendNet(perframe.eval(), stable.eval(), s).eval(), mode
