"""Checkpoints: round trip, atomic writes, and every way a file can be wrong."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from stablestyle import __version__
from stablestyle.checkpoint import file_sha256, load_checkpoint, read_checkpoint, save_checkpoint
from stablestyle.errors import UserError
from stablestyle.models import TransformerNet


@pytest.fixture
def net() -> TransformerNet:
    torch.manual_seed(0)
    return TransformerNet(width=0.25, recurrent=True)


def test_round_trip_keeps_weights_and_metadata(tmp_path, net):
    path = tmp_path / "m.pt"
    save_checkpoint(path, net, config={"mode": "stable"}, step=7, style_sha256="ab" * 32, metrics={"x": 1.5})
    model, meta = load_checkpoint(path)
    assert model.config() == net.config()
    for (k, a), (_, b) in zip(net.state_dict().items(), model.state_dict().items()):
        assert torch.equal(a, b), k
    assert meta["step"] == 7 and meta["config"] == {"mode": "stable"} and meta["version"] == __version__
    assert meta["style_sha256"] == "ab" * 32 and meta["metrics"] == {"x": 1.5}
    assert "state_dict" not in meta and not model.training


def test_half_checkpoint_is_smaller_and_loads_as_float32(tmp_path, net):
    full, half = tmp_path / "full.pt", tmp_path / "half.pt"
    save_checkpoint(full, net)
    save_checkpoint(half, net, half=True)
    assert half.stat().st_size < 0.6 * full.stat().st_size
    model, _ = load_checkpoint(half)
    w = next(model.parameters())
    assert w.dtype == torch.float32
    ref = next(net.parameters())
    assert torch.allclose(w, ref, atol=1e-3, rtol=1e-3)


def test_write_is_atomic_no_temp_left(tmp_path, net):
    save_checkpoint(tmp_path / "m.pt", net)
    assert [p.name for p in tmp_path.iterdir()] == ["m.pt"]


def test_the_same_checkpoint_saved_twice_has_the_same_bytes(tmp_path, net):
    """Re-bundling an unchanged model must not change its weights hash: the archive's inner folder is not the
    temporary file's random name."""
    save_checkpoint(tmp_path / "a.pt", net, step=3, metrics={"x": 1.0}, half=True)
    save_checkpoint(tmp_path / "b.pt", net, step=3, metrics={"x": 1.0}, half=True)
    assert (tmp_path / "a.pt").read_bytes() == (tmp_path / "b.pt").read_bytes()


def test_failed_write_leaves_nothing(tmp_path, net, monkeypatch):
    def boom(*a, **k):
        raise RuntimeError("disk full")

    monkeypatch.setattr(torch, "save", boom)
    with pytest.raises(RuntimeError):
        save_checkpoint(tmp_path / "m.pt", net)
    assert list(tmp_path.iterdir()) == []


def test_missing_folder_is_user_error(tmp_path, net):
    with pytest.raises(UserError, match="does not exist"):
        save_checkpoint(tmp_path / "nope" / "m.pt", net)


@pytest.mark.parametrize(
    "content, match",
    [
        (None, "does not exist"),
        (b"not a checkpoint at all", "not a stablestyle checkpoint"),
        ({"weights": 1}, "not a stablestyle checkpoint"),
        ({"format": "stablestyle-checkpoint", "format_version": 99}, "newer"),
        ({"format": "stablestyle-checkpoint", "format_version": 1, "model": {}}, "missing"),
    ],
)
def test_bad_files_are_user_errors(tmp_path, content, match):
    path = tmp_path / "bad.pt"
    if isinstance(content, bytes):
        path.write_bytes(content)
    elif content is not None:
        torch.save(content, path)
    with pytest.raises(UserError, match=match):
        read_checkpoint(path)


def test_weights_that_do_not_fit_the_net(tmp_path, net):
    path = tmp_path / "m.pt"
    save_checkpoint(path, net)
    payload = torch.load(path, weights_only=False)
    payload["model"]["width"] = 0.5  # claims a wider net than the weights are
    torch.save(payload, path)
    with pytest.raises(UserError, match="do not match"):
        load_checkpoint(path)


def test_file_sha256_known_value(tmp_path):
    p = tmp_path / "x"
    p.write_bytes(b"abc")
    assert file_sha256(p) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"


def _png_bytes() -> bytes:
    import io

    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (20, 20), (200, 10, 10)).save(buf, format="PNG")
    return buf.getvalue()


@pytest.mark.parametrize("content", [
    pytest.param(_png_bytes(), id="png-renamed"),  # torch.load's message for this spans two lines
    pytest.param(bytes(range(256)) * 8, id="random-bytes"),
    pytest.param(b"PK\x03\x04" + bytes(100), id="broken-zip"),
])
def test_foreign_file_is_one_line_error(tmp_path, content):
    path = tmp_path / "img.pt"
    path.write_bytes(content)
    with pytest.raises(UserError, match=r"img\.pt is not a stablestyle checkpoint \(\w+") as info:
        load_checkpoint(path)
    assert "\n" not in str(info.value)


def test_run_folder_means_its_final_checkpoint(tmp_path, net, caplog):
    run = tmp_path / "run"
    run.mkdir()
    save_checkpoint(run / "final.pt", net, step=7)
    with caplog.at_level("INFO", logger="stablestyle.checkpoint"):
        _, meta = load_checkpoint(run)
    assert meta["step"] == 7 and meta["path"] == str(run / "final.pt")
    assert "final.pt" in caplog.text


@pytest.mark.parametrize("final", [True, False])
def test_a_bundled_name_wins_over_a_local_folder_of_that_name(tmp_path, monkeypatch, net, caplog, final):
    """`--model scream` (also the default) after `train --out scream`: the bundled model, with a warning
    that names the way to the local one (./scream)."""
    monkeypatch.chdir(tmp_path)
    local = tmp_path / "scream"
    local.mkdir()
    if final:
        save_checkpoint(local / "final.pt", net, step=7)
    with caplog.at_level("WARNING", logger="stablestyle.checkpoint"):
        _, meta = load_checkpoint("scream")
    assert Path(meta["path"]).parent.name == "bundled" and "give ./scream for that" in caplog.text
    if final:
        _, meta = load_checkpoint("./scream")
        assert meta["step"] == 7


@pytest.mark.parametrize("files, match", [
    ([], r"run is a folder without final\.pt; give a checkpoint file \(e\.g\. .*run/final\.pt\)"),
    (["last.pt"], r"without final\.pt \(it holds last\.pt\); give a checkpoint file \(e\.g\. .*run/last\.pt\)"),
])
def test_run_folder_without_final_checkpoint(tmp_path, net, files, match):
    run = tmp_path / "run"
    run.mkdir()
    for name in files:
        save_checkpoint(run / name, net)
    with pytest.raises(UserError, match=match):
        load_checkpoint(run)
    with pytest.raises(UserError, match="is a folder; give a checkpoint file"):
        read_checkpoint(run)


def test_edge_margin_round_trip_and_older_files_without_it(tmp_path):
    path = tmp_path / "m.pt"
    save_checkpoint(path, TransformerNet(width=0.25, recurrent=False, edge_margin=24))
    assert load_checkpoint(path)[0].edge_margin == 24
    payload = torch.load(path, weights_only=False)
    del payload["model"]["edge_margin"]  # as written before the setting existed
    torch.save(payload, path)
    assert load_checkpoint(path)[0].edge_margin == 0


@pytest.mark.parametrize("margin", [-1, 2.5, True, 10_000, "8"])
def test_edited_edge_margin_is_a_user_error(tmp_path, net, margin):
    path = tmp_path / "m.pt"
    save_checkpoint(path, net)
    payload = torch.load(path, weights_only=False)
    payload["model"]["edge_margin"] = margin
    torch.save(payload, path)
    with pytest.raises(UserError, match="edge_margin"):
        load_checkpoint(path)


@pytest.mark.parametrize("config, text", [({"width": 0.5, "recurrent": True}, "recurrent net, width 0.5"),
                                          ({"width": 1.0, "recurrent": False, "edge_margin": 32},
                                           "per-frame net, width 1, edge margin 32 px"),
                                          ({"width": 0.25, "recurrent": False}, "per-frame net, width 0.25"),
                                          ({}, "recurrent net, width 1")])
def test_describe_net_says_the_config_in_words(config, text):
    from stablestyle.checkpoint import describe_net

    assert describe_net(config) == text
