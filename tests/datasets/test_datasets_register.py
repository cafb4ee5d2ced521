"""The public dataset registry: datasets of one's own, and the default recipes."""
from pathlib import Path

import pytest
import torch
import yaml
from click.testing import CliRunner
from torch_geometric.data import Data

from pyg_ham.cli import main
from pyg_ham.datasets import RECIPES, get_info, load_dataset, register_dataset
from pyg_ham.datasets.synthetic import csbm
from pyg_ham.errors import ConfigError
from pyg_ham.results import read_json
from pyg_ham.train.config import ExperimentConfig
from pyg_ham.train.runner import run_experiment

CONFIGS = Path(__file__).resolve().parents[2] / "configs"


def test_a_registered_node_dataset_trains_through_the_runner():
    calls = []

    @register_dataset("test-two-blobs", task="node", metric="acc")
    def two_blobs(root, num_nodes=200):
        calls.append((root, num_nodes))
        data = csbm(num_nodes, 2, 8, 6.0, 0.9, 2.0, 0)
        perm = torch.randperm(num_nodes, generator=torch.Generator().manual_seed(0))
        for name, part in zip(("train_mask", "val_mask", "test_mask"), perm.chunk(3)):
            mask = torch.zeros(num_nodes, dtype=torch.bool)
            mask[part] = True
            data[name] = mask
        return data

    doc = run_experiment(ExperimentConfig(dataset="test-two-blobs", dataset_options={"num_nodes": "150"},
                                          epochs=30, hidden=16, quiet=True))
    assert calls[-1][1] == 150  # the option arrived, converted to its default's type
    assert doc["dataset"] == "test-two-blobs" and doc["task"] == "node"
    assert doc["summary"]["test_mean"] > 0.8  # two well separated classes
    with pytest.raises(ConfigError, match="unknown option.*num_nodes=200"):
        load_dataset("test-two-blobs", size=3)


def test_a_registered_graph_dataset_with_its_own_split():
    graphs = []
    gen = torch.Generator().manual_seed(0)
    for i in range(60):
        label = i % 2
        n = 6 + label * 6
        edge_index = torch.randint(0, n, (2, 2 * n), generator=gen)
        graphs.append(Data(x=torch.full((n, 1), float(label)), edge_index=edge_index, y=torch.tensor([label])))

    @register_dataset("test-sizes", task="graph", metric="acc")
    def sizes(root):
        from torch_geometric.data import InMemoryDataset

        class Sizes(InMemoryDataset):
            def __init__(self):
                super().__init__(None)
                self.data, self.slices = self.collate(graphs)

        idx = torch.arange(60)
        return Sizes(), {"train": idx[:40], "valid": idx[40:50], "test": idx[50:]}

    task = load_dataset("test-sizes")
    assert task.default_protocol == "official" and task.num_classes == 2
    doc = run_experiment(ExperimentConfig(dataset="test-sizes", model="gin", pool="sum", epochs=15, hidden=16,
                                          quiet=True, ham=False))
    assert doc["task"] == "graph" and doc["summary"]["test_mean"] >= 0.9  # the feature gives the class away


def test_register_dataset_refuses_bad_declarations():
    with pytest.raises(ConfigError, match="task must be 'node' or 'graph'"):
        register_dataset("x", task="edge")
    with pytest.raises(ConfigError, match="metric must be one of acc, rocauc for node"):
        register_dataset("x", task="node", metric="rmse")
    with pytest.raises(ConfigError, match="unknown recipe 'nope'"):
        register_dataset("x", task="node", recipe="nope")


@pytest.mark.parametrize("recipe,path", [("planetoid-gcn", "planetoid-gcn.yaml"), ("tu-gin", "tu-gin.yaml"),
                                         ("ogbg-mol-gin", "ogbg-molhiv-gin.yaml"),
                                         ("ogbn-arxiv-sage", "ogbn-arxiv-sage.yaml"),
                                         ("ogbn-products-sage", "ogbn-products-sage.yaml"),
                                         ("ogbn-mag-sage", "ogbn-mag-sage.yaml"),
                                         ("ogbn-papers100m-sage", "ogbn-papers100m-sage.yaml"),
                                         ("ogbg-mol-gin-regression", "ogbg-mol-regression-gin.yaml"),
                                         ("linkx-sage", "linkx-sage.yaml"), ("airports-sage", "airports-sage.yaml"),
                                         ("webkb-sage", "webkb-sage.yaml")])
def test_recipes_say_what_their_config_files_say(recipe, path):
    file = yaml.safe_load((CONFIGS / path).read_text())
    settings = {k: v for k, v in file.items() if k not in ("dataset", "description")}
    assert RECIPES[recipe]["settings"] == settings
    assert get_info(file["dataset"]).recipe == recipe


def test_cora_without_config_uses_the_planetoid_recipe(staged, tmp_path):
    """`pyg-ham train -d Cora` trains Kipf's GCN recipe (81.5 published; the generic defaults
    reach about 77.7), says so, and the JSON records it."""
    root = staged("Planetoid", "Cora")
    out = tmp_path / "cora.json"
    result = CliRunner().invoke(main, ["train", "-d", "Cora", "--root", str(root), "--runs", "2", "--no-ham",
                                       "-q", "--device", "cpu", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "recipe: planetoid-gcn for Cora" in result.output
    doc = read_json(out)
    assert doc["config"]["recipe"] == "planetoid-gcn" and doc["config"]["hidden"] == 16
    assert doc["summary"]["test_mean"] >= 0.79


def test_from_recipe_layers_defaults_recipe_and_overrides():
    cfg = ExperimentConfig.from_recipe("CiteSeer", root="/data", lr=0.02)
    assert (cfg.dataset, cfg.recipe, cfg.model, cfg.hidden, cfg.norm, cfg.lr, cfg.root) == \
        ("CiteSeer", "planetoid-gcn", "gcn", 16, None, 0.02, "/data")
    base = ExperimentConfig(hidden=99, epochs=7)
    kept = ExperimentConfig.from_recipe("MUTAG", base=base, keep={"hidden"})  # e.g. set by a --config file
    assert (kept.hidden, kept.epochs, kept.pool, kept.alpha) == (99, 100, "sum", 20.0)
    plain = ExperimentConfig.from_recipe("synthetic", epochs=3)
    assert plain.recipe is None and plain.epochs == 3 and plain.hidden == ExperimentConfig().hidden
