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


def test_every_stored_result_file_follows_the_run_record_schema():
    """The run records of every result JSON in results/ (written by this and earlier versions)
    load through the one schema: each epoch record is one of its kinds, the record loads as a
    RunResult, and the readers (summaries, stability) run."""
    from pathlib import Path

    from pyg_ham.results import RunResult, schema
    from pyg_ham.train.stability import document_stability

    results = Path(__file__).resolve().parents[1] / "results"
    docs = [(p, json.loads(p.read_text())) for p in sorted(results.rglob("*.json"))]
    docs = [(p, d) for p, d in docs if isinstance(d, dict) and isinstance(d.get("runs"), list)]
    assert len(docs) > 100
    kinds = set()
    for path, doc in docs:
        for run in doc["runs"]:
            assert schema.check_run(run) == [], (path, run.get("key"))
            loaded = RunResult.from_dict(run)  # (to_dict would deep-copy 83 MB of histories: slow)
            assert loaded.history is run["history"] and set(loaded.extra) == set(run) - set(schema.RUN_KEYS)
            kinds |= {schema.epoch_kind(h) for h in run["history"]}
            assert schema.run_diverged(run) == any(schema.is_diverged(h) for h in run["history"])
        summary = summarize(doc["runs"])
        assert summary["runs"] == len(doc["runs"]) and summary.get("diverged", 0) <= summary["runs"]
        document_stability(doc)
    assert kinds == {"evaluated", "diverged"}  # the stored runs evaluated every epoch (eval_every 1)


def test_the_schema_refuses_what_is_not_an_epoch_record():
    from pyg_ham.results import schema

    good = {"epoch": 1, "loss": 0.5, "time": 0.1, "lr": 0.01}
    assert schema.check_epoch(good) == [] and schema.epoch_kind(good) == "not evaluated"
    scored = schema.add_scores(dict(good), {"valid": 0.7, "test": 0.6})
    assert schema.epoch_kind(scored) == "evaluated" and schema.score(scored, "train") != schema.score(scored, "train")
    assert schema.check_epoch({**good, "valid": 0.7}) == ["an evaluated epoch lacks 'test'"]
    assert schema.check_epoch({**good, "diverged": True, "valid": 0.1}) == ["a diverged epoch has 'valid'"]
    assert schema.check_epoch({"epoch": 1, "loss": 0.5, "lr": 0.1, "acc": 1}) == ["missing 'time'",
                                                                                  "unknown key 'acc'"]
    with pytest.raises(ValueError, match="unknown epoch key 'vaild'"):
        schema.value(good, "vaild")
    with pytest.raises(ValueError, match="valid and test required"):
        schema.add_scores(dict(good), {"valid": 0.7})
    assert schema.value(schema.mark_diverged(dict(good)), "valid") is None
    run = {"seed": 0, "best_epoch": 2, "train": 1, "valid": 1, "test": 1, "history": [good, {**good, "epoch": 2}]}
    assert schema.check_run(run) == ["best_epoch 2 is not an evaluated epoch"]
