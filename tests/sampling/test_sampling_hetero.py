"""The heterogeneous NeighborLoader contract, checked per edge type against brute force."""
import sys
from itertools import combinations
from pathlib import Path

import pytest
import torch
from scipy.stats import chisquare
from torch_geometric.data import HeteroData

from pyg_ham.errors import ConfigError
from pyg_ham.sampling import (
    CSCGraph,
    TorchHeteroNeighborSampler,
    TorchNeighborLoader,
    neighbor_loader,
    sample_one_hop_per_row,
)

sys.path.insert(0, str(Path(__file__).parent))  # the brute-force helpers next to this file
from sampling_brute import (  # noqa: E402
    HETERO_EDGE_TYPES,
    bfs_in_hetero,
    edge_set,
    hetero_hop_slices,
    in_neighbours,
    random_hetero_graph,
)

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
SIZES = {"paper": 90, "author": 60, "field": 25}


def fanout_dict(fanouts, edge_types):
    return fanouts if isinstance(fanouts, dict) else {et: list(fanouts) for et in edge_types}


def check_hetero_batch(batch, data, fanouts, input_type="paper", replace=False):
    """Every invariant of one heterogeneous mini-batch that holds whatever the draws."""
    fan = fanout_dict(fanouts, data.edge_types)
    hops = len(next(iter(fan.values())))
    n_id = {t: batch[t].n_id.cpu() for t in data.node_types}
    node_hops = {}
    bs = batch[input_type].batch_size
    for t in data.node_types:
        counts = batch[t].num_sampled_nodes
        assert len(counts) == hops + 1 and sum(counts) == n_id[t].numel()
        assert counts[0] == (bs if t == input_type else 0)
        node_hops[t] = hetero_hop_slices(counts)
        rest = n_id[t][counts[0]:]
        assert rest.unique().numel() == rest.numel()  # unique apart from repeated seeds
        assert not set(rest.tolist()) & set(n_id[t][:counts[0]].tolist())
        for key in ("x", "y"):
            if key in data[t]:
                assert torch.equal(batch[t][key].cpu(), data[t][key][n_id[t]])
    reached = {t: [set() for _ in range(hops)] for t in data.node_types}
    for et in data.edge_types:
        s, _, d = et
        ei = batch[et].edge_index.cpu()
        counts = batch[et].num_sampled_edges
        assert len(counts) == hops and sum(counts) == ei.size(1)
        glob = torch.stack([n_id[s][ei[0]], n_id[d][ei[1]]])
        assert set(map(tuple, glob.t().tolist())) <= edge_set(data[et].edge_index)
        # e_id maps back to this edge type's edge_index (and its features).
        e_id = batch[et].e_id.cpu()
        assert torch.equal(data[et].edge_index[:, e_id], glob)
        if "edge_attr" in data[et]:
            assert torch.equal(batch[et].edge_attr.cpu(), data[et].edge_attr[e_id])
        nbrs = in_neighbours(data[et].edge_index)
        for h, (k, (e0, e1)) in enumerate(zip(fan[et], hetero_hop_slices(counts))):
            (t0, t1), (n0, n_end) = node_hops[d][h], node_hops[s][h + 1]
            row, col = ei[0, e0:e1], ei[1, e0:e1]
            # Targets: the destination type's nodes of the previous hop; sources: known
            # nodes of the source type or its new nodes of this hop.
            assert bool(((col >= t0) & (col < t1)).all()) and bool((row < n_end).all())
            per_target = torch.bincount(col - t0, minlength=t1 - t0).tolist()
            for local, c in zip(range(t0, t1), per_target):
                deg = len(nbrs.get(int(n_id[d][local]), ()))
                want = deg if k < 0 else (k if deg > 0 else 0) if replace else min(deg, k)
                assert c == want, (et, h, int(n_id[d][local]), deg, k, c)
            if not replace:
                pairs = torch.stack([glob[0, e0:e1], col])
                assert pairs.unique(dim=1).size(1) == pairs.size(1)
            reached[s][h] |= set(n_id[s][row[row >= n0]].tolist())
    # Every hop's new nodes of a type are exactly the unseen nodes of that type reached.
    for t in data.node_types:
        for h in range(hops):
            a, b = node_hops[t][h + 1]
            assert set(n_id[t][a:b].tolist()) == reached[t][h], (t, h)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("fanouts", [
    [3, 2],
    [4, 0, 1],
    {("author", "writes", "paper"): [2, -1], ("paper", "rev_writes", "author"): [3, 1],
     ("paper", "cites", "paper"): [5, 2], ("paper", "has_topic", "field"): [0, 4],
     ("field", "rev_has_topic", "paper"): [1, 3]},
    {"author__writes__paper": [-1], "paper__rev_writes__author": [-1], "paper__cites__paper": [2],
     "paper__has_topic__field": [3], "field__rev_has_topic__paper": [7]},
])
def test_hetero_batches_are_valid_samples(fanouts, device):
    data = random_hetero_graph(SIZES, 250, seed=1)
    loader = neighbor_loader(data, fanouts, batch_size=13, input_nodes=("paper", None), shuffle=True,
                             seed=3, device=device, force="pyg_ham")
    seen = []
    for batch in loader:
        check_hetero_batch(batch, data, {(k if isinstance(k, tuple) else tuple(k.split("__"))): v
                                         for k, v in fanouts.items()} if isinstance(fanouts, dict)
                           else fanouts)
        seen.append(batch["paper"].n_id[:batch["paper"].batch_size].cpu())
    assert sorted(torch.cat(seen).tolist()) == list(range(SIZES["paper"]))


def test_hetero_replace_draws_fanout_per_connected_target():
    data = random_hetero_graph(SIZES, 200, seed=2)
    for batch in neighbor_loader(data, [3, 2], batch_size=20, input_nodes=("paper", None), replace=True,
                                 seed=0, force="pyg_ham"):
        check_hetero_batch(batch, data, [3, 2], replace=True)


def test_hetero_other_input_type_seeds_first_and_mask():
    data = random_hetero_graph(SIZES, 200, seed=4)
    mask = torch.zeros(SIZES["author"], dtype=torch.bool)
    mask[::4] = True
    offset = 0
    for batch in neighbor_loader(data, [2, 2], batch_size=6, input_nodes=("author", mask),
                                 force="pyg_ham"):
        bs = batch["author"].batch_size
        assert torch.equal(batch["author"].n_id[:bs], mask.nonzero().view(-1)[offset:offset + bs])
        assert torch.equal(batch["author"].input_id, mask.nonzero().view(-1)[offset:offset + bs])
        assert "batch_size" not in batch["paper"]
        check_hetero_batch(batch, data, [2, 2], input_type="author")
        offset += bs
    assert offset == int(mask.sum())


def test_hetero_repeated_seeds_keep_their_slots():
    data = random_hetero_graph(SIZES, 200, seed=5)
    seeds = torch.tensor([5, 9, 5, 12, 9, 5])
    batch = next(iter(neighbor_loader(data, [3, 2], batch_size=6, input_nodes=("paper", seeds), seed=0,
                                      force="pyg_ham")))
    assert torch.equal(batch["paper"].n_id[:6], seeds)
    assert torch.equal(batch["paper"].input_id, torch.arange(6))
    check_hetero_batch(batch, data, [3, 2])


@pytest.mark.parametrize("hops", [1, 2, 3])
def test_hetero_all_neighbours_give_the_k_hop_neighbourhood(hops):
    data = random_hetero_graph(SIZES, 150, seed=6)
    seeds = [0, 7, 33, 71]
    batch = next(iter(neighbor_loader(data, [-1] * hops, batch_size=4,
                                      input_nodes=("paper", torch.tensor(seeds)), force="pyg_ham")))
    want_nodes, want_edges = bfs_in_hetero(data, seeds, "paper", hops)
    for t in data.node_types:
        assert set(batch[t].n_id.tolist()) == want_nodes[t], t
    for et in data.edge_types:
        s, _, d = et
        ei = batch[et].edge_index
        got = torch.stack([batch[s].n_id[ei[0]], batch[d].n_id[ei[1]]])
        assert got.size(1) == len(want_edges[et]) and set(map(tuple, got.t().tolist())) == want_edges[et]


def test_hetero_edge_features_and_same_seed_same_batches():
    data = random_hetero_graph(SIZES, 200, seed=7, edge_dim=3)

    def run(seed):
        loader = neighbor_loader(data, [3, 3], batch_size=30, input_nodes=("paper", None), shuffle=True,
                                 seed=seed, force="pyg_ham")
        out = []
        for batch in loader:
            check_hetero_batch(batch, data, [3, 3])  # checks edge_attr against e_id
            out.append([batch[et].e_id.tolist() for et in data.edge_types])
        return out

    assert run(5) == run(5) and run(5) != run(6)


def test_hetero_batch_works_with_trim_to_layer():
    from torch_geometric.utils import trim_to_layer
    data = random_hetero_graph(SIZES, 200, seed=8)
    batch = next(iter(neighbor_loader(data, [3, 2], batch_size=10, input_nodes=("paper", None),
                                      force="pyg_ham")))
    x = {t: torch.zeros(batch[t].num_nodes, 1) for t in batch.node_types}
    x, ei, _ = trim_to_layer(1, batch.num_sampled_nodes_dict, batch.num_sampled_edges_dict, x,
                             batch.edge_index_dict)
    for t in batch.node_types:
        assert x[t].size(0) == sum(batch[t].num_sampled_nodes[:-1])
    for et, e in ei.items():
        assert e.size(1) == sum(batch[et].num_sampled_edges[:-1])
        assert bool((e[0] < x[et[0]].size(0)).all()) and bool((e[1] < x[et[2]].size(0)).all())


def test_per_row_fanout_kernel_is_uniform_and_exact():
    # Column c has in-degree deg[c]; fanout k[c] varies per column.
    deg = torch.tensor([6] * 3000 + [2] * 50 + [0] * 10)
    k = torch.tensor([2] * 1000 + [3] * 1000 + [5] * 1000 + [4] * 50 + [3] * 10)
    colptr = torch.cat([torch.zeros(1, dtype=torch.long), deg.cumsum(0)])
    csc = CSCGraph(colptr, torch.arange(int(deg.sum()), dtype=torch.int32), None, deg.numel())
    g = torch.Generator().manual_seed(0)
    pos, tgt = sample_one_hop_per_row(csc, torch.arange(deg.numel()), k, 5, generator=g)
    counts = torch.bincount(tgt, minlength=deg.numel())
    assert torch.equal(counts, torch.minimum(deg, k))
    assert bool((pos >= colptr[tgt]).all()) and bool((pos < colptr[tgt + 1]).all())
    assert bool((tgt[1:] >= tgt[:-1]).all())
    off = (pos - colptr[tgt]).tolist()
    rows = {}
    for t, o in zip(tgt.tolist(), off):
        rows.setdefault(t, []).append(o)
    for kk, lo in [(2, 0), (3, 1000), (5, 2000)]:
        subsets = {s: i for i, s in enumerate(combinations(range(6), kk))}
        ids = torch.tensor([subsets[tuple(sorted(rows[r]))] for r in range(lo, lo + 1000)])
        assert chisquare(torch.bincount(ids, minlength=len(subsets)).double().numpy()).pvalue > 1e-4
    pos, tgt = sample_one_hop_per_row(csc, torch.arange(deg.numel()), k, 5, replace=True, generator=g)
    assert torch.equal(torch.bincount(tgt, minlength=deg.numel()), k * (deg > 0))


def test_hetero_isolated_seeds_and_unreached_types():
    data = random_hetero_graph(SIZES, 100, seed=9)
    isolated = torch.arange(SIZES["field"] - SIZES["field"] // 5, SIZES["field"])
    batch = next(iter(neighbor_loader(data, [5, 5], batch_size=10, input_nodes=("field", isolated),
                                      force="pyg_ham")))
    assert torch.equal(batch["field"].n_id, isolated)
    assert batch["paper"].n_id.numel() == 0 and batch["paper"].x.size(0) == 0
    assert all(batch[et].edge_index.size(1) == 0 for et in data.edge_types)
    assert batch["author"].num_sampled_nodes == [0, 0, 0]


@pytest.mark.parametrize("kwargs, match", [
    (dict(num_neighbors={("paper", "cites", "paper"): [2, 2], ("author", "writes", "paper"): [2]}),
     "same across all edge types"),
    (dict(num_neighbors={("paper", "likes", "paper"): [2]}), "not in the graph"),
    (dict(num_neighbors={("paper", "cites", "paper"): [2]}), "no fanout for the edge type"),
    (dict(num_neighbors={("paper", "cites", "paper"): [2, -3]}), "num_neighbors"),
    (dict(num_neighbors="2,2"), "num_neighbors"),
    (dict(input_nodes=("venue", None)), "node type 'venue'"),
    (dict(input_nodes=None), "input_nodes"),
    (dict(input_nodes=torch.arange(4)), "input_nodes"),
    (dict(input_nodes=("paper", torch.ones(5, dtype=torch.bool))), "mask"),
    (dict(input_nodes=("paper", torch.tensor([0, 90]))), "seed nodes"),
    (dict(disjoint=True, subgraph_type="induced"), "induced"),
    (dict(weight_attr="nope"), "weight_attr"),
    (dict(time_attr="nope"), "time_attr"),
])
def test_hetero_bad_arguments_raise_config_error(kwargs, match):
    data = random_hetero_graph(SIZES, 50, seed=0)
    args = dict(data=data, num_neighbors=[2], batch_size=4, input_nodes=("paper", None), force="pyg_ham")
    args.update(kwargs)
    with pytest.raises(ConfigError, match=match) as info:
        list(neighbor_loader(**args))
    assert "\n" not in str(info.value)


def test_hetero_link_sampling_is_refused_and_graph_checks():
    data = random_hetero_graph(SIZES, 50, seed=0)
    sampler = TorchHeteroNeighborSampler(data, [2])
    with pytest.raises(NotImplementedError, match="link-level"):
        sampler.sample_from_edges(None)
    with pytest.raises(ConfigError, match="no edge types"):
        TorchHeteroNeighborSampler(HeteroData(), [2])
    empty = HeteroData()
    empty["paper"].num_nodes = 3
    empty["paper", "cites", "paper"].edge_index = torch.empty(2, 0, dtype=torch.long)
    batch = next(iter(TorchNeighborLoader(empty, [2, -1], input_nodes="paper", batch_size=3)))
    assert batch["paper"].n_id.tolist() == [0, 1, 2]
    assert batch["paper", "cites", "paper"].num_sampled_edges == [0, 0]
    assert set(data.edge_types) == set(HETERO_EDGE_TYPES)


def test_hetero_workers_are_reproducible_and_valid(monkeypatch):
    import _socket
    import socket

    def connect(sock, address):  # DataLoader workers talk over AF_UNIX sockets only
        if sock.family == socket.AF_UNIX:
            return _socket.socket.connect(sock, address)
        raise OSError("network access is disabled in tests")

    monkeypatch.setattr(socket.socket, "connect", connect)
    data = random_hetero_graph(SIZES, 200, seed=10)

    def run():
        loader = neighbor_loader(data, [3, 2], batch_size=30, input_nodes=("paper", None), shuffle=True,
                                 seed=2, num_workers=2, force="pyg_ham")
        out = []
        for batch in loader:
            check_hetero_batch(batch, data, [3, 2])
            out.append(tuple(batch["author"].n_id.tolist()))
        return out

    first = run()
    assert first == run() and len(set(first)) == len(first)


def test_hetero_layout_is_cached_per_graph_and_rebuilt_after_changes():
    from pyg_ham.sampling import get_hetero_csc
    data = random_hetero_graph(SIZES, 60, seed=11)
    a, b = TorchHeteroNeighborSampler(data, [2]), TorchHeteroNeighborSampler(data, [3, 1])
    assert a.graph is b.graph is get_hetero_csc(data, torch.device("cpu"))
    et = ("paper", "cites", "paper")
    data[et].edge_index[:, :4] = data[et].edge_index[:, :4].flip(1).clone()  # in place: a new layout
    c = TorchHeteroNeighborSampler(data, [2])
    assert c.graph is not a.graph
    batch = next(iter(TorchNeighborLoader(data, [-1], input_nodes="paper", batch_size=90)))
    check_hetero_batch(batch, data, [-1])
