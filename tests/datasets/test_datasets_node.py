"""Node datasets loaded from the offline data (shared/data) and checked against the
published statistics listed in shared/data/README.md."""
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from pyg_ham.datasets import NodeTask, load_dataset

# name: (nodes, directed edges, features, classes, train, valid, test) - README / Kipf & Welling
PLANETOID = {
    "Cora": (2708, 10556, 1433, 7, 140, 500, 1000),
    "CiteSeer": (3327, 9104, 3703, 6, 120, 500, 1000),
}


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("PYG_HAM_CACHE", str(tmp_path / "cache"))


@pytest.mark.parametrize("name", sorted(PLANETOID))
def test_planetoid_public_split_matches_published_counts(staged, name):
    root = staged("Planetoid", name)
    task = load_dataset(name.lower(), root=root)  # names are case-insensitive
    n, e, f, c, n_tr, n_va, n_te = PLANETOID[name]
    assert isinstance(task, NodeTask) and task.name == name
    assert (task.data.num_nodes, task.data.num_edges) == (n, e)
    assert (task.num_features, task.num_classes) == (f, c)
    assert task.data.y.dim() == 1 and int(task.data.y.max()) + 1 == c
    split = task.split(0)
    assert [split[k].numel() for k in ("train", "valid", "test")] == [n_tr, n_va, n_te]
    assert task.num_splits == 1 and torch.equal(task.split(7)["test"], split["test"])
    # public split: 20 training nodes per class
    assert torch.bincount(task.data.y[split["train"]], minlength=c).tolist() == [20] * c
    assert task.metric == "acc" and task.higher_is_better and task.loss_fn == "cross_entropy"


def _tree(path: Path) -> set:
    return {str(p.relative_to(path)) for p in path.rglob("*")}


def test_read_only_root_is_never_written(tmp_path, shared_data, monkeypatch):
    root = tmp_path / "ro"
    shutil.copytree(shared_data / "Planetoid" / "Cora", root / "Planetoid" / "Cora",
                    copy_function=shutil.copyfile)
    for p in [root, *root.rglob("*")]:
        p.chmod(0o555 if p.is_dir() else 0o444)
    cache = tmp_path / "cache2"
    monkeypatch.setenv("PYG_HAM_CACHE", str(cache))
    before = _tree(root)
    try:
        task = load_dataset("Cora", root=root)
        assert task.data.num_nodes == 2708
        assert _tree(root) == before                      # nothing written into the root
        processed = list(cache.rglob("Planetoid/Cora/processed/*.pt"))
        assert processed, "processed files must land in the staging cache"
        mtimes = {p: p.stat().st_mtime_ns for p in processed}
        again = load_dataset("Cora", root=root)           # reuses the cached processed files
        assert again.data.num_edges == task.data.num_edges
        assert {p: p.stat().st_mtime_ns for p in processed} == mtimes
        assert _tree(root) == before
    finally:
        for p in [root, *root.rglob("*")]:
            p.chmod(0o755 if p.is_dir() else 0o644)


def test_planetoid_geom_gcn_has_ten_fixed_splits(staged):
    root = staged("Planetoid", "Cora")
    task = load_dataset("Cora", root=root, split="geom-gcn")
    assert task.num_splits == 10
    raw = root / "Planetoid" / "Cora" / "geom-gcn" / "raw"
    for run in (0, 3, 13):
        masks = np.load(raw / f"cora_split_0.6_0.2_{run % 10}.npz")
        split = task.split(run)
        assert torch.equal(split["train"], torch.from_numpy(masks["train_mask"]).nonzero().view(-1))
        assert torch.equal(split["test"], torch.from_numpy(masks["test_mask"]).nonzero().view(-1))


@pytest.mark.parametrize("name,rel,prefix,n,c", [
    ("Texas", ("WebKB", "texas"), "texas", 183, 5),
    ("Actor", ("Actor",), "film", 7600, 5),
])
def test_ten_fixed_splits_follow_run_modulo_ten(staged, name, rel, prefix, n, c):
    root = staged(*rel)
    task = load_dataset(name, root=root)
    assert task.num_splits == 10 and task.data.num_nodes == n and task.num_classes == c
    raw = root.joinpath(*rel, "raw")
    for run in (0, 4, 14):
        masks = np.load(raw / f"{prefix}_split_0.6_0.2_{run % 10}.npz")
        split = task.split(run)
        for key, mkey in (("train", "train_mask"), ("valid", "val_mask"), ("test", "test_mask")):
            expected = torch.from_numpy(masks[mkey]).bool().nonzero().view(-1)
            assert torch.equal(split[key], expected), (run, key)


def test_minesweeper_is_binary_rocauc(staged):
    task = load_dataset("minesweeper", root=staged("HeterophilousGraphDataset", "minesweeper"))
    assert task.name == "Minesweeper" and task.metric == "rocauc" and task.num_splits == 10
    assert task.num_classes == 1 and task.loss_fn == "bce"
    assert (task.data.num_nodes, task.data.num_edges, task.num_features) == (10000, 78804, 7)
    test = task.split(12)["test"]
    y = task.data.y[test].float()
    assert task.evaluate(y.view(-1, 1), test) == pytest.approx(1.0)      # perfect ranking
    assert task.evaluate(-y.view(-1, 1), test) == pytest.approx(0.0)     # reversed ranking
    full = torch.zeros(task.data.num_nodes, 1)
    full[test, 0] = y                                                    # logits for all nodes
    assert task.evaluate(full, test) == pytest.approx(1.0)
    loss = task.loss(torch.zeros(task.data.num_nodes, 1), task.split(0)["train"])
    assert float(loss) == pytest.approx(float(np.log(2)), rel=1e-5)


def test_linkx_splits_only_labelled_nodes(staged):
    root = staged("LINKX", "reed98")
    task = load_dataset("Reed98", root=root)
    assert task.name == "reed98" and task.data.num_nodes == 962 and task.num_classes == 2
    labelled = (task.data.y >= 0).nonzero().view(-1)
    assert 0 < labelled.numel() < 962                                     # -1 = unknown gender
    assert task.num_splits == 5
    s0, s1 = task.split(0), task.split(1)
    parts = torch.cat([s0["train"], s0["valid"], s0["test"]]).sort().values
    assert torch.equal(parts, labelled)                                   # disjoint + covering
    assert s0["train"].numel() == int(0.5 * labelled.numel())
    assert s0["valid"].numel() == int(0.25 * labelled.numel())
    assert not torch.equal(s0["train"], s1["train"])
    assert torch.equal(task.split(5)["train"], s0["train"])               # run % num_splits
    again = load_dataset("reed98", root=root)
    assert torch.equal(again.split(1)["test"], s1["test"])                # deterministic
    other = load_dataset("reed98", root=root, split_seed=1)
    assert not torch.equal(other.split(0)["train"], s0["train"])


def test_airports_random_splits(staged):
    task = load_dataset("usa", root=staged("Airports", "usa"))
    assert (task.name, task.data.num_nodes, task.num_classes) == ("USA", 1190, 4)
    s = task.split(2)
    assert [s[k].numel() for k in ("train", "valid", "test")] == [714, 238, 238]
    assert torch.equal(torch.cat(list(s.values())).sort().values, torch.arange(1190))


def test_evaluate_accepts_subset_or_full_logits(staged):
    task = load_dataset("Cora", root=staged("Planetoid", "Cora"))
    test = task.split(0)["test"]
    y = task.data.y
    perfect = torch.nn.functional.one_hot(y, task.num_classes).float()
    assert task.evaluate(perfect, test) == 1.0
    assert task.evaluate(perfect[test], test) == 1.0
    wrong = perfect.roll(1, dims=1)
    assert task.evaluate(wrong[test], test) == 0.0
    half = perfect[test].clone()
    half[: test.numel() // 2] = wrong[test][: test.numel() // 2]
    assert task.evaluate(half, test) == pytest.approx(0.5)
    mask = torch.zeros(task.data.num_nodes, dtype=torch.bool)
    mask[test] = True
    assert task.evaluate(perfect, mask) == 1.0                            # boolean masks work
