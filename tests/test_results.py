"""Result files: permissions like any file the user writes, and an undefined std for a single run."""
import json
import os
import stat

import pytest

from pyg_ham.compare.report import format_report, report_entries
from pyg_ham.compare.table import fmt_pm
from pyg_ham.results import format_mean_std, mean_std, result_document, summarize, write_json


@pytest.mark.parametrize("umask", [0o022, 0o077, 0o002])
def test_result_json_gets_ordinary_permissions(tmp_path, umask):
    old = os.umask(umask)
    try:
        path = write_json(tmp_path / "r.json", {"a": 1})
        plain = tmp_path / "plain.txt"
        plain.write_text("x")  # what open() gives under this umask
    finally:
        os.umask(old)
    assert stat.S_IMODE(path.stat().st_mode) == stat.S_IMODE(plain.stat().st_mode) == 0o666 & ~umask
    assert json.loads(path.read_text()) == {"a": 1}
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")] == []


def test_single_run_std_is_undefined():
    assert mean_std([0.5]) == (0.5, None)
    assert mean_std([0.5, 0.7])[1] == pytest.approx(0.1414213, rel=1e-6)
    s = summarize([{"seed": 0, "test": 0.8, "valid": 0.7, "train": 0.9}])
    assert s["runs"] == 1 and s["test_std"] is None and s["valid_std"] is None and s["train_std"] is None
    doc = result_document("Cora", "node", "acc", {}, [{"seed": 0, "test": 0.8, "valid": 0.7, "train": 0.9}])
    assert '"test_std": null' in json.dumps(doc)


def test_mean_std_formatting():
    assert format_mean_std(0.71742, 0.00291) == "0.7174 ± 0.0029"
    assert format_mean_std(0.71742, 0.00291, runs=10) == "0.7174 ± 0.0029"
    assert format_mean_std(0.8, None, runs=1) == "0.8000 (1 run)"
    assert format_mean_std(0.8, 0.0, runs=1) == "0.8000 (1 run)"  # older files wrote 0.0
    assert format_mean_std(0.8) == "0.8000" and format_mean_std(None, 0.1) == "-"
    assert format_mean_std(float("nan")) == "-" and format_mean_std(0.81234, 0.01, digits=2) == "0.81 ± 0.01"
    assert fmt_pm(0.8, 0.0, runs=1) == "0.8000 (1 run)" and fmt_pm(0.8, 0.01) == "0.8000 ± 0.0100"


def test_report_of_a_single_run_shows_no_zero_std(tmp_path):
    for name, std in (("new.json", None), ("old.json", 0.0)):
        doc = result_document("Cora", "node", "acc", {"optimizer": "adam", "ham": False, "lr": 0.01},
                              [{"seed": 0, "test": 0.8, "valid": 0.7, "train": 0.9, "history": []}])
        doc["summary"]["test_std"] = doc["summary"]["valid_std"] = std
        doc["complete"] = True
        write_json(tmp_path / name, doc)
    text = format_report(report_entries([tmp_path], sort="file"))
    assert "± 0.0000" not in text and text.count("0.8000 (1 run)") == 2 and text.count("0.7000 (1 run)") == 2


def test_the_stored_comparisons_match_what_the_current_code_builds_from_their_runs():
    """Every results/*/comparison.json says what pyg-ham compare would say today about its finished
    variant JSONs (verdicts, instability counts): a change to how comparisons are judged must come
    with `python results/refresh_comparisons.py` (then make_table.py --update)."""
    import importlib.util
    from pathlib import Path

    results = Path(__file__).resolve().parents[1] / "results"
    spec = importlib.util.spec_from_file_location("refresh_comparisons", results / "refresh_comparisons.py")
    refresh = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(refresh)
    paths = sorted(results.glob("*/comparison.json"))
    assert len(paths) > 20
    for path in paths:
        stored, rebuilt = json.loads(path.read_text()), refresh.rebuild(path)
        assert [(c["variant"], c["verdict"]) for c in stored["comparisons"]] == \
            [(c["variant"], c["verdict"]) for c in rebuilt["comparisons"]], path.parent.name
        assert [(v["label"], v["diverged"], v["unstable"]) for v in stored["variants"]] == \
            [(v["label"], v["diverged"], v["unstable"]) for v in rebuilt["variants"]], path.parent.name
