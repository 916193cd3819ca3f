"""VGG16Features / load_vgg16: layout, shapes, weight resolution and bad files."""

from __future__ import annotations

import pytest
import torch

from stablestyle.errors import UserError
from stablestyle.models import LAYER_INDEX, VGG16Features, load_vgg16
from stablestyle.models import vgg as vgg_module


@pytest.fixture(scope="module")
def shared_state(assets) -> dict[str, torch.Tensor]:
    return torch.load(assets / "vgg16_features.pth", map_location="cpu", weights_only=True)


@pytest.fixture(scope="module")
def vgg() -> VGG16Features:
    return load_vgg16()


def test_layer_index_matches_torchvision():
    assert LAYER_INDEX["relu1_2"] == 3
    assert LAYER_INDEX["relu2_2"] == 8
    assert LAYER_INDEX["relu3_3"] == 15
    assert LAYER_INDEX["relu4_3"] == 22
    assert LAYER_INDEX["relu5_3"] == 29


def test_state_dict_keys_match_shared_file(shared_state):
    model = VGG16Features()
    assert set(model.features.state_dict()) == {k.removeprefix("features.") for k in shared_state}
    assert set(model.state_dict()) == set(shared_state) | {"mean", "std"}


def test_loads_shared_weights(vgg, shared_state):
    for key, value in shared_state.items():
        assert torch.equal(vgg.state_dict()[key], value)


def test_output_shapes_and_frozen(vgg):
    feats = vgg(torch.rand(1, 3, 64, 64))
    assert list(feats) == ["relu1_2", "relu2_2", "relu3_3", "relu4_3"]
    assert {k: tuple(v.shape) for k, v in feats.items()} == {
        "relu1_2": (1, 64, 64, 64), "relu2_2": (1, 128, 32, 32),
        "relu3_3": (1, 256, 16, 16), "relu4_3": (1, 512, 8, 8)}
    assert not any(p.requires_grad for p in vgg.parameters())
    vgg.train()
    assert not vgg.training


def test_gradient_flows_to_input(vgg):
    x = torch.rand(1, 3, 16, 16, requires_grad=True)
    vgg(x)["relu2_2"].sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0


def test_caller_tensor_unchanged(vgg):
    x = torch.rand(2, 3, 32, 32)
    before = x.clone()
    vgg(x)
    assert torch.equal(x, before)


def test_normalisation_inside(vgg):
    """relu1_1 of x equals a hand-made conv on the ImageNet-normalised input."""
    model = VGG16Features(("relu1_1",))
    model.load_state_dict(vgg.state_dict(), strict=False)
    x = torch.rand(1, 3, 8, 8)
    mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    conv = vgg.features[0]
    expected = torch.relu(torch.nn.functional.conv2d((x - mean) / std, conv.weight, conv.bias, padding=1))
    torch.testing.assert_close(model(x)["relu1_1"], expected)


@pytest.mark.parametrize("layers,depth", [(("relu2_2",), 9), (("relu1_1", "relu3_3"), 16),
                                          (("relu4_3", "relu1_2"), 23)])
def test_stops_at_deepest_tap(layers, depth):
    model = VGG16Features(layers)
    assert len(model.features) == depth
    assert list(model(torch.rand(1, 3, 16, 16))) == list(layers)


def test_until_stops_early_with_the_same_activations():
    torch.manual_seed(0)
    model = VGG16Features(("relu1_2", "relu3_3", "relu4_3"))
    x = torch.rand(2, 3, 32, 32)
    full, early = model(x), model(x, until="relu3_3")
    assert list(early) == ["relu1_2", "relu3_3"]
    for name in early:
        torch.testing.assert_close(early[name], full[name])
    with pytest.raises(ValueError, match="relu2_2"):
        model(x, until="relu2_2")  # not a tap of this network


def test_unknown_layer():
    with pytest.raises(ValueError, match="relu1_1"):
        VGG16Features(("relu9_9",))


def test_full_vgg16_state_dict_loads(tmp_path, shared_state):
    """torchvision's full vgg16 file has features.24-28 and classifier.*; only the needed keys are taken."""
    full = dict(shared_state)
    for index, cin in ((24, 512), (26, 512), (28, 512)):
        full[f"features.{index}.weight"] = torch.zeros(512, cin, 3, 3)
        full[f"features.{index}.bias"] = torch.zeros(512)
    full["classifier.0.weight"] = torch.zeros(8, 4)
    full["classifier.0.bias"] = torch.zeros(8)
    path = tmp_path / "vgg16-full.pth"
    torch.save(full, path)
    model = load_vgg16(path)
    assert torch.equal(model.features[21].weight, shared_state["features.21.weight"])
    deep = load_vgg16(path, layers=("relu5_3",))
    assert len(deep.features) == 30


def _broken_files(tmp_path, shared_state):
    missing = {k: v for k, v in shared_state.items() if not k.startswith("features.21")}
    wrong_shape = dict(shared_state, **{"features.0.weight": torch.zeros(64, 4, 3, 3)})
    cases = {"missing.pth": missing, "shape.pth": wrong_shape, "list.pth": [1, 2, 3]}
    for name, obj in cases.items():
        torch.save(obj, tmp_path / name)
    (tmp_path / "garbage.pth").write_bytes(b"not a checkpoint")
    return [tmp_path / name for name in (*cases, "garbage.pth")]


def test_wrong_files_are_user_errors(tmp_path, shared_state):
    for path in _broken_files(tmp_path, shared_state):
        with pytest.raises(UserError, match=path.name):
            load_vgg16(path)


def test_missing_explicit_file(tmp_path):
    with pytest.raises(UserError, match="does not exist"):
        load_vgg16(tmp_path / "nope.pth")


@pytest.mark.parametrize("content, message", [
    (bytes(range(256)) * 4, "not a VGG-16 weights file readable by torch.load (UnpicklingError: "),
    (b"hello\n", "not a VGG-16 weights file readable by torch.load (KeyError: "),
    (b"", "is empty, not a VGG-16 weights file"),
])
def test_garbage_weights_file_is_one_line_without_torch_advice(tmp_path, content, message):
    path = tmp_path / "fake.pt"
    path.write_bytes(content)
    with pytest.raises(UserError) as info:
        load_vgg16(path)
    text = str(info.value)
    assert message in text and "\n" not in text and "()" not in text, text
    assert "weights_only" not in text and "vgg16_features.pth" in text and "STABLESTYLE_VGG16" in text


@pytest.mark.parametrize("via_env", [False, True])
def test_folder_as_weights_file_says_folder(tmp_path, monkeypatch, via_env):
    if via_env:
        monkeypatch.setenv("STABLESTYLE_VGG16", str(tmp_path))
    with pytest.raises(UserError, match="is a folder, not a weights file"):
        load_vgg16(None if via_env else tmp_path)


def test_explicit_path_beats_env(tmp_path, monkeypatch, shared_state):
    scaled = {k: v * 2 for k, v in shared_state.items()}
    path = tmp_path / "scaled.pth"
    torch.save(scaled, path)
    monkeypatch.setenv("STABLESTYLE_VGG16", str(tmp_path / "does-not-exist.pth"))
    model = load_vgg16(path)
    assert torch.equal(model.features[0].weight, scaled["features.0.weight"])
    with pytest.raises(UserError, match="STABLESTYLE_VGG16"):
        load_vgg16()


def _no_env(monkeypatch, tmp_path):
    monkeypatch.delenv("STABLESTYLE_VGG16", raising=False)
    monkeypatch.delenv("STABLESTYLE_ASSETS", raising=False)
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch_home"))


def test_hub_cache_is_used(tmp_path, monkeypatch, shared_state):
    _no_env(monkeypatch, tmp_path)
    target = tmp_path / "torch_home" / "hub" / "checkpoints" / "vgg16-397923af.pth"
    target.parent.mkdir(parents=True)
    torch.save(shared_state, target)

    def no_download(*args, **kwargs):
        raise AssertionError("the cached file should have been used")

    monkeypatch.setattr(torch.hub, "download_url_to_file", no_download)
    assert vgg_module.resolve_vgg16_weights() == target


def test_download_is_called_with_hash_prefix(tmp_path, monkeypatch, shared_state):
    _no_env(monkeypatch, tmp_path)
    calls = []

    def fake_download(url, dst, hash_prefix=None, progress=True):
        calls.append((url, hash_prefix))
        torch.save(shared_state, dst)

    monkeypatch.setattr(torch.hub, "download_url_to_file", fake_download)
    model = load_vgg16()
    assert calls == [("https://download.pytorch.org/models/vgg16-397923af.pth", "397923af")]
    assert torch.equal(model.features[0].weight, shared_state["features.0.weight"])


def test_offline_without_weights_is_user_error(tmp_path, monkeypatch):
    _no_env(monkeypatch, tmp_path)

    def failing_download(*args, **kwargs):
        raise OSError("network unreachable")

    monkeypatch.setattr(torch.hub, "download_url_to_file", failing_download)
    with pytest.raises(UserError, match="STABLESTYLE_VGG16") as info:
        load_vgg16()
    assert "vgg16-397923af.pth" in str(info.value)
