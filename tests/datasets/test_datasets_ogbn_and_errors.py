"""A fake ogbn-arxiv in OGB's raw layout loaded through the real ogb code, and the
one-line errors for unknown names / missing data (the network is blocked)."""
import gzip
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from pyg_ham.datasets import NodeTask, list_datasets, load_dataset
from pyg_ham.datasets.paths import has_files
from pyg_ham.errors import ConfigError, DatasetError

N, F = 60, 8


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("PYG_HAM_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("PYG_HAM_OFFLINE", raising=False)


def _write_csv_gz(path: Path, rows, fmt: str = "%d") -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    rows = np.asarray(rows)
    with gzip.open(path, "wt") as f:
        np.savetxt(f, rows.reshape(len(rows), -1), fmt=fmt, delimiter=",")


def write_fake_arxiv(folder: Path, release: bool = True) -> dict:
    """ogbn-arxiv's raw layout: one directed graph, 40 classes, time split."""
    rng = np.random.default_rng(0)
    pairs = {(int(a), int(b)) for a, b in rng.integers(0, N, (300, 2)) if a < b}
    edges = np.array(sorted(pairs))
    edges[::2] = edges[::2, ::-1]                  # mixed directions, no reverse duplicates
    raw = folder / "raw"
    _write_csv_gz(raw / "edge.csv.gz", edges)
    _write_csv_gz(raw / "node-feat.csv.gz", rng.normal(size=(N, F)), fmt="%.6f")
    labels = rng.integers(0, 40, N)
    _write_csv_gz(raw / "node-label.csv.gz", labels)
    _write_csv_gz(raw / "node_year.csv.gz", rng.integers(2010, 2020, N))
    _write_csv_gz(raw / "num-node-list.csv.gz", [N])
    _write_csv_gz(raw / "num-edge-list.csv.gz", [len(edges)])
    split = {"train": np.arange(0, 36), "valid": np.arange(36, 48), "test": np.arange(48, 60)}
    for key, idx in split.items():
        _write_csv_gz(folder / "split" / "time" / f"{key}.csv.gz", idx)
    if release:
        (folder / "RELEASE_v1.txt").write_text("fake release for tests\n")
    return {"edges": edges, "labels": labels, "split": split}


def test_fake_ogbn_arxiv_through_real_ogb_loader(tmp_path):
    root = tmp_path / "data"
    info = write_fake_arxiv(root / "ogb" / "ogbn_arxiv")
    task = load_dataset("OGBN-ARXIV", root=root)
    assert isinstance(task, NodeTask) and task.name == "ogbn-arxiv"
    assert (task.data.num_nodes, task.num_features, task.num_classes) == (N, F, 40)
    assert task.metric == "acc" and task.num_splits == 1
    assert task.data.y.dim() == 1 and task.data.y.tolist() == info["labels"].tolist()
    # made undirected: every written edge appears in both directions
    assert task.data.num_edges == 2 * len(info["edges"])
    pairs = set(map(tuple, task.data.edge_index.t().tolist()))
    assert all((a, b) in pairs and (b, a) in pairs for a, b in info["edges"].tolist())
    directed = load_dataset("ogbn-arxiv", root=root, undirected=False)
    assert directed.data.num_edges == len(info["edges"])
    split = task.split(3)
    for key in ("train", "valid", "test"):
        assert split[key].tolist() == info["split"][key].tolist()
    logits = torch.nn.functional.one_hot(task.data.y, 40).float()
    assert task.evaluate(logits, split["test"]) == 1.0                  # OGB's Evaluator
    assert task.evaluate(logits[split["test"]].roll(1, 1), split["test"]) == 0.0


def test_ogb_folder_without_release_file_gives_error_not_prompt(tmp_path, monkeypatch):
    root = tmp_path / "data"
    write_fake_arxiv(root / "ogb" / "ogbn_arxiv", release=False)
    monkeypatch.setattr("sys.stdin", None)                              # input() would crash
    with pytest.raises(DatasetError, match="RELEASE_v1.txt") as info:
        load_dataset("ogbn-arxiv", root=root)
    assert "\n" not in str(info.value)


def test_unknown_dataset_lists_known_names():
    with pytest.raises(DatasetError) as info:
        load_dataset("coraa")
    msg = str(info.value)
    assert "\n" not in msg and "'coraa'" in msg and "did you mean Cora" in msg
    assert "MUTAG" in msg and "ogbn-arxiv" in msg and "synthetic" in msg


@pytest.mark.parametrize("name,rel", [
    ("Cora", "Planetoid/Cora"), ("MUTAG", "TUDataset/MUTAG"), ("ogbn-arxiv", "ogb/ogbn_arxiv"),
    ("ogbg-molhiv", "ogb/ogbg_molhiv"), ("Texas", "WebKB/texas"),
])
@pytest.mark.parametrize("download", [True, False])
def test_missing_data_is_one_line_error(tmp_path, name, rel, download):
    root = tmp_path / "empty"
    root.mkdir()
    with pytest.raises(DatasetError) as info:
        load_dataset(name, root=root, download=download)
    msg = str(info.value)
    assert "\n" not in msg and msg.startswith(f"{name}:") and str(root / rel) in msg
    assert ("download failed" if download else "downloading is disabled") in msg
    assert not has_files(root) and list(root.iterdir()) == []           # no leftovers
    with pytest.raises(DatasetError):                                   # and again, no prompt
        load_dataset(name, root=root, download=download)


def test_offline_env_disables_downloads(tmp_path, monkeypatch):
    monkeypatch.setenv("PYG_HAM_OFFLINE", "1")
    with pytest.raises(DatasetError, match="downloading is disabled"):
        load_dataset("PubMed", root=tmp_path)


def test_unknown_option_is_config_error(tmp_path):
    with pytest.raises(ConfigError, match="valid options: split='public'"):
        load_dataset("Cora", root=tmp_path, splt="full")
    with pytest.raises(ConfigError, match="split='random'"):
        load_dataset("Cora", root=tmp_path, split="random")
    load_dataset("synthetic", root=tmp_path, split=None)                # None = default


def test_list_datasets(tmp_path, shared_data):
    rows = list_datasets(shared_data)
    by_name = {r["name"]: r for r in rows}
    assert set(rows[0]) == {"name", "task", "metric", "family", "recipe", "present", "path"}
    assert (by_name["CiteSeer"]["family"], by_name["CiteSeer"]["recipe"]) == ("planetoid", "planetoid-gcn")
    assert by_name["PROTEINS"]["recipe"] == "tu-gin" and by_name["synthetic"]["recipe"] is None
    assert by_name["Cora"]["present"] and by_name["Cora"]["task"] == "node"
    assert by_name["Cora"]["path"] == str(shared_data.resolve() / "Planetoid" / "Cora")
    assert not by_name["PubMed"]["present"] and not by_name["ogbn-arxiv"]["present"]
    assert by_name["ogbg-molhiv"]["present"] and by_name["ogbg-molhiv"]["metric"] == "rocauc"
    assert by_name["MUTAG"]["task"] == "graph" and by_name["synthetic"]["present"]
    assert by_name["Minesweeper"]["metric"] == "rocauc"
    empty = {r["name"]: r["present"] for r in list_datasets(tmp_path)}
    assert empty["synthetic"] and not empty["Cora"]


def test_importing_ogb_starts_no_version_check_thread():
    code = ("import threading, pyg_ham.datasets as d; d.import_ogb('ogb.graphproppred'); "
            "import ogb.nodeproppred; print(sorted(t.name for t in threading.enumerate()))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                         env={"PATH": "/usr/bin:/bin", "HOME": str(Path.home())})
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "['MainThread']"


def write_fake_proteins(folder: Path) -> dict:
    """ogbn-proteins' raw layout: undirected edges with 8 features, 112 binary tasks."""
    rng = np.random.default_rng(1)
    n = 40
    edges = np.array(sorted({(int(a), int(b)) for a, b in rng.integers(0, n, (150, 2)) if a < b}))
    raw = folder / "raw"
    _write_csv_gz(raw / "edge.csv.gz", edges)
    feats = rng.random((len(edges), 8))
    _write_csv_gz(raw / "edge-feat.csv.gz", feats, fmt="%.6f")
    labels = rng.integers(0, 2, (n, 112))
    _write_csv_gz(raw / "node-label.csv.gz", labels)
    _write_csv_gz(raw / "node_species.csv.gz", rng.integers(0, 3, n))
    _write_csv_gz(raw / "num-node-list.csv.gz", [n])
    _write_csv_gz(raw / "num-edge-list.csv.gz", [len(edges)])
    for key, idx in {"train": range(0, 24), "valid": range(24, 32), "test": range(32, 40)}.items():
        _write_csv_gz(folder / "split" / "species" / f"{key}.csv.gz", np.array(list(idx)))
    (folder / "RELEASE_v1.txt").write_text("fake release for tests\n")
    return {"edges": edges, "feats": feats, "labels": labels}


def test_fake_ogbn_proteins_multi_task_rocauc(tmp_path):
    root = tmp_path / "data"
    info = write_fake_proteins(root / "ogb" / "ogbn_proteins")
    task = load_dataset("ogbn-proteins", root=root)
    assert (task.metric, task.loss_fn, task.num_classes, task.num_features) == ("rocauc", "bce", 112, 8)
    assert task.data.y.shape == (40, 112)
    # node features: mean of the features of the (undirected) incident edges
    node = int(info["edges"][0, 0])
    incident = (info["edges"] == node).any(1)
    expected = torch.tensor(info["feats"][incident].mean(0), dtype=torch.float)
    assert torch.allclose(task.data.x[node], expected, atol=1e-5)
    test = task.split(0)["test"]
    y = task.data.y[test].float()
    assert task.evaluate(y, test) == pytest.approx(1.0)
    assert task.evaluate(-y, test) == pytest.approx(0.0)
    assert float(task.loss(torch.zeros(40, 112), test)) == pytest.approx(float(np.log(2)), rel=1e-5)
