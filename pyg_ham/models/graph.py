"""Graph classification models in the style of OGB's graph property baselines."""
from typing import Any, Callable, Dict, List, Optional, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor
from torch_geometric.nn import (
    GATConv,
    GATv2Conv,
    GCNConv,
    GINConv,
    GINEConv,
    JumpingKnowledge,
    SAGEConv,
    global_add_pool,
    global_max_pool,
    global_mean_pool,
)
from torch_geometric.nn.models import MLP
from torch_geometric.nn.resolver import normalization_resolver

from pyg_ham.errors import ConfigError
from pyg_ham.models._checks import check_choice, check_dropout, check_int, resolve_norm
from pyg_ham.models.virtual_node import VirtualNode

#: Names accepted by :func:`build_graph_model`.
GRAPH_MODELS: Tuple[str, ...] = ("gin", "gcn", "sage", "gat")

#: Readouts accepted by :func:`build_graph_model`.
POOLS: Dict[str, Callable[..., Tensor]] = {
    "sum": global_add_pool,
    "mean": global_mean_pool,
    "max": global_max_pool,
}

#: Jumping-knowledge modes accepted by :func:`build_graph_model`.
GRAPH_JK: Tuple[Optional[str], ...] = (None, "last", "cat", "max", "lstm")

#: Models whose layers use edge features (the others ignore them).
EDGE_MODELS: Tuple[str, ...] = ("gin", "gat")


class GraphGNN(torch.nn.Module):
    r"""A graph-level GNN following OGB's ``GNN`` / ``GNN_node`` baselines of the
    `"Open Graph Benchmark" <https://arxiv.org/abs/2005.00687>`_ paper
    (``examples/graphproppred/mol``): a node encoder, :obj:`num_layers` message
    passing layers of width :obj:`hidden_channels`, an optional
    :class:`VirtualNode`, jumping knowledge, a global pooling and a linear head.

    Layer :math:`\ell` computes ``conv -> norm -> ReLU -> dropout``; the last layer
    has no ReLU. Build it with :func:`build_graph_model`.

    Args:
        node_encoder (torch.nn.Module): Maps ``data.x`` to hidden node states.
        convs (List[MessagePassing]): The message passing layers.
        edge_encoders (List[torch.nn.Module], optional): One encoder of
            ``data.edge_attr`` per layer, or :obj:`None` to pass ``data.edge_attr``
            unchanged (or not at all if :obj:`use_edge_attr` is :obj:`False`).
        use_edge_attr (bool): Whether the layers take ``edge_attr``.
        norms (List[torch.nn.Module]): One normalisation per layer.
        virtual_node (VirtualNode, optional): The virtual node, if any.
        jk (str, optional): Jumping-knowledge mode (:obj:`None`, ``"last"``,
            ``"cat"``, ``"max"``, ``"lstm"``).
        pool (str): ``"sum"``, ``"mean"`` or ``"max"``.
        hidden_channels (int): Width of the node states.
        out_channels (int): Size of each graph's output.
        dropout (float): Dropout probability.
    """

    def __init__(self, node_encoder: torch.nn.Module, convs: List[torch.nn.Module],
                 edge_encoders: Optional[List[torch.nn.Module]], use_edge_attr: bool,
                 norms: List[torch.nn.Module], virtual_node: Optional[VirtualNode],
                 jk: Optional[str], pool: str, hidden_channels: int, out_channels: int,
                 dropout: float):
        super().__init__()
        self.num_layers = len(convs)
        self.dropout = dropout
        self.pool_name = pool
        self.pool = POOLS[pool]
        self.jk_mode = jk
        self.uses_edge_attr = use_edge_attr
        self.node_encoder = node_encoder
        self.edge_encoders = (torch.nn.ModuleList(edge_encoders)
                              if edge_encoders is not None else None)
        self.convs = torch.nn.ModuleList(convs)
        self.norms = torch.nn.ModuleList(norms)
        self.virtual_node = virtual_node
        if jk in ("cat", "max", "lstm"):
            self.jk = JumpingKnowledge(jk, hidden_channels, self.num_layers)
        head_in = hidden_channels * (self.num_layers if jk == "cat" else 1)
        self.head = torch.nn.Linear(head_in, out_channels)

    def reset_parameters(self) -> None:
        r"""Resets all learnable parameters of the module."""
        _reset_encoder(self.node_encoder)
        for encoder in self.edge_encoders or []:
            _reset_encoder(encoder)
        for conv in self.convs:
            conv.reset_parameters()
        for norm in self.norms:
            if hasattr(norm, "reset_parameters"):
                norm.reset_parameters()
        if self.virtual_node is not None:
            self.virtual_node.reset_parameters()
        if hasattr(self, "jk"):
            self.jk.reset_parameters()
        self.head.reset_parameters()

    def forward(self, data: Any) -> Tensor:
        r"""Returns the outputs ``[num_graphs, out_channels]`` of a PyG
        :class:`~torch_geometric.data.Batch` (or a single
        :class:`~torch_geometric.data.Data`) with ``x``, ``edge_index``, ``batch``
        and, if the model uses edge features, ``edge_attr``."""
        edge_index = data.edge_index
        batch = getattr(data, "batch", None)
        if batch is None:
            batch = edge_index.new_zeros(data.num_nodes)
        num_graphs = getattr(data, "num_graphs", None) or int(batch.max()) + 1

        edge_attr = getattr(data, "edge_attr", None) if self.uses_edge_attr else None
        if self.uses_edge_attr and edge_attr is None:
            raise ConfigError("the model uses edge features (edge_dim or ogb_mol) "
                              "but the batch has no edge_attr: build it without them")
        if edge_attr is not None and self.edge_encoders is None:  # continuous
            edge_attr = edge_attr.view(-1, 1) if edge_attr.dim() == 1 else edge_attr
            if not edge_attr.is_floating_point():
                edge_attr = edge_attr.to(self.head.weight.dtype)

        x = data.x
        if isinstance(self.node_encoder, torch.nn.Linear) and not x.is_floating_point():
            x = x.to(self.head.weight.dtype)
        h = self.node_encoder(x)
        state = self.virtual_node.initial(num_graphs) if self.virtual_node is not None else None
        hs: List[Tensor] = []
        for i, (conv, norm) in enumerate(zip(self.convs, self.norms)):
            if state is not None:
                h = h + state[batch]
            h_in = h
            if self.uses_edge_attr:
                e = self.edge_encoders[i](edge_attr) if self.edge_encoders is not None else edge_attr
                h = conv(h, edge_index, edge_attr=e)
            else:
                h = conv(h, edge_index)
            h = norm(h)
            if i < self.num_layers - 1:
                h = h.relu()
            h = F.dropout(h, p=self.dropout, training=self.training)
            hs.append(h)
            if state is not None and i < self.num_layers - 1:
                state = self.virtual_node(i, h_in, batch, state)

        h = self.jk(hs) if hasattr(self, "jk") else hs[-1]
        return self.head(self.pool(h, batch, size=num_graphs))


def build_graph_model(
    name: str,
    in_channels: int,
    out_channels: int,
    hidden_channels: int = 300,
    num_layers: int = 5,
    dropout: float = 0.5,
    pool: str = "mean",
    virtual_node: bool = False,
    norm: Optional[str] = "batch_norm",
    edge_dim: Optional[int] = None,
    ogb_mol: bool = False,
    jk: Optional[str] = None,
    heads: int = 1,
    **kwargs: Any,
) -> GraphGNN:
    r"""Builds a graph classification model (a :class:`GraphGNN`) as OGB's graph
    property prediction baselines of the `"Open Graph Benchmark"
    <https://arxiv.org/abs/2005.00687>`_ paper: node encoder -> :obj:`num_layers`
    layers of ``conv -> norm -> ReLU -> dropout`` (no ReLU after the last) ->
    jumping knowledge -> global pooling -> :class:`~torch.nn.Linear` head.

    Layers (PyG operators, all :obj:`hidden_channels` wide):

    * ``"gin"``: :class:`~torch_geometric.nn.conv.GINConv` (`"How Powerful are Graph
      Neural Networks?" <https://arxiv.org/abs/1810.00826>`_) with a learnable
      :math:`\epsilon` and the MLP ``Linear(C, 2C) -> norm -> ReLU -> Linear(2C, C)``;
      :class:`~torch_geometric.nn.conv.GINEConv` (`"Strategies for Pre-training
      Graph Neural Networks" <https://arxiv.org/abs/1905.12265>`_) with edge features.
    * ``"gat"``: :class:`~torch_geometric.nn.conv.GATConv` with :obj:`heads`
      concatenated heads of ``C / heads`` channels (``v2=True``:
      :class:`~torch_geometric.nn.conv.GATv2Conv`), edge features via ``edge_dim``.
    * ``"gcn"``: :class:`~torch_geometric.nn.conv.GCNConv`; ``"sage"``:
      :class:`~torch_geometric.nn.conv.SAGEConv`. Both **ignore edge features**
      (OGB's ``gcn`` adds bond embeddings to messages with a custom layer that PyG
      does not ship).

    Inputs: with :obj:`ogb_mol=True`, ``x`` and ``edge_attr`` hold OGB's integer
    atom/bond features: nodes are encoded by OGB's ``AtomEncoder`` and each ``gin``/
    ``gat`` layer has its own ``BondEncoder`` (as OGB), and :obj:`in_channels` and
    :obj:`edge_dim` are ignored. Otherwise ``x`` is continuous and encoded by
    ``Linear(in_channels, C)``; with :obj:`edge_dim`, continuous ``edge_attr`` is
    fed to ``GINEConv`` / ``GATConv``, which encode it linearly in each layer.

    With the defaults, ``ogb_mol=True`` and :obj:`out_channels=1`, ``"gin"`` is OGB's
    ogbg-molhiv ``gin`` (``virtual_node=True``: ``gin-virtual``). The head is a
    single :class:`~torch.nn.Linear` layer as in OGB, also for TU datasets.

    Args:
        name (str): One of :obj:`GRAPH_MODELS`: ``"gin"``, ``"gcn"``, ``"sage"``,
            ``"gat"``.
        in_channels (int): Size of each input node feature vector (ignored with
            :obj:`ogb_mol=True`).
        out_channels (int): Size of each graph's output (classes or tasks).
        hidden_channels (int, optional): Width :math:`C` of the node states.
            (default: :obj:`300`)
        num_layers (int, optional): Number of message passing layers.
            (default: :obj:`5`)
        dropout (float, optional): Dropout probability after each layer (and each
            virtual node update; for ``"gat"`` also the attention dropout).
            (default: :obj:`0.5`)
        pool (str, optional): Readout: ``"sum"``, ``"mean"`` or ``"max"``
            (:func:`~torch_geometric.nn.pool.global_add_pool`, ...).
            (default: :obj:`"mean"`)
        virtual_node (bool, optional): Adds a :class:`VirtualNode` as in OGB's
            ``*-virtual`` baselines. (default: :obj:`False`)
        norm (str, optional): ``"batch_norm"``, ``"layer_norm"`` (per node) or
            :obj:`None` / ``"none"``; used after each layer and inside the GIN and
            virtual node MLPs. (default: :obj:`"batch_norm"`)
        edge_dim (int, optional): Size of continuous edge features, used by
            ``"gin"`` and ``"gat"`` (ignored by ``"gcn"``, ``"sage"``, and with
            :obj:`ogb_mol=True`). (default: :obj:`None`)
        ogb_mol (bool, optional): Inputs are OGB molecule features (see above).
            (default: :obj:`False`)
        jk (str, optional): Jumping knowledge over the layer outputs:
            :obj:`None` / ``"last"`` (OGB's default), ``"cat"``, ``"max"`` or
            ``"lstm"``. (default: :obj:`None`)
        heads (int, optional): Attention heads of ``"gat"`` (must divide
            :obj:`hidden_channels`; ignored by other models). (default: :obj:`1`)
        **kwargs (optional): Further arguments of the PyG layers, e.g.
            ``train_eps`` for ``"gin"`` (default :obj:`True`), ``aggr`` for
            ``"sage"``, ``v2`` for ``"gat"``.
    """
    name = check_choice("model", name, GRAPH_MODELS)
    hidden_channels = check_int("hidden_channels", hidden_channels)
    out_channels = check_int("out_channels", out_channels)
    num_layers = check_int("num_layers", num_layers)
    dropout = check_dropout(dropout)
    pool = check_choice("pool", pool, tuple(POOLS))
    norm_name, norm_kwargs = resolve_norm(norm)
    jk = check_choice("jk", jk, GRAPH_JK)
    jk = None if jk == "last" else jk
    heads = check_int("heads", heads)
    if not ogb_mol:
        in_channels = check_int("in_channels", in_channels)
        if edge_dim is not None:
            edge_dim = check_int("edge_dim", edge_dim)
    if name == "gat" and hidden_channels % heads != 0:
        raise ConfigError(f"invalid heads {heads}: hidden_channels "
                          f"({hidden_channels}) must be divisible by heads")

    uses_edges = name in EDGE_MODELS and (ogb_mol or edge_dim is not None)
    edge_encoders: Optional[List[torch.nn.Module]] = None
    if ogb_mol:
        from pyg_ham.datasets import import_ogb  # offline-safe: no version-check thread

        mol_encoder = import_ogb("ogb.graphproppred.mol_encoder")
        AtomEncoder, BondEncoder = mol_encoder.AtomEncoder, mol_encoder.BondEncoder

        node_encoder: torch.nn.Module = AtomEncoder(hidden_channels)
        if uses_edges:
            edge_encoders = [BondEncoder(hidden_channels) for _ in range(num_layers)]
        conv_edge_dim = hidden_channels
    else:
        node_encoder = torch.nn.Linear(in_channels, hidden_channels)
        conv_edge_dim = edge_dim

    try:
        convs = [
            _make_conv(name, hidden_channels, norm_name, norm_kwargs, heads, dropout,
                       conv_edge_dim if uses_edges else None, ogb_mol, dict(kwargs))
            for _ in range(num_layers)
        ]
    except TypeError as e:
        raise ConfigError(f"invalid option for model {name!r}: {e}") from None
    norms = [_make_norm(norm_name, norm_kwargs, hidden_channels) for _ in range(num_layers)]
    vn = (VirtualNode(hidden_channels, num_layers, dropout, norm_name, norm_kwargs)
          if virtual_node else None)
    return GraphGNN(node_encoder, convs, edge_encoders, uses_edges, norms, vn, jk, pool,
                    hidden_channels, out_channels, dropout)


def _reset_encoder(encoder: torch.nn.Module) -> None:
    """Re-initialises a node/edge encoder; OGB's Atom/BondEncoder have no
    ``reset_parameters`` and initialise their embeddings with Xavier-uniform."""
    if hasattr(encoder, "reset_parameters"):
        encoder.reset_parameters()
        return
    for module in encoder.modules():
        if isinstance(module, torch.nn.Embedding):
            torch.nn.init.xavier_uniform_(module.weight)


def _make_norm(norm: Optional[str], norm_kwargs: Optional[Dict[str, Any]],
               channels: int) -> torch.nn.Module:
    if norm is None:
        return torch.nn.Identity()
    return normalization_resolver(norm, channels, **(norm_kwargs or {}))


def _make_conv(name: str, channels: int, norm: Optional[str],
               norm_kwargs: Optional[Dict[str, Any]], heads: int, dropout: float,
               edge_dim: Optional[int], ogb_mol: bool, kwargs: Dict[str, Any]) -> torch.nn.Module:
    """One ``channels -> channels`` layer; ``edge_dim`` is ``None`` if edges are unused.

    With ``ogb_mol`` the edge features arrive already encoded to ``channels`` (a
    ``BondEncoder`` per layer), so GINE needs no linear edge encoder of its own.
    """
    if name == "gin":
        kwargs.setdefault("train_eps", True)
        mlp = MLP([channels, 2 * channels, channels], norm=norm, norm_kwargs=norm_kwargs)
        if edge_dim is None:
            return GINConv(mlp, **kwargs)
        return GINEConv(mlp, edge_dim=None if ogb_mol else edge_dim, **kwargs)
    if name == "gat":
        conv = GATv2Conv if kwargs.pop("v2", False) else GATConv
        return conv(channels, channels // heads, heads=heads, dropout=dropout,
                    edge_dim=edge_dim, **kwargs)
    if name == "gcn":
        return GCNConv(channels, channels, **kwargs)
    return SAGEConv(channels, channels, **kwargs)
