"""The backend interface and its registry.

Owns :class:`Backend` (what every engine offers), :data:`BACKENDS` and :func:`register_backend`.
A backend has

* ``step(frame, state) -> (out, state)``: ``frame`` is a ``uint8`` ``(H, W, 3)``
  RGB array or a float tensor ``(B, 3, H, W)`` in ``[0, 1]``; ``out`` is a
  float tensor ``(B, 3, H, W)`` in ``(0, 1)`` on ``backend.device`` (CPU for
  onnx) in the compute dtype; ``state`` is ``None`` at a clip's start and
  afterwards whatever ``step`` returned (for recurrent nets the previous
  output, a ``(B, 3, H, W)`` tensor; ``None`` for per-frame nets);
* ``run(frames) -> iterator of uint8 (H, W, 3) frames`` for one clip, the
  state kept in a local variable of the call.

The engines register themselves (:mod:`.torch_backend`, :mod:`.onnx_backend`);
:func:`stablestyle.inference.make.make_backend` builds one by name.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator

import numpy as np
import torch

from .frames import quantize

#: ``restart(frame) -> bool``: True when ``frame`` (uint8 (H, W, 3)) starts a new shot and the state must reset.
Restart = Callable[[np.ndarray], bool]

log = logging.getLogger(__name__)


class Backend:
    """Common interface; see the module docstring.  Build with :func:`make_backend`.

    Attributes: ``name``, ``device`` (where ``step`` returns tensors),
    ``precision`` (resolved: fp32 / fp16 / bf16), ``recurrent``.
    """

    name = "?"

    def __init__(self, device: torch.device, precision: str, recurrent: bool) -> None:
        self.device = device
        self.precision = precision
        self.recurrent = recurrent

    def step(self, frame, state=None) -> tuple[torch.Tensor, torch.Tensor | None]:
        raise NotImplementedError

    def run(self, frames: Iterable[np.ndarray], restart: Restart | None = None) -> Iterator[np.ndarray]:
        """Stylize one clip: ``uint8`` ``(H, W, 3)`` frames in, ``uint8`` frames out, in order.

        The recurrent state lives in this call; a change of frame size
        starts a new clip (the state is reset, with a log line), and so does
        a frame for which ``restart(frame)`` is true (a scene cut:
        :meth:`stablestyle.scenecut.SceneCutDetector.update`).
        """
        state, shape = None, None
        for frame in frames:
            if frame.shape != shape:
                if shape is not None:
                    log.info("frame size changed from %s to %s; restarting the recurrent state", shape, frame.shape)
                state, shape = None, frame.shape
            if restart is not None and restart(frame):
                state = None
            out, state = self.step(frame, state)
            yield quantize(out)[0].cpu().numpy()

    def describe(self) -> dict:
        """Settings in effect (for benchmark JSON and logs)."""
        return {"backend": self.name, "device": str(self.device), "precision": self.precision,
                "recurrent": self.recurrent}


BACKENDS: dict[str, type[Backend]] = {}


def register_backend(name: str) -> Callable[[type[Backend]], type[Backend]]:
    """Class decorator: make a :class:`Backend` subclass available to :func:`make_backend` as ``name``."""
    def decorate(cls: type[Backend]) -> type[Backend]:
        cls.name = name
        BACKENDS[name] = cls
        return cls
    return decorate
