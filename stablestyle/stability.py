"""The stability dial at the edges: ``--stability S`` for a stable model and its per-frame twin.

``S = 1`` is the stable (recurrent) model as trained, ``S = 0`` its per-frame
twin (the lively look, Johnson et al. 2016), values between mix the two
(:func:`stablestyle.models.dial.dial`: one interpolated network for
warm-start twins, the two networks' outputs mixed otherwise).  The twin is
found, in this order: the ``--perframe-model`` given; the bundled
``<style>-perframe`` of a bundled model; the per-frame checkpoint the stable
model was warm-started from (its training config's ``init``), where that
file is still there.
"""

from __future__ import annotations

import logging
import math
from pathlib import Path

from .errors import UserError

log = logging.getLogger(__name__)

__all__ = ["bundled_twin", "find_twin", "load_at_stability", "add_stability_arguments"]


def bundled_twin(model: str) -> str | None:
    """The bundled per-frame twin of a bundled model (``<style>-small`` compares with ``<style>-perframe``)."""
    from .bundled import available

    for name in (f"{model}-perframe", f"{model.removesuffix('-small')}-perframe"):
        if name in available():
            return name
    return None


def find_twin(model: str, meta: dict, perframe: str | None = None, twin_flag: str = "--perframe-model") -> str:
    """The per-frame twin of stable model ``model`` (see the module docstring); a :class:`UserError` if none.

    ``twin_flag`` is the command's flag for the twin, named in the errors (the demo calls it ``--baseline``).
    """
    if perframe:
        return perframe
    twin = bundled_twin(str(model))
    if twin:
        return twin
    init = (meta.get("config") or {}).get("init")
    if init and Path(init).exists():
        return str(init)
    raise UserError(f"--stability needs the per-frame twin of {model}: pass it as {twin_flag} PATH "
                    "(a per-frame model of the same style and width)")


def _check_position(stability: float) -> float:
    from .models.dial import DIAL_RANGE

    s = float(stability)
    if not math.isfinite(s) or not DIAL_RANGE[0] <= s <= DIAL_RANGE[1]:
        raise UserError(f"--stability must be a number in [{DIAL_RANGE[0]:g}, {DIAL_RANGE[1]:g}] "
                        f"(0 the per-frame look, 1 the stable model), got {stability}")
    return s


def load_at_stability(model: str, stability: float | None = None, *, perframe: str | None = None,
                      mode: str = "auto", twin_flag: str = "--perframe-model", edge_margin: int | None = None):
    """``(network, meta)`` for ``model`` at dial position ``stability`` (``None``: the model as it is).

    ``edge_margin`` (px) replaces the checkpoints' own edge margin (``None``: keep it); ``meta["edge_margin"]``
    is the one used.

    ``meta`` is the stable model's checkpoint metadata with ``meta["stability"]`` =
    ``{"s", "mode", "perframe"}`` added; ``S = 1`` and ``S = 0`` return the stable model and the
    twin themselves (exact endpoints, the speed of one network).
    """
    from .checkpoint import load_checkpoint
    from .models.dial import dial

    net, meta = load_checkpoint(model)
    if stability is None:
        return _with_margin(net, meta, edge_margin)
    s = _check_position(stability)
    if not meta["model"].get("recurrent", True):
        raise UserError(f"--stability needs a stable (recurrent) model, but {model} is per-frame; pass the stable "
                        f"one as --model and this one as {twin_flag}")
    twin_name = find_twin(model, meta, perframe, twin_flag)
    twin, twin_meta = load_checkpoint(twin_name)
    if twin_meta["model"].get("recurrent", True):
        raise UserError(f"{twin_flag} {twin_name} is a recurrent (stable) model; the dial needs a per-frame "
                        "one")
    if s == 1.0 or s == 0.0:
        used = "endpoint"
        net = net if s == 1.0 else twin
    else:
        net, used = dial(twin, net, s, mode)
        if used == "outputs":
            log.warning("%s and %s were trained apart, so their outputs are mixed (two networks' time; measured: "
                        "less even along S than the weight dial of warm-start twins, reports/dial)", model, twin_name)
    meta = {**meta, "stability": {"s": s, "mode": used, "perframe": twin_meta["path"]}}
    log.info("stability %g: %s (per-frame twin %s)", s, used, twin_meta["path"])
    return _with_margin(net, meta, edge_margin)


def _with_margin(net, meta: dict, edge_margin: int | None):
    """``(net, meta)`` with ``edge_margin`` applied to every net inside (``None``: as loaded)."""
    from .models import set_edge_margin

    if edge_margin is not None:
        try:
            set_edge_margin(net, edge_margin)
        except ValueError as exc:
            raise UserError(f"--edge-margin: {exc}") from None
    margins = {getattr(m, "edge_margin", None) for m in net.modules()} - {None}
    return net, {**meta, "edge_margin": max(margins) if margins else 0}


def add_stability_arguments(p) -> None:
    """``--stability``, ``--perframe-model`` and ``--edge-margin`` for a command's parser."""
    p.add_argument("--stability", type=float, default=None, metavar="S",
                   help="the stability dial: 0 = the per-frame model's lively look, 1 = the stable model (default), "
                        "between = a mix, up to 1.5 for warm-start twins (more stable still)")
    p.add_argument("--perframe-model", default=None, metavar="CKPT",
                   help="the per-frame twin for --stability (default: the bundled <style>-perframe, or the "
                        "checkpoint the stable model was warm-started from)")
    p.add_argument("--edge-margin", type=int, default=None, metavar="PX",
                   help="reflect the frame PX pixels further out on every side before the network and crop "
                        "after, so bands or stripes a net paints along its input's edges fall outside the "
                        "frame (default: the model's own setting, 0 for models saved without one)")
