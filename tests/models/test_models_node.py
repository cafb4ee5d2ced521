"""Node classification models: shapes, the MLP wrapper, trim_to_layer."""
from typing import List, Tuple

import pytest
import torch
from torch import Tensor
from torch_geometric.nn.models import GAT, GCN, GIN, GraphSAGE
from torch_geometric.utils import k_hop_subgraph

from pyg_ham.models import NODE_MODELS, NodeMLP, build_node_model

N, F_IN, C_OUT = 30, 8, 5


@pytest.fixture
def graph() -> Tuple[Tensor, Tensor]:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(N, F_IN, generator=g)
    edge_index = torch.randint(0, N, (2, 120), generator=g)
    return x, edge_index


def test_names():
    assert NODE_MODELS == ("gcn", "sage", "gat", "gin", "mlp")


@pytest.mark.parametrize("name, cls", [("gcn", GCN), ("sage", GraphSAGE), ("gat", GAT),
                                       ("gin", GIN), ("mlp", NodeMLP)])
def test_classes(name, cls):
    assert type(build_node_model(name, F_IN, C_OUT, hidden_channels=16)) is cls


@pytest.mark.parametrize("name", NODE_MODELS)
@pytest.mark.parametrize("norm", ["batch_norm", "layer_norm", None])
def test_forward_shape_and_backward(graph, name, norm):
    x, edge_index = graph
    model = build_node_model(name, F_IN, C_OUT, hidden_channels=16, num_layers=2,
                             norm=norm, heads=2)
    out = model(x, edge_index)
    assert out.shape == (N, C_OUT)
    out.sum().backward()
    assert all(p.grad is not None for p in model.parameters())


@pytest.mark.parametrize("name", ["gcn", "sage", "gat", "gin"])
@pytest.mark.parametrize("jk", ["last", "cat", "max"])
def test_jk(graph, name, jk):
    x, edge_index = graph
    model = build_node_model(name, F_IN, C_OUT, hidden_channels=16, jk=jk)
    assert model(x, edge_index).shape == (N, C_OUT)
    assert model.lin.out_features == C_OUT


def test_single_layer(graph):
    x, edge_index = graph
    model = build_node_model("sage", F_IN, C_OUT, num_layers=1)
    assert len(model.convs) == 1 and model(x, edge_index).shape == (N, C_OUT)


def test_gat_heads(graph):
    x, edge_index = graph
    model = build_node_model("gat", F_IN, C_OUT, hidden_channels=16, heads=4)
    assert model.convs[0].heads == 4 and model.convs[0].out_channels == 4
    assert model.convs[-1].concat is False and model.convs[-1].out_channels == C_OUT
    assert model(x, edge_index).shape == (N, C_OUT)


def test_gcn_cached_kwarg(graph):
    x, edge_index = graph
    model = build_node_model("gcn", F_IN, C_OUT, hidden_channels=16, cached=True).eval()
    assert all(conv.cached for conv in model.convs)
    first = model(x, edge_index)
    assert torch.allclose(first, model(x, edge_index))


def test_mlp_ignores_graph(graph):
    x, edge_index = graph
    model = build_node_model("mlp", F_IN, C_OUT, hidden_channels=16).eval()
    assert len(model.lins) == 3
    out = model(x, edge_index)
    assert out.shape == (N, C_OUT)
    other = torch.randint(0, N, (2, 7))
    assert torch.equal(out, model(x, other))
    assert torch.equal(out, model(x, None))
    assert torch.equal(out, model(x))
    assert torch.equal(out, model(x, edge_index, num_sampled_nodes_per_hop=[N],
                                  num_sampled_edges_per_hop=[0], batch_size=3))


def hop_ordered_subgraph(edge_index: Tensor, seeds: List[int]):
    """A 2-hop NeighborLoader-style batch taking every neighbour: nodes ordered
    [seeds, new 1-hop, new 2-hop], edges ordered [into seeds, into 1-hop nodes]."""
    src, dst = edge_index
    nodes = list(seeds)
    hops = [list(seeds)]
    edge_blocks = []
    for _ in range(2):
        mask = torch.isin(dst, torch.tensor(hops[-1]))
        edge_blocks.append(edge_index[:, mask])
        new = [int(v) for v in src[mask] if int(v) not in nodes]
        new = list(dict.fromkeys(new))
        nodes += new
        hops.append(new)
    mapping = {v: i for i, v in enumerate(nodes)}
    sub = torch.cat(edge_blocks, dim=1).apply_(lambda v: mapping[v])
    return (torch.tensor(nodes), sub, [len(h) for h in hops],
            [b.size(1) for b in edge_blocks])


@pytest.mark.parametrize("name", ["sage", "gat", "gin"])  # GCN: see note below
def test_trim_to_layer_matches_full_graph(graph, name):
    x, edge_index = graph
    seeds = [0, 1, 2]
    nodes, sub_ei, n_nodes, n_edges = hop_ordered_subgraph(edge_index, seeds)
    assert set(nodes.tolist()) == set(k_hop_subgraph(seeds, 2, edge_index)[0].tolist())
    assert n_nodes[2] > 0 and n_edges[1] > 0  # trimming actually removes something

    torch.manual_seed(0)
    model = build_node_model(name, F_IN, C_OUT, hidden_channels=16, num_layers=2,
                             heads=2).eval()
    full = model(x, edge_index)[:3]
    untrimmed = model(x[nodes], sub_ei)[:3]
    trimmed = model(x[nodes], sub_ei, num_sampled_nodes_per_hop=n_nodes,
                    num_sampled_edges_per_hop=n_edges)[:3]
    assert torch.allclose(untrimmed, full, atol=1e-5)
    assert torch.allclose(trimmed, full, atol=1e-5)
    # Note: GCN's symmetric normalisation uses source-node degrees, which a
    # sampled subgraph does not preserve, so GCN is not exact under sampling.
