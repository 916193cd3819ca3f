"""Helpers shared by the datasets: per-item random generators and argument checks."""

from __future__ import annotations

import numpy as np

from ..errors import UserError

MIN_CROP = 16


def item_rng(seed: int, epoch: int, index: int) -> np.random.Generator:
    """The random generator of one item: a pure function of ``(seed, epoch, index)``.

    Independent streams per item (NumPy ``SeedSequence`` spawn keys), so items
    do not depend on the order, process or worker that draws them.
    """
    return np.random.default_rng(np.random.SeedSequence(entropy=int(seed), spawn_key=(int(epoch), int(index))))


def check_int(name: str, value, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise UserError(f"{name} must be a whole number >= {minimum}, got {value!r}")
    return int(value)


def check_fraction(name: str, value) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 1:
        raise UserError(f"{name} must be a number from 0 to 1, got {value!r}")
    return float(value)


class EpochMixin:
    """``set_epoch(epoch)`` / ``__getitem__`` -> ``get(index, epoch)``."""

    epoch: int = 0

    def set_epoch(self, epoch: int) -> None:
        """Use ``epoch``'s random crops / motion from now on (call before creating the epoch's iterator).

        With ``persistent_workers=True`` the workers keep their own copy; use
        :meth:`get` with an explicit epoch there.
        """
        self.epoch = check_int("epoch", epoch, 0)

    def __getitem__(self, index: int) -> dict:
        return self.get(index, self.epoch)

    def _check_index(self, index: int) -> int:
        n = len(self)
        if isinstance(index, bool) or not isinstance(index, (int, np.integer)) or not -n <= index < n:
            raise IndexError(f"index {index!r} out of range for a dataset of {n} items")
        return int(index) % n
