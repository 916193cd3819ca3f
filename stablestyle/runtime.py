"""Edge helpers shared by the commands: device resolution and progress bars."""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator
from typing import TypeVar

import torch

from .errors import UserError

T = TypeVar("T")

DEVICES = ("auto", "cpu", "cuda")


def resolve_device(name: str = "auto") -> torch.device:
    """``auto`` -> CUDA when available else CPU; ``cuda`` without a GPU is a user error."""
    if name not in DEVICES and not name.startswith("cuda:"):
        raise UserError(f"unknown device {name!r}; valid: {', '.join(DEVICES)}")
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise UserError("--device cuda asked for, but PyTorch sees no CUDA GPU; use --device cpu")
    return torch.device(name)


def progress(iterable: Iterable[T], *, total: int | None = None, desc: str = "", unit: str = "it",
             quiet: bool = False, **kwargs) -> Iterator[T]:
    """A tqdm progress bar over ``iterable``, or the bare iterable when ``quiet``.

    When stderr is not a terminal (a log file, CI) the bar is redrawn at most every 30 s, so a log holds a
    line now and then rather than one per frame, and transient bars (``leave=False``, e.g. the
    optimisation baselines' per-frame iterations under the frame bar) are left out: a log cannot erase
    them, and the cursor moves that would write terminal escapes into it.
    """
    if quiet:
        return iter(iterable)
    from tqdm import tqdm

    if not stderr_is_terminal():
        if kwargs.get("leave") is False:
            return iter(iterable)
        kwargs = {**LOG_BAR_SETTINGS, **kwargs}
    return iter(tqdm(iterable, total=total, desc=desc, unit=unit, dynamic_ncols=True, **kwargs))


#: tqdm settings for a bar written into a log: a redraw every 30 s at most.  ``miniters=1`` keeps tqdm's
#: monitor thread from forcing extra (stale) redraws in between.
LOG_BAR_SETTINGS = {"mininterval": 30.0, "miniters": 1}


def stderr_is_terminal() -> bool:
    """Whether progress output (stderr) goes to a terminal rather than a file or pipe."""
    import sys

    return bool(getattr(sys.stderr, "isatty", None) and sys.stderr.isatty())


def check_at_least(name: str, value: int | None, minimum: int = 1) -> None:
    """:class:`UserError` unless ``value`` is ``None`` or a whole number ``>= minimum`` (a CLI option's check)."""
    if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < minimum):
        wanted = "a positive integer" if minimum == 1 else f"a whole number >= {minimum}"
        raise UserError(f"{name} must be {wanted}, got {value!r}")


_DURATION_UNITS = {"s": 1.0, "m": 60.0, "h": 3600.0}


def parse_duration(text: str, name: str = "--time-limit") -> float:
    """``"90s"``, ``"20m"``, ``"1.5h"`` or a bare number of minutes -> seconds (> 0); else :class:`UserError`."""
    value = str(text).strip().lower()
    unit = value[-1:] if value[-1:] in _DURATION_UNITS else ""
    try:
        seconds = float(value[:len(value) - len(unit)]) * _DURATION_UNITS.get(unit, 60.0)
    except ValueError:
        seconds = math.nan
    if not (seconds > 0 and math.isfinite(seconds)):
        raise UserError(f"{name} must be a positive duration such as 90s, 20m or 1.5h (a bare number is "
                        f"minutes), got {text!r}")
    return seconds
