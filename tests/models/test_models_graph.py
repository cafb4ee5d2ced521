"""Graph classification models: shapes, pooling, invariance, OGB inputs, virtual node."""
from typing import List

import pytest
import torch
from ogb.utils.features import get_atom_feature_dims, get_bond_feature_dims
from torch_geometric.data import Batch, Data
from torch_geometric.nn import GATConv, GCNConv, GINConv, GINEConv, SAGEConv

from pyg_ham.models import GRAPH_MODELS, POOLS, GraphGNN, build_graph_model

F_IN, E_DIM, C_OUT = 6, 3, 4
SIZES = (5, 8, 3, 6)


def rand_graph(n: int, g: torch.Generator, ogb: bool = False, edge_dim: int = E_DIM) -> Data:
    edge_index = torch.randint(0, n, (2, 3 * n), generator=g)
    if ogb:
        x = torch.stack([torch.randint(0, d, (n,), generator=g) for d in get_atom_feature_dims()], 1)
        x[0] = torch.tensor(get_atom_feature_dims()) - 1  # largest valid index
        e = edge_index.size(1)
        edge_attr = torch.stack([torch.randint(0, d, (e,), generator=g)
                                 for d in get_bond_feature_dims()], 1)
        edge_attr[0] = torch.tensor(get_bond_feature_dims()) - 1
    else:
        x = torch.randn(n, F_IN, generator=g)
        edge_attr = torch.randn(edge_index.size(1), edge_dim, generator=g)
    return Data(x=x, edge_index=edge_index, edge_attr=edge_attr)


def make_batch(ogb: bool = False, seed: int = 0) -> Batch:
    g = torch.Generator().manual_seed(seed)
    return Batch.from_data_list([rand_graph(n, g, ogb) for n in SIZES])


def permute(data: Data, g: torch.Generator) -> Data:
    perm = torch.randperm(data.num_nodes, generator=g)  # new position -> old node
    inv = torch.empty_like(perm)
    inv[perm] = torch.arange(data.num_nodes)
    eperm = torch.randperm(data.num_edges, generator=g)
    return Data(x=data.x[perm], edge_index=inv[data.edge_index][:, eperm],
                edge_attr=data.edge_attr[eperm])


def small(name: str, **kw) -> GraphGNN:
    torch.manual_seed(0)
    kw = {"hidden_channels": 16, "num_layers": 3, "heads": 2, **kw}
    return build_graph_model(name, F_IN, C_OUT, **kw)


def test_names():
    assert GRAPH_MODELS == ("gin", "gcn", "sage", "gat")
    assert tuple(POOLS) == ("sum", "mean", "max")


@pytest.mark.parametrize("name", GRAPH_MODELS)
@pytest.mark.parametrize("pool", ["sum", "mean", "max"])
def test_shapes_and_pools(name, pool):
    batch = make_batch()
    model = small(name, pool=pool)
    out = model(batch)
    assert out.shape == (len(SIZES), C_OUT)
    out.sum().backward()
    assert all(p.grad is not None for p in model.parameters())


def test_pool_functions_differ():
    batch = make_batch()
    outs = [small("gin", pool=p).eval()(batch) for p in POOLS]
    assert not torch.allclose(outs[0], outs[1]) and not torch.allclose(outs[1], outs[2])


def test_single_data_without_batch_vector():
    data = rand_graph(7, torch.Generator().manual_seed(1))
    assert small("gin", virtual_node=True).eval()(data).shape == (1, C_OUT)


@pytest.mark.parametrize("name, conv", [("gin", GINConv), ("gcn", GCNConv),
                                        ("sage", SAGEConv), ("gat", GATConv)])
def test_layer_types_without_edge_features(name, conv):
    model = small(name)
    assert all(type(c) is conv for c in model.convs) and not model.uses_edge_attr
    assert isinstance(model.node_encoder, torch.nn.Linear)
    out = model.eval()(make_batch())
    batch = make_batch()
    batch.edge_attr = torch.randn_like(batch.edge_attr)
    assert torch.allclose(out, model(batch))  # edge_attr is not read


def test_gin_has_learnable_eps():
    model = small("gin")
    assert all(c.eps.requires_grad for c in model.convs)


@pytest.mark.parametrize("name", ["gin", "gat"])
def test_continuous_edge_features(name):
    model = small(name, edge_dim=E_DIM).eval()
    assert model.uses_edge_attr
    if name == "gin":
        assert all(type(c) is GINEConv and c.lin.in_channels == E_DIM for c in model.convs)
    batch = make_batch()
    out = model(batch)
    batch.edge_attr = torch.randn_like(batch.edge_attr)
    assert not torch.allclose(out, model(batch))


def test_one_dimensional_edge_attr():
    g = torch.Generator().manual_seed(2)
    batch = Batch.from_data_list([rand_graph(n, g, edge_dim=1) for n in SIZES])
    batch.edge_attr = batch.edge_attr.view(-1)
    assert small("gin", edge_dim=1)(batch).shape == (len(SIZES), C_OUT)


@pytest.mark.parametrize("name", ["gcn", "sage"])
def test_edge_dim_ignored_by_gcn_and_sage(name):
    assert not small(name, edge_dim=E_DIM).uses_edge_attr


@pytest.mark.parametrize("name", GRAPH_MODELS)
@pytest.mark.parametrize("virtual_node", [False, True])
def test_ogb_mol_inputs(name, virtual_node):
    batch = make_batch(ogb=True)
    model = small(name, ogb_mol=True, virtual_node=virtual_node)
    assert type(model.node_encoder).__name__ == "AtomEncoder"
    uses = name in ("gin", "gat")
    assert model.uses_edge_attr == uses
    assert (model.edge_encoders is not None) == uses
    out = model(batch)
    assert out.shape == (len(SIZES), C_OUT)
    out.sum().backward()
    assert all(p.grad is not None for p in model.parameters())
    if uses:  # bond features matter
        model.eval()
        before = model(batch)
        batch.edge_attr = torch.zeros_like(batch.edge_attr)
        assert not torch.allclose(before, model(batch))


@pytest.mark.parametrize("name", GRAPH_MODELS)
@pytest.mark.parametrize("pool", ["sum", "max"])
def test_permutation_invariance(name, pool):
    model = small(name, ogb_mol=True, virtual_node=True, pool=pool)
    batch = make_batch(ogb=True)
    model(batch)  # one training pass so that BN running stats are non-trivial
    model.eval()
    g = torch.Generator().manual_seed(3)
    permuted = Batch.from_data_list([permute(d, g) for d in batch.to_data_list()])
    assert not torch.equal(permuted.x, batch.x)
    assert torch.allclose(model(batch), model(permuted), atol=1e-5)


def test_graph_order_equivariance():
    model = small("gin", edge_dim=E_DIM).eval()
    graphs: List[Data] = make_batch().to_data_list()
    out = model(Batch.from_data_list(graphs))
    rev = model(Batch.from_data_list(graphs[::-1]))
    assert torch.allclose(out.flip(0), rev, atol=1e-5)


def test_virtual_node_changes_output():
    batch = make_batch(ogb=True)
    model = small("gin", ogb_mol=True, virtual_node=True).eval()
    assert torch.count_nonzero(model.virtual_node.embedding.weight) == 0  # OGB init
    assert len(model.virtual_node.mlps) == 2
    with_vn = model(batch)
    model.virtual_node = None
    assert not torch.allclose(with_vn, model(batch))


def test_virtual_node_single_graph_batch_trains():
    """A batch of one graph (batch norm over one virtual node) trains: finite outputs, and the
    virtual node's state and update MLPs receive gradient, so one step changes the state."""
    data = make_batch().to_data_list()[0]
    batch = Batch.from_data_list([data])
    model = small("gin", virtual_node=True).train()
    out = model(batch)
    assert out.shape == (1, C_OUT) and torch.isfinite(out).all()
    out.sum().backward()
    vn = model.virtual_node
    assert vn.embedding.weight.grad is not None and vn.embedding.weight.grad.abs().sum() > 0
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in vn.mlps.parameters())
    before = vn.embedding.weight.detach().clone()
    torch.optim.SGD(model.parameters(), lr=0.1).step()
    assert not torch.equal(vn.embedding.weight.detach(), before)


@pytest.mark.parametrize("jk, head_in", [("last", 16), ("cat", 48), ("max", 16), ("lstm", 16)])
def test_jk(jk, head_in):
    model = small("gin", jk=jk)
    assert model.head.in_features == head_in
    assert model(make_batch()).shape == (len(SIZES), C_OUT)


@pytest.mark.parametrize("norm", ["batch_norm", "layer_norm", None, "none"])
def test_norms(norm):
    model = small("gin", norm=norm, virtual_node=True)
    expected = {"batch_norm": "BatchNorm", "layer_norm": "LayerNorm"}.get(norm, "Identity")
    assert all(type(n).__name__ == expected for n in model.norms)
    assert model(make_batch()).shape == (len(SIZES), C_OUT)


def test_ogb_layer_order_dropout_and_last_relu():
    """conv -> BN -> ReLU -> dropout, no ReLU after the last layer (OGB)."""
    model = small("gcn", num_layers=2, dropout=0.0).eval()
    assert model.dropout == 0.0
    batch = make_batch()
    captured = []
    model.norms[-1].register_forward_hook(lambda m, i, o: captured.append(o))
    model(batch)
    assert (captured[0] < 0).any()  # last layer's output not rectified


def test_gat_v2_and_heads():
    model = small("gat", heads=4, v2=True)
    assert type(model.convs[0]).__name__ == "GATv2Conv"
    assert model.convs[0].heads == 4 and model.convs[0].out_channels == 4
    assert model(make_batch()).shape == (len(SIZES), C_OUT)


def test_reset_parameters():
    model = small("gin", ogb_mol=True, virtual_node=True)
    before = [p.clone() for p in model.parameters()]
    atom = model.node_encoder.atom_embedding_list[0].weight
    atom_before = atom.clone()
    model.reset_parameters()
    assert not torch.equal(atom, atom_before)
    bound = (6 / sum(atom.shape)) ** 0.5  # Xavier-uniform, as OGB's AtomEncoder
    assert atom.abs().max() <= bound
    changed = sum(not torch.equal(a, b) for a, b in zip(before, model.parameters()))
    assert changed > 0
    assert torch.count_nonzero(model.virtual_node.embedding.weight) == 0


def test_integer_node_features_are_cast():
    batch = make_batch()
    batch.x = (batch.x > 0).long()
    assert small("gin")(batch).shape == (len(SIZES), C_OUT)


def test_missing_edge_attr_is_a_clear_error():
    from pyg_ham.errors import ConfigError

    batch = make_batch()
    del batch.edge_attr
    with pytest.raises(ConfigError, match="edge_attr"):
        small("gin", edge_dim=E_DIM)(batch)
    assert small("gin")(batch).shape == (len(SIZES), C_OUT)
