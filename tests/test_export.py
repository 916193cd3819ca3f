"""ONNX export: numerical agreement with PyTorch, dynamic sizes, metadata, and the ``export`` command."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
import torch

from stablestyle.inference import make_backend
from stablestyle.checkpoint import save_checkpoint
from stablestyle.cli import main
from stablestyle.errors import UserError
from stablestyle.inference.onnx_export import OnnxExportConfig, export_onnx, read_onnx_metadata
from stablestyle.models import TransformerNet

#: onnxruntime (CPU EP) vs PyTorch fp32, max abs over a 3-frame recurrent sequence.  Measured ~1e-6
#: to 4e-6 with torch 2.13 / onnxruntime 1.32; 1e-4 leaves room for other kernels, not for bugs
#: (a wrong padding or state hookup gives differences of 0.1 or more).
ONNX_MAX_ABS = 1e-4


pytestmark = pytest.mark.usefixtures("one_thread")


def _net(seed: int = 0, recurrent: bool = True) -> TransformerNet:
    torch.manual_seed(seed)
    return TransformerNet(width=0.25, recurrent=recurrent).eval()


def _sequence_diff(net, backend, shape, frames: int = 3, seed: int = 0) -> float:
    gen = torch.Generator().manual_seed(seed)
    worst, s_ref, s_onnx = 0.0, None, None
    for _ in range(frames):
        x = torch.rand(*shape, generator=gen)
        with torch.no_grad():
            ref, s_ref = net(x, s_ref)
        out, s_onnx = backend.step(x, s_onnx)
        assert out.shape == ref.shape
        worst = max(worst, (out - ref).abs().max().item())
    return worst


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("ckpt") / "tiny.pt"
    save_checkpoint(path, _net(), step=7, style_sha256="ab" * 32)
    return path


@pytest.mark.parametrize("recurrent, dynamic, split, example, run_shapes", [
    (True, True, False, (36, 64), [(1, 3, 37, 61), (2, 3, 20, 28), (1, 3, 36, 64)]),
    (True, True, True, (36, 64), [(1, 3, 37, 61), (1, 3, 18, 30)]),
    (True, False, False, (37, 61), [(1, 3, 37, 61)]),
    (False, True, False, (24, 24), [(1, 3, 30, 22)]),
])
def test_onnx_matches_pytorch_over_a_recurrent_sequence(tmp_path, recurrent, dynamic, split, example, run_shapes):
    net = _net(recurrent=recurrent)
    config = OnnxExportConfig(height=example[0], width=example[1], dynamic=dynamic, split_convs=split)
    path = export_onnx(net, tmp_path / "net.onnx", config)
    backend = make_backend("onnx", str(path), device="cpu")
    assert backend.recurrent is recurrent
    for shape in run_shapes:
        assert _sequence_diff(net, backend, shape) <= ONNX_MAX_ABS


@pytest.mark.parametrize("recurrent", [True, False])
def test_onnx_export_keeps_the_edge_margin(tmp_path, recurrent):
    net = _net(recurrent=recurrent)
    net.edge_margin = 12
    path = export_onnx(net, tmp_path / "m.onnx", OnnxExportConfig(height=36, width=64, dynamic=True))
    backend = make_backend("onnx", str(path), device="cpu")
    for shape in [(1, 3, 37, 61), (1, 3, 24, 40)]:
        assert _sequence_diff(net, backend, shape) <= ONNX_MAX_ABS


@pytest.mark.parametrize("split", [True, False])
def test_onnx_backend_from_a_network_exports_itself(split):
    net = _net()
    backend = make_backend("onnx", net, device="cpu", threads=1, split_convs=split)
    assert backend.describe()["split_convs"] is split
    assert _sequence_diff(net, backend, (1, 3, 21, 26)) <= ONNX_MAX_ABS
    assert _sequence_diff(net, backend, (2, 3, 16, 20)) <= ONNX_MAX_ABS  # new shape: exported again


def test_static_export_rejects_other_sizes(tmp_path):
    path = export_onnx(_net(), tmp_path / "s.onnx", OnnxExportConfig(height=24, width=32))
    backend = make_backend("onnx", str(path), device="cpu")
    with pytest.raises(UserError, match="--dynamic"):
        backend.step(np.zeros((20, 32, 3), np.uint8))


@pytest.mark.parametrize("opset", [11, 17, 20])
def test_export_opsets_pass_the_checker(tmp_path, opset):
    path = export_onnx(_net(), tmp_path / "o.onnx", OnnxExportConfig(height=16, width=16, opset=opset))
    model = onnx.load(str(path))
    onnx.checker.check_model(model)
    assert {o.domain or "ai.onnx": o.version for o in model.opset_import}["ai.onnx"] == opset
    assert [i.name for i in model.graph.input] == ["frame", "prev"] and [o.name for o in model.graph.output] == ["out"]


def test_export_metadata(tmp_path):
    path = export_onnx(_net(), tmp_path / "m.onnx", OnnxExportConfig(height=16, width=20), metadata={"step": 3})
    meta = read_onnx_metadata(path)
    assert meta["model_width"] == "0.25" and meta["model_recurrent"] == "True"
    assert meta["height"] == "16" and meta["width"] == "20" and meta["step"] == "3"


def test_export_is_atomic(tmp_path, monkeypatch):
    def broken_replace(src, dst):
        raise OSError("disk full (test)")

    monkeypatch.setattr("stablestyle.inference.onnx_export.os.replace", broken_replace)
    with pytest.raises(OSError, match="test"):
        export_onnx(_net(), tmp_path / "a.onnx", OnnxExportConfig(height=16, width=16))
    assert list(tmp_path.iterdir()) == []


# ----------------------------------------------------------------------------- the command

def test_export_command(tmp_path, ckpt, capsys):
    out = tmp_path / "tiny.onnx"
    assert main(["export", str(ckpt), "--onnx", str(out), "--height", "20", "--width", "28", "--dynamic"]) == 0
    assert capsys.readouterr().out.startswith(f"exported {ckpt} (recurrent net, width 0.25) to {out}")
    meta = read_onnx_metadata(out)
    assert meta["step"] == "7" and meta["style_sha256"] == "ab" * 32 and meta["dynamic"] == "True"
    before = out.read_bytes()
    assert main(["export", str(ckpt), "--onnx", str(out)]) == 2
    assert "already exists" in capsys.readouterr().err and out.read_bytes() == before
    assert main(["export", str(ckpt), "--onnx", str(out), "--overwrite", "--height", "16", "--width", "16",
                 "--split-convs"]) == 0
    meta = read_onnx_metadata(out)
    assert meta["dynamic"] == "False" and meta["split_convs"] == "True"


@pytest.mark.parametrize("args, match", [
    (["--onnx", "{tmp}/x.onnx", "--opset", "9"], "--opset must be between 11"),
    (["--onnx", "{tmp}/x.onnx", "--height", "2"], "--height must be"),
    (["--onnx", "{tmp}/x.pt"], "must end in .onnx"),
    (["--onnx", "{tmp}/missing/x.onnx"], "does not exist"),
])
def test_export_command_user_errors(tmp_path, ckpt, capsys, args, match):
    args = [a.format(tmp=tmp_path) for a in args]
    assert main(["export", str(ckpt), *args]) == 2
    err = capsys.readouterr().err
    assert match in err and "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "x.onnx").exists()


@pytest.mark.parametrize("content, match", [(b"not a checkpoint", "is not a stablestyle checkpoint"),
                                            (None, "does not exist")])
def test_export_command_bad_checkpoint(tmp_path, capsys, content, match):
    bad = tmp_path / "bad.pt"
    if content is not None:
        bad.write_bytes(content)
    assert main(["export", str(bad), "--onnx", str(tmp_path / "x.onnx")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"error: checkpoint {bad}" if content is None else f"error: {bad}")
    assert match in err[0]
    assert not (tmp_path / "x.onnx").exists()
