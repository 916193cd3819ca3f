"""Fast inference of the transformation network: backends, the runners built on them, ONNX export.

One interface, several engines: :func:`make_backend` builds a :class:`Backend` (``"torch"`` or
``"onnx"``) with ``step(frame, state)`` and ``run(frames)``.  Modules, each owning one concept:

* :mod:`.backend` -- the interface and registry; :mod:`.make` -- :func:`make_backend`;
* :mod:`.torch_backend` (with :mod:`.cuda`, its CUDA-only paths) and :mod:`.onnx_backend` -- the engines;
* :mod:`.rewrites` -- module rewrites that keep the function (phase-split, sub-pixel, group norm);
* :mod:`.precision`, :mod:`.frames` -- precision names, ``uint8`` frames <-> device tensors;
* :mod:`.pipeline` -- :func:`run_pipelined` (decode / network / encode threads);
* :mod:`.batching` -- :func:`stylize_streams` / :func:`stylize_many` (independent inputs batched);
* :mod:`.flops` -- :func:`conv_flops`; :mod:`.onnx_export` -- the ONNX graph and file.
"""

from .backend import BACKENDS, Backend, register_backend
from .batching import stylize_many, stylize_streams
from .flops import conv_flops
from .frames import frames_to_tensor, quantize
from .make import make_backend
from .pipeline import PipelineStats, run_pipelined
from .precision import PRECISIONS, bf16_is_native, resolve_precision
from .torch_backend import COMPILE_MODES

__all__ = [
    "BACKENDS", "COMPILE_MODES", "PRECISIONS", "Backend", "PipelineStats", "bf16_is_native", "conv_flops",
    "frames_to_tensor", "make_backend", "quantize", "register_backend",
    "resolve_precision", "run_pipelined", "stylize_many", "stylize_streams",
]
