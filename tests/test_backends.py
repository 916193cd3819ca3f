"""Inference backends, the pipelined and batched runners, and the FLOP counter."""

from __future__ import annotations

import sys
import time

import numpy as np
import pytest
import torch

from stablestyle.inference import (
    BACKENDS,
    conv_flops,
    frames_to_tensor,
    make_backend,
    quantize,
    resolve_precision,
    run_pipelined,
    stylize_many,
    stylize_streams,
)
from stablestyle.inference.rewrites import (
    SPLIT_MAX_OUT_CHANNELS_CUDA,
    GroupInstanceNorm2d,
    PhaseSplitConv2d,
    SubpixelUpsampleConv,
    group_instance_norms,
    split_thin_convs,
    subpixel_upsample_convs,
)
from stablestyle.inference.torch_backend import TorchBackend
from stablestyle.bundled import available
from stablestyle.checkpoint import load_checkpoint
from stablestyle.errors import UserError
from stablestyle.models import TransformerNet
from stablestyle.models.transformer import UpsampleConvLayer
from stablestyle.video import open_sink, open_source, to_tensor, to_uint8

#: bf16 vs fp32 (on CPU the whole net cast to bf16): measured max abs 0.017-0.022 and mean abs 0.0034-0.0041
#: on random-init nets (4 seeds x widths 0.25 / 1.0, 3-frame recurrent sequences at 61x37), max 0.006-0.019
#: and mean 0.0009-0.0021 on the bundled models (4 frames); bf16 keeps 8 bits of mantissa.
BF16_MAX_ABS, BF16_MEAN_ABS = 0.05, 0.01
#: fp16 autocast (the CUDA default) vs fp32: measured on CPU kernels max abs 0.0025-0.0030 and mean abs
#: ~0.0005 on random-init nets (3 seeds x widths 0.25 / 1.0), max 0.0008-0.0018 on the bundled models
#: (4-frame recurrent sequences at 61x37); the tolerance is ~2.5 / 255 on the output's [0, 1] scale.
FP16_MAX_ABS, FP16_MEAN_ABS = 0.01, 0.002


pytestmark = pytest.mark.usefixtures("one_thread")


def _net(seed: int = 0, width: float = 0.25, recurrent: bool = True) -> TransformerNet:
    torch.manual_seed(seed)
    return TransformerNet(width=width, recurrent=recurrent).eval()


def _frames(n: int, h: int = 21, w: int = 26, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.integers(0, 256, (h, w, 3), dtype=np.uint8) for _ in range(n)]


def _reference(net: TransformerNet, frames: list[np.ndarray]) -> list[torch.Tensor]:
    """The network run directly, frame by frame, with its own state handling."""
    outs, state = [], None
    with torch.no_grad():
        for f in frames:
            out, state = net(to_tensor(f), state)
            outs.append(out)
    return outs


class _ListSink:
    def __init__(self, fail_at: int | None = None):
        self.frames: list[np.ndarray] = []
        self.fail_at = fail_at

    def write(self, frame: np.ndarray) -> None:
        if self.fail_at is not None and len(self.frames) == self.fail_at:
            raise OSError("disk full (test)")
        self.frames.append(frame)


# ----------------------------------------------------------------------------- small helpers

@pytest.mark.parametrize("precision, device, expected", [
    ("auto", "cpu", "fp32"), ("auto", "cuda", "fp16"), ("fp32", "cpu", "fp32"), ("bf16", "cpu", "bf16"),
    ("fp16", "cuda", "fp16"),
])
def test_resolve_precision(precision, device, expected):
    assert resolve_precision(precision, device) == expected


@pytest.mark.parametrize("precision, match", [("fp16", "needs a CUDA device"), ("fp8", "valid: auto, fp32")])
def test_resolve_precision_errors(precision, match):
    with pytest.raises(UserError, match=match):
        resolve_precision(precision, "cpu")


def test_quantize_matches_video_to_uint8():
    x = torch.rand(2, 3, 5, 7) * 1.4 - 0.2  # includes values outside [0, 1]
    x[0, 0, 0, 0] = float("nan")
    x[1, 2, 4, 6] = 0.5 / 255  # a rounding tie: round half to even, like to_uint8
    q = quantize(x)
    assert q.dtype == torch.uint8 and q.shape == (2, 5, 7, 3)
    for b in range(2):
        np.testing.assert_array_equal(q[b].numpy(), to_uint8(x[b]))


def test_frames_to_tensor_matches_video_to_tensor():
    frames = np.stack(_frames(2))
    torch.testing.assert_close(frames_to_tensor(frames, "cpu"), to_tensor(frames), rtol=0, atol=0)
    assert frames_to_tensor(frames[0], "cpu").shape == (1, 3, 21, 26)


@pytest.mark.parametrize("kwargs, match", [
    ({"name": "tensorrt"}, "valid: onnx, torch"),
    ({"threads": 0}, "threads must be a positive"),
    ({"cuda_graphs": True}, "CUDA graphs need a CUDA device"),
    ({"name": "onnx", "precision": "bf16"}, "runs fp32 only"),
    ({"name": "onnx", "compile": True}, "torch-backend options"),
])
def test_make_backend_errors(kwargs, match):
    kwargs = {"name": "torch", **kwargs}
    with pytest.raises(UserError, match=match):
        make_backend(kwargs.pop("name"), _net(), device="cpu", **kwargs)


def test_registry_lists_both_backends():
    assert {"torch", "onnx"} <= set(BACKENDS)


def test_backend_does_not_modify_the_callers_model():
    net = _net()
    before = {k: v.clone() for k, v in net.state_dict().items()}
    make_backend("torch", net, device="cpu", channels_last=True).step(_frames(1)[0])
    for k, v in net.state_dict().items():
        assert v.is_contiguous() and torch.equal(v, before[k]), k


# ----------------------------------------------------------------------------- phase-split convolutions

@pytest.mark.parametrize("c_in, c_out, k, phases, size", [
    (8, 3, 9, 2, (20, 28)), (6, 8, 9, 2, (16, 16)), (4, 3, 5, 3, (9, 12)), (2, 5, 7, 4, (8, 12)),
])
def test_phase_split_conv_equals_the_conv(c_in, c_out, k, phases, size):
    torch.manual_seed(0)
    conv = torch.nn.Conv2d(c_in, c_out, k).double()
    x = torch.randn(2, c_in, size[0] + k - 1, size[1] + k - 1, dtype=torch.float64)
    split = PhaseSplitConv2d(conv, phases)
    assert split.split_weight.shape == (c_out * phases ** 2, c_in, k + phases - 1, k + phases - 1)
    torch.testing.assert_close(split(x), conv(x), rtol=0, atol=1e-12)


def test_phase_split_conv_falls_back_for_odd_sizes():
    conv = torch.nn.Conv2d(3, 3, 5)
    x = torch.randn(1, 3, 11 + 4, 10 + 4)  # 11 output rows: not a multiple of 2
    torch.testing.assert_close(PhaseSplitConv2d(conv)(x), conv(x))


@pytest.mark.parametrize("width, expected", [
    (0.25, ["conv1.conv2d", "deconv3.conv2d"]), (0.5, ["deconv3.conv2d"]), (1.0, ["deconv3.conv2d"]),
])
def test_split_thin_convs_picks_the_thin_9x9_layers(width, expected):
    net = TransformerNet(width=width)
    assert split_thin_convs(net) == expected
    assert all(isinstance(net.get_submodule(name), PhaseSplitConv2d) for name in expected)  # put in place
    assert not any(isinstance(m, PhaseSplitConv2d) for n, m in net.named_modules() if n not in expected)
    with pytest.raises(ValueError, match="stride-1"):
        PhaseSplitConv2d(net.conv2.conv2d)  # stride 2


@pytest.mark.parametrize("split", [True, False])
def test_torch_backend_split_option(split):
    net = _net()
    backend = make_backend("torch", net, device="cpu", split_convs=split)
    assert bool(backend.describe()["split_convs"]) is split
    assert any(isinstance(m, PhaseSplitConv2d) for m in backend.net.modules()) is split
    frames = _frames(2, 24, 28)
    state = None
    for f, r in zip(frames, _reference(net, frames)):
        out, state = backend.step(f, state)
        torch.testing.assert_close(out, r, rtol=0, atol=1e-5)


@pytest.mark.parametrize("c_in, c_out, size", [(5, 7, (6, 9)), (3, 2, (1, 1)), (8, 4, (2, 5))])
def test_subpixel_upsample_conv_equals_upsample_then_conv(c_in, c_out, size):
    """Upsample x2 + reflect pad 1 + 3x3 conv == a 4-phase 3x3 conv on the edge-padded low-res map, shuffled."""
    torch.manual_seed(0)
    layer = UpsampleConvLayer(c_in, c_out, 3).double()
    x = torch.randn(2, c_in, *size, dtype=torch.float64)
    sub = SubpixelUpsampleConv(layer)
    assert sub.weight.shape == (4 * c_out, c_in, 3, 3)
    out = sub(x)
    assert out.shape == (2, c_out, 2 * size[0], 2 * size[1])
    torch.testing.assert_close(out, layer(x), rtol=0, atol=1e-12)


def test_subpixel_upsample_convs_rewrites_the_upsampling_layers_only():
    net = TransformerNet(width=0.25)
    assert subpixel_upsample_convs(net) == ["deconv1", "deconv2"]
    assert isinstance(net.deconv1, SubpixelUpsampleConv) and not isinstance(net.deconv3, SubpixelUpsampleConv)
    with pytest.raises(ValueError, match="ReflectionPad2d"):
        SubpixelUpsampleConv(UpsampleConvLayer(4, 4, 5))  # 5x5: another padding, not folded here


def test_split_thin_convs_cuda_limit_takes_both_9x9_layers():
    """On CUDA the wider limit also splits the full-width net's 6-to-32 first layer."""
    net = TransformerNet(width=1.0)
    assert split_thin_convs(net, max_out_channels=SPLIT_MAX_OUT_CHANNELS_CUDA) == ["conv1.conv2d", "deconv3.conv2d"]


@pytest.mark.parametrize("device, compile, expected", [
    ("cpu", False, ["deconv1", "deconv2"]), ("cpu", "eager", []),
    pytest.param("cuda", "eager", ["deconv1", "deconv2"], marks=pytest.mark.skipif(
        not torch.cuda.is_available(), reason="needs a CUDA GPU")),
])
def test_subpixel_default(device, compile, expected):
    """On by default, except on a CPU with torch.compile (Inductor's CPU code for it is slower)."""
    backend = make_backend("torch", _net(), device=device, compile=compile)
    assert backend.describe()["subpixel"] == expected


@pytest.mark.parametrize("split, subpixel", [(False, True), (True, True)])
def test_torch_backend_subpixel_option(split, subpixel):
    net = _net()
    backend = make_backend("torch", net, device="cpu", split_convs=split, subpixel=subpixel)
    assert backend.describe()["subpixel"] == ["deconv1", "deconv2"]
    frames = _frames(2, 24, 28)
    state = None
    for f, r in zip(frames, _reference(net, frames)):
        out, state = backend.step(f, state)
        torch.testing.assert_close(out, r, rtol=0, atol=1e-5)


# ----------------------------------------------------------------------------- instance norm as group norm

@pytest.mark.parametrize("channels, dtype, channels_last", [
    (8, torch.float64, False), (8, torch.float64, True), (32, torch.float64, True),
    (8, torch.bfloat16, True), (32, torch.bfloat16, True),  # 8: the bf16 instance_norm path
])
def test_group_instance_norm_equals_instance_norm(channels, dtype, channels_last):
    torch.manual_seed(0)
    norm = torch.nn.InstanceNorm2d(channels, affine=True).to(dtype)
    with torch.no_grad():
        norm.weight.uniform_(0.5, 2.0)
        norm.bias.uniform_(-1.0, 1.0)
    x = 3 * torch.randn(2, channels, 13, 17, dtype=torch.float64).to(dtype) + 1
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    tol = {"rtol": 0, "atol": 1e-10} if dtype == torch.float64 else {"rtol": 0, "atol": 0.05}
    torch.testing.assert_close(GroupInstanceNorm2d(norm)(x), norm(x), **tol)


def test_group_instance_norms_rewrites_every_norm_and_shares_parameters():
    net = TransformerNet(width=0.25)
    n_norms = sum(isinstance(m, torch.nn.InstanceNorm2d) for m in net.modules())
    weight = net.in1.weight
    replaced = group_instance_norms(net)
    assert len(replaced) == n_norms == 15 and "in1" in replaced and "res1.in1" in replaced
    assert not any(isinstance(m, torch.nn.InstanceNorm2d) for m in net.modules())
    assert net.in1.weight is weight
    with pytest.raises(ValueError, match="affine"):
        GroupInstanceNorm2d(torch.nn.InstanceNorm2d(4))


@pytest.mark.parametrize("group_norms", [True, False])
def test_torch_backend_group_norm_option(group_norms):
    net = _net()
    backend = make_backend("torch", net, device="cpu", group_norms=group_norms)
    assert (backend.describe()["group_norms"] == 15) is group_norms
    assert any(isinstance(m, torch.nn.InstanceNorm2d) for m in net.modules())  # the caller's net untouched
    frames = _frames(2, 24, 28)
    state = None
    for f, r in zip(frames, _reference(net, frames)):
        out, state = backend.step(f, state)
        torch.testing.assert_close(out, r, rtol=0, atol=1e-5)


# ----------------------------------------------------------------------------- torch backend

@pytest.mark.parametrize("recurrent", [True, False])
@pytest.mark.parametrize("channels_last", [True, False])
def test_torch_fp32_matches_the_network(recurrent, channels_last):
    net = _net(recurrent=recurrent)
    frames = _frames(3)
    ref = _reference(net, frames)
    backend = make_backend("torch", net, device="cpu", precision="fp32", channels_last=channels_last)
    assert backend.recurrent is recurrent
    state = None
    for f, r in zip(frames, ref):
        out, state = backend.step(f, state)
        torch.testing.assert_close(out, r, rtol=0, atol=1e-5)
        assert (state is None) is (not recurrent)
    got = list(backend.run(frames))
    assert [g.shape for g in got] == [(21, 26, 3)] * 3 and all(g.dtype == np.uint8 for g in got)
    for g, r in zip(got, ref):
        assert np.abs(g.astype(int) - to_uint8(r).astype(int)).max() <= 1


def test_recurrent_state_changes_the_output():
    """The recurrent net really uses its state: the same frame after a different history differs."""
    net = _net()
    backend = make_backend("torch", net, device="cpu")
    a, b = _frames(2)
    fresh, _ = backend.step(b, None)
    after_a, _ = backend.step(b, backend.step(a, None)[1])
    assert (fresh - after_a).abs().max() > 1e-3


def _diffs_over_clip(reference, candidate, frames, dtype) -> list[torch.Tensor]:
    """Run both backends over ``frames`` as one clip (each feeding back its own state); the per-frame
    absolute differences, after checking that ``candidate`` really computes in ``dtype``."""
    diffs, s_ref, s_cand = [], None, None
    for f in frames:
        a, s_ref = reference.step(f, s_ref)
        b, s_cand = candidate.step(f, s_cand)
        assert b.dtype == dtype
        diffs.append((a.float().cpu() - b.float().cpu()).abs())
    return diffs


@pytest.mark.parametrize("native, warned", [(True, False), (False, True), (None, False)])
def test_bf16_on_a_cpu_without_native_bf16_warns(monkeypatch, caplog, native, warned):
    import stablestyle.inference.precision as inference_precision

    monkeypatch.setattr(inference_precision, "cpu_has_native_bf16", lambda: native)
    with caplog.at_level("WARNING", logger="stablestyle.inference.torch_backend"):
        make_backend("torch", _net(), device="cpu", precision="bf16")
        make_backend("torch", _net(), device="cpu", precision="fp32")
    assert ("no native bf16" in caplog.text) is warned and len(caplog.records) == int(warned)


@pytest.mark.parametrize("model", ["random-w0.25", "random-w1.0", *available()])
def test_bf16_close_to_fp32(model):
    """CPU bf16 runs the whole net in bf16 (no autocast, which converted around every instance norm) and
    stays within the stated tolerance of fp32 over a recurrent sequence; the caller's net is left in fp32."""
    if model.startswith("random"):
        net, frames = _net(width=float(model.split("-w")[1])), _frames(3, 37, 61)
    else:
        net, frames = load_checkpoint(model)[0].float().eval(), _frames(4, 37, 61, seed=2)
    f32 = make_backend("torch", net, device="cpu", precision="fp32")
    b16 = make_backend("torch", net, device="cpu", precision="bf16")
    assert b16.describe()["weights_dtype"] == "bfloat16" and f32.describe()["weights_dtype"] == "float32"
    assert next(net.parameters()).dtype == torch.float32
    for diff in _diffs_over_clip(f32, b16, frames, torch.bfloat16):
        assert diff.max() <= BF16_MAX_ABS and diff.mean() <= BF16_MEAN_ABS


needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
FP16_DEVICES = ["cpu", pytest.param("cuda", marks=needs_cuda)]


def _torch_backend(net, device: str, precision: str):
    """The torch backend at ``precision``; built directly because :func:`make_backend` refuses fp16 on CPU
    (slow kernels), while the numerics -- fp16 autocast over the same network -- are what is checked here."""
    return TorchBackend(net, device=torch.device(device), precision=precision, threads=None, channels_last=True,
                        compile=False, cuda_graphs=False, split_convs=True, group_norms=device == "cpu",
                        subpixel=True)


@pytest.mark.parametrize("device", FP16_DEVICES)
@pytest.mark.parametrize("model", ["random-w0.25", "random-w1.0", *available()])
def test_fp16_close_to_fp32(device, model):
    """fp16 autocast (the CUDA default precision) stays within the stated tolerance of fp32 over a recurrent
    sequence, for random-init nets and every bundled model."""
    if model.startswith("random"):
        net = _net(seed=1, width=float(model.split("-w")[1]))
    else:
        net = load_checkpoint(model)[0].float().eval()
    f32, f16 = _torch_backend(net, device, "fp32"), _torch_backend(net, device, "fp16")
    for diff in _diffs_over_clip(f32, f16, _frames(4, 37, 61, seed=2), torch.float16):
        assert diff.max() <= FP16_MAX_ABS and diff.mean() <= FP16_MEAN_ABS, (diff.max().item(), diff.mean().item())


# ----------------------------------------------------------------------------- CUDA paths (run where a GPU is)

@needs_cuda
@pytest.mark.parametrize("precision", ["fp32", "fp16", "bf16"])
def test_cuda_close_to_cpu_fp32(precision):
    """The CUDA kernels (cuDNN, channels-last; fp32 convs may use TF32) against CPU fp32 over a sequence."""
    net = _net(seed=1, width=0.5)
    cpu = make_backend("torch", net, device="cpu", precision="fp32")
    gpu = make_backend("torch", net, device="cuda", precision=precision)
    dtype = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}[precision]
    max_abs, mean_abs = (BF16_MAX_ABS, BF16_MEAN_ABS) if precision == "bf16" else (FP16_MAX_ABS, FP16_MEAN_ABS)
    for diff in _diffs_over_clip(cpu, gpu, _frames(4, 37, 61, seed=2), dtype):
        assert diff.max() <= max_abs and diff.mean() <= mean_abs, (diff.max().item(), diff.mean().item())


@needs_cuda
def test_cuda_graphs_match_eager():
    """Replaying captured graphs (one per frame size, inputs copied into static buffers) gives eager's output."""
    net = _net(seed=1, width=0.5)
    eager = make_backend("torch", net, device="cuda")
    graphs = make_backend("torch", net, device="cuda", cuda_graphs=True)
    for clip in (_frames(4, 37, 61), _frames(3, 48, 64, seed=1), _frames(2, 37, 61, seed=3)):
        for diff in _diffs_over_clip(eager, graphs, clip, torch.float16):
            assert diff.max() <= 2e-3, diff.max().item()
    assert sorted(graphs._graphs.shapes) == [(1, 3, 37, 61), (1, 3, 48, 64)]  # the third clip reused the first capture


@needs_cuda
@pytest.mark.parametrize("cuda_graphs", [False, True])
def test_cuda_streaming_run_matches_the_generic_loop(cuda_graphs):
    """``run`` on CUDA (pinned buffers, async copies, one frame in flight) hands out what step + quantize give,
    in order, across a change of frame size."""
    from stablestyle.inference import Backend

    net = _net(seed=1, width=0.5)
    backend = make_backend("torch", net, device="cuda", cuda_graphs=cuda_graphs)
    frames = _frames(5, 37, 61) + _frames(3, 48, 64, seed=1)
    streamed = list(backend.run(iter(frames)))
    generic = list(Backend.run(backend, iter(frames)))
    assert [f.shape for f in streamed] == [f.shape for f in frames]
    for a, b in zip(streamed, generic):
        assert a.dtype == np.uint8 and np.abs(a.astype(int) - b.astype(int)).max() <= 1


@needs_cuda
def test_cuda_stylize_streams_equals_running_each_clip_alone():
    backend = make_backend("torch", _net(seed=1, width=0.5), device="cuda")
    clips = [_frames(3, 37, 61, seed=1), _frames(2, 37, 61, seed=2), _frames(3, 48, 64, seed=3)]
    got: dict[int, list[np.ndarray]] = {}
    for i, frame in stylize_streams(clips, backend, max_batch=8):
        got.setdefault(i, []).append(frame)
    for i, clip in enumerate(clips):
        alone = list(backend.run(clip))
        assert len(alone) == len(got[i])
        for a, b in zip(alone, got[i]):
            assert np.abs(a.astype(int) - b.astype(int)).max() <= 2  # fp16, batched kernels may round differently


@needs_cuda
@pytest.mark.parametrize("compile", [False, "default"])
def test_cuda_rewrites_close_to_plain(compile):
    """The GPU rewrites (both 9x9 layers phase-split, upsampling convs at low resolution) in fp16 against the
    plain network in fp16, eager and compiled, at a size that is not a multiple of 4."""
    net = _net(seed=1, width=1.0)
    plain = make_backend("torch", net, device="cuda")
    rewritten = make_backend("torch", net, device="cuda", split_convs=True, subpixel=True, compile=compile)
    assert rewritten.describe()["split_convs"] == ["conv1.conv2d", "deconv3.conv2d"]
    for diff in _diffs_over_clip(plain, rewritten, _frames(3, 37, 61), torch.float16):
        assert diff.max() <= FP16_MAX_ABS and diff.mean() <= FP16_MEAN_ABS, (diff.max().item(), diff.mean().item())


@needs_cuda
def test_cuda_compile_mode_with_graphs_keeps_each_output():
    """torch.compile's CUDA-graph modes (reduce-overhead; max-autotune takes the same path, minutes to tune)
    reuse one output buffer; every frame handed out and every state fed back must still be that frame's
    (the streaming run hands frame t out after frame t+1 is launched)."""
    net = _net(seed=1, width=0.25)
    eager = make_backend("torch", net, device="cuda")
    compiled = make_backend("torch", net, device="cuda", compile="reduce-overhead")
    frames = _frames(4, 37, 61)
    for a, b in zip(eager.run(frames), compiled.run(frames)):
        assert np.abs(a.astype(int) - b.astype(int)).max() <= 2


@needs_cuda
def test_cuda_compiled_close_to_eager():
    net = _net(seed=1, width=0.5)
    eager = make_backend("torch", net, device="cuda")
    compiled = make_backend("torch", net, device="cuda", compile="default")
    for diff in _diffs_over_clip(eager, compiled, _frames(3, 37, 61), torch.float16):
        assert diff.max() <= FP16_MAX_ABS, diff.max().item()


def test_run_restarts_state_when_the_size_changes():
    net = _net()
    small, large = _frames(2, 21, 26), _frames(2, 24, 30, seed=1)
    backend = make_backend("torch", net, device="cpu")
    joined = list(backend.run(small + large))
    apart = list(backend.run(small)) + list(backend.run(large))
    for a, b in zip(joined, apart):
        np.testing.assert_array_equal(a, b)


def test_threads_setting_is_applied():
    before = torch.get_num_threads()
    try:
        backend = make_backend("torch", _net(), device="cpu", threads=1)
        assert torch.get_num_threads() == 1 and backend.describe()["threads"] == 1
    finally:
        torch.set_num_threads(before)


def test_torch_compile_path_runs():
    """``compile=`` wraps the net in torch.compile; the 'eager' compiler checks graph capture without a C compiler."""
    net = _net()
    frames = _frames(2)
    backend = make_backend("torch", net, device="cpu", compile="eager")
    for g, r in zip(backend.run(frames), _reference(net, frames)):
        assert np.abs(g.astype(int) - to_uint8(r).astype(int)).max() <= 1


def test_torch_compile_inductor_runs_the_rewrites():
    """Inductor (the default compiler) on the rewritten net: the sub-pixel layers once broke its index
    simplification (replicate padding between pixel shuffles); the output matches the plain network."""
    net = _net()
    frames = _frames(2, 24, 28)
    backend = make_backend("torch", net, device="cpu", compile="default", split_convs=True, subpixel=True)
    state = None
    for f, r in zip(frames, _reference(net, frames)):
        out, state = backend.step(f, state)
        torch.testing.assert_close(out, r, rtol=0, atol=1e-4)


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_torch_compile_does_not_recompile_between_float_and_uint8_frames(precision):
    """One compiled graph serves the first frame (no state), later frames, float tensors and uint8 frames
    (whose size-1 batch dimension has stride 0 from numpy): each recompile costs minutes with max-autotune."""
    torch._dynamo.reset()
    backend = make_backend("torch", _net(), device="cpu", precision=precision, compile="eager")
    x = torch.rand(1, 3, 21, 26)
    with torch._dynamo.config.patch(error_on_recompile=True):
        state = None
        for _ in range(2):
            _, state = backend.step(x, state)
        outs = list(backend.run(_frames(3)))
        _, state = backend.step(torch.rand(1, 21, 26, 3).permute(0, 3, 1, 2), None)  # channels-last, a new clip
    assert len(outs) == 3


# ----------------------------------------------------------------------------- batching independent streams

@pytest.mark.parametrize("name", ["torch", "onnx"])
def test_stylize_streams_equals_running_each_clip_alone(name):
    net = _net()
    backend = make_backend(name, net, device="cpu")
    clips = [_frames(3, seed=1), _frames(1, seed=2), _frames(4, seed=3), _frames(2, 16, 20, seed=4)]
    got: dict[int, list[np.ndarray]] = {}
    for i, frame in stylize_streams(clips, backend, max_batch=2):
        got.setdefault(i, []).append(frame)
    assert [len(got[i]) for i in range(4)] == [3, 1, 4, 2]
    for i, clip in enumerate(clips):
        alone = list(backend.run(clip))
        for a, b in zip(alone, got[i]):
            assert np.abs(a.astype(int) - b.astype(int)).max() <= 1  # batched kernels may round differently


def test_stylize_streams_batches_same_size_frames():
    calls = []

    class Spy:
        recurrent, device = True, torch.device("cpu")

        def step(self, frame, state=None):
            calls.append(tuple(frame.shape))
            assert state is not None and state.shape == frame.shape  # explicit prev for every row
            return frame, frame

    clips = [_frames(2, seed=s) for s in range(3)] + [_frames(2, 16, 20)]
    list(stylize_streams(clips, Spy(), max_batch=8))
    assert sorted(calls) == sorted([(3, 3, 21, 26), (1, 3, 16, 20)] * 2)


def test_stylize_many_writes_every_file(tmp_path, bbb_clip, bikes_clip):
    backend = make_backend("torch", _net(), device="cpu")
    outs = [tmp_path / "a.mp4", tmp_path / "b.mp4"]
    counts = stylize_many([bbb_clip, bikes_clip], outs, backend, max_size=64)
    assert counts == [8, 8]
    for out, size in zip(outs, [(64, 36), (64, 27)]):
        with open_source(out) as src:
            assert src.size[0] == size[0] and abs(src.size[1] - size[1]) <= 1 and len(list(src)) == 8


def test_stylize_many_checks_outputs_first(tmp_path, bbb_clip):
    (tmp_path / "a.mp4").write_bytes(b"keep")
    backend = make_backend("torch", _net(), device="cpu")
    with pytest.raises(UserError, match="already exists"):
        stylize_many([bbb_clip, bbb_clip], [tmp_path / "b.mp4", tmp_path / "a.mp4"], backend)
    assert not (tmp_path / "b.mp4").exists() and (tmp_path / "a.mp4").read_bytes() == b"keep"
    with pytest.raises(UserError, match="one output per input"):
        stylize_many([bbb_clip], [], backend)


# ----------------------------------------------------------------------------- pipelined runner

def test_run_pipelined_matches_sequential():
    backend = make_backend("torch", _net(), device="cpu")
    frames = _frames(7)
    sink = _ListSink()
    stats = run_pipelined(iter(frames), sink, backend, queue_size=2)
    assert stats.frames == 7 and stats.fps > 0
    for a, b in zip(sink.frames, backend.run(frames)):
        np.testing.assert_array_equal(a, b)


def test_run_pipelined_times_the_first_frame():
    """first_frame_s covers a slow first frame (compiling); fps_after_first is the rate after it."""
    class SlowStart:
        def run(self, frames):
            for i, f in enumerate(frames):
                time.sleep(0.3 if i == 0 else 0.01)
                yield f

    stats = run_pipelined(iter(_frames(6)), _ListSink(), SlowStart())
    assert stats.frames == 6 and 0.3 <= stats.first_frame_s < stats.seconds
    assert stats.fps_after_first == pytest.approx(5 / (stats.seconds - stats.first_frame_s))
    assert stats.fps_after_first > 2 * stats.fps  # the slow start weighs on the overall rate only
    empty = run_pipelined(iter([]), _ListSink(), SlowStart())
    assert empty.frames == 0 and empty.first_frame_s is None and empty.fps_after_first is None


def test_run_pipelined_times_each_stage_and_restores_the_switch_interval():
    class SlowSink(_ListSink):
        def write(self, frame):
            time.sleep(0.02)
            super().write(frame)

    before = sys.getswitchinterval()
    stats = run_pipelined(iter(_frames(5)), SlowSink(), PassThroughBackend(), switch_interval=0.0005)
    assert sys.getswitchinterval() == before
    assert stats.frames == 5 and 5 * 0.02 <= stats.encode_s < stats.seconds and 0 <= stats.decode_s < stats.seconds
    with pytest.raises(ValueError, match="switch_interval"):
        run_pipelined(iter(_frames(1)), _ListSink(), PassThroughBackend(), switch_interval=0)


class PassThroughBackend:
    def run(self, frames):
        yield from frames


def _failing_source(frames, at):
    for i, f in enumerate(frames):
        if i == at:
            raise ValueError("decoder broke (test)")
        yield f


@pytest.mark.parametrize("where", ["decode", "encode"])
def test_run_pipelined_reraises_stage_errors(where):
    backend = make_backend("torch", _net(), device="cpu")
    frames = _frames(6)
    if where == "decode":
        source, sink, error = _failing_source(frames, 3), _ListSink(), ValueError
    else:
        source, sink, error = iter(frames), _ListSink(fail_at=2), OSError
    with pytest.raises(error, match="test"):
        run_pipelined(source, sink, backend, queue_size=1)


def test_run_pipelined_file_to_file(tmp_path, bikes_clip):
    backend = make_backend("torch", _net(), device="cpu")
    out = tmp_path / "out.mp4"
    with open_source(bikes_clip, max_size=64) as src, open_sink(out, src.fps) as sink:
        stats = run_pipelined(src, sink, backend)
    assert stats.frames == 8
    with open_source(out) as res:
        assert len(list(res)) == 8


# ----------------------------------------------------------------------------- FLOP counter

def test_conv_flops_by_hand():
    """Johnson's net at 640x360: conv1 is 6->32 channels, 9x9, stride 1, on a 640x360 output."""
    flops = conv_flops(TransformerNet(width=1.0), 360, 640)
    assert flops["conv1.conv2d"] == 2 * 32 * 360 * 640 * 6 * 9 * 9 == 7_166_361_600
    # conv2: 32->64, 3x3, stride 2 -> 320x180 output
    assert flops["conv2.conv2d"] == 2 * 64 * 180 * 320 * 32 * 3 * 3
    convs = [k for k in flops if k != "total"]
    assert len(convs) == 16 and flops["total"] == sum(flops[k] for k in convs)


@pytest.mark.parametrize("recurrent, in_channels", [(True, 6), (False, 3)])
def test_conv_flops_counts_the_padded_frame_and_batch(recurrent, in_channels):
    # 37x61 is padded to 40x64 inside the net (multiple of 4), and that is what the convs compute on
    net = TransformerNet(width=0.25, recurrent=recurrent)
    one = conv_flops(net, 37, 61)
    assert one["conv1.conv2d"] == 2 * 8 * 40 * 64 * in_channels * 81
    assert conv_flops(net, 37, 61, batch=3)["total"] == 3 * one["total"]
