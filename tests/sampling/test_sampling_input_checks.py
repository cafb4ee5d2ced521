"""Input checks of the sampler: edge_index once per CSC build, seeds once per loader; e_id always."""
import sys
import warnings
from pathlib import Path

import pytest
import torch
from torch_geometric.data import Data

from pyg_ham.errors import ConfigError
from pyg_ham.sampling import CSCGraph, TorchNeighborLoader, TorchNeighborSampler, get_csc, neighbor_loader

sys.path.insert(0, str(Path(__file__).parent))  # the brute-force helpers next to this file
from sampling_brute import random_graph  # noqa: E402


@pytest.mark.parametrize("edge_index, match", [
    ([[0, 1], [1, 5]], r"target node index 5 but there are 3 target nodes"),
    ([[0, 3], [1, 2]], r"source node index 3 but there are 3 source nodes"),
    ([[0, -1], [1, 2]], r"-1"),
])
def test_out_of_range_edge_index_is_refused_when_the_csc_is_built(edge_index, match):
    edge_index = torch.tensor(edge_index)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no resize warning first
        for build in (lambda: CSCGraph.from_edge_index(edge_index, 3), lambda: get_csc(edge_index, 3),
                      lambda: TorchNeighborSampler(Data(edge_index=edge_index, num_nodes=3), [2])):
            with pytest.raises(ConfigError, match=match) as info:
                build()
            assert "\n" not in str(info.value)


def test_malformed_edge_index_is_refused():
    with pytest.raises(ConfigError, match="edge_index"):
        CSCGraph.from_edge_index(torch.tensor([[0, 1, 2]]), 3)
    with pytest.raises(ConfigError, match="edge_index"):
        CSCGraph.from_edge_index(torch.tensor([[0.0, 1.0], [1.0, 0.0]]), 3)


def test_valid_edge_index_keeps_every_edge():
    edge_index = torch.tensor([[0, 1, 2, 2], [1, 2, 0, 2]])
    csc = CSCGraph.from_edge_index(edge_index, 3)
    assert csc.num_edges == 4 and csc.colptr.tolist() == [0, 1, 2, 4]


@pytest.mark.parametrize("input_nodes, match", [
    (torch.tensor([0, 30]), r"\[0, 30\).*30"),
    (torch.tensor([-1, 2]), r"-1"),
    (torch.zeros(29, dtype=torch.bool), "mask"),
])
def test_bad_seeds_are_refused_when_the_loader_is_built(input_nodes, match):
    data = random_graph(30, 60, seed=0)
    for build in (lambda: TorchNeighborLoader(data, [2], input_nodes=input_nodes, batch_size=4),
                  lambda: neighbor_loader(data, [2], batch_size=4, input_nodes=input_nodes, force="pyg_ham")):
        with pytest.raises(ConfigError, match=match) as info:
            build()  # not only when iterating
        assert "\n" not in str(info.value)


def test_e_id_is_in_every_batch_also_without_edge_features():
    data = random_graph(90, 500, seed=7)
    for batch in TorchNeighborLoader(data, [3, 2], batch_size=30, seed=0):
        assert torch.equal(data.edge_index[:, batch.e_id], batch.n_id[batch.edge_index])
    batch = next(iter(neighbor_loader(data, [3], batch_size=30, force="pyg_ham")))
    assert batch.e_id.dtype == torch.int64 and batch.e_id.numel() == batch.edge_index.size(1)
