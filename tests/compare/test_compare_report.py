"""``report``: aggregation of result files into one table (no training: fixed documents)."""
import json

import pytest
from click.testing import CliRunner

from pyg_ham.cli import main
from pyg_ham.compare.report import collect_results, format_report, report_entries
from pyg_ham.errors import ConfigError
from pyg_ham.results import result_document, write_json
from pyg_ham.train.config import ExperimentConfig


def make_doc(path, tests, *, seed=0, dataset="Cora", ham=False, metric="acc", **cfg_kw):
    cfg = ExperimentConfig(dataset=dataset, seed=seed, runs=len(tests), ham=ham, **cfg_kw).to_dict()
    runs = [{"key": f"run{i}", "seed": seed + i, "best_epoch": 1, "train": 1.0, "valid": t - 0.01, "test": t,
             "history": [{"epoch": 1, "time": 0.5}], "num_params": 100} for i, t in enumerate(tests)]
    doc = result_document(dataset, "node", metric, cfg, runs, num_params=100, model="gcn", protocol="seeds",
                          complete=True)
    write_json(path, doc)
    return doc


def test_report_rows_sorted_best_first(tmp_path):
    make_doc(tmp_path / "a" / "plain.json", [0.80, 0.82])
    make_doc(tmp_path / "a" / "ham.json", [0.84, 0.86], ham=True, alpha=100.0)
    make_doc(tmp_path / "b.json", [0.30, 0.50], dataset="ogbg-molesol", metric="rmse")
    make_doc(tmp_path / "b2.json", [0.20, 0.30], dataset="ogbg-molesol", metric="rmse", lr=0.001)
    (tmp_path / "a" / "comparison.json").write_text(json.dumps({"kind": "other"}))  # skipped in folders
    (tmp_path / "a" / "broken.json").write_text("{")
    entries = report_entries([tmp_path / "a", tmp_path / "b.json", tmp_path / "b2.json"])
    assert [(e["dataset"], e["variant"]) for e in entries] == [
        ("Cora", "adam+ham:alpha=100,beta=0.001"), ("Cora", "adam"),
        ("ogbg-molesol", "adam:lr=0.001"), ("ogbg-molesol", "adam")]  # rmse: lower first
    assert entries[0]["test_mean"] == pytest.approx(0.85) and entries[0]["test_std"] == pytest.approx(0.0141421356)
    assert entries[0]["time_per_epoch"] == 0.5 and entries[0]["complete"]
    md = format_report(entries)
    assert md.splitlines()[0].startswith("| file | dataset | model | variant | protocol | metric | test | valid |")
    assert "0.8500 ± 0.0141" in md and len(md.splitlines()) == 6
    csv = format_report(entries, "csv").splitlines()
    assert csv[0].startswith("file,dataset,model,variant,protocol,metric,test_mean,test_std") and len(csv) == 5


def test_merge_seeds_pools_runs(tmp_path):
    make_doc(tmp_path / "s0.json", [0.80], seed=0)
    make_doc(tmp_path / "s1.json", [0.90], seed=1)
    make_doc(tmp_path / "other.json", [0.50], seed=0, lr=0.1)
    merged = report_entries([tmp_path], merge_seeds=True)
    assert len(merged) == 2
    pooled = next(e for e in merged if e["runs"] == 2)
    assert pooled["test_mean"] == pytest.approx(0.85) and "(+1 merged)" in pooled["file"]
    assert len(report_entries([tmp_path])) == 3


def test_report_errors_and_cli(tmp_path):
    (tmp_path / "x.json").write_text(json.dumps({"a": 1}))
    with pytest.raises(ConfigError, match="is not a result file"):
        collect_results([tmp_path / "x.json"])
    with pytest.raises(ConfigError, match="does not exist"):
        collect_results([tmp_path / "nope"])
    make_doc(tmp_path / "r" / "one.json", [0.7, 0.8])
    out = tmp_path / "table.csv"
    r = CliRunner().invoke(main, ["report", str(tmp_path / "r"), "--format", "csv", "--out", str(out)])
    assert r.exit_code == 0, r.output
    assert out.read_text().startswith("file,dataset")
    r = CliRunner().invoke(main, ["report", str(tmp_path / "r")])
    assert r.exit_code == 0 and "| Cora | gcn | adam |" in r.output
    r = CliRunner().invoke(main, ["report", str(tmp_path / "x.json")])
    assert r.exit_code == 2 and "not a result file" in r.output
    (tmp_path / "empty").mkdir()
    r = CliRunner().invoke(main, ["report", str(tmp_path / "empty")])
    assert r.exit_code == 2 and "no result files" in r.output


def test_cli_interrupt_message(tmp_path, monkeypatch):
    import pyg_ham.compare.compare as compare_mod

    def interrupted(*a, **kw):
        raise KeyboardInterrupt

    monkeypatch.setattr(compare_mod, "compare", interrupted)
    r = CliRunner().invoke(main, ["compare", "--out", str(tmp_path / "c")])
    assert r.exit_code == 130 and "rerun the same command to continue" in r.output
