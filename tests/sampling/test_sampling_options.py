"""NeighborLoader's options on the pyg_ham samplers (Data and HeteroData), checked against
brute force: disjoint subgraphs, weighted frequencies (exact, chi-square), temporal limits,
induced and bidirectional subgraphs; and PyG's signature."""
import inspect
import sys
from itertools import permutations
from pathlib import Path

import pytest
import torch
from scipy.stats import chisquare
from torch_geometric.data import Data, HeteroData
from torch_geometric.loader import NeighborLoader
from torch_geometric.sampler import NeighborSampler

from pyg_ham.sampling import TorchHeteroNeighborSampler, TorchNeighborLoader, TorchNeighborSampler, neighbor_loader

sys.path.insert(0, str(Path(__file__).parent))  # the brute-force helpers next to this file
from sampling_brute import (  # noqa: E402
    bfs_in,
    bfs_in_hetero,
    edge_set,
    in_neighbours,
    random_graph,
    random_hetero_graph,
)

SIZES = {"paper": 90, "author": 60, "field": 25}
P_VALUE = 1e-4  # each chi-square test fails by chance once in 10^4 runs


# ---------------------------------------------------------------- disjoint
def test_disjoint_full_fanout_gives_each_seed_its_own_bfs_subgraph():
    data = random_graph(80, 400, seed=0)
    nbrs = in_neighbours(data.edge_index)
    seeds = torch.tensor([3, 7, 3, 11, 40])  # a repeated seed, and overlapping neighbourhoods
    batch = next(iter(TorchNeighborLoader(data, [-1, -1], input_nodes=seeds, disjoint=True, batch_size=5)))
    assert batch.batch[:5].tolist() == [0, 1, 2, 3, 4] and batch.n_id[:5].tolist() == seeds.tolist()
    row, col = batch.edge_index
    assert torch.equal(batch.batch[row], batch.batch[col])  # no edge crosses subgraphs
    shared = 0
    for b, s in enumerate(seeds.tolist()):
        nodes, edges = bfs_in(nbrs, [s], 2)
        mine = batch.n_id[batch.batch == b].tolist()
        assert len(mine) == len(set(mine)) and set(mine) == nodes
        in_b = batch.batch[col] == b
        got = {(int(batch.n_id[u]), int(batch.n_id[v])) for u, v in zip(row[in_b], col[in_b])}
        assert got == edges and int(in_b.sum()) == len(edges)
        shared += len(nodes & set(batch.n_id[batch.batch != b].tolist()))
    assert shared > 0  # the test covers nodes that belong to several subgraphs
    assert torch.equal(data.edge_index[:, batch.e_id], batch.n_id[batch.edge_index])


def test_disjoint_sampled_subgraphs_only_hold_reachable_nodes():
    data = random_graph(120, 700, seed=1)
    nbrs = in_neighbours(data.edge_index)
    for batch in TorchNeighborLoader(data, [3, 2], disjoint=True, batch_size=25, shuffle=True, seed=4):
        assert torch.equal(data.edge_index[:, batch.e_id], batch.n_id[batch.edge_index])
        row, col = batch.edge_index
        assert torch.equal(batch.batch[row], batch.batch[col])
        for b in range(batch.batch_size):
            mine = batch.n_id[batch.batch == b].tolist()
            assert len(mine) == len(set(mine))
            assert set(mine) <= bfs_in(nbrs, [mine[0]], 2)[0]
            in_b = (batch.batch[col] == b) & (col == b)  # the seed's own hop-1 edges
            assert int(in_b.sum()) == min(3, len(nbrs.get(mine[0], ())))


def test_hetero_disjoint_full_fanout_matches_per_seed_bfs():
    data = random_hetero_graph(SIZES, 60, seed=2)
    seeds = [5, 9, 5, 30]
    batch = next(iter(TorchNeighborLoader(data, [-1, -1], input_nodes=("paper", torch.tensor(seeds)),
                                          disjoint=True, batch_size=4)))
    assert batch["paper"].batch[:4].tolist() == [0, 1, 2, 3]
    for b, s in enumerate(seeds):
        nodes, edges = bfs_in_hetero(data, [s], "paper", 2)
        for t in data.node_types:
            mine = batch[t].n_id[batch[t].batch == b].tolist()
            assert len(mine) == len(set(mine)) and set(mine) == nodes[t], t
        for et in data.edge_types:
            s_t, _, d_t = et
            row, col = batch[et].edge_index
            assert torch.equal(batch[s_t].batch[row], batch[d_t].batch[col])
            in_b = batch[d_t].batch[col] == b
            got = {(int(batch[s_t].n_id[u]), int(batch[d_t].n_id[v])) for u, v in zip(row[in_b], col[in_b])}
            assert got == edges[et], et
            assert torch.equal(data[et].edge_index[:, batch[et].e_id],
                               torch.stack([batch[s_t].n_id[row], batch[d_t].n_id[col]]))


# ---------------------------------------------------------------- weighted
def star(weights):
    """Node 0 with in-neighbours 1..len(weights), edge i -> 0 of weight weights[i - 1]
    (edges stored in reverse order, so that the CSC layout permutes them)."""
    n = len(weights)
    src = torch.arange(n, 0, -1)
    return Data(edge_index=torch.stack([src, torch.zeros(n, dtype=torch.long)]),
                w=torch.tensor(weights, dtype=torch.float64).flip(0), num_nodes=n + 1)


def subset_probabilities(w, k):
    """P(the k-subset S) for k successive draws without replacement, each proportional to
    the weights left (torch.multinomial(w, k, replacement=False)), by enumeration."""
    probs = {}
    for seq in permutations([i for i, x in enumerate(w) if x > 0], k):
        p, left = 1.0, sum(w)
        for i in seq:
            p *= w[i] / left
            left -= w[i]
        key = frozenset(seq)
        probs[key] = probs.get(key, 0.0) + p
    return probs


def check_subset_frequencies(picked, w, k):
    """picked: list of frozensets of neighbour indices (0-based)."""
    probs = subset_probabilities(w, k)
    keys = sorted(probs, key=sorted)
    assert all(s in probs for s in picked)  # never a zero-weight neighbour, always k distinct
    obs = [sum(1 for s in picked if s == key) for key in keys]
    exp = [probs[key] * len(picked) for key in keys]
    assert chisquare(obs, exp).pvalue > P_VALUE


@pytest.mark.parametrize("k", [1, 2, 3])
def test_weighted_without_replacement_matches_successive_draws(k):
    w = [1.0, 2.0, 0.0, 4.0, 0.5]
    data = star(w)
    sampler = TorchNeighborSampler(data, [k], weight_attr="w", seed=k)
    out = sampler.sample(torch.zeros(6000, dtype=torch.long))  # 6000 independent draws of node 0
    nbr = out.node[out.row] - 1
    picked = [frozenset(nbr[out.col == i].tolist()) for i in range(6000)]
    check_subset_frequencies(picked, w, k)


def test_weighted_with_replacement_and_all_neighbours():
    w = [1.0, 0.0, 3.0, 6.0]
    data = star(w)
    out = TorchNeighborSampler(data, [5], weight_attr="w", replace=True, seed=0).sample(torch.zeros(3000,
                                                                                                dtype=torch.long))
    nbr = (out.node[out.row] - 1).tolist()
    assert len(nbr) == 15000 and 1 not in nbr
    obs = [nbr.count(i) for i in (0, 2, 3)]
    assert chisquare(obs, [15000 * x / 10 for x in (1, 3, 6)]).pvalue > P_VALUE
    out = TorchNeighborSampler(data, [-1], weight_attr="w").sample(torch.zeros(1, dtype=torch.long))
    assert sorted((out.node[out.row] - 1).tolist()) == [0, 2, 3]  # all of positive weight
    # More draws than positive-weight neighbours: all of them, once.
    out = TorchNeighborSampler(data, [4], weight_attr="w").sample(torch.zeros(1, dtype=torch.long))
    assert sorted((out.node[out.row] - 1).tolist()) == [0, 2, 3]


def test_hetero_weighted_frequencies_per_edge_type():
    w = [3.0, 0.0, 1.0, 2.0]
    data = HeteroData()
    data["paper"].num_nodes, data["author"].num_nodes = 1, 4
    data["author", "writes", "paper"].edge_index = torch.tensor([[3, 2, 1, 0], [0, 0, 0, 0]])
    data["author", "writes", "paper"].w = torch.tensor(w).flip(0)
    data["paper", "cites", "paper"].edge_index = torch.tensor([[0], [0]])  # no weight: uniform
    sampler = TorchHeteroNeighborSampler(data, [2], weight_attr="w", seed=1)
    out = sampler.sample(torch.zeros(5000, dtype=torch.long), "paper")
    et = ("author", "writes", "paper")
    nbr = out.node["author"][out.row[et]]
    picked = [frozenset(nbr[out.col[et] == i].tolist()) for i in range(5000)]
    check_subset_frequencies(picked, w, 2)
    assert out.row[("paper", "cites", "paper")].numel() == 5000  # the unweighted type samples too


# ---------------------------------------------------------------- temporal
def timed_graph(seed):
    data = random_graph(100, 800, seed=seed)
    g = torch.Generator().manual_seed(seed)
    data.time = torch.randperm(100, generator=g)  # distinct node times
    data.etime = torch.randperm(data.edge_index.size(1), generator=g)
    return data


@pytest.mark.parametrize("strategy", ["uniform", "last"])
def test_node_time_never_samples_the_future(strategy):
    data = timed_graph(3)
    nbrs = in_neighbours(data.edge_index)
    loader = TorchNeighborLoader(data, [3, 2], time_attr="time", temporal_strategy=strategy,
                                 batch_size=20, shuffle=True, seed=0)
    for batch in loader:
        seed_time = data.time[batch.n_id[:batch.batch_size]]  # no input_time: the seeds' own times
        assert bool((data.time[batch.n_id] <= seed_time[batch.batch]).all())
        row, col = batch.edge_index
        assert torch.equal(batch.batch[row], batch.batch[col])
        for b in range(batch.batch_size):
            s = int(batch.n_id[b])
            valid = sorted((u for u in nbrs.get(s, ()) if data.time[u] <= data.time[s]), key=lambda u: data.time[u])
            got = batch.n_id[row[col == b]].tolist()
            assert len(got) == min(3, len(valid)) and set(got) <= set(valid)
            if strategy == "last":
                assert set(got) == set(valid[len(valid) - len(got):])  # the most recent ones


@pytest.mark.parametrize("strategy", ["uniform", "last"])
def test_edge_time_with_input_time(strategy):
    data = timed_graph(4)
    seeds = torch.arange(0, 100, 3)
    input_time = torch.randint(0, data.edge_index.size(1), (seeds.numel(),), generator=torch.Generator().manual_seed(0))
    loader = TorchNeighborLoader(data, [4, 4], input_nodes=seeds, input_time=input_time, time_attr="etime",
                                 temporal_strategy=strategy, batch_size=seeds.numel())
    batch = next(iter(loader))
    assert torch.equal(batch.seed_time, input_time)
    col = batch.edge_index[1]
    assert bool((data.etime[batch.e_id] <= input_time[batch.batch[col]]).all())
    for b, s in enumerate(seeds.tolist()):
        mask = data.edge_index[1] == s
        ok = mask & (data.etime <= input_time[b])
        times = sorted(data.etime[ok].tolist())
        got = sorted(data.etime[batch.e_id[col == b]].tolist())
        assert len(got) == min(4, len(times))
        if strategy == "last":
            assert got == times[len(times) - len(got):]


def test_hetero_node_time_never_samples_the_future():
    data = random_hetero_graph(SIZES, 80, seed=5)
    g = torch.Generator().manual_seed(5)
    for t in data.node_types:
        data[t].time = torch.randint(0, 50, (SIZES[t],), generator=g)
    for strategy in ("uniform", "last"):
        for batch in TorchNeighborLoader(data, [3, 2], input_nodes="paper", time_attr="time",
                                         temporal_strategy=strategy, batch_size=30, seed=1):
            seed_time = data["paper"].time[batch["paper"].n_id[:batch["paper"].batch_size]]
            for t in data.node_types:
                assert bool((data[t].time[batch[t].n_id] <= seed_time[batch[t].batch]).all())
            if strategy == "last":  # the seeds' cites neighbours: the most recent valid ones
                et = ("paper", "cites", "paper")
                nbrs = in_neighbours(data[et].edge_index)
                row, col = batch[et].edge_index
                for b in range(batch["paper"].batch_size):
                    s = int(batch["paper"].n_id[b])
                    valid = sorted(int(data["paper"].time[u]) for u in nbrs.get(s, ())
                                   if data["paper"].time[u] <= data["paper"].time[s])
                    got = sorted(data["paper"].time[batch["paper"].n_id[row[col == b]]].tolist())
                    assert got == valid[len(valid) - len(got):] and len(got) == min(3, len(valid))


# ---------------------------------------------------------------- subgraph types
def test_induced_holds_exactly_the_edges_among_sampled_nodes():
    data = random_graph(90, 600, seed=6)
    edges = edge_set(data.edge_index)
    for kw in (dict(subgraph_type="induced"), dict(directed=False)):
        with pytest.warns(UserWarning) if "directed" in kw else _nothing():
            loader = TorchNeighborLoader(data, [2, 2], batch_size=15, seed=2, **kw)
        for batch in loader:
            n_id = batch.n_id.tolist()
            expected = {(u, v) for u in n_id for v in n_id if (u, v) in edges}
            got = [(n_id[u], n_id[v]) for u, v in batch.edge_index.t().tolist()]
            assert len(got) == len(set(got)) and set(got) == expected
            assert torch.equal(data.edge_index[:, batch.e_id], batch.n_id[batch.edge_index])


def test_hetero_induced_holds_exactly_the_edges_among_sampled_nodes():
    data = random_hetero_graph(SIZES, 70, seed=7)
    for batch in TorchNeighborLoader(data, [2, 1], input_nodes="paper", subgraph_type="induced",
                                     batch_size=20, seed=0):
        for et in data.edge_types:
            s, _, d = et
            src, dst = set(batch[s].n_id.tolist()), set(batch[d].n_id.tolist())
            expected = {(u, v) for u, v in edge_set(data[et].edge_index) if u in src and v in dst}
            row, col = batch[et].edge_index
            got = list(zip(batch[s].n_id[row].tolist(), batch[d].n_id[col].tolist()))
            assert len(got) == len(set(got)) and set(got) == expected, et


def test_bidirectional_edges_are_the_sampled_ones_both_ways():
    data = random_graph(90, 500, seed=8)
    edges = edge_set(data.edge_index)
    plain = next(iter(TorchNeighborLoader(data, [3, 2], batch_size=15, seed=5)))
    both = next(iter(TorchNeighborLoader(data, [3, 2], batch_size=15, seed=5, subgraph_type="bidirectional")))
    assert torch.equal(plain.n_id, both.n_id)
    directed = set(map(tuple, plain.edge_index.t().tolist()))
    got = set(map(tuple, both.edge_index.t().tolist()))
    assert got == directed | {(v, u) for u, v in directed}
    for u, v in got:
        assert (int(both.n_id[u]), int(both.n_id[v])) in edges or (int(both.n_id[v]), int(both.n_id[u])) in edges


class _nothing:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


# ---------------------------------------------------------------- PyG's signature
def test_signatures_follow_pyg():
    ours = list(inspect.signature(TorchNeighborLoader.__init__).parameters)
    pyg = [p for p in inspect.signature(NeighborLoader.__init__).parameters if p != "kwargs"]
    assert ours[:len(pyg)] == pyg
    pyg_sampler = list(inspect.signature(NeighborSampler.__init__).parameters)
    for cls in (TorchNeighborSampler, TorchHeteroNeighborSampler):
        assert list(inspect.signature(cls.__init__).parameters)[:len(pyg_sampler)] == pyg_sampler
    params = inspect.signature(neighbor_loader).parameters
    positional = [n for n, p in params.items() if p.kind == p.POSITIONAL_OR_KEYWORD]
    assert positional == ["data", "num_neighbors"]


def test_pyg_style_code_runs_unchanged():
    data = random_graph(60, 300, seed=9, edge_dim=3)
    data.w = torch.rand(data.edge_index.size(1)) + 0.1
    train = torch.arange(0, 60, 2)
    # Positional, as NeighborLoader's order: data, num_neighbors, input_nodes, input_time, replace,
    # subgraph_type, disjoint, temporal_strategy, time_attr, weight_attr.
    positional = TorchNeighborLoader(data, [3, 2], train, None, False, "directional", True, "uniform", None, "w",
                                     batch_size=8, shuffle=True)
    keyword = TorchNeighborLoader(data, num_neighbors=[3, 2], input_nodes=train, disjoint=True, weight_attr="w",
                                  batch_size=8, shuffle=True)
    for loader in (positional, keyword):
        seen = []
        for batch in loader:
            assert batch.n_id.numel() == sum(batch.num_sampled_nodes)
            assert batch.edge_index.size(1) == sum(batch.num_sampled_edges) == batch.e_id.numel()
            assert torch.equal(batch.n_id[:batch.batch_size], train[batch.input_id])
            assert torch.equal(batch.edge_attr, data.edge_attr[batch.e_id])
            assert torch.equal(batch.x, data.x[batch.n_id])
            assert batch.batch.numel() == batch.num_nodes
            seen += batch.input_id.tolist()
        assert sorted(seen) == list(range(train.numel()))
