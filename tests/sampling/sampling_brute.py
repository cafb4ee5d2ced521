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


HETERO_EDGE_TYPES = [("author", "writes", "paper"), ("paper", "rev_writes", "author"),
                     ("paper", "cites", "paper"), ("paper", "has_topic", "field"),
                     ("field", "rev_has_topic", "paper")]


def random_hetero_graph(num_nodes: Dict[str, int], num_edges: int, seed: int,
                        edge_dim: int = 0, feat_dim: int = 6):
    """Random HeteroData with papers (features ``x``, labels ``y = id``), authors and
    fields without features, and the edge types of ``HETERO_EDGE_TYPES`` (each a random
    simple graph of about ``num_edges`` edges in shuffled order with skewed degrees; the
    last fifth of the fields is isolated). ``edge_dim`` puts features on ``cites``."""
    from torch_geometric.data import HeteroData
    g = torch.Generator().manual_seed(seed)
    data = HeteroData()
    data["paper"].x = torch.randn(num_nodes["paper"], feat_dim, generator=g)
    data["paper"].y = torch.arange(num_nodes["paper"])
    data["author"].num_nodes = num_nodes["author"]
    data["field"].num_nodes = num_nodes["field"]
    active = {"paper": num_nodes["paper"], "author": num_nodes["author"],
              "field": num_nodes["field"] - num_nodes["field"] // 5}
    for src_t, rel, dst_t in HETERO_EDGE_TYPES:
        if rel.startswith("rev_"):
            continue
        ns, nd = active[src_t], active[dst_t]
        ws = torch.arange(1, ns + 1, dtype=torch.float64).pow(-0.8)
        wd = torch.arange(1, nd + 1, dtype=torch.float64).pow(-0.8)
        src = torch.multinomial(ws, 3 * num_edges, replacement=True, generator=g)
        dst = torch.randperm(nd, generator=g)[torch.multinomial(wd, 3 * num_edges, replacement=True,
                                                                generator=g)]
        keep = src != dst if src_t == dst_t else torch.ones_like(src, dtype=torch.bool)
        key = torch.unique(src[keep] * nd + dst[keep])
        key = key[torch.randperm(key.numel(), generator=g)[:num_edges]]
        ei = torch.stack([key // nd, key % nd])
        data[src_t, rel, dst_t].edge_index = ei
        if src_t != dst_t:
            rev = ei.flip(0)
            data[dst_t, "rev_" + rel, src_t].edge_index = rev[:, torch.randperm(rev.size(1), generator=g)]
    if edge_dim:
        et = ("paper", "cites", "paper")
        data[et].edge_attr = torch.randn(data[et].edge_index.size(1), edge_dim, generator=g)
    return data


def bfs_in_hetero(data, seeds: List[int], input_type: str, hops: int):
    """Per node type the nodes, per edge type the edges, that full-fanout heterogeneous
    sampling must return: at each hop, every edge type (s, r, d) takes all in-edges of
    the type-d nodes reached at the previous hop."""
    nbrs = {et: in_neighbours(data[et].edge_index) for et in data.edge_types}
    seen = {t: set() for t in data.node_types}
    seen[input_type] = set(seeds)
    frontier = {t: [] for t in data.node_types}
    frontier[input_type] = list(dict.fromkeys(seeds))
    edges = {et: set() for et in data.edge_types}
    for _ in range(hops):
        nxt = {t: [] for t in data.node_types}
        for et in data.edge_types:
            s, _, d = et
            for v in frontier[d]:
                for u in nbrs[et].get(v, ()):
                    edges[et].add((u, v))
                    if u not in seen[s]:
                        seen[s].add(u)
                        nxt[s].append(u)
        frontier = nxt
    return seen, edges


def hetero_hop_slices(counts: List[int]) -> List[Tuple[int, int]]:
    """(start, end) of every hop's block, from per-hop counts."""
    c = torch.tensor([0] + list(counts)).cumsum(0).tolist()
    return list(zip(c[:-1], c[1:]))
