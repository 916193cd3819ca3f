"""The registry of optimisation methods: a dict filled by a decorator."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import numpy as np

from ..errors import UserError

__all__ = ["OPTIMIZATION_METHODS", "register_method", "get_method", "StylizeFn"]

#: ``(frames, style, *, options, device, quiet=False) -> Iterator[uint8 (H, W, 3)]``
StylizeFn = Callable[..., Iterator[np.ndarray]]

#: method name -> stylisation function (filled by :func:`register_method`).
OPTIMIZATION_METHODS: dict[str, StylizeFn] = {}


def register_method(name: str) -> Callable[[StylizeFn], StylizeFn]:
    """Decorator: register a stylisation function under ``name`` in :data:`OPTIMIZATION_METHODS`."""

    def decorate(fn: StylizeFn) -> StylizeFn:
        if name in OPTIMIZATION_METHODS:
            raise ValueError(f"optimisation method {name!r} is already registered")
        OPTIMIZATION_METHODS[name] = fn
        return fn

    return decorate


def get_method(name: str) -> StylizeFn:
    """The stylisation function registered as ``name``; :class:`UserError` listing the valid names otherwise."""
    try:
        return OPTIMIZATION_METHODS[name]
    except KeyError:
        raise UserError(f"unknown optimisation method {name!r}; valid: "
                        f"{', '.join(sorted(OPTIMIZATION_METHODS))}") from None
