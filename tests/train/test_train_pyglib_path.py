"""Mini-batch node training on PyG's NeighborLoader path (taken when pyg-lib is installed and the
graph is on the CPU), with pyg-lib's sampling kernel replaced by a brute-force stand-in here."""
import pytest
import torch
import torch_geometric.typing

from pyg_ham.train.config import ExperimentConfig
from pyg_ham.train.runner import run_experiment


def brute_force_neighbor_sample(colptr, row, seed, num_neighbors, node_time, edge_time, seed_time, edge_weight,
                                csc, replace, directed, disjoint, temporal_strategy, return_edge_id):
    """pyg-lib's ``neighbor_sample`` (CSC, without replacement, directional) in plain Python:
    returns (row, col, node, edge, num_sampled_nodes, num_sampled_edges)."""
    assert csc and directed and not replace and not disjoint
    nodes = seed.tolist()
    local = {n: i for i, n in enumerate(nodes)}
    rows, cols, edges, per_hop_nodes, per_hop_edges = [], [], [], [len(nodes)], []
    frontier = list(nodes)
    for k in num_neighbors:
        new, count = [], 0
        for dst in frontier:
            start, end = int(colptr[dst]), int(colptr[dst + 1])
            picks = torch.randperm(end - start)[:k] if k >= 0 else torch.arange(end - start)
            for e in (start + picks).tolist():
                src = int(row[e])
                if src not in local:
                    local[src] = len(nodes)
                    nodes.append(src)
                    new.append(src)
                rows.append(local[src])
                cols.append(local[dst])
                edges.append(e)
                count += 1
        per_hop_nodes.append(len(new))
        per_hop_edges.append(count)
        frontier = new
    t = lambda v: torch.tensor(v, dtype=torch.long)  # noqa: E731
    return t(rows), t(cols), t(nodes), t(edges), per_hop_nodes, per_hop_edges


@pytest.fixture
def pyg_lib_stand_in(monkeypatch):
    calls = []

    def sample(*args):
        calls.append(args)
        return brute_force_neighbor_sample(*args)

    monkeypatch.setattr(torch_geometric.typing, "WITH_PYG_LIB", True)
    monkeypatch.setattr(torch_geometric.typing, "WITH_EDGE_TIME_NEIGHBOR_SAMPLE", True)
    monkeypatch.setattr(torch_geometric.typing, "WITH_WEIGHTED_NEIGHBOR_SAMPLE", True)
    monkeypatch.setattr(torch.ops.pyg, "neighbor_sample", sample, raising=False)
    return calls


def test_minibatch_training_runs_on_pygs_loader(pyg_lib_stand_in, tmp_path):
    cfg = ExperimentConfig(dataset="synthetic", dataset_options={"num_nodes": 300}, model="sage", hidden=16,
                           batch_size=64, fanout=[5, 3], epochs=8, runs=1, norm=None, quiet=True, device="cpu")
    doc = run_experiment(cfg)
    assert pyg_lib_stand_in  # PyG's loader sampled every batch
    train = 180  # 60 % of 300
    assert len(pyg_lib_stand_in) >= 8 * -(-train // 64)
    run = doc["runs"][0]
    assert run["history"][-1]["loss"] < run["history"][0]["loss"]
    assert doc["summary"]["test_mean"] > 0.5  # 5 classes: chance is 0.2

    # resume is exact on this path too: the shuffle stream and the global RNG are checkpointed
    out = tmp_path / "r.json"
    again = run_experiment(cfg.replace(out=str(out)))
    assert [h["loss"] for h in again["runs"][0]["history"]] == [h["loss"] for h in run["history"]]
