"""Evaluation: temporal instability, warping error, perceptual losses, speed, and reports.

* :mod:`.metrics`: pure metric functions (:func:`instability`,
  :func:`mean_instability`, :func:`warping_error`, :func:`perceptual_losses`,
  :func:`measure_stream`);
* :mod:`.clips`: evaluation clips with ground-truth or estimated flow;
* :mod:`.methods`: the registry of compared methods;
* :mod:`.runner`: ``stablestyle evaluate`` (:func:`run_evaluation`);
* :mod:`.plots`, :mod:`.summary`: the figures and the Markdown report.
"""

from .metrics import (
    Speed,
    instability,
    mean_instability,
    measure_stream,
    perceptual_losses,
    warping_error,
    warping_error_per_frame,
)

__all__ = [
    "Speed",
    "instability",
    "mean_instability",
    "measure_stream",
    "perceptual_losses",
    "warping_error",
    "warping_error_per_frame",
]
