"""A broken arm is never "no significant difference": diverged/unstable runs are in the verdict."""
import json
import math
from pathlib import Path

from click.testing import CliRunner

from pyg_ham.cli import main
from pyg_ham.compare.compare import VariantOutcome, build_comparison, compare, write_comparison
from pyg_ham.compare.report import format_report, report_entries
from pyg_ham.compare.variants import parse_variants
from pyg_ham.results import result_document, write_json
from pyg_ham.train.config import ExperimentConfig

SMOOTH = [0.7, 0.5, 0.4, 0.35, 0.3]
SPIKE = [0.7, 0.5, 0.2, 6.0, 0.4]  # 30x its best so far, above its first loss


def doc_of(label, tests, losses, *, metric="acc", extra=None):
    v = parse_variants([label])[0]
    cfg = v.apply(ExperimentConfig(dataset="Cora", runs=len(tests))).to_dict()
    runs = []
    for i, (t, loss) in enumerate(zip(tests, losses)):
        run = {"key": f"run{i}", "seed": i, "best_epoch": 1, "train": 1.0, "valid": t, "test": t,
               "history": [{"epoch": e + 1, "loss": x, "valid": t, "time": 0.1} for e, x in enumerate(loss)]}
        run.update((extra or {}).get(i, {}))
        runs.append(run)
    return v, result_document("Cora", "node", metric, cfg, runs, model="gcn", protocol="seeds", complete=True)


def outcomes(*arms):
    return [VariantOutcome(v, Path(f"{v.slug}.json"), d) for v, d in arms]


def test_stable_arms_keep_the_statistical_verdict():
    comp = build_comparison(outcomes(doc_of("adam", [0.80, 0.81, 0.79], [SMOOTH] * 3),
                                     doc_of("adam+ham", [0.80, 0.80, 0.80], [SMOOTH] * 3)), references=False)
    c = comp["comparisons"][0]
    assert c["verdict"] == "no significant difference" and "statistical_verdict" not in c and c["unstable_runs"] == {}
    assert comp["variants"][1]["unstable"] == 0 and comp["variants"][1]["diverged"] == 0


def test_unstable_arm_is_named_in_markdown_csv_and_json(tmp_path):
    # same scores as above (the paired test alone finds no difference), but HAM spiked in 2 of 3 runs
    comp = build_comparison(outcomes(doc_of("adam", [0.80, 0.81, 0.79], [SMOOTH] * 3),
                                     doc_of("adam+ham", [0.80, 0.80, 0.80], [SPIKE, SMOOTH, SPIKE])),
                            references=False)
    c = comp["comparisons"][0]
    assert c["verdict"] == "adam+ham unstable in 2 of 3 runs"
    assert c["statistical_verdict"] == "no significant difference"
    assert c["unstable_runs"]["adam+ham"]["unstable"] == ["run0", "run2"]
    assert c["unstable_runs"]["adam+ham"]["details"]["run0"]["epoch"] == 4
    assert c["unstable_runs"]["adam+ham"]["advice"] == "η·α = 2 is large; try --alpha 20"
    v = comp["variants"][1]
    assert v["unstable"] == 2 and v["unstable_runs"] == ["run0", "run2"]
    write_comparison(comp, tmp_path)
    md = (tmp_path / "comparison.md").read_text()
    row = next(l for l in md.splitlines() if l.startswith("| adam+ham | adam |"))
    assert "adam+ham unstable in 2 of 3 runs" in row and "η·α = 2 is large; try --alpha 20" in row
    assert "complete (2 unstable)" in md
    rows = (tmp_path / "comparison.csv").read_text().splitlines()
    header = rows[0].split(",")
    ham = dict(zip(header, next(r for r in rows if r.startswith("variant,adam+ham,")).split(",")))
    assert ham["verdict"] == "adam+ham unstable in 2 of 3 runs" and ham["unstable_runs"] == "run0 run2"
    saved = json.loads((tmp_path / "comparison.json").read_text())
    assert saved["comparisons"][0]["verdict"] == "adam+ham unstable in 2 of 3 runs"


def test_diverged_runs_and_a_broken_baseline_for_regression():
    # rmse: lower is better; the variant diverged in every run (non-finite loss, NaN score)
    base = doc_of("adam", [0.50, 0.52, 0.51], [SMOOTH] * 3, metric="rmse")
    ham = doc_of("adam+ham", [math.nan] * 3, [[0.7, math.nan]] * 3, metric="rmse",
                 extra={i: {"diverged": True} for i in range(3)})
    c = build_comparison(outcomes(base, ham), references=False)["comparisons"][0]
    assert c["verdict"] == "adam+ham diverged in 3 of 3 runs" and c["unstable_runs"]["adam+ham"]["diverged"] == [
        "run0", "run1", "run2"]
    # a broken baseline is named too, even when the variant looks "better"
    base = doc_of("adam", [0.90, 0.95, 0.92], [SPIKE, [0.7, math.nan], SMOOTH], metric="rmse")
    ham = doc_of("adam+ham", [0.50, 0.52, 0.51], [SMOOTH] * 3, metric="rmse")
    c = build_comparison(outcomes(base, ham), references=False)["comparisons"][0]
    assert c["verdict"] == "adam diverged in 1 and unstable in 1 of 3 runs"
    assert c["statistical_verdict"] == "better"


def test_a_run_level_unstable_entry_counts():
    ham = doc_of("adam+ham", [0.8, 0.8], [SMOOTH] * 2,
                 extra={1: {"unstable": {"reason": "clamp saturated", "epoch": 3}}})
    c = build_comparison(outcomes(doc_of("adam", [0.8, 0.81], [SMOOTH] * 2), ham), references=False)["comparisons"][0]
    assert c["verdict"] == "adam+ham unstable in 1 of 2 runs"


def test_report_shows_unstable_runs(tmp_path):
    for v, d in (doc_of("adam", [0.8, 0.81, 0.79], [SMOOTH] * 3),
                 doc_of("adam+ham", [0.8, 0.8, 0.8], [SPIKE, SMOOTH, [0.7, math.nan]])):
        write_json(tmp_path / f"{v.slug}.json", d)
    result = CliRunner().invoke(main, ["report", str(tmp_path)], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert "| 3 (1 diverged, 1 unstable) |" in result.output
    assert f"* {tmp_path / 'adam+ham.json'}: diverged in 1 and unstable in 1 of 3 runs; " \
           f"η·α = 2 is large; try --alpha 20" in result.output
    csv = format_report(report_entries([tmp_path]), "csv").splitlines()
    assert "unstable" in csv[0].split(",")


def test_real_compare_names_the_arm_that_blew_up(tmp_path):
    """A real (tiny) comparison where HAM's step is far too large: its verdict says so."""
    cfg = ExperimentConfig(dataset="synthetic", dataset_options={"num_nodes": 300}, hidden=8, epochs=15, runs=2,
                           quiet=True, device="cpu", max_exponent=None)
    doc = compare(cfg, ["sgd:lr=0.5", "sgd+ham:lr=0.5,alpha=5000"], tmp_path, log=lambda m: None)
    c = doc["comparisons"][0]
    assert c["variant"] == "sgd+ham:lr=0.5,alpha=5000"
    assert c["verdict"].startswith("sgd+ham:lr=0.5,alpha=5000 ") and c["verdict"].endswith(" of 2 runs"), c
    assert "statistical_verdict" in c and "sgd+ham:lr=0.5,alpha=5000" in c["unstable_runs"]
    assert "try --alpha 0.2" in (tmp_path / "comparison.md").read_text()
