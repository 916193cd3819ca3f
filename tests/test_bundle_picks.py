"""scripts/bundle_models.py --pick: the bundle made from named checkpoints (configs/bundle.yaml)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
import torch

from stablestyle.checkpoint import load_checkpoint, read_checkpoint, save_checkpoint
from stablestyle.models import TransformerNet

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def bundle():
    spec = importlib.util.spec_from_file_location("bundle_models", ROOT / "scripts" / "bundle_models.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture()
def wips(tmp_path) -> dict[str, Path]:
    torch.manual_seed(0)
    out = {}
    for kind, recurrent in (("stable", True), ("perframe", False)):
        out[kind] = tmp_path / f"x-{kind}.pt"
        save_checkpoint(out[kind], TransformerNet(width=0.25, recurrent=recurrent),
                        config={"style": "/machine/path/x.jpg", "out": "/machine/runs/x"}, step=123)
    return out


def test_picks_are_bundled_with_their_source_and_the_same_weights(bundle, wips, tmp_path):
    picks = tmp_path / "bundle.yaml"
    picks.write_text(f"x: {wips['stable']}\nx-perframe: {wips['perframe']}\n")
    out = tmp_path / "bundled"
    out.mkdir()
    assert bundle.bundle_picks(bundle.read_picks(picks), None, out) == 0
    for name, kind in (("x", "stable"), ("x-perframe", "perframe")):
        payload = read_checkpoint(out / f"{name}.pt")
        assert payload["metrics"]["source"] == wips[kind].name and payload["metrics"]["source_step"] == 123
        assert payload["config"]["style"] == "x.jpg" and payload["config"]["out"] == "x"  # machine paths stripped
        net, _ = load_checkpoint(out / f"{name}.pt")
        source, _ = load_checkpoint(wips[kind])
        for a, b in zip(net.state_dict().values(), source.state_dict().values()):
            torch.testing.assert_close(a.float(), b.half().float())


def test_a_pick_of_the_wrong_kind_writes_nothing(bundle, wips, tmp_path, capsys):
    out = tmp_path / "bundled"
    out.mkdir()
    picks = {"x": wips["stable"], "x-small": wips["perframe"]}  # a -small name is a stable net
    assert bundle.bundle_picks(picks, None, out) == 2
    assert "x-small needs a recurrent net" in capsys.readouterr().err
    assert not list(out.iterdir())


@pytest.mark.parametrize("text, message", [("x: [1, 2", "not YAML"), ("- a\n- b\n", "expected a mapping"),
                                           ("x: no/such/file.pt\n", "no file no/such/file.pt"),
                                           ("x: 3\n", "is not a bundled name and a file path")])
def test_bad_pick_files_are_one_line_errors(bundle, tmp_path, capsys, text, message):
    picks = tmp_path / "bundle.yaml"
    picks.write_text(text)
    assert bundle.main(["--pick", str(picks)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and message in err[0], err


def test_a_stranger_file_is_refused_without_running_code(bundle, tmp_path, capsys):
    class Boom:
        def __reduce__(self):
            return (Path(tmp_path / "ran").touch, ())

    evil = tmp_path / "evil.pt"
    torch.save({"x": Boom()}, evil)
    picks = tmp_path / "bundle.yaml"
    picks.write_text(f"x: {evil}\n")
    assert bundle.main(["--pick", str(picks)]) == 2
    assert not (tmp_path / "ran").exists()
    assert capsys.readouterr().err.startswith("error: ")


def test_the_committed_bundle_list_covers_every_bundled_name_with_the_right_kind(bundle):
    """configs/bundle.yaml names a models-wip file of the right kind for every bundled model."""
    from stablestyle.bundled import available

    picks = bundle.read_picks(ROOT / "configs" / "bundle.yaml")
    assert set(picks) == set(available())
    for name, source in picks.items():
        assert source.parent.name == "models-wip"
        net, _ = load_checkpoint(source)
        assert net.recurrent == (not name.endswith("-perframe")), name
        assert net.width == (0.25 if name.endswith("-small") else 0.5), name
