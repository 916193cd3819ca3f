"""Style stability analysis: Gram traces, risk score, correlations, the sphere theorem, analyze-style CLI."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from stablestyle.analysis import (
    gram_trace,
    gram_traces,
    instability_risk,
    percentile_rank,
    trace_shares,
)
from stablestyle.cli import main
from stablestyle.errors import UserError
from stablestyle.losses import gram_matrix
from stablestyle.trace_correlation import load_instability, pearson, spearman


@pytest.mark.parametrize("shape", [(1, 3, 4, 5), (2, 8, 6, 6), (3, 1, 1, 7)])
def test_gram_trace_is_the_trace_of_the_normalised_gram_matrix(shape):
    torch.manual_seed(0)
    feat = torch.randn(*shape, dtype=torch.float64)
    expected = gram_matrix(feat).diagonal(dim1=1, dim2=2).sum(-1)
    assert torch.allclose(gram_trace(feat), expected, rtol=1e-12)
    # a constant activation c has trace c^2
    assert torch.allclose(gram_trace(torch.full(shape, 3.0)), torch.full((shape[0],), 9.0))


def test_gram_traces_and_shares():
    feats = {"a": torch.full((1, 2, 3, 3), 1.0), "b": torch.full((1, 4, 2, 2), 3.0)}
    traces = {k: float(v[0]) for k, v in gram_traces(feats, ["a", "b"]).items()}
    assert traces == {"a": 1.0, "b": 9.0}
    assert trace_shares(traces) == pytest.approx({"a": 0.1, "b": 0.9})
    with pytest.raises(ValueError, match="missing"):
        gram_traces(feats, ["a", "c"])


def test_risk_score_and_percentile():
    ref = [1.0, 4.0, 16.0]
    assert instability_risk(4.0, ref) == pytest.approx(0.0)  # the median style
    assert instability_risk(16.0, ref) == pytest.approx(1.0)  # sphere radius twice the median's
    assert instability_risk(1.0, ref) == pytest.approx(-1.0)
    assert percentile_rank(4.0, ref) == pytest.approx(50.0)
    assert percentile_rank(100.0, ref) == 100.0 and percentile_rank(0.5, ref) == 0.0
    with pytest.raises(ValueError):
        instability_risk(1.0, [])


def test_correlations():
    x = [1.0, 2.0, 3.0, 4.0, 5.0]
    assert pearson(x, [2 * v + 1 for v in x]) == pytest.approx(1.0)
    assert pearson(x, [-v for v in x]) == pytest.approx(-1.0)
    cubic = [v**3 for v in x]
    assert spearman(x, cubic) == pytest.approx(1.0) and pearson(x, cubic) < 0.99
    assert pearson(x, cubic) == pytest.approx(float(np.corrcoef(x, cubic)[0, 1]))
    # ties get their average rank: ranks (1, 2.5, 2.5, 4) vs (1, 2, 3, 4)
    assert spearman([1, 2, 2, 3], [1, 2, 3, 4]) == pytest.approx(float(np.corrcoef([1, 2.5, 2.5, 4], [1, 2, 3, 4])[0, 1]))
    assert math.isnan(pearson([1, 1, 1], [1, 2, 3]))


def _solve_gram(target, c, n, seed, init_scale):
    """L-BFGS from a random start of norm ~init_scale until gram(F) = target; returns F."""
    gen = torch.Generator().manual_seed(seed)
    f = (init_scale * torch.randn(1, c, 1, n, dtype=torch.float64, generator=gen)).requires_grad_(True)
    opt = torch.optim.LBFGS([f], lr=1, max_iter=1000, tolerance_grad=1e-15, tolerance_change=1e-18,
                            line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        loss = (gram_matrix(f) - target).square().sum()
        loss.backward()
        return loss

    opt.step(closure)
    return f.detach()


@pytest.mark.parametrize("style_scale", [0.3, 1.0, 4.0])
def test_gram_solutions_lie_on_a_sphere_whose_radius_the_trace_predicts(style_scale):
    """Gupta et al. 2017, Sec. 4: every F with gram(F) = G has ||F|| = sqrt(C N trace(G)); many such F exist.

    Three "styles" (Gram targets of different scales and shapes), radius predicted from the trace
    before optimising, four solutions per style from random starts far inside and far outside the
    sphere (so the norm is reached, not kept).
    """
    c, n = 4, 12
    gen = torch.Generator().manual_seed(int(style_scale * 10))
    f0 = style_scale * torch.randn(1, c, 1, n, dtype=torch.float64, generator=gen)
    target = gram_matrix(f0)
    predicted = math.sqrt(c * n * float(target.diagonal(dim1=1, dim2=2).sum()))
    solutions = [_solve_gram(target, c, n, seed, init_scale)
                 for seed, init_scale in enumerate((0.05, 0.5, 5.0, 50.0))]
    for f in solutions:
        assert float((gram_matrix(f) - target).square().sum()) < 1e-14 * float(target.square().sum())
        assert float(f.norm()) == pytest.approx(predicted, rel=1e-5)
    dists = [float((a - b).norm()) for i, a in enumerate(solutions) for b in solutions[i + 1:]]
    assert min(dists) > 0.1 * predicted  # distinct points of the sphere: the minimiser is not unique
    assert float((solutions[0] - f0).norm()) > 0.1 * predicted


def test_sphere_radii_of_two_styles_are_in_the_ratio_of_root_traces():
    """The claim behind analyze-style's score: a larger trace means a proportionally larger solution set."""
    c, n = 3, 10
    gen = torch.Generator().manual_seed(7)
    calm, loud = (s * torch.randn(1, c, 1, n, dtype=torch.float64, generator=gen) for s in (1.0, 3.0))
    traces = [float(gram_matrix(f).diagonal(dim1=1, dim2=2).sum()) for f in (calm, loud)]
    radii = [float(_solve_gram(gram_matrix(f), c, n, seed=11, init_scale=1.0).norm()) for f in (calm, loud)]
    assert radii[1] / radii[0] == pytest.approx(math.sqrt(traces[1] / traces[0]), rel=1e-5)
    assert radii[1] > 2 * radii[0]


# ----------------------------------------------------------------------------- instability input

def _results(runs):
    return {"format": "stablestyle-evaluation", "runs": runs}


def test_load_instability_from_evaluate_results_and_plain_maps(tmp_path):
    runs = [{"method": "perframe", "style": "a", "clip": "x", "instability": 1.0},
            {"method": "perframe", "style": "a", "clip": "y", "instability": 3.0},
            {"method": "stable", "style": "a", "clip": "x", "instability": 0.5},
            {"method": "input", "style": "a", "clip": "x", "instability": 0.1}]
    path = tmp_path / "results.json"
    path.write_text(json.dumps(_results(runs)))
    assert load_instability(path) == {"a": 2.0}  # perframe preferred, mean over clips
    assert load_instability(path, "stable") == {"a": 0.5}
    with pytest.raises(UserError, match="no runs of method"):
        load_instability(path, "gatys")
    path.write_text(json.dumps(_results(runs[2:] + [{"method": "gatys", "style": "a", "instability": 2}])))
    with pytest.raises(UserError, match="--method"):
        load_instability(path)
    plain = tmp_path / "map.json"
    plain.write_text(json.dumps({"candy": 0.01, "udnie": 0.002}))
    assert load_instability(plain) == {"candy": 0.01, "udnie": 0.002}
    plain.write_text("[1, 2]")
    with pytest.raises(UserError, match="expected"):
        load_instability(plain)


# ----------------------------------------------------------------------------- analyze-style CLI

def _png(path, arr):
    from PIL import Image

    Image.fromarray(arr.astype(np.uint8)).save(path)
    return str(path)


@pytest.fixture(scope="module")
def synthetic_styles(tmp_path_factory):
    folder = tmp_path_factory.mktemp("styles")
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:64, 0:64]
    flat = 120 + 8 * (xx / 63.0)[..., None] + np.array([0, 4, -2])  # gray-ish, a faint gradient
    stripes = np.where((xx // 4) % 2 == 0, 255, 0)[..., None].repeat(3, axis=2)
    noise = rng.integers(0, 2, (64, 64, 1)) * 255
    contrast = np.clip(stripes ^ noise, 0, 255)  # black / white stripes broken by binary noise
    return _png(folder / "flat.png", flat), _png(folder / "contrast.png", contrast)


def test_analyze_style_ranks_flat_below_high_contrast(synthetic_styles, capsys):
    flat, contrast = synthetic_styles
    assert main(["analyze-style", flat, contrast, "--size", "64", "--reference", flat, "--reference", contrast,
                 "--json", "--device", "cpu"]) == 0
    report = json.loads(capsys.readouterr().out)
    styles = {s["name"]: s for s in report["styles"]}
    assert styles["contrast"]["rank"] == 1 and styles["flat"]["rank"] == 2
    assert styles["contrast"]["total_trace"] > 3 * styles["flat"]["total_trace"]
    assert styles["contrast"]["risk"] > 0 > styles["flat"]["risk"]
    assert set(styles["flat"]["traces"]) == {"relu1_2", "relu2_2", "relu3_3", "relu4_3"}
    assert sum(styles["flat"]["shares"].values()) == pytest.approx(1.0)
    assert report["provenance"]["stablestyle_version"] and report["reference"]["n"] == 2


def test_analyze_style_real_styles_and_figure_3(tmp_path, assets, capsys):
    styles = [str(assets / "styles" / f"{name}.jpg") for name in ("color", "scream", "candy")]
    measured = tmp_path / "instability.json"
    measured.write_text(json.dumps({"color": 0.002, "scream": 0.003, "candy": 0.009}))
    fig = tmp_path / "fig3.png"
    args = ["analyze-style", *styles, "--size", "128", "--device", "cpu"]
    for s in styles:
        args += ["--reference", s]
    assert main([*args, "--plot", str(fig), "--instability", str(measured)]) == 0
    out = capsys.readouterr().out
    ranked = [line.split()[1] for line in out.splitlines() if line.strip()[:1].isdigit()]
    assert ranked[0] == "candy" and ranked[-1] == "color"  # busy, saturated candy above soft watercolour
    assert "Pearson r =" in out and "Spearman rho = 1.000" in out
    assert fig.is_file() and fig.stat().st_size > 10_000
    # an existing figure is only replaced on request
    fig.write_bytes(b"keep")
    assert main([*args, "--plot", str(fig), "--instability", str(measured)]) == 2
    assert "already exists; pass --overwrite" in capsys.readouterr().err and fig.read_bytes() == b"keep"
    assert main([*args, "--plot", str(fig), "--instability", str(measured), "--overwrite"]) == 0
    assert fig.stat().st_size > 10_000
    capsys.readouterr()
    # the same call as JSON reuses the cached traces and agrees
    assert main([*args, "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    risk = {s["name"]: s["risk"] for s in report["styles"]}
    assert risk["candy"] > risk["scream"] > risk["color"]


def test_analyze_style_takes_a_folder_of_styles(synthetic_styles, capsys):
    flat, contrast = synthetic_styles
    folder = str(Path(flat).parent)
    assert main(["analyze-style", folder, "--size", "64", "--reference", folder, "--json", "--device", "cpu"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert [s["name"] for s in report["styles"]] == ["contrast", "flat"]  # the folder's images, by name
    assert report["reference"]["n"] == 2


@pytest.mark.parametrize("extra, message", [
    (["missing.jpg"], "no such file or folder"),
    (["."], "holds no images"),
    (["--plot", "fig.png"], "--plot needs --instability"),
    (["--plot", "fig.txt", "--instability", "x.json"], "unknown figure type"),
    (["--instability", "absent.json"], "no such file"),
    (["--size", "8"], "--size"),
])
def test_analyze_style_user_errors(tmp_path, monkeypatch, synthetic_styles, capsys, extra, message):
    monkeypatch.chdir(tmp_path)
    assert main(["analyze-style", synthetic_styles[0], *extra]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and message in err[0]
    assert not (tmp_path / "fig.png").exists()


def test_plot_never_replaces_an_input(tmp_path, synthetic_styles, capsys):
    """--plot naming one of the style images is refused, even with --overwrite."""
    measured = tmp_path / "m.json"
    measured.write_text(json.dumps({"flat": 0.1, "contrast": 0.2}))
    style = Path(synthetic_styles[0])
    before = style.read_bytes()
    assert main(["analyze-style", *synthetic_styles, "--plot", str(style), "--instability", str(measured),
                 "--overwrite"]) == 2
    assert "is also an input" in capsys.readouterr().err
    assert style.read_bytes() == before


@pytest.mark.parametrize("values", [{"a": -0.1}, {"a": float("inf")}, {"a": float("nan")}, {"a": 10 ** 400}])
def test_instability_values_must_be_finite_and_non_negative(tmp_path, values):
    path = tmp_path / "m.json"
    path.write_text(json.dumps(values))
    with pytest.raises(UserError, match="finite number >= 0"):
        load_instability(path)


def test_figure_3_needs_three_matched_styles(tmp_path, synthetic_styles, capsys):
    measured = tmp_path / "m.json"
    measured.write_text(json.dumps({"flat": 0.1, "other": 0.2}))
    fig = tmp_path / "fig.png"
    assert main(["analyze-style", *synthetic_styles, "--size", "64", "--reference", synthetic_styles[0],
                 "--plot", str(fig), "--instability", str(measured)]) == 2
    captured = capsys.readouterr()
    err = captured.err.strip().splitlines()[-1]
    assert "at least 3 styles" in err and "matched by image file name" in err
    assert "analysed: flat, contrast" in err and "instability given for: flat, other" in err
    assert not fig.exists()
    # the analysis is still shown, with the measured values beside it ('-' where none was given)
    rows = {line.split()[1]: line.split() for line in captured.out.splitlines() if line.strip()[:1].isdigit()}
    assert "instability" in captured.out and rows["flat"][-1] == "0.1" and rows["contrast"][-1] == "-"
