"""neighbor_loader's backend choice, argument errors, and the CSC cache."""
import sys
from pathlib import Path

import pytest
import torch
import torch_geometric.typing
from torch_geometric.data import HeteroData

from pyg_ham.errors import ConfigError, MissingDependencyError
from pyg_ham.sampling import (
    CSCGraph,
    TorchNeighborLoader,
    TorchNeighborSampler,
    choose_backend,
    get_csc,
    neighbor_loader,
)

sys.path.insert(0, str(Path(__file__).parent))  # the brute-force helpers next to this file
from sampling_brute import in_neighbours, random_graph  # noqa: E402


def test_auto_uses_pyg_only_with_pyg_lib_on_cpu(monkeypatch):
    data = random_graph(30, 60, seed=0)
    monkeypatch.setattr(torch_geometric.typing, "WITH_PYG_LIB", False)
    assert choose_backend(data) == "pyg_ham"
    assert isinstance(neighbor_loader(data, [2], batch_size=4), TorchNeighborLoader)
    monkeypatch.setattr(torch_geometric.typing, "WITH_PYG_LIB", True)
    assert choose_backend(data) == "pyg"
    assert choose_backend(data, force="pyg_ham") == "pyg_ham"
    if torch.cuda.is_available():
        assert choose_backend(data, device="cuda") == "pyg_ham"
        assert choose_backend(data.to("cuda")) == "pyg_ham"


def test_force_pyg_without_pyg_lib_or_torch_sparse(monkeypatch):
    monkeypatch.setattr(torch_geometric.typing, "WITH_PYG_LIB", False)
    monkeypatch.setattr(torch_geometric.typing, "WITH_TORCH_SPARSE", False)
    with pytest.raises(MissingDependencyError, match="pyg-lib"):
        neighbor_loader(random_graph(30, 60, seed=0), [2], batch_size=4, force="pyg")


@pytest.mark.parametrize("kwargs, match", [
    (dict(num_neighbors=[2, -2]), "num_neighbors"),
    (dict(num_neighbors=[2.5]), "num_neighbors"),
    (dict(num_neighbors="10,5"), "num_neighbors"),
    (dict(num_neighbors={("a", "to", "b"): [2]}), "num_neighbors"),
    (dict(batch_size=0), "batch_size"),
    (dict(force="torch"), "force"),
    (dict(device="tpu:x"), "device"),
    (dict(seed=1, generator=torch.Generator()), "seed or generator"),
    (dict(input_nodes=torch.tensor([0, 30])), "seed nodes"),
])
def test_bad_arguments_raise_config_error(kwargs, match):
    args = dict(data=random_graph(30, 60, seed=0), num_neighbors=[2], batch_size=4, force="pyg_ham")
    args.update(kwargs)
    with pytest.raises(ConfigError, match=match) as info:
        list(neighbor_loader(**args))
    assert "\n" not in str(info.value)


def test_hetero_and_missing_edges_raise_config_error():
    with pytest.raises(ConfigError, match="Data"):
        TorchNeighborLoader(HeteroData(), [2], batch_size=2)
    data = random_graph(10, 20, seed=0)
    del data.edge_index
    with pytest.raises(ConfigError, match="edge_index"):
        TorchNeighborLoader(data, [2], batch_size=2)


def test_csc_lists_in_neighbours_and_is_cached():
    data = random_graph(70, 300, seed=3, num_isolated=4)
    csc = get_csc(data.edge_index, 70)
    assert isinstance(csc, CSCGraph) and csc.row.dtype == torch.int32
    assert get_csc(data.edge_index, 70) is csc
    nbrs = in_neighbours(data.edge_index)
    for v in range(70):
        lo, hi = int(csc.colptr[v]), int(csc.colptr[v + 1])
        assert sorted(csc.row[lo:hi].tolist()) == sorted(nbrs.get(v, ()))
        pos = torch.arange(lo, hi)
        assert torch.equal(data.edge_index[1, csc.edge_id(pos)], torch.full((hi - lo,), v))
        assert torch.equal(data.edge_index[0, csc.edge_id(pos)], csc.row[lo:hi].long())
    # Rebuilt after an in-place change of the graph.
    data.edge_index[0] = (data.edge_index[0] + 1) % 70
    fresh = get_csc(data.edge_index, 70)
    assert fresh is not csc
    assert sorted(fresh.row[fresh.colptr[5]:fresh.colptr[6]].tolist()) == sorted(
        in_neighbours(data.edge_index).get(5, ()))


def test_sorted_edge_index_needs_no_permutation():
    data = random_graph(40, 200, seed=4)
    order = torch.argsort(data.edge_index[1], stable=True)
    csc = get_csc(data.edge_index[:, order], 40)
    assert csc.perm is None


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a GPU")
def test_gpu_sampling_stays_on_the_gpu():
    data = random_graph(100, 600, seed=5, edge_dim=2).to("cuda")
    batch = next(iter(neighbor_loader(data, [3, 2], batch_size=10, seed=0)))
    assert batch.n_id.is_cuda and batch.edge_index.is_cuda and batch.x.is_cuda
    assert torch.equal(data.edge_index[:, batch.e_id], batch.n_id[batch.edge_index])


@pytest.mark.parametrize("kwargs, match", [
    (dict(time_attr="t"), "time_attr"), (dict(weight_attr="w"), "weight_attr"),
    (dict(subgraph_type="bogus"), "subgraph_type"), (dict(temporal_strategy="first"), "temporal_strategy"),
    (dict(disjoint=True, subgraph_type="induced"), "induced"),
    (dict(input_time=torch.zeros(30)), "time_attr"),
])
def test_unusable_options_raise_one_line(kwargs, match):
    data = random_graph(30, 60, seed=0)
    with pytest.raises(ConfigError, match=match) as info:
        neighbor_loader(data, [2], batch_size=4, force="pyg_ham", **kwargs)
    assert "\n" not in str(info.value)
    defaults = dict(disjoint=False, subgraph_type="directional", time_attr=None, is_sorted=True)
    assert next(iter(neighbor_loader(data, [2], batch_size=4, force="pyg_ham", **defaults))).batch_size == 4


def test_a_pair_that_is_not_feature_and_graph_store_is_refused_with_one_line():
    data = random_graph(30, 60, seed=0)
    for pair in ((data,), (data.edge_index, data.x), (data, data, data)):
        for build in (TorchNeighborLoader, TorchNeighborSampler):
            with pytest.raises(ConfigError, match="FeatureStore, GraphStore") as info:
                build(pair, [2], **(dict(batch_size=4) if build is TorchNeighborLoader else {}))
            assert "\n" not in str(info.value)


def test_loader_is_built_through_pygs_public_neighbor_loader(monkeypatch):
    # Pins PyG's behaviour that TorchNeighborLoader relies on (torch_geometric 2.8): given
    # neighbor_sampler, NeighborLoader.__init__ builds no NeighborSampler (which needs pyg-lib),
    # and NodeLoader's own filter_fn assembles the batches (ours does not override it).
    import torch_geometric.loader.neighbor_loader as pyg_neighbor_loader
    from torch_geometric.loader import NeighborLoader, NodeLoader

    def refuse(*args, **kwargs):
        raise AssertionError("PyG's NeighborSampler was built")

    monkeypatch.setattr(pyg_neighbor_loader, "NeighborSampler", refuse)
    data = random_graph(40, 200, seed=6)
    sampler = TorchNeighborSampler(data, [3, 2], seed=0)
    for loader in (TorchNeighborLoader(data, [3, 2], batch_size=8, seed=0),
                   TorchNeighborLoader(data, [3, 2], batch_size=8, neighbor_sampler=sampler)):
        assert isinstance(loader, NeighborLoader) and isinstance(loader.node_sampler, TorchNeighborSampler)
        assert loader.data is data and loader.transform is None
        assert TorchNeighborLoader.filter_fn is NodeLoader.filter_fn
        batch = next(iter(loader))
        assert torch.equal(batch.x, data.x[batch.n_id])
    assert loader.node_sampler is sampler


def test_heterogeneous_seeds_are_range_checked_when_the_loader_is_built():
    from sampling_brute import random_hetero_graph
    data = random_hetero_graph({"paper": 30, "author": 20, "field": 10}, 40, seed=0)
    with pytest.raises(ConfigError, match=r"seed nodes of 'paper' must lie in \[0, 30\)") as info:
        TorchNeighborLoader(data, [2], input_nodes=("paper", torch.tensor([0, 30])), batch_size=4)
    assert "\n" not in str(info.value)


def test_direct_sample_calls_default_to_the_seeds_node_time():
    # sample(seeds) of a node-level temporal sampler uses the seeds' own times, as
    # sample_from_nodes does: the same batch either way, and nothing newer than its seed.
    data = random_graph(60, 400, seed=7)
    data.node_time = torch.randint(0, 20, (60,), generator=torch.Generator().manual_seed(0))
    seeds = torch.tensor([3, 9, 27])
    a = TorchNeighborSampler(data, [3, 2], time_attr="node_time", seed=1).sample(seeds)
    b = TorchNeighborSampler(data, [3, 2], time_attr="node_time", seed=1).sample(
        seeds, seed_time=data.node_time[seeds])
    assert torch.equal(a.node, b.node) and torch.equal(a.row, b.row) and torch.equal(a.col, b.col)
    assert bool((data.node_time[a.node] <= data.node_time[seeds][a.batch]).all())


def test_public_names_of_earlier_releases_are_still_exported():
    import pyg_ham.sampling as sampling
    earlier = ["CSCGraph", "HeteroCSC", "TorchHeteroNeighborSampler", "TorchNeighborLoader", "TorchNeighborSampler",
               "check_hetero_num_neighbors", "choose_backend", "clear_csc_cache", "clear_hetero_csc_cache",
               "floyd_sample", "get_csc", "get_hetero_csc", "has_pyg_neighbor_sampling", "neighbor_loader",
               "sample_one_hop", "sample_one_hop_per_row"]  # __all__ at 5b3d161
    assert set(earlier) <= set(sampling.__all__) and all(hasattr(sampling, name) for name in earlier)
    assert sampling.TorchHeteroNeighborSampler is sampling.TorchNeighborSampler
