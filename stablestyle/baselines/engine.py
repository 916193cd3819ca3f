"""The streaming loop shared by the optimisation baselines: one optimisation per frame.

:func:`optimize_clip` is what :func:`~stablestyle.baselines.gatys.stylize_gatys`
(``temporal=False``) and :func:`~stablestyle.baselines.ruder.stylize_ruder`
(``temporal=True``) run.  It keeps only the last ``max(J)`` input frames and
results (at the working size), computes the style Gram targets once per clip
and the content targets once per frame, and yields each frame as soon as it is
optimised.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable, Iterable, Iterator

import cv2
import numpy as np
import torch
from torch import Tensor

from ..errors import UserError
from ..losses import LossWeights
from ..models.vgg import load_vgg16
from ..runtime import progress
from ..video import to_tensor, to_uint8
from .objective import frame_terms, style_grams
from .options import OptimOptions
from .temporal import WarpedPrevious, fill_outside, long_term_masks, warp_previous

__all__ = ["optimize_image", "optimize_clip", "working_size", "MIN_SIDE"]

log = logging.getLogger(__name__)

#: Smallest side (pixels) of an optimised frame: relu4_x is 1/8 of it and needs a few pixels.
MIN_SIDE = 16


def working_size(height: int, width: int, size: int | None) -> tuple[int, int]:
    """``(H, W)`` with the long side shrunk to ``size`` (aspect kept; never enlarged; ``None`` = as is)."""
    if size is None or max(height, width) <= size:
        return height, width
    scale = size / max(height, width)
    return max(1, round(height * scale)), max(1, round(width * scale))


def _resize(img: np.ndarray, height: int, width: int) -> np.ndarray:
    """``uint8 (H, W, 3)`` to ``(height, width)``: area filter to shrink, bicubic to enlarge."""
    if img.shape[:2] == (height, width):
        return img
    shrink = height * width < img.shape[0] * img.shape[1]
    return cv2.resize(img, (width, height), interpolation=cv2.INTER_AREA if shrink else cv2.INTER_CUBIC)


def _check_image(img: object, what: str) -> np.ndarray:
    if not isinstance(img, np.ndarray) or img.ndim != 3 or img.shape[2] != 3 or img.dtype != np.uint8:
        desc = f"{img.dtype} array of shape {img.shape}" if isinstance(img, np.ndarray) else type(img).__name__
        raise UserError(f"{what} must be a uint8 RGB array of shape (H, W, 3), got {desc}")
    return img


def optimize_image(x0: Tensor, objective: Callable[[Tensor], dict[str, Tensor]], *, weights: LossWeights,
                   iterations: int, optimizer: str = "lbfgs", lr: float = 1.0, desc: str = "",
                   quiet: bool = False) -> tuple[Tensor, dict[str, float]]:
    """Minimise ``weights.total(objective(x))`` over the pixels ``x``, starting at ``x0``.

    Args:
        x0: ``(1, 3, H, W)`` start (not modified); ``x`` follows its device / dtype.
        objective: ``x -> {term: 0-d tensor}`` (unweighted terms).
        weights: applied by :meth:`LossWeights.total`, the one place weights are applied.
        iterations: optimiser iterations; L-BFGS runs one iteration (one
            objective evaluation, no line search, as in Gatys' and Ruder's Torch
            code) per progress-bar step, keeping its history across steps.
        optimizer: ``"lbfgs"`` or ``"adam"``.
        lr: step size.
        desc, quiet: progress bar label / silence (:func:`stablestyle.runtime.progress`).

    Returns:
        ``(x, terms)``: the optimised image clamped to [0, 1] (detached; pixels
        are unconstrained during the optimisation, as in Gatys et al.) and the
        unweighted terms (floats) at the last evaluation.

    Raises:
        UserError: when the optimisation diverges (non-finite pixels); lower ``lr``.
    """
    x = x0.detach().clone().requires_grad_(True)
    last: dict[str, float] = {}

    def closure() -> Tensor:
        opt.zero_grad()
        terms = objective(x)
        loss = weights.total(terms)
        loss.backward()
        last.clear()
        last.update({name: float(value.detach()) for name, value in terms.items()})
        return loss

    if optimizer == "lbfgs":
        # max_iter=1: one iteration per call, so the progress bar counts iterations; the
        # curvature history lives in the optimiser's state and carries over between calls.
        opt = torch.optim.LBFGS([x], lr=lr, max_iter=1, history_size=100)

        def step() -> None:
            opt.step(closure)
    elif optimizer == "adam":
        opt = torch.optim.Adam([x], lr=lr)

        def step() -> None:
            closure()
            opt.step()
    else:
        raise ValueError(f"unknown optimizer {optimizer!r}; valid: lbfgs, adam")

    for _ in progress(range(iterations), total=iterations, desc=desc, unit="it", quiet=quiet, leave=False):
        step()
    result = x.detach()
    if not torch.isfinite(result).all():
        raise UserError(f"the optimisation diverged (non-finite pixels){f' on {desc}' if desc else ''}; "
                        f"use a smaller lr than {lr} or optimizer 'adam'")
    return result.clamp(0.0, 1.0), last


def optimize_clip(frames: Iterable[np.ndarray], style: np.ndarray, *, options: OptimOptions,
                  device: torch.device | str | None, quiet: bool, temporal: bool, default_init: str,
                  name: str) -> Iterator[np.ndarray]:
    """Validate the inputs, then return the generator that optimises ``frames`` one by one.

    Args:
        frames: ``uint8 (H, W, 3)`` RGB frames of one size, consumed lazily.
        style: ``uint8 (H, W, 3)`` RGB style image.
        options: see :class:`OptimOptions` (validated here).
        device: where VGG and the images live (``None`` = CPU).
        quiet: no progress bars.
        temporal: add Ruder's temporal term (short- or long-term).
        default_init: initialisation when ``options.init`` is ``None``.
        name: method name for progress bars and logs.

    Yields ``uint8 (H, W, 3)`` results at each input frame's size.
    """
    options.validate()
    _check_image(style, "the style image")
    device = torch.device(device) if device is not None else torch.device("cpu")
    return _optimize_clip(frames, style, options, device, quiet, temporal, options.init or default_init, name)


def _style_targets(vgg: torch.nn.Module, style: np.ndarray, long_side: int,
                   layers: tuple[str, ...]) -> dict[str, Tensor]:
    """Gram targets of ``style`` scaled (down or up) to ``long_side`` pixels, on VGG's device."""
    scale = long_side / max(style.shape[:2])
    height, width = max(1, round(style.shape[0] * scale)), max(1, round(style.shape[1] * scale))
    if min(height, width) < MIN_SIDE:
        raise UserError(f"the style image scaled to a long side of {long_side} px is {width}x{height}; "
                        f"its short side must be >= {MIN_SIDE} px (raise style_size)")
    device = next(vgg.parameters()).device
    return style_grams(vgg, to_tensor(_resize(style, height, width), device=device), layers)


def _start_image(init: str, content: Tensor, previous: WarpedPrevious | None, *, seed: int) -> Tensor:
    """The optimisation's start: the content, seeded uniform noise, or the warped previous result.

    ``prev-warped`` without a previous frame (the first frame) starts from the content.
    """
    if init == "noise":
        generator = torch.Generator().manual_seed(seed)  # on the CPU: same noise on every device
        return torch.rand(content.shape, generator=generator).to(content.device, content.dtype)
    if init == "prev-warped" and previous is not None:
        return fill_outside(previous.warped, content, previous.inside)
    return content


def _optimize_clip(frames: Iterable[np.ndarray], style: np.ndarray, options: OptimOptions,
                   device: torch.device, quiet: bool, temporal: bool, init: str,
                   name: str) -> Iterator[np.ndarray]:
    layers = tuple(dict.fromkeys(options.content_layers + options.style_layers))
    vgg = load_vgg16(options.vgg_weights, device, layers=layers)
    offsets = sorted(options.long_term_offsets) if (temporal and options.long_term) else [1]
    keep = max(offsets) if (temporal or init == "prev-warped") else 0
    history: deque[tuple[np.ndarray, Tensor]] = deque(maxlen=keep)  # (input, result) at the working size
    grams = None
    shape = None
    for index, frame in enumerate(frames):
        _check_image(frame, f"frame {index}")
        if shape is None:
            shape = frame.shape
        elif frame.shape != shape:
            raise UserError(f"all frames must have one size; frame 0 is {shape[1]}x{shape[0]}, "
                            f"frame {index} is {frame.shape[1]}x{frame.shape[0]}")
        height, width = working_size(frame.shape[0], frame.shape[1], options.size)
        if min(height, width) < MIN_SIDE:
            raise UserError(f"frames of {frame.shape[1]}x{frame.shape[0]} give {width}x{height} at size "
                            f"{options.size}; the short side must be >= {MIN_SIDE} px (raise size)")
        small = _resize(frame, height, width)
        if grams is None:  # style targets once per clip (Gatys et al. 2016, Eq. 5), at the working scale
            grams = _style_targets(vgg, style, options.style_size or max(height, width), options.style_layers)
        content = to_tensor(small, device=device)
        with torch.no_grad():
            feats = vgg(content)
        targets = {layer: feats[layer] for layer in options.content_layers}

        previous = []
        if history and (temporal or init == "prev-warped"):
            previous = [warp_previous(small, history[-j][0], history[-j][1], offset=j,
                                      flow_method=options.flow_method, with_mask=temporal)
                        for j in offsets if j <= len(history)]
        refs: list[tuple[Tensor, Tensor]] = []
        if temporal and previous:
            masks = long_term_masks([p.reliable for p in previous])
            refs = [(p.warped, mask) for p, mask in zip(previous, masks)]

        x0 = _start_image(init, content, previous[0] if previous else None, seed=options.seed + index)

        def objective(x: Tensor) -> dict[str, Tensor]:
            return frame_terms(vgg(x), x, content_targets=targets, grams=grams, refs=refs)

        iterations = options.first_iterations if (index == 0 and options.first_iterations) else options.iterations
        result, terms = optimize_image(x0, objective, weights=options.weights, iterations=iterations,
                                       optimizer=options.optimizer, lr=options.step_size,
                                       desc=f"{name} frame {index + 1}", quiet=quiet)
        log.debug("%s frame %d: %s", name, index + 1, ", ".join(f"{k} {v:.4g}" for k, v in terms.items()))
        history.append((small, result))
        yield _resize(to_uint8(result), frame.shape[0], frame.shape[1])
