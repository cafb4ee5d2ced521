"""A given seed's batches stay identical: digests of the mini-batches (node ids, edge ids, edges,
per-hop counts, seed slots) that the samplers produced at commit 5b3d161, before the homogeneous
and heterogeneous samplers became one (issue 27): ``PYTHONPATH=<a checkout of 5b3d161> python
tests/sampling/test_sampling_identity.py`` prints the table. Change it only for a documented reason."""
import hashlib
import sys
from pathlib import Path

import pytest
import torch

from pyg_ham.sampling import TorchNeighborLoader

sys.path.insert(0, str(Path(__file__).parent))  # the brute-force helpers next to this file
from sampling_brute import random_graph, random_hetero_graph  # noqa: E402


def _graph(sorted_edges: bool = False):
    data = random_graph(150, 900, seed=4, num_isolated=5)
    g = torch.Generator().manual_seed(5)
    if sorted_edges:  # already grouped by target: the CSC needs no permutation
        data.edge_index = data.edge_index[:, torch.sort(data.edge_index[1], stable=True).indices]
    data.w = torch.rand(data.num_edges, generator=g) * (torch.rand(data.num_edges, generator=g) > 0.2)
    data.node_time = torch.randint(0, 50, (data.num_nodes,), generator=g)
    data.edge_time = torch.randint(0, 50, (data.num_edges,), generator=g)
    return data


def _hetero():
    data = random_hetero_graph({"paper": 90, "author": 60, "field": 25}, 300, seed=6)
    g = torch.Generator().manual_seed(7)
    for et in data.edge_types:
        data[et].w = torch.rand(data[et].num_edges, generator=g)
    for t in data.node_types:
        data[t].node_time = torch.randint(0, 50, (data[t].num_nodes,), generator=g)
    return data


SEEDS = torch.tensor([5, 17, 5, 88, 140, 3, 61, 99, 120, 7, 33, 149])  # a repeated and an isolated seed
HOMO = {
    "uniform": dict(num_neighbors=[3, 2]),
    "uniform-sorted": dict(num_neighbors=[3, 2], sorted_edges=True),
    "zero-all": dict(num_neighbors=[4, 0, -1]),
    "replace": dict(num_neighbors=[4, 3], replace=True),
    "disjoint": dict(num_neighbors=[3, 2], disjoint=True),
    "weighted": dict(num_neighbors=[3, 2], weight_attr="w"),
    "weighted-replace-all": dict(num_neighbors=[3, -1], weight_attr="w", replace=True),
    "node-time": dict(num_neighbors=[3, 2], time_attr="node_time"),
    "node-time-last": dict(num_neighbors=[3, 2], time_attr="node_time", temporal_strategy="last"),
    "edge-time": dict(num_neighbors=[3, -1], time_attr="edge_time", input_time=True),
    "induced": dict(num_neighbors=[2, 2], subgraph_type="induced"),
    "bidirectional": dict(num_neighbors=[2, 2], subgraph_type="bidirectional"),
    "no-edge-id": dict(num_neighbors=[3, 2], with_edge_id=False),
    "fixed-seeds": dict(num_neighbors=[5, 3], input_nodes=SEEDS, shuffle=False),
    "weighted-induced": dict(num_neighbors=[2, 2], weight_attr="w", subgraph_type="induced"),
    "disjoint-replace-bidirectional": dict(num_neighbors=[3, 2], disjoint=True, replace=True,
                                           subgraph_type="bidirectional"),
}
HETERO = {
    "hetero-uniform": dict(num_neighbors=[3, 2]),
    "hetero-per-type": dict(num_neighbors={("paper", "cites", "paper"): [3, 1], ("author", "writes", "paper"): [2, -1],
                                           ("paper", "rev_writes", "author"): [0, 2],
                                           ("paper", "has_topic", "field"): [-1, 1],
                                           ("field", "rev_has_topic", "paper"): [1, 1]}),
    "hetero-disjoint": dict(num_neighbors=[2, 2], disjoint=True),
    "hetero-weighted": dict(num_neighbors=[2, 2], weight_attr="w"),
    "hetero-node-time": dict(num_neighbors=[2, 2], time_attr="node_time"),
    "hetero-induced": dict(num_neighbors=[2, 1], subgraph_type="induced"),
    "hetero-weighted-induced": dict(num_neighbors=[2, 1], weight_attr="w", subgraph_type="induced"),
    "hetero-replace-no-edge-id": dict(num_neighbors=[3, 2], replace=True, with_edge_id=False),
    "hetero-bidirectional": dict(num_neighbors=[2, 2], subgraph_type="bidirectional"),
    "hetero-node-time-last": dict(num_neighbors=[2, -1], time_attr="node_time", temporal_strategy="last"),
}


def _digest(batches) -> str:
    h = hashlib.sha256()
    for batch in batches:
        for store in batch.stores:
            for name in ("n_id", "e_id", "edge_index", "batch", "input_id", "num_sampled_nodes",
                         "num_sampled_edges"):
                value = store.get(name)
                h.update(name.encode())
                if isinstance(value, torch.Tensor):
                    h.update(value.to(torch.int64).cpu().numpy().tobytes())
                else:
                    h.update(repr(value).encode())
    return h.hexdigest()[:16]


def digest(name: str) -> str:
    kw = dict(HOMO.get(name) or HETERO[name])
    hetero = name in HETERO
    data = _hetero() if hetero else _graph(kw.pop("sorted_edges", False))
    kw.setdefault("shuffle", True)
    if kw.pop("input_time", False):
        kw["input_time"] = torch.randint(20, 50, (data.num_nodes,), generator=torch.Generator().manual_seed(8))
    if hetero:
        kw["input_nodes"] = "paper"
    loader = TorchNeighborLoader(data, batch_size=8, seed=3, **kw)
    return _digest(b for _, b in zip(range(4), loader))


EXPECTED = {
    "uniform": "2eaa297e5947f596",
    "uniform-sorted": "7f1cf1acc0d2c9fd",
    "zero-all": "98df9e4d5733fb47",
    "replace": "945a5710d435d058",
    "disjoint": "31ededca71150d55",
    "weighted": "fcc69ef2c612bd67",
    "weighted-replace-all": "c544853de71a2bd9",
    "node-time": "cba62bf49e43b949",
    "node-time-last": "a92c89e0dcff8764",
    "edge-time": "a9d6b7c05229cd26",
    "induced": "938ffbce44cf1fc2",
    "bidirectional": "aaa5d75e5c8606d1",
    "no-edge-id": "fc797fca9a5344f7",
    "fixed-seeds": "ef6e5367e70fb590",
    "weighted-induced": "627079ce621e273d",
    "disjoint-replace-bidirectional": "be322bcdc6daadb5",
    "hetero-uniform": "1201e5012a5dc814",
    "hetero-per-type": "1d361d06d0649f09",
    "hetero-disjoint": "89875c1f080144be",
    "hetero-weighted": "46082f6cfc73d36c",
    "hetero-node-time": "630bf4eae0316e00",
    "hetero-induced": "340639434b1683ed",
    "hetero-weighted-induced": "5be71aa533e58a8a",
    "hetero-replace-no-edge-id": "1da019e43e1f395b",
    "hetero-bidirectional": "c78ea8bb6c411085",
    "hetero-node-time-last": "d803d49419bb0bd8",
}


@pytest.mark.parametrize("name", list(HOMO) + list(HETERO))
def test_batches_are_those_of_the_recorded_commit(name):
    assert digest(name) == EXPECTED[name]


if __name__ == "__main__":
    for name in list(HOMO) + list(HETERO):
        print(f'    "{name}": "{digest(name)}",')
