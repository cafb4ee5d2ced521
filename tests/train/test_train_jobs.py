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


# --- a worker that dies (SIGKILL, as the OOM killer sends it) costs only its own run -----------

HERE = os.path.dirname(os.path.abspath(__file__))


def _dying(monkeypatch, tmp_path, deaths):
    """The synthetic task whose runs in :obj:`deaths` SIGKILL their own worker (tests/train/dying_task.py)."""
    monkeypatch.syspath_prepend(HERE)  # the workers get the parent's sys.path, and import it from there
    from dying_task import DyingNodeTask

    from pyg_ham.train.runner import load_task

    marks = tmp_path / "deaths"
    marks.mkdir()
    cfg = ExperimentConfig(dataset="synthetic", dataset_options={"num_nodes": 300}, hidden=8, epochs=6, runs=4,
                           **QUIET)
    return cfg, load_task(cfg), DyingNodeTask.wrap(load_task(cfg), deaths, marks), marks


@pytest.mark.timeout(240)
def test_a_killed_worker_costs_only_its_run_which_resumes_from_its_checkpoint(monkeypatch, tmp_path):
    cfg, plain, dying, marks = _dying(monkeypatch, tmp_path, {"run1": 1})
    reference = run_experiment(cfg, log=lambda m: None, task=plain)  # --jobs 1, in this process
    out, lines = tmp_path / "r.json", []
    doc = run_experiment(cfg.replace(jobs=2, out=str(out)), log=lines.append, task=dying)
    assert len(list(marks.iterdir())) == 1  # run1's worker was killed once, in its third epoch
    died = [line for line in lines if "worker process died" in line]
    assert died == [f"run1: its worker process died (killed by SIGKILL (out of memory, or killed)); training it "
                    f"once more, from its last epoch checkpoint ({tmp_path / 'r.ckpt' / 'run1.pt'})"]
    # every run finished in this invocation, each as --jobs 1 trained it (run1 resumed exactly)
    assert doc["complete"] and fingerprint(doc["runs"]) == fingerprint(reference["runs"])
    assert fingerprint(load(out)["runs"]) == fingerprint(reference["runs"])


@pytest.mark.timeout(240)
def test_a_run_whose_retry_dies_too_is_reported_by_name_and_the_others_finish(monkeypatch, tmp_path):
    cfg, plain, dying, marks = _dying(monkeypatch, tmp_path, {"run2": 2})
    cfg = cfg.replace(runs=3)
    reference = run_experiment(cfg, log=lambda m: None, task=plain)
    out, lines = tmp_path / "r.json", []
    with pytest.raises(RunsFailed) as info:
        run_experiment(cfg.replace(jobs=2, out=str(out)), log=lines.append, task=dying)
    assert str(info.value) == (f"run(s) run2 failed (its worker process died twice (killed by SIGKILL (out of "
                               f"memory, or killed))); the finished runs are in {out}; rerun with --resume to retry")
    assert "\n" not in str(info.value) and len(list(marks.iterdir())) == 2
    kept = load(out)
    assert not kept["complete"] and [r["key"] for r in kept["runs"]] == ["run0", "run1"]
    assert fingerprint(kept["runs"]) == fingerprint(reference["runs"][:2])
    # the second attempt resumed from the first one's checkpoint, so the checkpoint is kept for --resume
    assert (tmp_path / "r.ckpt" / "run2.pt").exists()
    done = run_experiment(cfg.replace(out=str(out), resume=True), log=lambda m: None, task=plain)
    assert fingerprint(done["runs"]) == fingerprint(reference["runs"])


@pytest.mark.timeout(240)
def test_a_worker_killed_from_outside_mid_run_costs_nothing(staged, tmp_path):
    """The issue's case: ``compare --jobs 2`` with one worker SIGKILLed from outside while it trains;
    both variants still finish every run in the same invocation, as ``--jobs 1`` trains them."""
    root = staged("Planetoid", "Cora")
    cfg = cora(root, runs=2, epochs=60)
    compare(cfg, ["adam", "adam+ham"], tmp_path / "one", log=lambda m: None)
    lines = []
    me = psutil.Process()

    def kill_a_worker_once_it_trains():
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            ckpts = list((tmp_path / "two").glob("*.ckpt/*.pt"))
            servers = [p for p in me.children() if "forkserver" in " ".join(_safe_cmdline(p))]
            workers = [w for s in servers for w in s.children()]  # the fork server forks the workers
            if ckpts and workers:
                workers[0].kill()
                return
            time.sleep(0.05)

    watcher = threading.Thread(target=kill_a_worker_once_it_trains, daemon=True)
    watcher.start()
    two = compare(cfg.replace(jobs=2), ["adam", "adam+ham"], tmp_path / "two", log=lines.append)
    watcher.join()
    assert any("its worker process died (killed by SIGKILL" in line for line in lines), lines
    assert [v["status"] for v in two["variants"]] == ["complete", "complete"]
    for slug in ("adam", "adam+ham"):
        assert fingerprint(load(tmp_path / "two" / f"{slug}.json")["runs"]) == \
            fingerprint(load(tmp_path / "one" / f"{slug}.json")["runs"])


def _safe_cmdline(process):
    try:
        return process.cmdline()
    except psutil.Error:
        return []
