"""The NeighborLoader contract, checked against brute force on small random graphs."""
import _socket
import socket
import sys
from pathlib import Path

import pytest
import torch
from torch_geometric.utils import k_hop_subgraph

from pyg_ham.sampling import TorchNeighborLoader, neighbor_loader

sys.path.insert(0, str(Path(__file__).parent))  # the brute-force helpers next to this file
from sampling_brute import bfs_in, edge_set, hop_slices, in_neighbours, random_graph  # noqa: E402

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


def check_batch(batch, data, fanouts, replace=False):
    """Every invariant of one mini-batch that can be checked without knowing the draws."""
    edges, nbrs = edge_set(data.edge_index), in_neighbours(data.edge_index)
    n_id = batch.n_id.cpu()
    ei = batch.edge_index.cpu()
    glob = n_id[ei]
    node_hops, edge_hops = hop_slices(batch)
    assert len(batch.num_sampled_nodes) == len(fanouts) + 1
    assert len(batch.num_sampled_edges) == len(fanouts)
    assert sum(batch.num_sampled_nodes) == n_id.numel() == batch.x.size(0)
    assert sum(batch.num_sampled_edges) == ei.size(1)
    assert torch.equal(batch.x.cpu(), data.x[n_id]) and torch.equal(batch.y.cpu(), data.y[n_id])
    # Nodes are unique apart from repeated seeds.
    seeds = n_id[:batch.batch_size]
    assert n_id[batch.batch_size:].unique().numel() == n_id.numel() - batch.batch_size
    assert not set(n_id[batch.batch_size:].tolist()) & set(seeds.tolist())
    # Every sampled edge exists: row = neighbour, col = the node it was sampled for.
    assert set(map(tuple, glob.t().tolist())) <= edges
    for h, (k, (e0, e1)) in enumerate(zip(fanouts, edge_hops)):
        (t0, t1), (_, n_end) = node_hops[h], node_hops[h + 1]
        row, col = ei[0, e0:e1], ei[1, e0:e1]
        # Messages flow towards the seeds: targets are this hop's frontier,
        # sources are already-known nodes or the next hop's new nodes.
        assert bool(((col >= t0) & (col < t1)).all()) and bool((row < n_end).all())
        # Per-target count = min(in-degree, fanout) (fanout if replace and deg > 0).
        counts = torch.bincount(col - t0, minlength=t1 - t0).tolist()
        for local, c in zip(range(t0, t1), counts):
            deg = len(nbrs.get(int(n_id[local]), ()))
            want = deg if k < 0 else (k if deg > 0 else 0) if replace else min(deg, k)
            assert c == want, (h, int(n_id[local]), deg, k, c)
        if not replace:  # no neighbour twice for the same target (a repeated seed is its own target)
            pairs = torch.stack([glob[0, e0:e1], col])
            assert pairs.unique(dim=1).size(1) == pairs.size(1)
        # The next hop's new nodes are exactly the unseen nodes reached here.
        new = set(n_id[node_hops[h + 1][0]:n_end].tolist())
        assert new == set(n_id[row[row >= node_hops[h + 1][0]]].tolist())


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("fanouts", [[3, 2], [5, 0, 4], [1], [2, -1]])
def test_batches_are_valid_samples(fanouts, device):
    data = random_graph(120, 700, seed=1, num_isolated=6)
    loader = neighbor_loader(data, fanouts, batch_size=17, shuffle=True, seed=3,
                             device=device, force="pyg_ham")
    seen = []
    for batch in loader:
        check_batch(batch, data, fanouts)
        seen.append(batch.n_id[:batch.batch_size].cpu())
    assert sorted(torch.cat(seen).tolist()) == list(range(120))


def test_replace_draws_fanout_per_connected_target():
    data = random_graph(80, 400, seed=2, num_isolated=4)
    for batch in neighbor_loader(data, [4, 3], batch_size=20, replace=True, seed=0, force="pyg_ham"):
        check_batch(batch, data, [4, 3], replace=True)


def test_seeds_first_in_input_order_with_input_id():
    data = random_graph(100, 500, seed=4, num_isolated=5)
    perm = torch.randperm(100, generator=torch.Generator().manual_seed(0))
    input_nodes = torch.cat([perm[:40], perm[:3]])  # repeated seeds keep their slots
    loader = neighbor_loader(data, [4, 4], batch_size=16, input_nodes=input_nodes, force="pyg_ham")
    offset = 0
    for batch in loader:
        bs = batch.batch_size
        assert torch.equal(batch.n_id[:bs], input_nodes[offset:offset + bs])
        assert torch.equal(batch.input_id, torch.arange(offset, offset + bs))
        assert torch.equal(batch.y[:bs], data.y[input_nodes[offset:offset + bs]])
        check_batch(batch, data, [4, 4])
        offset += bs
    assert offset == input_nodes.numel()


def test_boolean_mask_input_nodes():
    data = random_graph(60, 300, seed=5)
    mask = torch.zeros(60, dtype=torch.bool)
    mask[::3] = True
    batches = list(neighbor_loader(data, [2], batch_size=7, input_nodes=mask, force="pyg_ham"))
    assert torch.equal(torch.cat([b.n_id[:b.batch_size] for b in batches]), mask.nonzero().view(-1))
    assert torch.equal(torch.cat([b.input_id for b in batches]), mask.nonzero().view(-1))


@pytest.mark.parametrize("hops", [1, 2, 3])
def test_all_neighbours_give_the_k_hop_in_neighbourhood(hops):
    data = random_graph(150, 450, seed=6, num_isolated=10)
    nbrs = in_neighbours(data.edge_index)
    seeds = torch.tensor([0, 7, 33, 145, 71])
    loader = neighbor_loader(data, [-1] * hops, batch_size=5, input_nodes=seeds, force="pyg_ham")
    batch = next(iter(loader))
    subset, _, _, _ = k_hop_subgraph(seeds, hops, data.edge_index, num_nodes=150,
                                     flow="source_to_target")
    assert set(batch.n_id.tolist()) == set(subset.tolist())
    want_nodes, want_edges = bfs_in(nbrs, seeds.tolist(), hops)
    assert set(batch.n_id.tolist()) == want_nodes
    got = batch.n_id[batch.edge_index]
    assert got.size(1) == len(want_edges) and set(map(tuple, got.t().tolist())) == want_edges


def test_edge_ids_and_features_follow_the_edges():
    data = random_graph(90, 500, seed=7, edge_dim=3)
    for batch in neighbor_loader(data, [3, 3], batch_size=30, seed=1, force="pyg_ham"):
        assert torch.equal(data.edge_index[:, batch.e_id], batch.n_id[batch.edge_index])
        assert torch.equal(batch.edge_attr, data.edge_attr[batch.e_id])
    plain = random_graph(90, 500, seed=7)
    batch = next(iter(TorchNeighborLoader(plain, [3], batch_size=30, with_edge_id=False)))
    assert "e_id" not in batch
    batch = next(iter(TorchNeighborLoader(plain, [3], batch_size=30)))
    assert torch.equal(plain.edge_index[:, batch.e_id], batch.n_id[batch.edge_index])


def test_isolated_seeds_and_empty_graph():
    data = random_graph(50, 100, seed=8, num_isolated=20)
    isolated = torch.arange(30, 50)
    batch = next(iter(neighbor_loader(data, [5, 5], batch_size=20, input_nodes=isolated,
                                      force="pyg_ham")))
    assert torch.equal(batch.n_id, isolated) and batch.edge_index.size(1) == 0
    assert batch.num_sampled_nodes == [20, 0, 0] and batch.num_sampled_edges == [0, 0]
    empty = random_graph(10, 0, seed=0)
    batch = next(iter(neighbor_loader(empty, [3, -1], batch_size=4, force="pyg_ham")))
    assert batch.n_id.tolist() == [0, 1, 2, 3] and batch.edge_index.size(1) == 0


def _batches(loader):
    return [(b.n_id.tolist(), b.edge_index.tolist()) for b in loader]


def test_same_seed_same_batches():
    data = random_graph(200, 1500, seed=9)

    def make(**kw):
        return neighbor_loader(data, [4, 3], batch_size=50, shuffle=True, force="pyg_ham", **kw)

    assert _batches(make(seed=5)) == _batches(make(seed=5))
    assert _batches(make(seed=5)) != _batches(make(seed=6))
    gens = [torch.Generator().manual_seed(11) for _ in range(2)]
    assert _batches(make(generator=gens[0])) == _batches(make(generator=gens[1]))


@pytest.fixture
def unix_sockets(monkeypatch):
    """Let DataLoader workers hand tensors back over local (AF_UNIX) sockets,
    which the suite's no-network guard blocks; internet sockets stay blocked."""

    def connect(sock, address):
        if sock.family == socket.AF_UNIX:
            return _socket.socket.connect(sock, address)
        raise OSError("network access is disabled in tests")

    monkeypatch.setattr(socket.socket, "connect", connect)


def test_workers_are_reproducible_and_valid(unix_sockets):
    data = random_graph(200, 1200, seed=10)

    def make():
        return neighbor_loader(data, [3, 3], batch_size=40, shuffle=True, seed=2, num_workers=2,
                               force="pyg_ham")

    first = list(make())
    for batch in first:
        check_batch(batch, data, [3, 3])
    assert _batches(first) == _batches(make())
    # Workers draw different streams: two batches with the same seeds would be an accident.
    assert len({tuple(b.n_id[b.batch_size:].tolist()) for b in first}) == len(first)


def test_repeated_seeds_in_one_batch_each_get_their_own_sample():
    data = random_graph(60, 400, seed=13)
    seeds = torch.tensor([5, 9, 5, 12, 9, 5])
    batch = next(iter(neighbor_loader(data, [3, 2], batch_size=6, input_nodes=seeds, seed=0,
                                      force="pyg_ham")))
    assert torch.equal(batch.n_id[:6], seeds)
    check_batch(batch, data, [3, 2])
