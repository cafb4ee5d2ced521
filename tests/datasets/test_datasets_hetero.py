"""ogbn-mag through OGB's real loader (a fake release in OGB's raw layout) and the
synthetic ogbn-mag-shaped graph."""
import sys
from pathlib import Path

import pytest
import torch

from pyg_ham.datasets.hetero import MAG_NUM_EDGES, MAG_NUM_NODES, HeteroNodeTask, ogbn_mag, synthetic_mag
from pyg_ham.errors import ConfigError, DatasetError

sys.path.insert(0, str(Path(__file__).parent))
from fake_ogbn_mag import NUM_CLASSES, NUM_FEATURES, RELATIONS, SIZES, write_fake_mag  # noqa: E402


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("PYG_HAM_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("PYG_HAM_OFFLINE", raising=False)


def test_fake_ogbn_mag_through_real_ogb_loader(tmp_path):
    root = tmp_path / "data"
    info = write_fake_mag(root / "ogb" / "ogbn_mag")
    task = ogbn_mag(root, undirected=False)
    assert isinstance(task, HeteroNodeTask) and task.name == "ogbn-mag" and task.target_type == "paper"
    data = task.data
    assert sorted(data.node_types) == sorted(SIZES)
    assert {t: data[t].num_nodes for t in data.node_types} == SIZES
    assert sorted(data.edge_types) == sorted(RELATIONS)
    for et in RELATIONS:
        assert data[et].edge_index.tolist() == info["edges"][et].T.tolist()
    paper = data["paper"]
    assert (task.num_features, task.num_classes) == (NUM_FEATURES, NUM_CLASSES)
    assert torch.allclose(paper.x, torch.tensor(info["features"], dtype=torch.float32), atol=1e-5)
    assert paper.y.tolist() == info["labels"].tolist() and paper.year.tolist() == info["year"].tolist()
    assert sorted(task.featureless_types) == ["author", "field_of_study", "institution"]
    split = task.split(2)
    for key in ("train", "valid", "test"):
        assert split[key].tolist() == info["split"][key].tolist()
        assert paper[f"{key}_mask"].nonzero().view(-1).tolist() == info["split"][key].tolist()
    logits = torch.nn.functional.one_hot(paper.y, NUM_CLASSES).float()
    assert task.evaluate(logits, split["test"]) == 1.0                      # OGB's Evaluator
    assert task.evaluate(logits[split["test"]].roll(1, 1), split["test"]) == 0.0
    assert task.loss(logits * 50, split["train"]).item() < 1e-6

    und = ogbn_mag(root)  # the processed file is reused; reverse relations added
    cites = set(map(tuple, und.data["paper", "cites", "paper"].edge_index.t().tolist()))
    assert all((b, a) in cites for a, b in info["edges"][("paper", "cites", "paper")].tolist())
    rev = und.data["paper", "rev_writes", "author"].edge_index
    assert sorted(map(tuple, rev.flip(0).t().tolist())) == sorted(map(tuple, info["edges"][RELATIONS[1]].tolist()))
    assert len(und.data.edge_types) == 7


def test_read_only_ogbn_mag_root_is_staged(tmp_path):
    root = tmp_path / "data"
    write_fake_mag(root / "ogb" / "ogbn_mag")
    for p in [root, *root.rglob("*")]:
        p.chmod(0o555 if p.is_dir() else 0o444)
    try:
        task = ogbn_mag(root)
        assert task.data["paper"].num_nodes == SIZES["paper"]
        assert not (root / "ogb" / "ogbn_mag" / "processed").exists()
    finally:
        for p in [root, *root.rglob("*")]:
            p.chmod(0o755 if p.is_dir() else 0o644)


def test_missing_ogbn_mag_is_one_line_error(tmp_path):
    with pytest.raises(DatasetError, match="ogbn-mag") as info:
        ogbn_mag(tmp_path / "nothing")
    assert "\n" not in str(info.value)


def test_synthetic_mag_shape_split_and_determinism():
    task = synthetic_mag(scale=0.002, num_features=16, seed=3)
    data = task.data
    sizes = {t: max(1, round(n * 0.002)) for t, n in MAG_NUM_NODES.items()}
    assert {t: data[t].num_nodes for t in data.node_types} == sizes
    assert len(data.edge_types) == 7 and task.featureless_types and "x" in data["paper"]
    directed = synthetic_mag(scale=0.002, num_features=16, seed=3, undirected=False)
    for et, m in MAG_NUM_EDGES.items():
        ei = directed.data[et].edge_index
        assert 0.8 * round(m * 0.002) <= ei.size(1) <= round(m * 0.002)
        assert bool((ei[0] < sizes[et[0]]).all()) and bool((ei[1] < sizes[et[2]]).all())
        assert torch.unique(ei[0] * sizes[et[2]] + ei[1]).numel() == ei.size(1)  # no duplicates
    year = data["paper"].year
    split = task.split()
    assert torch.equal(split["train"], (year < 2018).nonzero().view(-1))
    assert torch.equal(split["test"], (year == 2019).nonzero().view(-1))
    total = sum(v.numel() for v in split.values())
    assert total == data["paper"].num_nodes
    again = synthetic_mag(scale=0.002, num_features=16, seed=3)
    assert torch.equal(again.data["paper"].x, data["paper"].x)
    assert all(torch.equal(again.data[et].edge_index, data[et].edge_index) for et in data.edge_types)
    with pytest.raises(ConfigError, match="scale"):
        synthetic_mag(scale=0)


def test_fake_ogbn_mag_trains_mini_batch_and_evaluates_with_ogb(tmp_path):
    from pyg_ham.models.hetero import build_hetero_model
    from pyg_ham.optim import build_optimizer
    from pyg_ham.sampling import neighbor_loader

    root = tmp_path / "data"
    write_fake_mag(root / "ogb" / "ogbn_mag")
    task = ogbn_mag(root)
    data, split = task.data, task.split()
    model = build_hetero_model("sage", data, task.num_classes, hidden_channels=8, ham_embeddings=False, seed=0)
    opt = build_optimizer(model, "adam", lr=0.005, exclude=model.ham_exclude)
    assert any(g["ham"] for g in opt.param_groups)
    assert not any(g["ham"] and any(n.startswith("embeddings.") for n in g["param_names"])
                   for g in opt.param_groups)
    loader = neighbor_loader(data, [25, 20], batch_size=16, input_nodes=("paper", split["train"]),
                             shuffle=True, seed=0)
    for batch in loader:
        bs = batch["paper"].batch_size
        opt.zero_grad()
        torch.nn.functional.cross_entropy(model.forward_batch(batch)[:bs], batch["paper"].y[:bs]).backward()
        opt.step()
    model.eval()
    with torch.no_grad():
        full = model(data.x_dict, data.edge_index_dict)          # full neighbourhood
        test_loader = neighbor_loader(data, [25, 20], batch_size=64, input_nodes=("paper", split["test"]))
        sampled = torch.cat([model.forward_batch(b)[:b["paper"].batch_size] for b in test_loader])
    acc_full, acc_sampled = task.evaluate(full, split["test"]), task.evaluate(sampled, split["test"])
    assert 0.0 <= acc_full <= 1.0 and 0.0 <= acc_sampled <= 1.0
    assert acc_full == pytest.approx(float((full[split["test"]].argmax(1) == data["paper"].y[split["test"]])
                                           .float().mean()))
