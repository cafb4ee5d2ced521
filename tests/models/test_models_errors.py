"""Bad builder arguments raise a one-line ConfigError naming the argument."""
import pytest

from pyg_ham.errors import ConfigError
from pyg_ham.models import build_graph_model, build_node_model


def node(**kw):
    return build_node_model(**{"name": "gcn", "in_channels": 4, "out_channels": 2,
                               "hidden_channels": 8, **kw})


def graph(**kw):
    return build_graph_model(**{"name": "gin", "in_channels": 4, "out_channels": 2,
                                "hidden_channels": 8, "num_layers": 2, **kw})


BAD = [
    ({"name": "gcnn"}, "model", "gcn, sage, gat"),
    ({"name": None}, "model", "gcn, sage"),
    ({"num_layers": 0}, "num_layers", ">= 1"),
    ({"num_layers": -2}, "num_layers", ">= 1"),
    ({"num_layers": 2.5}, "num_layers", ">= 1"),
    ({"num_layers": True}, "num_layers", ">= 1"),
    ({"hidden_channels": 0}, "hidden_channels", ">= 1"),
    ({"in_channels": "x"}, "in_channels", ">= 1"),
    ({"out_channels": 0}, "out_channels", ">= 1"),
    ({"dropout": 1.0}, "dropout", "< 1"),
    ({"dropout": -0.1}, "dropout", "< 1"),
    ({"norm": "group_norm"}, "norm", "batch_norm, layer_norm, none"),
    ({"jk": "sum"}, "jk", "cat"),
    ({"heads": 0}, "heads", ">= 1"),
    ({"name": "gat", "heads": 3}, "heads", "divisible"),
    ({"unknown_option": 1}, "invalid option", "unknown_option"),
]


@pytest.mark.parametrize("kw, arg, allowed", BAD)
def test_node_config_errors(kw, arg, allowed):
    with pytest.raises(ConfigError) as info:
        node(**kw)
    msg = str(info.value)
    assert arg in msg and allowed in msg and "\n" not in msg
    assert " must be " in msg or "invalid option" in msg or "divisible" in msg  # one message style
    assert isinstance(info.value, ValueError)


@pytest.mark.parametrize("kw, arg, allowed", BAD + [
    ({"pool": "add"}, "pool", "sum, mean, max"),
    ({"pool": None}, "pool", "sum, mean, max"),
    ({"name": "mlp"}, "model", "gin, gcn, sage, gat"),
    ({"edge_dim": 0}, "edge_dim", ">= 1"),
])
def test_graph_config_errors(kw, arg, allowed):
    with pytest.raises(ConfigError) as info:
        graph(**kw)
    msg = str(info.value)
    assert arg in msg and allowed in msg and "\n" not in msg


def test_mlp_specific_errors():
    with pytest.raises(ConfigError, match="jk"):
        node(name="mlp", jk="cat")
    with pytest.raises(ConfigError, match="cached"):
        node(name="mlp", cached=True)


def test_names_are_case_insensitive():
    assert type(node(name="GCN")).__name__ == "GCN"
    model = graph(name="GIN", pool="SUM", jk="CAT")
    assert model.pool_name == "sum" and model.jk_mode == "cat" and hasattr(model, "jk")


def test_ogb_mol_ignores_in_channels():
    model = graph(in_channels=None, ogb_mol=True)
    assert type(model.node_encoder).__name__ == "AtomEncoder"
