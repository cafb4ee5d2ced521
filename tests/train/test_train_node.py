"""Node classification end to end: synthetic graphs, Cora, the fake ogbn-arxiv, mini-batches."""
import dataclasses
import sys
from pathlib import Path

import pytest

from pyg_ham.train.config import ExperimentConfig
from pyg_ham.train.runner import run_experiment

sys.path.insert(0, str(Path(__file__).parents[1] / "datasets"))
from test_datasets_ogbn_and_errors import write_fake_arxiv  # noqa: E402


def small(**kw):
    base = dict(dataset="synthetic", dataset_options={"num_nodes": 400}, epochs=20, hidden=16, quiet=True)
    return ExperimentConfig(**{**base, **kw})


def test_synthetic_full_batch_learns_and_writes_json(tmp_path):
    doc = run_experiment(small(runs=2, out=str(tmp_path / "r.json")))
    assert doc["task"] == "node" and doc["summary"]["runs"] == 2 and doc["complete"]
    run = doc["runs"][0]
    assert run["history"][-1]["loss"] < run["history"][0]["loss"]
    assert doc["summary"]["test_mean"] > 0.5  # 5 classes: chance is 0.2
    assert [r["seed"] for r in doc["runs"]] == [0, 1]
    assert (tmp_path / "r.json").exists() and not (tmp_path / "r.ckpt").exists()


def test_minibatch_sampling_on_cora(staged):
    root = staged("Planetoid", "Cora")
    cfg = ExperimentConfig(dataset="Cora", root=str(root), model="sage", batch_size=64, fanout=[10, 5], epochs=8,
                           hidden=32, norm=None, quiet=True, runs=1)
    doc = run_experiment(cfg)
    assert doc["summary"]["test_mean"] > 0.6  # 7 classes; full-batch GCN reaches ~0.8


def test_runner_resume_skips_finished_runs(tmp_path, monkeypatch):
    out = tmp_path / "r.json"
    run_experiment(small(runs=2, out=str(out)))
    import pyg_ham.train.runner as runner

    def boom(*args, **kwargs):
        raise AssertionError("a finished run was trained again")

    monkeypatch.setattr(runner, "train_run", boom)
    doc = run_experiment(small(runs=2, out=str(out), resume=True))
    assert doc["summary"]["runs"] == 2


def test_fake_ogbn_arxiv_through_the_trainer(tmp_path):
    write_fake_arxiv(tmp_path / "data" / "ogb" / "ogbn_arxiv")
    cfg = ExperimentConfig(dataset="ogbn-arxiv", root=str(tmp_path / "data"), epochs=3, hidden=8, quiet=True)
    doc = run_experiment(cfg)
    assert doc["dataset"] == "ogbn-arxiv" and doc["metric"] == "acc" and 0 <= doc["summary"]["test_mean"] <= 1


def test_cora_gcn_reaches_published_accuracy(staged):
    """Kipf & Welling's GCN recipe: 81.5 published; Adam >= 0.79 over 3 seeds, HAM (defaults) >= 0.78."""
    root = staged("Planetoid", "Cora")
    cfg = ExperimentConfig(dataset="Cora", root=str(root), model="gcn", hidden=16, layers=2, dropout=0.5, norm=None,
                           lr=0.01, weight_decay=5e-4, epochs=200, runs=3, quiet=True, eval_train=False)
    base = run_experiment(cfg.replace(ham=False))
    ham = run_experiment(cfg.replace(ham=True))
    assert base["summary"]["test_mean"] >= 0.79
    assert ham["summary"]["test_mean"] >= 0.78


def test_layerwise_inference_equals_full_batch():
    """eval_mode="layerwise" runs PyG's BasicGNN.inference on pyg-ham's loader (no pyg-lib)."""
    import torch

    from pyg_ham.datasets import load_dataset
    from pyg_ham.models import build_node_model
    from pyg_ham.sampling import neighbor_loader

    task = load_dataset("synthetic", num_nodes=300)
    torch.manual_seed(0)
    model = build_node_model("sage", task.num_features, task.num_classes, hidden_channels=16, num_layers=2).eval()
    with torch.no_grad():
        full = model(task.data.x, task.data.edge_index)
        layerwise = model.inference(neighbor_loader(task.data, [-1], batch_size=64), progress_bar=False)
    torch.testing.assert_close(layerwise, full, rtol=1e-4, atol=1e-5)


def test_minibatch_resume_continues_exactly(tmp_path, monkeypatch):
    """A mini-batch run interrupted mid-epoch and resumed replays the same batches (shuffle order
    and neighbour samples) and losses as an uninterrupted run."""
    import torch

    import pyg_ham.train.common as common
    from pyg_ham.train.runner import load_task, train_run

    cfg = small(model="sage", batch_size=32, fanout=[5, 5], epochs=5, norm=None)
    task = load_task(cfg)
    spec = {"key": "run0", "seed": 0, "fields": {"run": 0}}
    expected = train_run(task, cfg, spec, torch.device("cpu"))

    per_epoch = -(-task.split(0)["train"].numel() // cfg.batch_size)
    real_update, steps = common.training_step, {"n": 0}

    def interrupting(*args, **kwargs):
        steps["n"] += 1
        if steps["n"] == 2 * per_epoch + 2:  # in the middle of epoch 3
            raise KeyboardInterrupt
        return real_update(*args, **kwargs)

    ckpt = tmp_path / "run.ckpt"
    monkeypatch.setattr(common, "training_step", interrupting)
    with pytest.raises(KeyboardInterrupt):
        train_run(task, cfg, spec, torch.device("cpu"), checkpoint=ckpt)
    monkeypatch.setattr(common, "training_step", real_update)
    torch.manual_seed(123)  # a fresh process: nothing may come from the global RNG left behind
    resumed = train_run(task, cfg, spec, torch.device("cpu"), checkpoint=ckpt, resume=True)
    assert [h["loss"] for h in resumed.history] == [h["loss"] for h in expected.history]
    assert resumed.test == expected.test


def test_minibatch_evaluation_runs_on_rank_zero_only(monkeypatch):
    """In several processes rank 0 alone predicts (its scores are broadcast by the engine); the
    other ranks run no forward pass at all during evaluation."""
    import torch

    from pyg_ham.train import distributed
    from pyg_ham.train.node import MiniBatchNodeTask
    from pyg_ham.train.runner import load_task

    cfg = small(model="sage", batch_size=32, fanout=[5, 5], norm=None)
    task = MiniBatchNodeTask(load_task(cfg), cfg, {"key": "run0", "seed": 0, "fields": {"run": 0}},
                             torch.device("cpu"))
    model = task.build_model().eval()
    calls = []
    model.register_forward_hook(lambda *args: calls.append(1))
    with torch.no_grad():
        on_rank0 = task.predict(model)
        assert len(calls) == 1 and set(on_rank0) == {"train", "valid", "test"}
        expected = model(task.data.x, task.data.edge_index)
        torch.testing.assert_close(on_rank0["test"][0], expected)
        monkeypatch.setattr(distributed, "rank", lambda: 1)
        calls.clear()
        assert task.predict(model) == {} and not calls


@pytest.mark.parametrize("jk", ["cat", "max", "last"])
def test_minibatch_training_with_jumping_knowledge(jk):
    """PyG's layer trimming (num_sampled_nodes_per_hop) does not support jumping knowledge other
    than "last": the mini-batch trainer then runs the model on the whole sampled subgraph."""
    doc = run_experiment(small(model="sage", batch_size=64, fanout=[5, 5], epochs=2, jk=jk, norm=None),
                         log=lambda m: None)
    assert len(doc["runs"][0]["history"]) == 2 and doc["runs"][0]["test"] > 0


def test_layerwise_evaluation_with_jumping_knowledge_is_refused():
    from pyg_ham.errors import ConfigError

    with pytest.raises(ConfigError, match="eval_mode 'layerwise'.*--jk"):
        run_experiment(small(model="sage", jk="cat", eval_mode="layerwise"), log=lambda m: None)


def test_split_layerwise_inference_computes_each_ranks_share_and_equals_pygs(monkeypatch):
    """Two ranks of one machine simulated by two threads (their shared buffer one NaN-filled tensor,
    the exchange a barrier): per layer each rank runs PyG's inference_per_layer on its contiguous
    half of the nodes only, writing its rows into the buffer, and rank 0 ends with what one
    process's BasicGNN.inference computes."""
    import threading

    import torch

    from pyg_ham.sampling import neighbor_loader
    from pyg_ham.train import distributed, machine
    from pyg_ham.train.node import MiniBatchNodeTask
    from pyg_ham.train.runner import load_task

    cfg = small(model="sage", batch_size=32, fanout=[5, 5, 5], layers=3, eval_mode="layerwise", norm=None)
    task = MiniBatchNodeTask(load_task(cfg), cfg, {"key": "run0", "seed": 0, "fields": {"run": 0}},
                             torch.device("cpu"))
    model = task.build_model().eval()
    with torch.no_grad():
        expected = model.inference(neighbor_loader(task.data, [-1], batch_size=64), progress_bar=False)

    local, barrier, rows = threading.local(), threading.Barrier(2), []
    real_layer = model.inference_per_layer

    def recording_layer(layer, x, edge_index, batch_size):
        rows.append((local.rank, layer, batch_size))
        return real_layer(layer, x, edge_index, batch_size)

    def shared_empty(shape, dtype):  # one tensor both "ranks" map
        barrier.wait()
        if local.rank == 0:
            buffers.append(torch.full(shape, float("nan"), dtype=dtype))
        barrier.wait()
        return buffers[-1]

    def complete_rows(out, ranges, device):  # one machine: nothing to exchange, a barrier
        assert ranges == [(0, n // 2), (n // 2, n)]
        barrier.wait()
        return out

    n, buffers = task.data.num_nodes, []
    monkeypatch.setattr(model, "inference_per_layer", recording_layer)
    monkeypatch.setattr(distributed, "world_size", lambda: 2)
    monkeypatch.setattr(distributed, "rank", lambda: local.rank)
    monkeypatch.setattr(machine, "shared_empty", shared_empty)
    monkeypatch.setattr(machine, "complete_rows", complete_rows)
    outputs = {}

    def rank_main(rank):
        local.rank = rank
        with torch.no_grad():
            outputs[rank] = task.predict(model)

    threads = [threading.Thread(target=rank_main, args=(r,)) for r in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert outputs[1] == {} and set(outputs[0]) == {"train", "valid", "test"}  # rank 0 alone scores
    torch.testing.assert_close(outputs[0]["test"][0], expected, rtol=1e-4, atol=1e-5)
    assert len(buffers) == 3  # one per layer
    for rank in range(2):
        for layer in range(3):
            assert sum(b for r, lay, b in rows if r == rank and lay == layer) == n // 2


def _sampled_and_full(cfg):
    import torch

    from pyg_ham.datasets import load_dataset
    from pyg_ham.train.engine import seed_everything
    from pyg_ham.train.task import task_kind

    task = load_dataset("synthetic", num_nodes=300)
    spec = {"key": "run0", "seed": 0, "fields": {"run": 0}}
    sampled = task_kind(task).create(task, cfg, spec, torch.device("cpu"))
    full_cfg = dataclasses.replace(cfg, eval_mode="full", eval_fanout=None)
    full = task_kind(task).create(task, full_cfg, spec, torch.device("cpu"))
    seed_everything(0)
    model = sampled.build_model().eval()
    return task, sampled, full, model


def test_sampled_evaluation_with_all_neighbours_equals_full_on_the_scored_nodes_only():
    """Two hops of every in-neighbour are each seed's whole receptive field (GraphSAGE, mean): sampled
    evaluation must give the whole-graph forward's outputs, for the scored nodes and no others."""
    import torch

    cfg = small(model="sage", layers=2, batch_size=32, fanout=[3, 2], eval_mode="sampled", eval_fanout=[-1, -1],
                norm=None, eval_train=False)
    task, sampled, full, model = _sampled_and_full(cfg)
    with torch.no_grad():
        a, b = sampled.predict(model), full.predict(model)
    assert set(a) == {"valid", "test"}
    for split in ("valid", "test"):
        pred, idx = a[split]
        assert pred.size(0) == idx.numel() < task.num_nodes  # one row per scored node
        torch.testing.assert_close(pred, b[split][0][idx], rtol=1e-5, atol=1e-5)
        assert sampled.score(*a[split]) == full.score(*b[split])
    assert sampled.record()["evaluation"] == "sampled: fanout -1,-1, 32 scored nodes per batch"
    assert full.record()["evaluation"] == "full neighbourhood (whole graph)"


def test_sampled_evaluation_with_the_training_fanout_is_reproducible_and_differs_from_full():
    """Without eval_fanout, the training fanout: the same samples at every evaluation (re-seeded), and
    not the full-neighbourhood outputs (two neighbours are not all)."""
    import torch

    cfg = small(model="sage", layers=2, batch_size=32, fanout=[2, 2], eval_mode="sampled", norm=None,
                eval_train=False)
    _, sampled, full, model = _sampled_and_full(cfg)
    with torch.no_grad():
        first, second, b = sampled.predict(model), sampled.predict(model), full.predict(model)
    assert torch.equal(first["test"][0], second["test"][0])  # re-seeded: the same samples each time
    assert not torch.allclose(first["test"][0], b["test"][0][first["test"][1]])  # two neighbours are not all
    assert sampled.record()["evaluation"] == "sampled: fanout 2,2, 32 scored nodes per batch"


def test_sampled_evaluation_trains_end_to_end():
    doc = run_experiment(small(model="sage", batch_size=64, fanout=[5, 5], eval_mode="sampled", epochs=5,
                               eval_fanout=[10, 10]))
    assert doc["complete"] and 0 <= doc["summary"]["test_mean"] <= 1
    assert doc["runs"][0]["evaluation"] == "sampled: fanout 10,10, 64 scored nodes per batch"


def test_node_run_is_the_same_with_and_without_prefetch():
    """Through the real trainer path (run_experiment, mini-batch GraphSAGE with dropout): every
    epoch's loss and score is identical, and the record says which way it ran."""
    cfg = small(dataset_options={"num_nodes": 200}, model="sage", hidden=8, batch_size=32, fanout=[3, 3], epochs=2,
                device="cpu", prefetch=True)
    on = run_experiment(cfg)["runs"][0]
    off = run_experiment(dataclasses.replace(cfg, prefetch=False))["runs"][0]
    assert on["prefetch"] is True and off["prefetch"] is False
    assert [h["loss"] for h in on["history"]] == [h["loss"] for h in off["history"]]
    assert (on["valid"], on["test"]) == (off["valid"], off["test"])
