"""Training in 2 CPU processes (gloo on 127.0.0.1): DDP + HAM, torchrun CLI runs, resume, errors."""
import importlib.util
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
pytestmark = pytest.mark.skipif(not torch.distributed.is_available(), reason="torch.distributed unavailable")


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _env(**extra):
    path = os.pathsep.join([str(REPO), str(HERE), os.environ.get("PYTHONPATH", "")])
    env = {k: v for k, v in os.environ.items() if k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_PORT")}
    return {**env, "PYTHONPATH": path, "OMP_NUM_THREADS": "1", **extra}


def _module(name):
    spec = importlib.util.spec_from_file_location(name, HERE / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_ddp_ham_ranks_identical_and_equal_to_one_process(tmp_path):
    out, port = tmp_path / "ddp.pt", _free_port()
    procs = [subprocess.Popen([sys.executable, str(HERE / "ddp_worker.py"), str(r), "2", str(port), str(out)],
                              env=_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
             for r in range(2)]
    try:
        worker = _module("ddp_worker")  # the one-process reference on the whole global batch
        expected = {}
        for case in worker.CASES:
            model = worker.build()
            opt = worker.optimizer(model, case)
            sparsifier = worker.sparsify(model, opt, case)
            worker.train(model, model, opt, slice(None), sparsifier)
            expected[case] = ([p.detach() for p in model.parameters()], sparsifier.masks if sparsifier else None)
        logs = [p.communicate(timeout=120)[0] for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
    assert all(p.returncode == 0 for p in procs), "\n".join(log[-2000:] for log in logs)
    ranks = torch.load(out)
    deviation = {}
    for case, (params, masks) in expected.items():
        r0, r1 = ranks[case]
        for a, b in zip(r0["params"] + r0["buffers"], r1["params"] + r1["buffers"]):
            assert torch.equal(a, b), f"{case}: ranks differ"  # bit-identical replicas
        if masks is None:
            deviation[case] = max(float((a - b).abs().max()) for a, b in zip(r0["params"], params))
        else:  # (weights: a row pruned to zero gives a zero-variance BatchNorm channel, whose rounding
            # decides ReLU's gate at 0, so only the masks are compared with one process here)
            assert r0["masks"].keys() == r1["masks"].keys() == masks.keys()
            for n in masks:
                assert torch.equal(r0["masks"][n], r1["masks"][n])  # the same entries pruned on every rank
                assert torch.equal(r0["masks"][n], masks[n])
                assert 0 < float(r0["masks"][n].float().mean()) < 1
    # equal to one process within the rounding plain DDP shows (SGD: summing in another order)
    assert deviation["plain"] <= 1e-6, deviation
    assert deviation["ham"] <= max(10 * deviation["plain"], 1e-6), deviation
    # SAM: both passes' gradients all-reduced (else the ranks' perturbations, and then their replicas,
    # would differ) and equal to one process taking both gradients on the whole global batch
    assert deviation["sam+ham"] <= max(10 * deviation["plain"], 1e-6), deviation
    assert not torch.allclose(ranks["sam+ham"][0]["params"][0], ranks["ham"][0]["params"][0], atol=1e-4)
    # and HAM acted: its weights are not the plain ones
    assert not torch.allclose(ranks["ham"][0]["params"][0], ranks["plain"][0]["params"][0], atol=1e-3)
    print(f"max deviation from one process: {deviation}")
    # the graph memory-mapped from one file: same values, each of the 2 ranks charged about half of it
    for rank in ranks["shared"]:
        assert rank["same"]
        assert rank["pss"] < 0.7 * rank["bytes"], rank  # a private copy would be charged fully
    # layer-wise evaluation's rows: one buffer per machine, other machines' rows broadcast into it
    ids = torch.arange(10, dtype=torch.float32)
    expected = torch.stack([ids, ids + 0.5, ids + 0.25], 1)
    for machines in ("one", "two"):
        for rows in ranks[f"rows-{machines}"]:
            assert torch.equal(rows, expected), (machines, rows)


NODE_ARGS = ["train", "-d", "synthetic", "-o", "num_nodes=400", "--model", "sage", "--hidden", "16", "--norm", "none",
             "--dropout", "0", "--batch-size", "48", "--fanout=-1,-1", "--device", "cpu", "--quiet", "--seed", "3"]


def _torchrun(args, nproc=2, node=None, port=None):
    """``torchrun ... -m pyg_ham ARGS``: one machine, or node ``(rank, of)`` of a static multi-node job."""
    nodes = [] if node is None else ["--nnodes", str(node[1]), "--node-rank", str(node[0])]
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", str(nproc), *nodes, "--master-addr",
           "127.0.0.1", "--master-port", str(port or _free_port()), "-m", "pyg_ham", *args]
    return subprocess.Popen(cmd, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)


def _finish(proc, timeout=180):
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, err = proc.communicate()
        raise AssertionError(f"timed out:\n{err[-3000:]}") from None
    return proc.returncode, out, err


def _one_process(args):
    from click.testing import CliRunner

    from pyg_ham.cli import main

    result = CliRunner().invoke(main, args, catch_exceptions=False)
    assert result.exit_code == 0, result.output


def _assert_same_runs(doc, ref, rtol):
    assert len(doc["runs"]) == len(ref["runs"])
    for run, one in zip(doc["runs"], ref["runs"]):
        assert [h["epoch"] for h in run["history"]] == [h["epoch"] for h in one["history"]]
        torch.testing.assert_close(torch.tensor([h["loss"] for h in run["history"]]),
                                   torch.tensor([h["loss"] for h in one["history"]]), rtol=rtol, atol=1e-6)
        for key in ("valid", "test"):
            assert abs(run[key] - one[key]) <= 1e-6, (key, run[key], one[key])


def test_torchrun_node_minibatch_two_nodes_matches_one_process_and_resumes_also_after_a_killed_rank(tmp_path):
    two, one, resumed = tmp_path / "two.json", tmp_path / "one.json", tmp_path / "resumed.json"
    args = NODE_ARGS + ["--epochs", "20", "--optimizer", "sgd", "--lr", "0.05", "--alpha", "2"]
    # two "machines" on 127.0.0.1 (torchrun --nnodes 2 --node-rank 0/1), one process each
    port = _free_port()
    nodes = [_torchrun(args + ["--out", str(two)], nproc=1, node=(r, 2), port=port) for r in range(2)]
    _one_process(args + ["--out", str(one)])  # while the two ranks train
    (code0, out, err), (code1, out1, err1) = [_finish(p) for p in nodes]
    assert code0 == code1 == 0, err[-3000:] + err1[-3000:]
    assert (out + out1).count("synthetic sage") == 1  # the summary once (rank 0)
    doc, ref = json.loads(two.read_text()), json.loads(one.read_text())
    assert doc["provenance"]["world_size"] == 2 and doc["provenance"]["backend"] == "gloo"
    assert doc["provenance"]["devices"] == ["cpu", "cpu"] and ref["provenance"]["world_size"] == 1
    # fanout -1 and no BatchNorm/dropout: the global batch is one process's, up to the order of sums
    _assert_same_runs(doc, ref, rtol=1e-4)

    # 2 processes on one machine, interrupted after an epoch's checkpoint, then --resume: the same
    # run as the uninterrupted one, exactly
    proc = _torchrun(args + ["--out", str(resumed)])
    ckpt = resumed.with_suffix(".ckpt") / "run0.pt"
    deadline = time.time() + 120
    while not ckpt.exists() and time.time() < deadline and proc.poll() is None:
        time.sleep(0.05)
    assert proc.poll() is None, "finished before it could be interrupted"
    os.killpg(proc.pid, signal.SIGTERM)
    _finish(proc)
    assert ckpt.exists() and not resumed.exists()
    stopped_at = torch.load(ckpt, weights_only=False)["epoch"]
    assert 1 <= stopped_at < 20
    code, _, err = _finish(_torchrun(args + ["--out", str(resumed), "--resume"]))
    assert code == 0, err[-3000:]
    again = json.loads(resumed.read_text())
    assert [h["loss"] for h in again["runs"][0]["history"]] == [h["loss"] for h in doc["runs"][0]["history"]]
    assert again["runs"][0]["test"] == doc["runs"][0]["test"]
    _a_killed_rank_ends_the_job_with_one_line_and_resume_equals(args, doc, tmp_path / "killed.json")


def _a_killed_rank_ends_the_job_with_one_line_and_resume_equals(args, doc, killed):
    """``--nproc 2``, rank 1 SIGKILLed mid-run (as the OOM killer does: it cannot say a word): the
    job ends within 60 s with the launcher's one line, and --resume gives the uninterrupted :obj:`doc`."""
    proc = _nproc2(args + ["--out", str(killed)])
    ckpt = killed.with_suffix(".ckpt") / "run0.pt"
    victim = _rank(proc, 1)
    deadline = time.time() + 120
    while not ckpt.exists() and time.time() < deadline and proc.poll() is None:
        time.sleep(0.05)
    assert proc.poll() is None, "finished before it could be killed"
    victim.kill()
    t0 = time.time()
    code, _, err = _finish(proc, timeout=120)
    assert time.time() - t0 < 60 and code == 1
    lines = [line for line in err.splitlines() if line.strip() and "Warning" not in line]
    assert lines == [f"Error: rank 1 of 2 was killed by SIGKILL (out of memory, or killed); the other ranks were "
                     f"stopped; the interrupted run's last epoch is in {ckpt.parent}/; rerun with --resume to "
                     f"continue"], err[-3000:]
    assert 1 <= torch.load(ckpt, weights_only=False)["epoch"] < 20 and not killed.exists()
    assert not list(killed.parent.rglob("*.tmp"))
    code, _, err = _finish(_nproc2(args + ["--out", str(killed), "--resume"]))
    assert code == 0, err[-3000:]
    again = json.loads(killed.read_text())["runs"][0]
    assert [h["loss"] for h in again["history"]] == [h["loss"] for h in doc["runs"][0]["history"]]
    assert (again["valid"], again["test"]) == (doc["runs"][0]["valid"], doc["runs"][0]["test"])


def test_torchrun_layerwise_evaluation_is_split_over_ranks_and_matches_one_process(tmp_path):
    """eval_mode layerwise in 2 processes: each rank computes half of the nodes per layer (gathered
    between layers); SAGE's per-node inference does not depend on the batch, so the scores are one
    process's."""
    two, one = tmp_path / "two.json", tmp_path / "one.json"
    args = NODE_ARGS + ["--epochs", "4", "--optimizer", "sgd", "--lr", "0.05", "--alpha", "2", "--fanout=-1,-1,-1",
                        "--layers", "3", "--eval-mode", "layerwise"]
    proc = _torchrun(args + ["--out", str(two)])
    _one_process(args + ["--out", str(one)])
    code, _, err = _finish(proc)
    assert code == 0, err[-3000:]
    _assert_same_runs(json.loads(two.read_text()), json.loads(one.read_text()), rtol=1e-4)


def test_torchrun_graph_training_matches_one_process(staged, tmp_path):
    root = staged("TUDataset", "MUTAG")
    two, one = tmp_path / "two.json", tmp_path / "one.json"
    args = ["train", "-d", "MUTAG", "--root", str(root), "--folds", "2", "--epochs", "3", "--norm", "none",
            "--dropout", "0", "--hidden", "16", "--batch-size", "32", "--device", "cpu", "--quiet"]
    proc = _torchrun(args + ["--out", str(two)])
    _one_process(args + ["--out", str(one)])
    code, out, err = _finish(proc)
    assert code == 0, err[-3000:]
    doc, ref = json.loads(two.read_text()), json.loads(one.read_text())
    assert doc["provenance"]["world_size"] == 2
    # 84 training graphs per fold (even: no padding); Adam (the recipe's) amplifies the rounding of the sums
    _assert_same_runs(doc, ref, rtol=1e-3)
    assert doc["summary"]["test_mean"] == pytest.approx(ref["summary"]["test_mean"], abs=1e-6)


def test_a_failing_rank_ends_the_job_with_one_line(tmp_path):
    # rank 1 raises in its third training step; the launcher (pyg-ham train --nproc) ends both ranks
    code = ("import sys; from pyg_ham.train.distributed import launch; "
            f"sys.exit(launch(2, {NODE_ARGS + ['--epochs', '50']!r}, module='failing_rank'))")
    t0 = time.time()
    proc = subprocess.Popen([sys.executable, "-c", code], env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, start_new_session=True)
    code, _, err = _finish(proc, timeout=120)  # on a timeout every rank is killed with the launcher
    assert code == 1, err[-3000:]
    lines = [line for line in err.splitlines() if line.strip() and "Warning" not in line]
    assert lines == ["Error: rank 1 of 2: RuntimeError: rank 1 failed on purpose at step 3"], err[-3000:]
    assert time.time() - t0 < 60


def test_full_batch_node_training_in_two_processes_is_refused():
    from click.testing import CliRunner

    from pyg_ham.cli import main

    result = CliRunner().invoke(main, ["train", "-o", "num_nodes=100", "--nproc", "2", "--epochs", "1"])
    assert result.exit_code == 2
    assert result.output.strip().splitlines()[-1].startswith("Error: full-batch node training in 2 processes")


@pytest.mark.parametrize("command", ["train", "compare"])
@pytest.mark.parametrize("setting, message", [
    (["-o", "num_nodes=100", "--batch-size", "20", "--jobs", "2"], "--jobs runs independent runs"),
    (["-o", "num_nodes=100"], "full-batch node training in 2 processes"),
    (["--dataset", "synthetic-mag"], "heterogeneous node training runs in one process only"),
])
def test_settings_that_cannot_run_under_torchrun_are_refused_before_the_group_starts(
        command, setting, message, monkeypatch, tmp_path):
    """As a torchrun rank (WORLD_SIZE=2) but with no process group: each rank refuses with one line
    before anything starts (a process group would wait for the other rank forever)."""
    from click.testing import CliRunner

    from pyg_ham.cli import main

    for name, value in {"WORLD_SIZE": "2", "RANK": "0", "LOCAL_RANK": "0", "MASTER_ADDR": "127.0.0.1",
                        "MASTER_PORT": "1"}.items():
        monkeypatch.setenv(name, value)
    out = ["--out", str(tmp_path / "r.json")] if command == "train" else ["--out", str(tmp_path / "cmp")]
    result = CliRunner().invoke(main, [command, *setting, "--epochs", "1", *out])
    assert result.exit_code == 2, result.output
    assert result.output.strip().splitlines()[-1].startswith("Error: "), result.output
    assert message in result.output.strip().splitlines()[-1]
    assert not torch.distributed.is_initialized() and not list(tmp_path.iterdir())


def test_torchrun_vision_trains_with_synchronised_batchnorm(tmp_path):
    out = tmp_path / "digits.json"
    code, stdout, err = _finish(_torchrun(["vision", "--epochs", "2", "--quiet", "--out", str(out)]))
    assert code == 0, err[-3000:]
    assert stdout.count("digits cnn") == 1
    doc = json.loads(out.read_text())
    assert doc["provenance"]["world_size"] == 2 and len(doc["runs"]) == 1
    # the CNN's BatchNorm2d layers ran synchronised (CPUSyncBatchNorm) and the model learned
    # (one process reaches 0.75 in 2 epochs; chance is 0.1)
    assert doc["runs"][0]["test"] > 0.5


def test_torchrun_sweep_writes_and_reports_once(tmp_path):
    out = tmp_path / "sweep"
    args = ["sweep", "-o", "num_nodes=300", "--model", "sage", "--hidden", "8", "--norm", "none", "--batch-size",
            "64", "--fanout", "5,5", "--epochs", "2", "--runs", "1", "--quiet", "--device", "cpu",
            "--alphas", "20", "--betas", "0.001", "--out", str(out)]
    code, stdout, err = _finish(_torchrun(args))
    assert code == 0, err[-3000:]
    assert stdout.count("Next:") == 1  # rank 0 alone prints the table
    doc = json.loads((out / "sweep.json").read_text())
    assert (out / "best.yaml").exists() and (out / "config.yaml").exists() and doc["variants"]


def _fake_gpus(monkeypatch, count):
    """This process sees :obj:`count` CUDA devices (nothing may start: launch fails the test)."""
    from pyg_ham.train import distributed

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: count)
    monkeypatch.setattr(distributed, "launch", lambda *a, **k: pytest.fail("processes were started"))
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)


@pytest.mark.parametrize("setting, message", [
    (["--device", "cuda"], "2 processes on this machine need one CUDA device each, but 1 is visible; start at most 1 "
                           "(--nproc 1), or train on the CPU (--device cpu)"),
    (["--device", "auto"], "2 processes on this machine need one CUDA device each, but 1 is visible"),
    (["--device", "cuda:0"], "device cuda:0 would put all 2 processes on one GPU; use --device cuda"),
    (["--devices", "0"], "--devices 0 names 1 CUDA device(s) for 2 processes on this machine; give one per process "
                         "(e.g. --devices 0,1) or start 1 (--nproc 1)"),
])
def test_more_processes_than_gpus_are_refused_before_any_process_starts(setting, message, monkeypatch, tmp_path):
    from click.testing import CliRunner

    from pyg_ham.cli import main

    _fake_gpus(monkeypatch, 1)
    result = CliRunner().invoke(main, NODE_ARGS[:-6] + ["--nproc", "2", "--epochs", "1", *setting,
                                                        "--out", str(tmp_path / "r.json")])
    assert result.exit_code == 2, result.output
    lines = [line for line in result.output.strip().splitlines() if not line.startswith("recipe:")]
    assert len(lines) == 1 and lines[0].startswith(f"Error: {message}"), result.output
    assert not list(tmp_path.iterdir())


def test_a_torchrun_rank_with_too_few_gpus_refuses_before_the_group_starts(monkeypatch, tmp_path):
    from click.testing import CliRunner

    from pyg_ham.cli import main

    _fake_gpus(monkeypatch, 1)
    for name, value in {"WORLD_SIZE": "4", "LOCAL_WORLD_SIZE": "2", "RANK": "0", "LOCAL_RANK": "0",
                        "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": "1", "CUDA_VISIBLE_DEVICES": "3"}.items():
        monkeypatch.setenv(name, value)
    result = CliRunner().invoke(main, NODE_ARGS[:-6] + ["--epochs", "1", "--device", "cuda", "--out",
                                                        str(tmp_path / "r.json")])
    assert result.exit_code == 2, result.output
    assert result.output.strip().splitlines()[-1] == (
        "Error: rank 0 of 4: 2 processes on this machine need one CUDA device each, but 1 is visible "
        "(CUDA_VISIBLE_DEVICES=3); start at most 1 (--nproc 1), or train on the CPU (--device cpu)")
    assert not torch.distributed.is_initialized() and not list(tmp_path.iterdir())


def test_devices_give_each_process_its_gpu(monkeypatch):
    from pyg_ham.train import distributed
    from pyg_ham.train.cli import config_from_cli

    _fake_gpus(monkeypatch, 8)
    cfg = config_from_cli(None, nproc=2, devices=[3, 5], batch_size=48, dataset_options={"num_nodes": "100"})
    assert cfg.jobs == 1  # not two --jobs workers: two processes, one device each
    distributed.check_config(cfg, 2)  # accepted
    assert config_from_cli(None, devices=[3, 5]).jobs == 2  # in one process: one worker per device
    for local, expected in (("0", 3), ("1", 5)):
        monkeypatch.setenv("LOCAL_RANK", local)
        assert distributed._rank_device(torch.device("cuda"), cfg.devices) == torch.device("cuda", expected)


def _nproc2(args):
    """``pyg-ham ARGS --nproc 2``: the launcher in its own session (killed with it on a timeout)."""
    return subprocess.Popen([sys.executable, "-m", "pyg_ham", *args, "--nproc", "2"], env=_env(),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)


def _rank(launcher, rank, timeout=60):
    import psutil

    deadline = time.time() + timeout
    while time.time() < deadline:
        for child in psutil.Process(launcher.pid).children(recursive=True):
            try:
                if child.environ().get("RANK") == str(rank):
                    return child
            except psutil.Error:
                pass
        time.sleep(0.05)
    raise AssertionError(f"rank {rank} did not start")
