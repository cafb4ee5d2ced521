"""Graph datasets: TU (from shared/data) and OGB molecules (shared ogbg-molbace and
a small fake ogbg-mol* folder written here in OGB's raw layout)."""
import gzip
from pathlib import Path

import numpy as np
import pytest
import torch
from torch_geometric.utils import degree

from pyg_ham.datasets import GraphTask, load_dataset
from pyg_ham.errors import ConfigError


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("PYG_HAM_CACHE", str(tmp_path / "cache"))


def test_mutag(staged):
    task = load_dataset("mutag", root=staged("TUDataset", "MUTAG"))
    assert isinstance(task, GraphTask) and task.name == "MUTAG" and len(task) == 188
    assert task.num_classes == 2 and task.num_features == 7          # 7 atom types
    assert torch.bincount(task.labels).tolist() == [63, 125]
    assert task.metric == "acc" and task.task_type == "multiclass" and not task.is_ogb_mol
    assert task.default_protocol == "cv"
    assert sum(g.num_nodes for g in task.dataset) == 3371
    assert sum(g.num_edges for g in task.dataset) == 7442
    with pytest.raises(ConfigError):
        task.official_split()
    folds = task.folds(num_folds=10, seed=0)
    assert len(folds) == 10 and task.splits()[3]["test"].tolist() == folds[3]["test"].tolist()
    logits = torch.nn.functional.one_hot(task.labels, 2).float()
    assert task.evaluate(logits, task.labels) == 1.0
    assert task.evaluate(logits.flip(1), task.labels) == 0.0


def test_imdb_binary_gets_one_hot_degree_features(staged):
    task = load_dataset("IMDB-BINARY", root=staged("TUDataset", "IMDB-BINARY"))
    assert len(task) == 1000 and task.num_classes == 2
    assert torch.bincount(task.labels).tolist() == [500, 500]
    # independent maximum degree over all graphs
    max_deg = max(int(degree(g.edge_index[0], g.num_nodes).max()) for g in task.dataset)
    assert task.num_features == max_deg + 1
    for i in (0, 17, 999):
        g = task.dataset[i]
        assert g.x.shape == (g.num_nodes, max_deg + 1)
        assert torch.equal(g.x.argmax(1), degree(g.edge_index[0], g.num_nodes).long())
        assert torch.all(g.x.sum(1) == 1)


def test_degree_cap(staged):
    task = load_dataset("IMDB-BINARY", root=staged("TUDataset", "IMDB-BINARY"), degree_cap=20)
    assert task.num_features == 21
    xs = torch.cat([task.dataset[i].x for i in range(50)])
    assert torch.all(xs.sum(1) == 1)
    g = task.dataset[0]
    assert torch.equal(g.x.argmax(1), degree(g.edge_index[0], g.num_nodes).long().clamp(max=20))


def test_enzymes_uses_node_attributes(staged):
    root = staged("TUDataset", "ENZYMES")
    task = load_dataset("ENZYMES", root=root)
    assert len(task) == 600 and task.num_classes == 6
    assert torch.bincount(task.labels).tolist() == [100] * 6
    assert task.num_features == 3 + 18                               # 3 labels + 18 attributes
    assert load_dataset("ENZYMES", root=root, use_node_attr=False).num_features == 3


def test_ogbg_molbace_official_split(staged):
    task = load_dataset("ogbg-molbace", root=staged("ogb", "ogbg_molbace"))
    assert len(task) == 1513 and task.is_ogb_mol and task.default_protocol == "official"
    assert (task.num_features, task.edge_dim, task.num_classes) == (9, 3, 1)
    assert (task.metric, task.task_type, task.loss_fn) == ("rocauc", "binary", "bce")
    split = task.official_split()
    assert [split[k].numel() for k in ("train", "valid", "test")] == [1210, 151, 152]
    assert torch.equal(torch.cat(list(split.values())).sort().values, torch.arange(1513))
    y = task.dataset._data.y[split["test"]]
    assert task.evaluate(y.float(), y) == pytest.approx(1.0)
    assert task.evaluate(-y.float(), y) == pytest.approx(0.0)
    with pytest.raises(ConfigError):
        task.folds()


def test_ogbg_molesol_is_regression(staged):
    task = load_dataset("ogbg-molesol", root=staged("ogb", "ogbg_molesol"))
    assert len(task) == 1128 and task.task_type == "regression" and task.metric == "rmse"
    assert not task.higher_is_better and task.loss_fn == "mse"
    y = task.dataset._data.y[task.official_split()["test"]]
    assert task.evaluate(y.clone(), y) == pytest.approx(0.0)
    assert task.evaluate(y + 2.0, y) == pytest.approx(2.0, rel=1e-5)


def _write_csv_gz(path: Path, rows: np.ndarray, fmt: str = "%d") -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    rows = np.asarray(rows)
    rows = rows.reshape(len(rows), -1)
    with gzip.open(path, "wt") as f:
        np.savetxt(f, rows, fmt=fmt, delimiter=",")


def write_fake_ogbg_mol(folder: Path, num_graphs: int = 30, seed: int = 0) -> dict:
    """Writes a tiny molecule dataset in OGB's raw layout (used as ogbg-molbace)."""
    rng = np.random.default_rng(seed)
    nodes = rng.integers(3, 8, num_graphs)
    edges, n_edges = [], []
    for n in nodes:                               # a path graph per molecule (local indices)
        e = np.stack([np.arange(n - 1), np.arange(1, n)], 1)
        edges.append(e)
        n_edges.append(len(e))
    edges = np.concatenate(edges)
    raw = folder / "raw"
    _write_csv_gz(raw / "edge.csv.gz", edges)
    _write_csv_gz(raw / "num-node-list.csv.gz", nodes)
    _write_csv_gz(raw / "num-edge-list.csv.gz", np.array(n_edges))
    _write_csv_gz(raw / "node-feat.csv.gz", rng.integers(0, 5, (int(nodes.sum()), 9)))
    _write_csv_gz(raw / "edge-feat.csv.gz", rng.integers(0, 3, (len(edges), 3)))
    labels = np.arange(num_graphs) % 2
    _write_csv_gz(raw / "graph-label.csv.gz", labels)
    perm = rng.permutation(num_graphs)
    split = {"train": perm[:20], "valid": perm[20:25], "test": perm[25:]}
    for key, idx in split.items():
        _write_csv_gz(folder / "split" / "scaffold" / f"{key}.csv.gz", idx)
    (folder / "RELEASE_v1.txt").write_text("fake release for tests\n")
    return {"nodes": nodes, "num_edges": len(edges), "labels": labels, "split": split}


def test_fake_ogbg_mol_through_real_ogb_loader(tmp_path):
    root = tmp_path / "data"
    info = write_fake_ogbg_mol(root / "ogb" / "ogbg_molbace")
    task = load_dataset("ogbg-molbace", root=root)
    assert len(task) == 30 and task.is_ogb_mol and task.edge_dim == 3
    assert [g.num_nodes for g in task.dataset] == info["nodes"].tolist()
    # OGB adds inverse edges for molecules
    assert sum(g.num_edges for g in task.dataset) == 2 * info["num_edges"]
    split = task.official_split()
    for key in ("train", "valid", "test"):
        assert split[key].tolist() == info["split"][key].tolist()
    y = task.labels[split["test"]]
    assert torch.equal(y, torch.as_tensor(info["labels"][info["split"]["test"]]))
    assert (task.dataset[0].x.dtype, task.dataset[0].x.shape[1]) == (torch.long, 9)
