"""Node classification models: thin builders over :mod:`torch_geometric.nn.models`."""
from typing import Any, Dict, Optional, Tuple, Type

import torch
from torch import Tensor
from torch_geometric.nn.models import GAT, GCN, GIN, MLP, GraphSAGE
from torch_geometric.nn.models.basic_gnn import BasicGNN

from pyg_ham.errors import ConfigError
from pyg_ham.models._checks import check_choice, check_dropout, check_int, resolve_norm

#: Names accepted by :func:`build_node_model`.
NODE_MODELS: Tuple[str, ...] = ("gcn", "sage", "gat", "gin", "mlp")

#: Jumping-knowledge modes of :class:`~torch_geometric.nn.models.BasicGNN`.
NODE_JK: Tuple[Optional[str], ...] = (None, "last", "cat", "max", "lstm")

_GNNS: Dict[str, Type[BasicGNN]] = {"gcn": GCN, "sage": GraphSAGE, "gat": GAT, "gin": GIN}

# Keyword arguments of :class:`~torch_geometric.nn.models.MLP` that the ``mlp`` model
# forwards (PyG's MLP silently swallows unknown keywords, so we check them here).
_MLP_KWARGS = ("act", "act_first", "act_kwargs", "plain_last", "bias")


class NodeMLP(MLP):
    r"""A :class:`~torch_geometric.nn.models.MLP` on node features that accepts and
    ignores the graph, so that trainers call every node model as
    ``model(x, edge_index, **kwargs)``.

    Graph-structure arguments (:obj:`edge_index`, :obj:`edge_weight`,
    :obj:`num_sampled_nodes_per_hop`, ...) are ignored; the output has one row per
    row of :obj:`x` (slice the seed nodes of a mini-batch as for any other model).
    Takes the arguments of :class:`~torch_geometric.nn.models.MLP`.
    """

    def forward(self, x: Tensor, edge_index: Any = None, *args: Any, **kwargs: Any) -> Tensor:  # type: ignore[override]
        r"""Applies the MLP to :obj:`x`; all other arguments are ignored."""
        return super().forward(x)


def build_node_model(
    name: str,
    in_channels: int,
    out_channels: int,
    hidden_channels: int = 256,
    num_layers: int = 3,
    dropout: float = 0.5,
    norm: Optional[str] = "batch_norm",
    jk: Optional[str] = None,
    heads: int = 1,
    **kwargs: Any,
) -> torch.nn.Module:
    r"""Builds a node classification model from :mod:`torch_geometric.nn.models`.

    ``"gcn"``, ``"sage"``, ``"gat"`` and ``"gin"`` give PyG's
    :class:`~torch_geometric.nn.models.GCN` (`"Semi-supervised Classification with
    Graph Convolutional Networks" <https://arxiv.org/abs/1609.02907>`_),
    :class:`~torch_geometric.nn.models.GraphSAGE` (`"Inductive Representation
    Learning on Large Graphs" <https://arxiv.org/abs/1706.02216>`_),
    :class:`~torch_geometric.nn.models.GAT` (`"Graph Attention Networks"
    <https://arxiv.org/abs/1710.10903>`_) and
    :class:`~torch_geometric.nn.models.GIN` (`"How Powerful are Graph Neural
    Networks?" <https://arxiv.org/abs/1810.00826>`_); ``"mlp"`` gives
    :class:`NodeMLP`, an :class:`~torch_geometric.nn.models.MLP` that ignores the
    graph.

    Each layer but the last is ``conv -> norm -> ReLU -> dropout``; the last layer
    maps to :obj:`out_channels` and has no norm, activation or dropout. With the
    defaults this is OGB's ogbn-arxiv GCN/GraphSAGE baseline (3 layers, 256 hidden,
    batch norm, dropout 0.5; 110,120 and 218,664 parameters). The models output
    logits (no log-softmax). Call them as ``model(x, edge_index, **kw)``, with the
    keywords of :meth:`~torch_geometric.nn.models.BasicGNN.forward`, e.g.
    :obj:`num_sampled_nodes_per_hop` and :obj:`num_sampled_edges_per_hop` to trim
    hop-ordered :class:`~torch_geometric.loader.NeighborLoader` batches layer by
    layer.

    Args:
        name (str): One of :obj:`NODE_MODELS`: ``"gcn"``, ``"sage"``, ``"gat"``,
            ``"gin"``, ``"mlp"``.
        in_channels (int): Size of each input node feature vector.
        out_channels (int): Number of classes.
        hidden_channels (int, optional): Size of each hidden node representation;
            for ``"gat"`` the total over all heads (must be divisible by
            :obj:`heads`). (default: :obj:`256`)
        num_layers (int, optional): Number of message passing layers (of linear
            layers for ``"mlp"``). (default: :obj:`3`)
        dropout (float, optional): Dropout probability after each hidden layer
            (for ``"gat"`` also the attention dropout). (default: :obj:`0.5`)
        norm (str, optional): ``"batch_norm"``, ``"layer_norm"`` (per node) or
            :obj:`None` / ``"none"``. (default: :obj:`"batch_norm"`)
        jk (str, optional): Jumping-knowledge mode of
            :class:`~torch_geometric.nn.models.BasicGNN` (:obj:`None`, ``"last"``,
            ``"cat"``, ``"max"``, ``"lstm"``); if set, the last layer is a hidden
            layer too and a final :class:`~torch.nn.Linear` maps to
            :obj:`out_channels`. Not supported by ``"mlp"``. (default: :obj:`None`)
        heads (int, optional): Number of attention heads; used by ``"gat"`` only,
            whose last layer averages its heads. (default: :obj:`1`)
        **kwargs (optional): Further arguments of the PyG model and its layers,
            e.g. ``cached=True`` for ``"gcn"`` in full-batch training (as OGB's
            ogbn-arxiv baseline; never with mini-batches), ``aggr`` for ``"sage"``,
            ``v2=True`` for ``"gat"``, ``act``.
    """
    name = check_choice("model", name, NODE_MODELS)
    in_channels = check_int("in_channels", in_channels)
    out_channels = check_int("out_channels", out_channels)
    hidden_channels = check_int("hidden_channels", hidden_channels)
    num_layers = check_int("num_layers", num_layers)
    dropout = check_dropout(dropout)
    norm_name, norm_kwargs = resolve_norm(norm)
    jk = check_choice("jk", jk, NODE_JK)
    heads = check_int("heads", heads)

    if name == "mlp":
        if jk is not None:
            raise ConfigError(f"invalid jk {jk!r} for model 'mlp': choose None")
        unknown = sorted(set(kwargs) - set(_MLP_KWARGS))
        if unknown:
            raise ConfigError(f"invalid option {unknown[0]!r} for model 'mlp': "
                              f"choose from {', '.join(_MLP_KWARGS)}")
        return NodeMLP(in_channels=in_channels, hidden_channels=hidden_channels,
                       out_channels=out_channels, num_layers=num_layers,
                       dropout=dropout, norm=norm_name, norm_kwargs=norm_kwargs, **kwargs)

    if name == "gat":
        if hidden_channels % heads != 0:
            raise ConfigError(f"invalid heads {heads}: hidden_channels "
                              f"({hidden_channels}) must be divisible by heads")
        kwargs["heads"] = heads
    try:
        return _GNNS[name](in_channels=in_channels, hidden_channels=hidden_channels,
                           num_layers=num_layers, out_channels=out_channels,
                           dropout=dropout, norm=norm_name, norm_kwargs=norm_kwargs,
                           jk=jk, **kwargs)
    except TypeError as e:
        raise ConfigError(f"invalid option for model {name!r}: {e}") from None
