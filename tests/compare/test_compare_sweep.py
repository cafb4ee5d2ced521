"""``sweep``: the equal-budget rule, selection on validation only, best.yaml feeding compare."""
import json
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

import pyg_ham.train.runner as runner_mod
from pyg_ham.cli import main
from pyg_ham.compare.compare import VariantOutcome
from pyg_ham.compare.sweep import flagged, run_sweep, select_best, sweep_variants, tuned_string, weight_decay_grid
from pyg_ham.compare.variants import load_variants_file, parse_variants
from pyg_ham.errors import ConfigError
from pyg_ham.train.config import ExperimentConfig


def test_equal_budget_grids():
    base, ham = sweep_variants("adam", [10, 100, 1000], [1e-3, 1e-2, 0.1])
    assert len(base) == len(ham) == 9
    assert all(not v.ham and set(v.overrides) == {"weight_decay"} for v in base)
    assert all(v.ham and set(v.overrides) == {"alpha", "beta"} for v in ham)
    assert [v.overrides["weight_decay"] for v in base] == weight_decay_grid(9)
    assert weight_decay_grid(9)[0] == 0.0 and weight_decay_grid(9)[1] == 1e-5 and weight_decay_grid(9)[-1] == 0.1
    assert weight_decay_grid(1) == [0.0] and len(set(weight_decay_grid(4))) == 4
    # learning rates: both arms get every lr, still equal
    base, ham = sweep_variants("sgd", [10, 100], [0.01], [0.0, 1e-4], lrs=[0.01, 0.1])
    assert len(base) == len(ham) == 4
    assert sorted({v.overrides["lr"] for v in base}) == sorted({v.overrides["lr"] for v in ham}) == [0.01, 0.1]
    # unequal budgets are refused, naming both counts
    with pytest.raises(ConfigError, match="equal budget: HAM gets 2 alphas × 2 betas = 4 configurations, "
                                          "the baseline 3 weight decays"):
        sweep_variants("adam", [10, 100], [0.01, 0.1], [0.0, 1e-4, 1e-3])
    with pytest.raises(ConfigError, match="alpha grid is empty"):
        sweep_variants("adam", [], [0.1])
    with pytest.raises(ConfigError, match="repeated values"):
        sweep_variants("adam", [10, 10], [0.1])


def _outcome(label, valid, test, complete=True, error=None):
    doc = {"complete": complete, "summary": {"valid_mean": valid, "test_mean": test}}
    return VariantOutcome(parse_variants([label])[0], Path(f"{label}.json"), doc, error=error)


def test_selection_uses_validation_only():
    outs = [_outcome("adam:weight_decay=0", 0.70, 0.90),       # best test: must not be chosen
            _outcome("adam:weight_decay=0.001", 0.80, 0.60),
            _outcome("adam:weight_decay=0.01", 0.80, 0.99),     # tie on valid: the first wins
            _outcome("adam:weight_decay=0.1", 0.95, 0.10, complete=False),  # unfinished: not eligible
            _outcome("adam:weight_decay=1", 0.99, 0.10, error="RuntimeError: boom")]
    assert select_best(outs, "acc").variant.label == "adam:weight_decay=0.001"
    assert select_best(outs, "rmse").variant.label == "adam:weight_decay=0"  # lower is better
    assert tuned_string({"weight_decay": [0.0, 0.001, 0.01]}, {"weight_decay": 0.001}) == \
        "weight_decay: [0, 0.001*, 0.01]"


def test_sweep_end_to_end_resumable_and_feeds_compare(tmp_path, monkeypatch):
    cfg = ExperimentConfig(dataset="synthetic", dataset_options={"num_nodes": 300}, hidden=8, epochs=2, runs=1,
                           quiet=True, device="cpu")
    doc = run_sweep(cfg, tmp_path, alphas=[10.0], betas=[1e-3, 1e-2], log=lambda m: None)
    assert doc["budget"] == {"baseline": 2, "ham": 2, "epochs": 2, "runs": 1}
    arms = doc["arms"]
    assert [r["variant"] for r in arms["baseline"]["results"]] == ["adam:weight_decay=0", "adam:weight_decay=0.001"]
    for arm in arms.values():
        chosen = max(arm["results"], key=lambda r: r["valid_mean"])  # first max = first in grid order
        assert arm["selected"] == chosen["variant"] and chosen["selected"]
    # every configuration trained the same seeds for the same epochs
    for arm in arms.values():
        for r in arm["results"]:
            d = json.loads((tmp_path / r["file"]).read_text())
            assert [run["seed"] for run in d["runs"]] == [0] and len(d["runs"][0]["history"]) == 2
    # test appears only at the selected settings in the human-readable outputs
    md = (tmp_path / "sweep.md").read_text()
    assert md.count("**selected**") == 2
    rows = (tmp_path / "sweep.csv").read_text().splitlines()[1:]
    assert sum(1 for r in rows if ",,," not in r and r.endswith("True,complete")) == 2
    # best.yaml feeds compare
    variants = load_variants_file(tmp_path / "best.yaml")
    assert variants == doc["variants"] and [v.ham for v in parse_variants(variants)] == [False, True]
    assert "tuned" in yaml.safe_load((tmp_path / "best.yaml").read_text())
    # resumable: a rerun trains nothing and does not even load the data
    monkeypatch.setattr(runner_mod, "load_task", lambda cfg: pytest.fail("retrained"))
    again = run_sweep(cfg, tmp_path, alphas=[10.0], betas=[1e-3, 1e-2], log=lambda m: None)
    assert again["variants"] == doc["variants"]


def test_sweep_cli_errors(tmp_path):
    r = CliRunner().invoke(main, ["sweep", "--alphas", "10,100", "--betas", "0.01", "--weight-decays", "0",
                                  "--out", str(tmp_path / "s")])
    assert r.exit_code == 2 and "equal budget" in r.output
    r = CliRunner().invoke(main, ["sweep", "--protocol", "gin", "--out", str(tmp_path / "s")])
    assert r.exit_code == 2 and "validation folds are the test folds" in r.output
    r = CliRunner().invoke(main, ["sweep", "--alphas", "ten", "--out", str(tmp_path / "s")])
    assert r.exit_code == 2 and "comma-separated numbers" in r.output
    assert not (tmp_path / "s").exists()


def test_the_printed_next_command_runs_on_the_same_setting(tmp_path, monkeypatch):
    import shlex

    from pyg_ham.train.runner import comparable_config

    monkeypatch.chdir(tmp_path)
    (tmp_path / "c.yaml").write_text("dataset: synthetic\ndataset_options: {num_nodes: 200}\nhidden: 8\nepochs: 9\n")
    (tmp_path / "data").mkdir()
    sweep = CliRunner().invoke(main, ["sweep", "-c", "c.yaml", "--root", "data", "--epochs", "2", "-q",
                                      "--alphas", "10", "--betas", "0.001", "--weight-decays", "0", "--out", "sw"],
                               catch_exceptions=False)
    assert sweep.exit_code == 0, sweep.output
    line = next(l for l in sweep.output.splitlines() if l.startswith("Next: `"))
    command = shlex.split(line.split("`")[1])
    assert command[:2] == ["pyg-ham", "compare"]
    result = CliRunner().invoke(main, command[1:] + ["--out", "cmp"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    swept = {json.loads(p.read_text())["config"]["ham"]: json.loads(p.read_text())["config"]
             for p in (tmp_path / "sw").glob("adam*.json")}
    compared = {json.loads(p.read_text())["config"]["ham"]: json.loads(p.read_text())["config"]
                for p in (tmp_path / "cmp").glob("adam*.json")}
    assert set(swept) == set(compared) == {False, True}
    for ham in (False, True):  # the very same experiment: dataset, options, root, epochs, model, variant
        assert comparable_config(compared[ham]) == comparable_config(swept[ham])
        assert compared[ham]["root"] == swept[ham]["root"] == "data"
        assert compared[ham]["epochs"] == 2 and compared[ham]["dataset_options"] == {"num_nodes": 200}
    assert "# Use: " + line.split("`")[1] in (tmp_path / "sw" / "best.yaml").read_text()


SMOOTH = [1.0, 0.8, 0.6, 0.5]
SPIKE = [1.0, 0.1, 5.0, 0.4]  # 50x its best so far and above its first: unstable


def _flagged_outcome(label, valid, losses_per_run):
    runs = [{"key": f"run{i}", "seed": i, "valid": valid, "test": valid, "train": valid,
             "history": [{"epoch": e + 1, "loss": loss, "time": 0.1, "lr": 0.01} for e, loss in enumerate(losses)]}
            for i, losses in enumerate(losses_per_run)]
    doc = {"complete": True, "config": {"lr": 0.01, "alpha": 200.0, "ham": "ham" in label}, "runs": runs,
           "summary": {"valid_mean": valid, "test_mean": valid, "runs": len(runs)}}
    return VariantOutcome(parse_variants([label])[0], Path(f"{label}.json"), doc)


def test_selection_skips_flagged_configurations():
    outs = [_flagged_outcome("adam+ham:alpha=1000", 0.99, [SMOOTH, SPIKE]),  # best valid, one unstable run
            _flagged_outcome("adam+ham:alpha=100", 0.98, [SMOOTH, SMOOTH + [float("nan")]]),  # one diverged
            _flagged_outcome("adam+ham:alpha=10", 0.80, [SMOOTH, SMOOTH])]
    assert select_best(outs, "acc").variant.label == "adam+ham:alpha=10"
    assert flagged(outs[0]) == "1 unstable of 2 runs" and flagged(outs[1]) == "1 diverged of 2 runs"
    assert flagged(outs[2]) is None
    assert select_best(outs[:2], "acc") is None


def test_sweep_whose_configurations_all_diverge_writes_no_best_yaml(tmp_path):
    cfg = ExperimentConfig(dataset="synthetic", dataset_options={"num_nodes": 200}, hidden=8, epochs=2, runs=1,
                           quiet=True, device="cpu", optimizer="sgd")
    (tmp_path / "best.yaml").write_text("variants: [stale, stale+ham]\n")  # an earlier sweep's selection
    lines = []
    doc = run_sweep(cfg, tmp_path, alphas=[10.0], betas=[1e-3], weight_decays=[0.0], lrs=[1e30], log=lines.append)
    assert doc["variants"] == [] and doc["best_written"] is False and doc["next_command"] is None
    assert not (tmp_path / "best.yaml").exists()
    for arm in doc["arms"].values():
        assert arm["selected"] is None and len(arm["skipped"]) == 1 and "of 1 runs" in arm["skipped"][0]
    md = (tmp_path / "sweep.md").read_text()
    assert "No best.yaml" in md and "every configuration diverged or was unstable" in md
    assert any(line.startswith("no ") and "best.yaml written" in line for line in lines)
