"""The quality measure: optimisation curves from noise, equivalent iterations, the report and its grid."""

import json
import math

import pytest
import torch
from torch import nn

from stablestyle.evaluate.quality import equivalent_iterations, network_terms, optimization_curve
from stablestyle.losses import LossWeights, PerceptualLoss


class _Encoder(nn.Module):
    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.conv1 = nn.Conv2d(3, 4, 3, padding=1)
        self.conv2 = nn.Conv2d(4, 6, 3, stride=2, padding=1)
        self.requires_grad_(False)

    def forward(self, x):
        a = torch.relu(self.conv1(x))
        return {"a": a, "b": torch.relu(self.conv2(a))}


@pytest.mark.parametrize(("model_loss", "expected"), [
    (10.0, 0.0),      # as good as the start
    (8.0, 0.5),       # half-way between iteration 0 (10) and 1 (6)
    (6.0, 1.0),
    (3.0, 2.5),       # between 4 (iteration 2) and 2 (iteration 3)
    (2.0, 3.0),
    (1.0, math.inf),  # never reached
])
def test_equivalent_iterations_interpolates_between_iterations(model_loss, expected):
    assert equivalent_iterations(model_loss, [10.0, 6.0, 4.0, 2.0]) == expected


def test_equivalent_iterations_takes_the_first_crossing():
    assert equivalent_iterations(5.0, [10.0, 5.0, 7.0, 1.0]) == 1.0
    with pytest.raises(ValueError):
        equivalent_iterations(1.0, [])


def test_optimization_from_noise_lowers_the_objective_and_is_seeded():
    gen = torch.Generator().manual_seed(1)
    style, content = torch.rand(1, 3, 16, 16, generator=gen), torch.rand(1, 3, 16, 16, generator=gen)
    loss = PerceptualLoss(_Encoder(), style, content_layer="b", style_layers=("a", "b"))
    weights = LossWeights(content=1.0, style=5.0, tv=0.1, temporal=123.0)  # temporal: not part of it
    image, curve = optimization_curve(loss, content, weights, iterations=15)
    assert len(curve) == 16 and image.shape == content.shape
    assert 0.0 <= float(image.min()) and float(image.max()) <= 1.0
    assert curve[-1] < 0.5 * curve[0]
    _, again = optimization_curve(loss, content, weights, iterations=15)
    assert again == curve
    _, other_seed = optimization_curve(loss, content, weights, iterations=15, seed=1)
    assert other_seed[0] != curve[0]


def test_network_terms_are_the_objective_of_its_output():
    gen = torch.Generator().manual_seed(2)
    style, content = torch.rand(1, 3, 16, 16, generator=gen), torch.rand(1, 3, 16, 16, generator=gen)
    loss = PerceptualLoss(_Encoder(), style, content_layer="b", style_layers=("a", "b"))
    weights = LossWeights(content=1.0, style=5.0, tv=0.1)

    class Half(nn.Module):  # a "network" whose output is known
        def forward(self, x, state=None):
            return x * 0.5, None

    out, terms = network_terms(Half(), loss, content, weights)
    expected = loss(content * 0.5, content)
    assert terms["content"] == pytest.approx(float(expected["content"]))
    assert terms["total"] == pytest.approx(float(expected["content"] + 5 * expected["style"] + 0.1 * expected["tv"]))
    torch.testing.assert_close(out, content * 0.5)


@pytest.mark.slow
def test_quality_bench_writes_report_with_weights_hash_and_grid(tmp_path, monkeypatch):
    """bench/quality.py on a bundled model, 1 photo at 32 px, 4 iterations: JSON, hash, cache, grid."""
    import importlib.util
    from pathlib import Path

    from stablestyle.bundled import bundled_path
    from stablestyle.checkpoint import file_sha256

    monkeypatch.setenv("STABLESTYLE_CACHE", str(tmp_path / "cache"))
    spec = importlib.util.spec_from_file_location("quality_bench", Path(__file__).parents[1] / "bench/quality.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    args = ["--model", "scream-small", "--photos", "1", "--sizes", "48", "--iterations", "4", "-o", str(tmp_path / "q")]
    assert bench.main(args) == 0
    report = json.loads((tmp_path / "q/quality.json").read_text())
    entry = report["models"]["scream-small"]
    assert entry["weights_sha256"] == file_sha256(bundled_path("scream-small"))
    assert entry["style"] == "scream" and len(entry["sizes"]["48"]["equivalent_iterations"]) == 1
    assert (tmp_path / "q/grid_scream.jpg").is_file()
    cached = sorted((tmp_path / "cache/quality").iterdir())
    assert [p.suffix for p in cached] == [".json", ".png"]
    assert bench.main(args) == 0  # second run: the optimisation comes from the cache
    assert sorted((tmp_path / "cache/quality").iterdir()) == cached
    assert json.loads((tmp_path / "q/quality.json").read_text())["models"]["scream-small"]["sizes"] == entry["sizes"]


def test_quality_bench_unknown_style_weights_is_a_one_line_error(tmp_path, capsys):
    import importlib.util
    from pathlib import Path

    weights = tmp_path / "w.yaml"
    weights.write_text("udnie: {content: 1, style: 3, tv: 0.05}\n")
    spec = importlib.util.spec_from_file_location("quality_bench", Path(__file__).parents[1] / "bench/quality.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    code = bench.main(["--model", "scream-small", "--photos", "1", "--sizes", "48", "--iterations", "2",
                       "--style-weights", str(weights), "-o", str(tmp_path / "q")])
    assert code == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: no weights for style 'scream'") and "\n" not in err


def test_style_weights_leave_out_the_stable_stages_keys_and_refuse_unknown_ones(tmp_path):
    """The measuring objective is the style's content / style / tv; `temporal`, `stable_style`,
    `small_temporal` and `small_tune` belong to scripts/train_bundled.sh's stable stages, a misspelt key is an error."""
    from pathlib import Path

    from stablestyle.errors import UserError
    from stablestyle.evaluate.quality_report import load_style_weights

    table = load_style_weights(Path(__file__).parents[1] / "configs/style_weights.yaml")
    assert set(table) == {"scream", "udnie", "WomenHat"} and all(w.temporal == 0 for w in table.values())
    path = tmp_path / "w.yaml"
    path.write_text("udnie: {content: 1, style: 4, tv: 0.05, temporal: 800, stable_style: 8, small_temporal: 20,"
                    " small_tune: 9}\n")
    assert load_style_weights(path)["udnie"] == LossWeights(content=1, style=4, tv=0.05, temporal=0)
    path.write_text("udnie: {content: 1, style: 4, tv: 0.05, stabel_style: 8}\n")
    with pytest.raises(UserError, match="stabel_style"):
        load_style_weights(path)


def test_quality_bench_takes_an_optimisation_length_per_size(tmp_path, monkeypatch, capsys):
    """`--iterations 32:3,48:2`: each size's curve has its own length (recorded in the report and the
    cached curve); a size without a length, or a malformed spec, is a one-line error."""
    import importlib.util
    from pathlib import Path

    monkeypatch.setenv("STABLESTYLE_CACHE", str(tmp_path / "cache"))
    spec = importlib.util.spec_from_file_location("quality_bench", Path(__file__).parents[1] / "bench/quality.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    base = ["--model", "scream-small", "--photos", "1", "--sizes", "32,48", "--video", "", "-o", str(tmp_path / "q")]
    assert bench.main(base + ["--iterations", "32:3,48:2"]) == 0
    report = json.loads((tmp_path / "q/quality.json").read_text())
    assert report["iterations"] == {"32": 3, "48": 2}
    curves = sorted(len(json.loads(p.read_text())["curve"]) for p in (tmp_path / "cache/quality").glob("*.json"))
    assert curves == [3, 4]  # iterations + 1 values each
    assert set(report["optimisation"]["scream"]["48"][report["photos"][0]]["total_after"]) == {"0"}
    for bad, message in (("32:3", "no optimisation length for 48 px"), ("32:x", "give N or SIZE:N"),
                         ("0", "lengths must be >= 1")):
        capsys.readouterr()
        assert bench.main(base + ["--iterations", bad]) == 2
        err = capsys.readouterr().err.strip()
        assert message in err and "\n" not in err
