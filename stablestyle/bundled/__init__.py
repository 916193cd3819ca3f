"""Models that ship inside the package (half-precision checkpoints with their metadata).

Each ``<name>.pt`` here is a regular checkpoint (see :mod:`stablestyle.checkpoint`);
``<name>-perframe.pt`` is the per-frame baseline (Johnson et al. 2016) trained
with the same settings but no recurrence and no temporal loss.  How each was
trained is recorded in its ``config`` and in ``docs/MODELS.md``.
"""

from __future__ import annotations

from pathlib import Path

from ..errors import UserError

BUNDLED_DIR = Path(__file__).resolve().parent
DEFAULT_MODEL = "scream"


def available() -> list[str]:
    """Names of the bundled models, sorted."""
    return sorted(p.stem for p in BUNDLED_DIR.glob("*.pt") if not p.name.startswith("."))  # skip temp files


#: Suffixes of the bundled nets that are variants of a style's main (stable, half-width) model.
VARIANT_SUFFIXES = ("-perframe", "-small")


def styles() -> list[str]:
    """Names of the bundled main models, one per style (the ``-perframe`` and ``-small`` variants left out)."""
    return [n for n in available() if not n.endswith(VARIANT_SUFFIXES)]


def bundled_path(name: str) -> Path:
    """Path of the bundled model ``name``; an unknown name lists the valid ones."""
    path = BUNDLED_DIR / f"{name}.pt"
    if not path.is_file():
        names = ", ".join(available()) or "none installed"
        raise UserError(f"no checkpoint file or bundled model named {name!r}; bundled models: {names}")
    return path
