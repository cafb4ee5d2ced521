"""ogbn-papers100M end to end on a fake in OGB's raw binary layout, read by the real path (the
on-disk layout, never OGB's in-memory loader), OGB's Evaluator, the time split; and --on-disk for
any node dataset."""
import dataclasses
import json
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from torch_geometric.utils import to_undirected

from pyg_ham.cli import main
from pyg_ham.datasets import load_dataset
from pyg_ham.datasets.ondisk import OnDiskFeatureStore, OnDiskGraphStore
from pyg_ham.errors import ConfigError, DatasetError
from pyg_ham.sampling import CSCGraph
from pyg_ham.train.config import ExperimentConfig
from pyg_ham.train.runner import run_experiment

sys.path.insert(0, str(Path(__file__).parent))
from fake_papers100m import write_fake_papers100m  # noqa: E402

FOLDER = ("ogb", "ogbn_papers100M")


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("PYG_HAM_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("PYG_HAM_OFFLINE", "1")


@pytest.fixture
def fake(tmp_path, monkeypatch):
    root = tmp_path / "data"
    info = write_fake_papers100m(root.joinpath(*FOLDER), num_nodes=600, num_edges=3000, labelled=0.5)
    import ogb.nodeproppred as nodeprop

    def refuse(*a, **k):
        raise AssertionError("OGB's in-memory loader must not be used for ogbn-papers100M")

    monkeypatch.setattr(nodeprop, "PygNodePropPredDataset", refuse)
    return root, info


def test_fake_papers100m_loads_through_the_on_disk_layout(fake):
    root, info = fake
    task = load_dataset("ogbn-papers100M", root=root)
    fs, gs = task.stores
    assert isinstance(fs, OnDiskFeatureStore) and isinstance(gs, OnDiskGraphStore)
    assert (task.num_nodes, task.num_features, task.num_classes, task.metric) == (600, 8, 172, "acc")
    assert torch.equal(task.data.y, torch.from_numpy(info["y"]))  # NaN -> -1
    split = task.split(0)
    for k in ("train", "valid", "test"):
        assert torch.equal(split[k], torch.from_numpy(info[f"split_{k}"]))
    assert torch.equal(fs.get_tensor(group_name=None, attr_name="x", index=None), torch.from_numpy(info["x"]))
    # the graph, made undirected: PyG's to_undirected of the raw edges
    ref = CSCGraph.from_edge_index(to_undirected(torch.from_numpy(info["edge_index"]), num_nodes=600), 600)
    assert torch.equal(gs.colptr, ref.colptr) and torch.equal(gs.row.long(), ref.row)
    assert gs.row.dtype == torch.int32
    layout = root.joinpath(*FOLDER) / next(p.name for p in root.joinpath(*FOLDER).iterdir()
                                           if p.name.startswith("ondisk-"))
    assert json.loads((layout / "manifest.json").read_text())["meta"]["undirected"] is True
    directed = load_dataset("ogbn-papers100M", root=root, undirected=False)
    assert directed.stores[1].row.numel() == 3000 and "directed" in directed.description


def test_the_layout_is_built_once_and_reused(fake, monkeypatch):
    from pyg_ham.datasets import ogbn_raw

    root, _ = fake
    load_dataset("ogbn-papers100M", root=root)
    monkeypatch.setattr(ogbn_raw, "_build", lambda *a: pytest.fail("rebuilt"))
    task = load_dataset("ogbn-papers100M", root=root)
    assert task.num_nodes == 600


def test_ogbs_evaluator_scores_the_time_split(fake):
    root, info = fake
    task = load_dataset("ogbn-papers100M", root=root)
    test = task.split(0)["test"]
    y = torch.from_numpy(info["y"])[test]
    assert task.evaluate(torch.nn.functional.one_hot(y, 172).float(), test) == 1.0
    pred = y.clone()
    pred[::2] = (pred[::2] + 1) % 172
    assert task.evaluate(pred, test) == pytest.approx(float((pred == y).float().mean()))


def test_missing_raw_files_are_one_line_errors(tmp_path):
    with pytest.raises(DatasetError, match=r"no raw/data\.npz, raw/node-label\.npz, split/time/train\.csv\.gz"):
        load_dataset("ogbn-papers100M", root=tmp_path)


def test_papers100m_recipe_trains_end_to_end_with_sampled_evaluation(fake, tmp_path):
    root, _ = fake
    out = tmp_path / "p.json"
    result = CliRunner().invoke(main, ["train", "-q", "-d", "ogbn-papers100M", "--root", str(root), "--epochs", "5",
                                       "--runs", "1", "--hidden", "16", "--fanout", "5,5", "--batch-size", "64",
                                       "--device", "cpu", "--out", str(out)], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    doc = json.loads(out.read_text())
    assert doc["config"]["recipe"] == "ogbn-papers100m-sage" and doc["config"]["eval_mode"] == "sampled"
    run = doc["runs"][0]
    assert run["evaluation"] == "sampled: fanout 5,5, 64 scored nodes per batch"
    assert run["history"][-1]["loss"] < run["history"][0]["loss"]
    assert doc["summary"]["test_mean"] > 0.3  # 10 learnable classes: chance is 0.1


def test_on_disk_needs_mini_batch_and_sampled_evaluation(fake):
    root, _ = fake
    for kw in ({"batch_size": None, "eval_mode": "full"}, {"batch_size": 64, "eval_mode": "layerwise"}):
        cfg = ExperimentConfig(dataset="ogbn-papers100M", root=str(root), epochs=1, quiet=True, device="cpu", **kw)
        with pytest.raises(ConfigError, match="served from its on-disk layout.*--eval-mode sampled"):
            run_experiment(cfg)
    with pytest.raises(ConfigError, match="on_disk is for node datasets"):
        load_dataset("MUTAG", on_disk=True)


def test_on_disk_synthetic_trains_as_in_memory_with_every_neighbour(tmp_path):
    """--on-disk for any node dataset: the layout is written once (in the cache for generated data)
    and, with every neighbour sampled, training follows the in-memory run (the batches hold the
    same nodes; only their order, and so the float rounding, differs)."""
    cfg = ExperimentConfig(dataset="synthetic", dataset_options={"num_nodes": 300}, model="sage", hidden=16,
                           norm=None, dropout=0.0, batch_size=64, fanout=[-1, -1], eval_mode="sampled",
                           epochs=3, quiet=True, device="cpu")
    mem = run_experiment(cfg)
    disk = run_experiment(dataclasses.replace(cfg, on_disk=True))
    names = sorted(p.name for p in (tmp_path / "cache" / "ondisk").iterdir())
    assert len(names) == 2 and names[0].startswith(".synthetic-") and names[1].startswith("synthetic-")
    a, b = mem["runs"][0]["history"], disk["runs"][0]["history"]
    for ha, hb in zip(a, b):
        assert ha["loss"] == pytest.approx(hb["loss"], rel=1e-4)
    assert "served from the on-disk layout" in load_dataset("synthetic", num_nodes=300, on_disk=True).description
    assert np.isclose(mem["summary"]["test_mean"], disk["summary"]["test_mean"], atol=0.02)


def _load_in_child(root, out):
    task = load_dataset("ogbn-papers100M", root=root)
    Path(out).write_text(str(int(task.stores[1].row.numel())))


def test_two_ranks_loading_at_once_build_the_layout_once(fake, tmp_path, monkeypatch):
    """Two processes (ranks, --jobs workers) loading ogbn-papers100M at once: one builds, the other
    waits on the lock and maps the finished layout."""
    import multiprocessing as mp
    import os
    import time

    from pyg_ham.datasets import ogbn_raw

    root, _ = fake
    log, real = tmp_path / "builds.log", ogbn_raw._build

    def logged(*args):
        with open(log, "a") as f:
            f.write(f"{os.getpid()}\n")
        time.sleep(0.3)  # long enough for the other process to reach the lock
        real(*args)

    monkeypatch.setattr(ogbn_raw, "_build", logged)
    ctx = mp.get_context("fork")
    procs = [ctx.Process(target=_load_in_child, args=(root, tmp_path / f"n{i}")) for i in range(2)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
        if p.is_alive():
            p.kill()
    assert [p.exitcode for p in procs] == [0, 0]
    assert len(log.read_text().split()) == 1
    assert (tmp_path / "n0").read_text() == (tmp_path / "n1").read_text() != "0"
