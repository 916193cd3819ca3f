"""Every bundled model loads, carries its metadata, and stylizes frames; `stablestyle models` lists them."""

from __future__ import annotations

import json

import numpy as np
import pytest

from stablestyle.bundled import DEFAULT_MODEL, available, bundled_path, styles
from stablestyle.checkpoint import file_sha256, load_checkpoint
from stablestyle.cli import main
from stablestyle.errors import UserError
from stablestyle.stylize import stylize_frames

SHIPPED_STYLES = ("scream", "udnie", "WomenHat")


def test_the_shipped_set_is_complete():
    names = available()
    for style in SHIPPED_STYLES:
        assert style in names
    assert DEFAULT_MODEL in names and f"{DEFAULT_MODEL}-perframe" in names


@pytest.mark.parametrize("name", available())
def test_bundled_model_metadata_and_frames(name, assets):
    model, meta = load_checkpoint(name)
    perframe = name.endswith("-perframe")
    style = name.removesuffix("-perframe").removesuffix("-small")  # <style>-small: the quarter-width net
    assert (meta["model"]["width"] == 0.25) == name.endswith("-small")
    assert meta["model"]["recurrent"] is (not perframe)
    assert meta["config"]["mode"] == ("perframe" if perframe else "stable")
    assert meta["config"]["style"] == f"{style}.jpg"
    assert meta["style_sha256"] == file_sha256(assets / "styles" / f"{style}.jpg")
    assert 0 < meta["step"] <= meta["config"]["steps"]  # a checkpoint picked by measurement may precede the plan
    assert bundled_path(name).stat().st_size < 8e6  # half precision, a few MB at most
    # scripts/bundle_models.py --pick records the file it copied and the figures measured on the bundled weights
    assert meta["metrics"]["source"].endswith(".pt") and meta["metrics"]["source_step"] == meta["step"]
    assert meta["metrics"]["sintel_ambush_4_instability"] > 0 and meta["metrics"]["sintel_ambush_4_style_loss"] > 0
    rng = np.random.default_rng(0)
    frames = [rng.integers(0, 256, (36, 52, 3), dtype=np.uint8) for _ in range(3)]
    out = list(stylize_frames(model, frames))
    assert [f.shape for f in out] == [(36, 52, 3)] * 3 and all(f.dtype == np.uint8 for f in out)
    assert not np.array_equal(out[0], frames[0])


def test_unknown_name_lists_the_bundled_ones():
    with pytest.raises(UserError, match="bundled models: .*scream"):
        load_checkpoint("no-such-style")


def test_models_command(capsys):
    assert main(["models"]) == 0
    table = capsys.readouterr().out.splitlines()
    assert table[0].split() == ["model", "net", "steps", "Sintel", "instability", "style", "loss", "--stability"]
    rows = {line.split()[0]: line for line in table[1:-1]}
    assert sorted(rows) == available() and f"{DEFAULT_MODEL} (default)" in rows[DEFAULT_MODEL]
    assert rows["scream-perframe"].split()[1:5] == ["per-frame", "net,", "width", "0.5,"]
    assert "892" in rows["scream-perframe"].split()  # its training steps
    sintel = {name: float(line.split()[-3 if line.split()[-1] == "-" else -5]) for name, line in rows.items()}
    # each bundled stable net was warm-started from its twin: the dial interpolates their weights; the -small nets
    # have no twin of their width
    for style in SHIPPED_STYLES:
        assert rows[style].endswith(f"weights with {style}-perframe") and rows[f"{style}-small"].endswith(" -")
        assert sintel[style] < sintel[f"{style}-perframe"]  # the bundled figures: stable flickers less
    assert main(["models", "--details"]) == 0
    text = capsys.readouterr().out
    assert f"{DEFAULT_MODEL} (default)" in text and "measured:" in text
    assert main(["models", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert sorted(r["name"] for r in rows) == available()
    by_name = {r["name"]: r for r in rows}
    # a per-frame model never used the temporal weight its config carries; a stable one lists it
    assert "temporal" not in by_name["scream-perframe"]["training"]["weights"]
    assert by_name["scream"]["training"]["weights"]["temporal"] == 800
    assert by_name["scream"]["dial"]["mode"] == "weights" and by_name["scream-small"]["dial"] is None
    assert "scream (default): stable model, style scream.jpg, recurrent net, width 0.5, edge margin 32 px, 400 steps" in text
    assert "scream-perframe: perframe model, style scream.jpg, per-frame net, width 0.5, edge margin 32 px" in text
    assert main(["models", "--styles"]) == 0  # what the report scripts loop over: one main model per style
    assert capsys.readouterr().out.split() == styles() == ["WomenHat", "scream", "udnie"]
