"""``compare`` end to end: pairing, outputs, figures, resume after an interruption, crashes."""
import json

import pytest
from click.testing import CliRunner

import pyg_ham.train.runner as runner_mod
from pyg_ham.cli import main
from pyg_ham.compare.compare import compare
from pyg_ham.compare.stats import cv_test_train_ratio, paired_difference
from pyg_ham.train.config import ExperimentConfig

PNG = b"\x89PNG\r\n\x1a\n"


def tiny(**kw):
    base = dict(dataset="synthetic", dataset_options={"num_nodes": 300}, hidden=8, epochs=2, runs=2, quiet=True,
                device="cpu")
    return ExperimentConfig(**{**base, **kw})


def load(path):
    return json.loads(path.read_text())


def test_paired_seeds_outputs_and_plots(tmp_path):
    doc = compare(tiny(), ["adam", "adam+ham:alpha=100", "sgd:lr=0.1"], tmp_path, plot=True, log=lambda m: None)
    files = {v["label"]: tmp_path / v["file"] for v in doc["variants"]}
    docs = {k: load(p) for k, p in files.items()}
    # identical seeds and splits in every variant, and each variant's own settings
    for d in docs.values():
        assert [(r["key"], r["seed"], r["split"]) for r in d["runs"]] == [("run0", 0, 0), ("run1", 1, 1)]
        assert d["complete"] and "provenance" in d
    assert docs["adam+ham:alpha=100"]["config"]["ham"] and docs["adam+ham:alpha=100"]["config"]["alpha"] == 100.0
    assert not docs["adam"]["config"]["ham"] and docs["sgd:lr=0.1"]["config"]["lr"] == 0.1
    # the paired statistics are those of the per-seed test scores
    c = {x["variant"]: x for x in doc["comparisons"]}
    assert c["adam+ham:alpha=100"]["baseline"] == "adam" and c["sgd:lr=0.1"]["baseline"] == "adam"
    expected = paired_difference([r["test"] for r in docs["adam"]["runs"]],
                                 [r["test"] for r in docs["adam+ham:alpha=100"]["runs"]])
    got = c["adam+ham:alpha=100"]
    assert got["n"] == 2 and got["test"] == "paired t-test" and got["keys"] == ["run0", "run1"]
    assert got["mean"] == pytest.approx(expected["mean"]) and got["p"] == pytest.approx(expected["p"], nan_ok=True)
    assert "valid" in got and got["same_seeds"]
    # files: json (with provenance), csv, markdown, figures
    saved = load(tmp_path / "comparison.json")
    assert saved["provenance"]["torch"] and saved["variants"][0]["provenance"]
    csv = (tmp_path / "comparison.csv").read_text().splitlines()
    assert csv[0].startswith("kind,variant,baseline,status,test_mean") and len(csv) == 4
    md = (tmp_path / "comparison.md").read_text()
    assert "| adam+ham:alpha=100 | adam |" in md and "paired t-test" in md
    for name in ("valid_curve.png", "paired_test.png", "ham_diagnostics.png"):
        data = (tmp_path / name).read_bytes()
        assert data[:8] == PNG and len(data) > 10_000, name


def test_resume_after_interrupt_skips_finished_work(tmp_path, monkeypatch):
    cfg = tiny()
    real = runner_mod.train_run
    calls = []

    def counting(task, cfg, spec, *a, **kw):
        calls.append((cfg.ham, spec["fields"]["run"]))
        if interrupt_at and len(calls) == interrupt_at:
            raise KeyboardInterrupt
        return real(task, cfg, spec, *a, **kw)

    monkeypatch.setattr(runner_mod, "train_run", counting)
    interrupt_at = 3  # Ctrl-C during the first run of the second variant
    with pytest.raises(KeyboardInterrupt):
        compare(cfg, ["adam", "adam+ham"], tmp_path, log=lambda m: None)
    first = load(tmp_path / "adam.json")
    assert first["complete"] and len(first["runs"]) == 2  # nothing finished was lost
    assert not (tmp_path / "adam+ham.json").exists()

    interrupt_at, calls[:] = None, []
    doc = compare(cfg, ["adam", "adam+ham"], tmp_path, log=lambda m: None)
    assert calls == [(True, 0), (True, 1)]  # only the unfinished variant ran
    assert doc["variants"][0]["skipped"] and not doc["variants"][1]["skipped"]

    # lose the last record of a variant: only that run is redone
    ham = load(tmp_path / "adam+ham.json")
    kept = ham["runs"][0]
    ham["runs"], ham["complete"] = ham["runs"][:1], False
    (tmp_path / "adam+ham.json").write_text(json.dumps(ham))
    calls[:] = []
    compare(cfg, ["adam", "adam+ham"], tmp_path, log=lambda m: None)
    assert calls == [(True, 1)]
    redone = load(tmp_path / "adam+ham.json")
    assert [r["key"] for r in redone["runs"]] == ["run0", "run1"] and redone["runs"][0] == kept

    # everything done: nothing trains and the dataset is not even loaded
    monkeypatch.setattr(runner_mod, "load_task", lambda cfg: pytest.fail("loaded the data for nothing"))
    calls[:] = []
    doc = compare(cfg, ["adam", "adam+ham"], tmp_path, log=lambda m: None)
    assert calls == [] and all(v["skipped"] for v in doc["variants"])

    # a changed config is not mixed with old results
    from pyg_ham.errors import ConfigError

    with pytest.raises(ConfigError, match="different configuration \\(differs in epochs\\).*--fresh"):
        compare(tiny(epochs=3), ["adam", "adam+ham"], tmp_path, log=lambda m: None)


def test_crashed_variant_is_reported_cli(tmp_path, monkeypatch):
    real = runner_mod.train_run

    def crash_ham(task, cfg, spec, *a, **kw):
        if cfg.ham:
            raise RuntimeError("CUDA out of memory (simulated)")
        return real(task, cfg, spec, *a, **kw)

    monkeypatch.setattr(runner_mod, "train_run", crash_ham)
    out = tmp_path / "cmp"
    result = CliRunner().invoke(main, ["compare", "-o", "num_nodes=300", "--hidden", "8", "--epochs", "2",
                                       "--runs", "2", "-q", "--device", "cpu", "--out", str(out),
                                       "--variants", "adam", "adam+ham:alpha=50"])
    assert result.exit_code == 1, result.output
    assert "failed: RuntimeError: CUDA out of memory (simulated)" in result.output
    doc = load(out / "comparison.json")
    status = {v["label"]: (v["status"], v["error"]) for v in doc["variants"]}
    assert status["adam"] == ("complete", None)
    assert status["adam+ham:alpha=50"] == ("failed", "RuntimeError: CUDA out of memory (simulated)")
    assert doc["comparisons"][0]["error"].startswith("no finished runs for adam+ham:alpha=50")
    assert "Traceback" in (out / "adam+ham_alpha=50.error.txt").read_text()
    # bad input: one line, exit 2, nothing trained
    bad = CliRunner().invoke(main, ["compare", "--out", str(tmp_path / "x"), "adam", "adam:seed=4"])
    assert bad.exit_code == 2 and "seed cannot differ between variants" in bad.output
    assert not (tmp_path / "x").exists()


def test_cv_folds_paired_with_corrected_test(staged, tmp_path):
    root = staged("TUDataset", "MUTAG")
    cfg = ExperimentConfig(dataset="MUTAG", root=str(root), folds=3, epochs=2, hidden=8, quiet=True, device="cpu")
    doc = compare(cfg, None, tmp_path / "out", log=lambda m: None)
    assert [v["label"] for v in doc["variants"]] == ["adam", "adam+ham"]
    a, b = load(tmp_path / "out" / "adam.json"), load(tmp_path / "out" / "adam+ham.json")
    assert a["splits"] == b["splits"] and len(a["splits"]) == 3  # the very same folds
    assert [(r["key"], r["seed"]) for r in a["runs"]] == [(r["key"], r["seed"]) for r in b["runs"]]
    c = doc["comparisons"][0]
    assert doc["cv"] and c["same_splits"] is True and c["test"].startswith("corrected resampled t-test")
    assert c["wilcoxon_p"] is None
    # ratio by hand: 188 graphs; a fold trains on 188 - |valid| - |test|
    ratio = sum(len(s["test"]) / (188 - len(s["valid"]) - len(s["test"])) for s in a["splits"]) / 3
    assert doc["test_train_ratio"] == pytest.approx(ratio) == pytest.approx(cv_test_train_ratio(a))
    assert any(r["method"].startswith("GIN-0") for r in doc["references"])
