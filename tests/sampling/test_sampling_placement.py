"""One device per batch: the placement plan (pure, on CPU) and the transfers it drives."""
import sys
from pathlib import Path

import pytest
import torch

from pyg_ham.sampling import TorchNeighborLoader
from pyg_ham.sampling.placement import PlaceBatch, placement_plan, stored_tensors

sys.path.insert(0, str(Path(__file__).parent))  # the brute-force helpers next to this file
from sampling_brute import random_graph, random_hetero_graph  # noqa: E402

CPU, GPU0, GPU1 = torch.device("cpu"), torch.device("cuda", 0), torch.device("cuda", 1)


def test_placement_plan_table():
    stored = {"x": CPU, "y": GPU0, "edge_attr": GPU1}
    assert placement_plan(GPU0, stored) == {"x": "pinned", "y": "local", "edge_attr": "copy"}
    assert placement_plan(CPU, stored) == {"x": "local", "y": "copy", "edge_attr": "copy"}
    assert placement_plan(GPU1, {"x": GPU1}) == {"x": "local"}


def test_stored_tensors_of_data_and_hetero():
    data = random_graph(20, 60, seed=0, edge_dim=2)
    assert stored_tensors(data) == {(None, "x"): CPU, (None, "y"): CPU, (None, "edge_attr"): CPU}
    hetero = random_hetero_graph({"paper": 30, "author": 20, "field": 10}, 40, seed=0, edge_dim=2)
    keys = set(stored_tensors(hetero))
    assert {("paper", "x"), ("paper", "y"), (("paper", "cites", "paper"), "edge_attr")} == keys


def test_one_device_loaders_keep_the_users_transform():
    # Nothing stored off the sampling device: the loader's transform is the user's own.
    def mark(batch):
        batch.marked = True
        return batch

    loader = TorchNeighborLoader(random_graph(40, 200, seed=1), [3, 2], batch_size=8, transform=mark)
    assert loader.transform is mark and next(iter(loader)).marked
    assert PlaceBatch.wrap(random_graph(40, 200, seed=1), CPU, mark) is mark


@pytest.mark.parametrize("hetero", [False, True])
def test_moved_attributes_are_moved_before_the_users_transform(hetero):
    # On a CPU-only machine, drive the "copy" path of PlaceBatch as the loader's transform.
    if hetero:
        data = random_hetero_graph({"paper": 30, "author": 20, "field": 10}, 40, seed=1, edge_dim=2)
        moved = {("paper", "x"): "copy", (("paper", "cites", "paper"), "edge_attr"): "copy"}
        kw = dict(input_nodes="paper")
    else:
        data = random_graph(40, 200, seed=1, edge_dim=2)
        moved = {(None, "x"): "copy", (None, "edge_attr"): "copy"}
        kw = {}
    seen = []

    def user(batch):
        seen.append(batch)
        return batch

    loader = TorchNeighborLoader(data, [3, 2], batch_size=8, seed=0,
                                 transform=PlaceBatch(CPU, moved, user), **kw)
    reference = [b for b in TorchNeighborLoader(data, [3, 2], batch_size=8, seed=0, **kw)]
    batches = list(loader)
    assert len(batches) == len(reference) == len(seen) and all(a is b for a, b in zip(batches, seen))
    for batch, ref in zip(batches, reference):
        if hetero:
            et = ("paper", "cites", "paper")
            assert torch.equal(batch["paper"].x, data["paper"].x[batch["paper"].n_id])
            assert torch.equal(batch[et].edge_attr, data[et].edge_attr[batch[et].e_id])
            assert torch.equal(batch["paper"].x, ref["paper"].x)
        else:
            assert torch.equal(batch.x, data.x[batch.n_id]) and torch.equal(batch.x, ref.x)
            assert torch.equal(batch.edge_attr, data.edge_attr[batch.e_id])
            assert torch.equal(batch.edge_attr, ref.edge_attr)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a GPU")
@pytest.mark.parametrize("hetero", [False, True])
def test_graph_on_gpu_features_on_cpu_gives_one_device_batches(hetero):
    if hetero:
        data = random_hetero_graph({"paper": 30, "author": 20, "field": 10}, 40, seed=2, edge_dim=2)
        for et in data.edge_types:
            data[et].edge_index = data[et].edge_index.cuda()
        loader = TorchNeighborLoader(data, [3, 2], input_nodes="paper", batch_size=8, seed=0)
    else:
        data = random_graph(40, 200, seed=2, edge_dim=2)
        data.edge_index = data.edge_index.cuda()
        loader = TorchNeighborLoader(data, [3, 2], batch_size=8, seed=0)
    for batch in loader:
        for store in batch.stores:
            for name, value in store.items():
                if isinstance(value, torch.Tensor):
                    assert value.is_cuda, name
        if hetero:
            assert torch.equal(batch["paper"].x.cpu(), data["paper"].x[batch["paper"].n_id.cpu()])
        else:
            assert torch.equal(batch.x.cpu(), data.x[batch.n_id.cpu()])
            assert torch.equal(batch.edge_attr.cpu(), data.edge_attr[batch.e_id.cpu()])
