"""``--jobs N``: independent runs in N worker processes give the runs of ``--jobs 1``, each once.

The reference is always the same experiment trained in this process (``jobs=1``); the workers
are other processes, so equality run by run (scores, best epoch, every epoch's loss) shows that
seeding, data and order do not depend on where or in which order a run trains.
"""
import json
import os
import signal
import threading
import time

import psutil
import pytest
from click.testing import CliRunner

from pyg_ham.cli import main
from pyg_ham.compare.compare import compare
from pyg_ham.compare.sweep import run_sweep
from pyg_ham.train.config import ExperimentConfig
from pyg_ham.train.jobs import RunsFailed, threads_per_job
from pyg_ham.train.runner import run_experiment

QUIET = dict(quiet=True, device="cpu")


def fingerprint(runs):
    """Everything a run's result holds that does not depend on wall time."""
    return [(r["key"], r["seed"], r["best_epoch"], r["train"], r["valid"], r["test"],
             [h["loss"] for h in r["history"]], [h.get("valid") for h in r["history"]]) for r in runs]


def load(path):
    return json.loads(path.read_text())


def cora(root, **kw):
    return ExperimentConfig.from_recipe("Cora", root=str(root), **{"epochs": 3, "hidden": 16, **QUIET, **kw})


def test_threads_per_job_divides_the_budget():
    assert [threads_per_job(n, budget=8) for n in (1, 2, 3, 8, 16)] == [8, 4, 2, 1, 1]
    assert threads_per_job(2, budget=1) == 1


def test_train_runs_jobs2_equal_jobs1(staged, tmp_path):
    root = staged("Planetoid", "Cora")
    one = run_experiment(cora(root, runs=4, out=str(tmp_path / "one.json")), log=lambda m: None)
    two = run_experiment(cora(root, runs=4, jobs=2, out=str(tmp_path / "two.json")), log=lambda m: None)
    assert [r["key"] for r in two["runs"]] == ["run0", "run1", "run2", "run3"]  # each once, in key order
    assert fingerprint(two["runs"]) == fingerprint(one["runs"])
    assert fingerprint(load(tmp_path / "two.json")["runs"]) == fingerprint(one["runs"])
    assert two["complete"] and two["summary"] == one["summary"]


def test_cv_folds_jobs2_equal_jobs1(staged):
    root = staged("TUDataset", "MUTAG")
    cfg = dict(dataset="MUTAG", root=str(root), folds=3, epochs=2, hidden=16, **QUIET)
    one = run_experiment(ExperimentConfig(**cfg), log=lambda m: None)
    two = run_experiment(ExperimentConfig(**cfg, jobs=2), log=lambda m: None)
    assert [r["key"] for r in two["runs"]] == [f"repeat0_fold{f}" for f in range(3)]
    assert fingerprint(two["runs"]) == fingerprint(one["runs"]) and two["splits"] == one["splits"]


def test_compare_jobs2_equals_jobs1_and_a_crashing_variant_does_not_stop_others(staged, tmp_path):
    root = staged("Planetoid", "Cora")
    variants = ["adam", "sparseadam", "adam+ham:alpha=100"]  # SparseAdam raises on dense gradients
    one = compare(cora(root, runs=2), variants, tmp_path / "one", log=lambda m: None)
    two = compare(cora(root, runs=2, jobs=2), variants, tmp_path / "two", log=lambda m: None)
    status = {v["label"]: (v["status"], v["error"]) for v in two["variants"]}
    assert status["adam"] == ("complete", None) and status["adam+ham:alpha=100"] == ("complete", None)
    assert status["sparseadam"][0] == "failed" and "SparseAdam does not support dense gradients" in \
        status["sparseadam"][1] and status["sparseadam"][1].startswith("run0, run1: RuntimeError")
    assert "Traceback" in (tmp_path / "two" / "sparseadam.error.txt").read_text()
    for slug in ("adam", "adam+ham_alpha=100"):
        assert fingerprint(load(tmp_path / "two" / f"{slug}.json")["runs"]) == \
            fingerprint(load(tmp_path / "one" / f"{slug}.json")["runs"])
    c1, c2 = one["comparisons"][1], two["comparisons"][1]
    assert c2["variant"] == "adam+ham:alpha=100" and (c2["mean"], c2["p"]) == (c1["mean"], c1["p"])


def test_sweep_jobs2_equals_jobs1(tmp_path):
    cfg = dict(dataset="synthetic", dataset_options={"num_nodes": 300}, hidden=8, epochs=2, runs=2, **QUIET)
    grid = dict(alphas=[20, 200], betas=[0.001], weight_decays=[0.0, 1e-3], log=lambda m: None)
    one = run_sweep(ExperimentConfig(**cfg), tmp_path / "one", **grid)
    two = run_sweep(ExperimentConfig(**cfg, jobs=2), tmp_path / "two", **grid)
    assert two["arms"] == one["arms"] and two["variants"] == one["variants"]
    for path in (tmp_path / "one").glob("*.json"):
        if path.name != "sweep.json":
            assert fingerprint(load(tmp_path / "two" / path.name)["runs"]) == fingerprint(load(path)["runs"])


def test_interrupt_stops_every_worker_and_resume_completes(staged, tmp_path):
    root = staged("Planetoid", "Cora")
    out = tmp_path / "r.json"
    cfg = cora(root, runs=4, epochs=20, jobs=2, out=str(out))
    me = psutil.Process()

    def ctrl_c_after_first_run():
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if out.exists() and load(out)["runs"]:
                os.kill(os.getpid(), signal.SIGINT)
                return
            time.sleep(0.05)

    watcher = threading.Thread(target=ctrl_c_after_first_run, daemon=True)
    watcher.start()
    with pytest.raises(KeyboardInterrupt):
        run_experiment(cfg, log=lambda m: None)
    watcher.join()
    time.sleep(0.5)
    workers = [p for p in me.children(recursive=True) if p.status() != psutil.STATUS_ZOMBIE
               and not any(k in " ".join(p.cmdline()) for k in ("forkserver", "resource_tracker"))]
    assert workers == []  # every worker was stopped
    kept = load(out)["runs"]
    assert 1 <= len(kept) < 4 and not load(out)["complete"]

    done = run_experiment(cfg.replace(resume=True), log=lambda m: None)
    assert [r["key"] for r in done["runs"]] == [f"run{i}" for i in range(4)]
    reference = run_experiment(cora(root, runs=4, epochs=20), log=lambda m: None)
    assert fingerprint(done["runs"]) == fingerprint(reference["runs"])
    by_key = {f[0]: f for f in fingerprint(done["runs"])}
    assert [by_key[f[0]] for f in fingerprint(kept)] == fingerprint(kept)  # the finished runs were kept as they were


def test_failing_train_runs_are_reported_with_their_error(tmp_path):
    out = tmp_path / "r.json"
    cfg = ExperimentConfig(dataset="synthetic", dataset_options={"num_nodes": 200}, hidden=8, epochs=2, runs=3,
                           optimizer="sparseadam", ham=False, out=str(out), jobs=2, **QUIET)
    with pytest.raises(RunsFailed, match=r"run\(s\) run0, run1, run2 failed \(RuntimeError: SparseAdam"
                       r".*\); rerun to retry$"):
        run_experiment(cfg, log=lambda m: None)
    assert not out.exists()  # nothing finished, nothing written


def test_devices_refused_without_cuda(tmp_path):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    result = CliRunner().invoke(main, ["train", "--devices", "0,1", "--epochs", "1", "--out",
                                       str(tmp_path / "r.json")])
    assert result.exit_code == 2
    assert result.output.strip().splitlines() == [
        "Error: devices 0,1 requested but CUDA is not available here; drop --devices (the jobs then share the "
        "CPU cores)"]
    assert not (tmp_path / "r.json").exists()


@pytest.mark.parametrize("kw, message", [
    ({"jobs": 0}, "jobs must be"),
    ({"devices": [0, 0]}, "devices lists a device twice"),
    ({"devices": [-1]}, "devices must be CUDA device indices"),
    ({"devices": [0], "device": "cpu"}, "devices gives each job a CUDA device, but device is 'cpu'"),
])
def test_bad_jobs_settings_are_one_line_errors(kw, message):
    from pyg_ham.errors import ConfigError

    with pytest.raises(ConfigError, match=message) as info:
        ExperimentConfig(**kw)
    assert "\n" not in str(info.value)
