"""Brute-force references for the neighbour-sampler tests (plain Python sets and dicts)."""
from collections import defaultdict
from typing import Dict, List, Set, Tuple

import torch
from torch_geometric.data import Data


def random_graph(num_nodes: int, num_edges: int, seed: int, num_isolated: int = 0,
                 edge_dim: int = 0, feat_dim: int = 8) -> Data:
    """Random directed simple graph (no self-loops, no parallel edges) whose last
    ``num_isolated`` nodes have no edges at all; shuffled edge order."""
    g = torch.Generator().manual_seed(seed)
    active = num_nodes - num_isolated
    # Skewed sources and targets so that some nodes have high in-degree.
    w = torch.arange(1, active + 1, dtype=torch.float64).pow(-0.8)
    src = torch.multinomial(w, 3 * num_edges + 3, replacement=True, generator=g)
    dst = torch.multinomial(w.flip(0), 3 * num_edges + 3, replacement=True, generator=g)
    dst = torch.randperm(active, generator=g)[dst]
    keep = src != dst
    key = torch.unique(src[keep] * num_nodes + dst[keep])
    key = key[torch.randperm(key.numel(), generator=g)[:num_edges]]
    edge_index = torch.stack([key // num_nodes, key % num_nodes])
    data = Data(x=torch.randn(num_nodes, feat_dim, generator=g), edge_index=edge_index,
                y=torch.arange(num_nodes), num_nodes=num_nodes)
    if edge_dim:
        data.edge_attr = torch.randn(edge_index.size(1), edge_dim, generator=g)
    return data


def in_neighbours(edge_index: torch.Tensor) -> Dict[int, Set[int]]:
    nbrs: Dict[int, Set[int]] = defaultdict(set)
    for u, v in edge_index.t().tolist():
        nbrs[v].add(u)
    return nbrs


def edge_set(edge_index: torch.Tensor) -> Set[Tuple[int, int]]:
    return set(map(tuple, edge_index.t().tolist()))


def bfs_in(nbrs: Dict[int, Set[int]], seeds: List[int], hops: int) -> Tuple[Set[int], Set[Tuple[int, int]]]:
    """Nodes within ``hops`` in-hops of ``seeds`` and the in-edges of the nodes
    within ``hops - 1`` (what full-fanout sampling must return)."""
    seen, frontier, edges = set(seeds), list(dict.fromkeys(seeds)), set()
    for _ in range(hops):
        nxt = []
        for v in frontier:
            for u in nbrs.get(v, ()):
                edges.add((u, v))
                if u not in seen:
                    seen.add(u)
                    nxt.append(u)
        frontier = nxt
    return seen, edges


def hop_slices(batch) -> Tuple[List[Tuple[int, int]], List[Tuple[int, int]]]:
    """(start, end) of the nodes and edges of every hop of a mini-batch."""
    n = torch.tensor([0] + list(batch.num_sampled_nodes)).cumsum(0).tolist()
    e = torch.tensor([0] + list(batch.num_sampled_edges)).cumsum(0).tolist()
    return list(zip(n[:-1], n[1:])), list(zip(e[:-1], e[1:]))
