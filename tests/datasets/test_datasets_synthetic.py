"""The locally generated CSBM dataset (default dataset of the main job)."""
import time

import pytest
import torch
from torch_geometric.utils import homophily, is_undirected

from pyg_ham.datasets import load_dataset
from pyg_ham.errors import ConfigError


def test_synthetic_defaults_are_fast_and_well_formed(tmp_path):
    start = time.perf_counter()
    task = load_dataset("synthetic", root=tmp_path)
    assert time.perf_counter() - start < 1.0
    data = task.data
    assert (data.num_nodes, task.num_features, task.num_classes) == (2000, 32, 5)
    assert data.x.shape == (2000, 32) and data.y.shape == (2000,)
    assert torch.bincount(data.y).tolist() == [400] * 5                 # balanced classes
    assert is_undirected(data.edge_index) and not (data.edge_index[0] == data.edge_index[1]).any()
    assert 9.0 < data.num_edges / data.num_nodes <= 10.0                # avg degree ~10
    assert list(tmp_path.iterdir()) == []                               # nothing written


def test_synthetic_sizes_as_requested():
    task = load_dataset("SYNTHETIC", num_nodes=300, num_classes=3, num_features=7, avg_degree=4)
    assert (task.data.num_nodes, task.num_features, task.num_classes) == (300, 7, 3)
    assert task.data.x.shape == (300, 7) and int(task.data.y.max()) == 2
    s = task.split(0)
    assert [s[k].numel() for k in ("train", "valid", "test")] == [180, 60, 60]
    assert torch.equal(torch.cat(list(s.values())).sort().values, torch.arange(300))


def test_synthetic_is_deterministic_by_seed():
    a, b = load_dataset("synthetic", seed=3), load_dataset("synthetic", seed=3)
    c = load_dataset("synthetic", seed=4)
    assert torch.equal(a.data.x, b.data.x) and torch.equal(a.data.edge_index, b.data.edge_index)
    assert torch.equal(a.split(2)["train"], b.split(2)["train"])
    assert not torch.equal(a.data.y, c.data.y)
    assert not torch.equal(a.split(0)["train"], a.split(1)["train"])
    assert torch.equal(a.split(1)["test"], a.split(1 + a.num_splits)["test"])


def test_homophily_option_controls_edge_homophily():
    values = {}
    for h in (0.1, 0.5, 0.9):
        data = load_dataset("synthetic", homophily=h).data
        values[h] = homophily(data.edge_index, data.y, method="edge")
        assert values[h] == pytest.approx(h, abs=0.05)
    assert values[0.1] < values[0.5] < values[0.9]


def test_feature_signal_separates_classes():
    weak = load_dataset("synthetic", feature_signal=0.0).data
    strong = load_dataset("synthetic", feature_signal=5.0).data

    def between_class_spread(d):
        means = torch.stack([d.x[d.y == c].mean(0) for c in range(5)])
        return float(means.std(0).mean())

    assert between_class_spread(strong) > 10 * between_class_spread(weak)


def test_per_class_split():
    task = load_dataset("synthetic", split="per_class", train_per_class=10)
    s = task.split(0)
    assert torch.bincount(task.data.y[s["train"]]).tolist() == [10] * 5
    assert s["valid"].numel() + s["test"].numel() == 2000 - 50


@pytest.mark.parametrize("options", [
    {"homophily": 1.5}, {"num_classes": 1}, {"split": "bogus"}, {"num_nodes": "many"},
    {"train_ratio": 0.9, "valid_ratio": 0.2}, {"colour": "red"},
])
def test_bad_options_raise_config_error(options):
    with pytest.raises(ConfigError) as info:
        load_dataset("synthetic", **options)
    assert "\n" not in str(info.value) and "synthetic" in str(info.value)
