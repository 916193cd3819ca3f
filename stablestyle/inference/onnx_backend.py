"""The ``"onnx"`` backend: onnxruntime on a graph from :mod:`stablestyle.inference.onnx_export`.

Owns :class:`OnnxBackend`.  CPU execution provider; the CUDA one when the
device is CUDA and the installed onnxruntime has it.  The recurrent state is
an explicit graph input ``prev`` / output ``out``.
"""

from __future__ import annotations

import copy
import logging
import os
from pathlib import Path

import torch
from torch import nn

from ..errors import UserError
from .backend import Backend, register_backend
from .frames import as_input
from .onnx_export import INPUT_FRAME, INPUT_PREV, OUTPUT, OnnxExportConfig, onnx_bytes

log = logging.getLogger(__name__)


@register_backend("onnx")
class OnnxBackend(Backend):
    """onnxruntime on an exported graph (inputs ``frame`` [, ``prev``], output ``out``; fp32).

    Given a network, the backend exports it itself, lazily, with *static*
    shapes at the first frame's size (onnxruntime optimises static graphs
    better), and exports again for a new size; with ``split_convs`` the thin
    9x9 convolutions are exported phase-split
    (:class:`~stablestyle.inference.rewrites.PhaseSplitConv2d`, faster on CPU
    runtimes: ``bench/cpu_variants.py``).  Given an ``.onnx`` path it
    runs that file as is (a static export accepts only its own size).
    """

    def __init__(self, model, *, device: torch.device, precision: str, threads: int | None,
                 channels_last: bool, compile: bool | str, cuda_graphs: bool, split_convs: bool) -> None:
        try:
            import onnxruntime as ort
        except ImportError:
            raise UserError("the onnx backend needs onnxruntime: pip install 'stablestyle[onnx]'") from None
        if precision != "fp32":
            raise UserError(f"the onnx backend runs fp32 only (asked for {precision}); use --backend torch for "
                            "fp16/bf16, or --precision fp32")
        if compile or cuda_graphs:
            raise UserError("--compile and --cuda-graphs are for --backend torch (torch.compile and CUDA graphs are "
                            "torch-backend options)")
        self._ort = ort
        available = ort.get_available_providers()
        if device.type == "cuda":
            if "CUDAExecutionProvider" not in available:
                raise UserError(f"this onnxruntime has no CUDA execution provider (it has {', '.join(available)}); "
                                "install onnxruntime-gpu or use --device cpu")
            self.providers = ["CUDAExecutionProvider", "CPUExecutionProvider"]
        else:
            self.providers = ["CPUExecutionProvider"]
        self.threads = threads
        self.split_convs = bool(split_convs) and isinstance(model, nn.Module)
        self._sessions: dict[tuple, object] = {}
        if isinstance(model, nn.Module):
            self.net = copy.deepcopy(model).float().eval().cpu()
            self.path = None
            recurrent = bool(getattr(model, "recurrent", False))
        elif isinstance(model, (str, os.PathLike)):
            self.net = None
            self.path = Path(model)
            if self.path.suffix.lower() != ".onnx" or not self.path.is_file():
                raise UserError(f"{self.path}: the onnx backend needs an existing .onnx file "
                                "(write one with `stablestyle export`) or a loaded network")
            session = self._new_session(str(self.path))
            self._sessions[None] = session
            recurrent = INPUT_PREV in [i.name for i in session.get_inputs()]
        else:
            raise UserError(f"the onnx backend needs a network or an .onnx path, got {type(model).__name__}")
        # outputs come back as host numpy arrays (no IO binding), so step() returns CPU tensors
        super().__init__(torch.device("cpu"), "fp32", recurrent)
        self.execution_device = device

    def describe(self) -> dict:
        return {**super().describe(), "providers": self.providers, "threads": self.threads,
                "split_convs": self.split_convs, "execution_device": str(self.execution_device)}

    def _new_session(self, model_path_or_bytes):
        ort = self._ort
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.log_severity_level = 3
        if self.threads is not None:
            options.intra_op_num_threads = self.threads
        try:
            session = ort.InferenceSession(model_path_or_bytes, options, providers=self.providers)
        except Exception as exc:  # onnxruntime raises its own Fail / InvalidGraph types
            where = self.path if self.path is not None else "the exported network"
            raise UserError(f"{where}: onnxruntime cannot load it ({type(exc).__name__}: {exc})") from None
        if session.get_providers()[0] != self.providers[0]:
            raise UserError(f"onnxruntime could not start {self.providers[0]} (it fell back to "
                            f"{session.get_providers()[0]}); check the CUDA/cuDNN install or use --device cpu")
        return session

    def _session(self, shape: tuple[int, ...]):
        if self.net is None:
            return self._sessions[None]
        if shape not in self._sessions:
            batch, _, height, width = shape
            data = onnx_bytes(self.net, OnnxExportConfig(height=height, width=width, dynamic=batch != 1,
                                                         split_convs=self.split_convs))
            self._sessions[shape] = self._new_session(data)
            log.debug("exported the network to ONNX for input shape %s", shape)
        return self._sessions[shape]

    def step(self, frame, state=None):
        x = as_input(frame, torch.device("cpu")).float().contiguous().numpy()
        feeds = {INPUT_FRAME: x}
        if self.recurrent:
            prev = x if state is None else state.detach().float().cpu().contiguous().numpy()
            if prev.shape != x.shape:
                raise ValueError(f"recurrent state has shape {prev.shape} but the frame has {x.shape}; "
                                 "pass state=None to start a new clip")
            feeds[INPUT_PREV] = prev
        session = self._session(x.shape)
        try:
            (out,) = session.run([OUTPUT], feeds)
        except Exception as exc:  # e.g. a static export given another frame size
            if self.path is None:
                raise
            expected = [i.shape for i in session.get_inputs()]
            raise UserError(f"{self.path} cannot run a {x.shape} input (it takes {expected}); export it with "
                            f"--dynamic or with this --height/--width ({type(exc).__name__})") from None
        out = torch.from_numpy(out)
        return out, (out if self.recurrent else None)

