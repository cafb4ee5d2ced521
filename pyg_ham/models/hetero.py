r"""Heterogeneous node classification models (ogbn-mag and the like).

:func:`build_hetero_model` returns a :class:`HeteroNodeModel`:

* ``"sage"``: a GraphSAGE stack (:class:`~torch_geometric.nn.conv.SAGEConv`
  with lazy input sizes) turned heterogeneous by PyG's
  :func:`~torch_geometric.nn.to_hetero` (one convolution per edge type, summed
  per destination type), as in `"Inductive Representation Learning on Large
  Graphs" <https://arxiv.org/abs/1706.02216>`_;
* ``"rgcn"``: R-GCN (`"Modeling Relational Data with Graph Convolutional
  Networks" <https://arxiv.org/abs/1703.06103>`_) on the graph made
  homogeneous per forward pass, after a per-type input projection:

  .. math::
      \mathbf{h}_i' = \mathbf{W}_0 \mathbf{h}_i + \sum_{r} \frac{1}{|\mathcal{N}_r(i)|}
      \sum_{j \in \mathcal{N}_r(i)} \mathbf{W}_r \mathbf{h}_j.

Node types without features (ogbn-mag: authors, institutions, fields of
study) get learnable embeddings, :class:`torch.nn.Embedding` tables of shape
:obj:`[num_nodes, embedding_dim]` named ``embeddings.<type>.weight``. They are
matrices, so HAM's default selection (``ndim >= 2``,
:func:`~pyg_ham.optim.ham_param_groups`) gives them the hyperbolic step; with
:obj:`ham_embeddings=False` they are listed in :attr:`HeteroNodeModel.ham_exclude`
(pass it as :obj:`exclude=` to the optimizer builder). Memory: one float per
embedded node and dimension, plus the optimizer's state (Adam: two more
tables of that size); ogbn-mag has about 1.2M embedded nodes, so
:math:`1.2\text{M} \times` hidden size floats (0.3 GB at 64 in float32).

Lazily sized parameters (:obj:`-1` input sizes of :func:`to_hetero`'s
convolutions) are created by a dry forward on a one-node-per-type dummy graph
inside :func:`build_hetero_model`, so the optimizer can be built right after.

Example::

    model = build_hetero_model("sage", task.data, task.num_classes, hidden_channels=64)
    out = model(data.x_dict, data.edge_index_dict)                 # full batch: all papers
    out = model.forward_batch(batch)[:batch["paper"].batch_size]  # a NeighborLoader batch
    opt = build_optimizer(model, exclude=model.ham_exclude)
"""
from __future__ import annotations

from typing import Dict, List, Optional, Tuple

import torch
from torch import Tensor
from torch_geometric.data import HeteroData
from torch_geometric.nn import Linear, RGCNConv, SAGEConv, to_hetero
from torch_geometric.typing import EdgeType, NodeType

from pyg_ham.errors import ConfigError
from pyg_ham.models._checks import check_choice, check_dropout, check_int

#: Names accepted by :func:`build_hetero_model`.
HETERO_MODELS: Tuple[str, ...] = ("sage", "rgcn")


class _SAGE(torch.nn.Module):
    # Homogeneous template for to_hetero: conv -> ReLU -> dropout, last conv plain.
    def __init__(self, hidden_channels: int, out_channels: int, num_layers: int, dropout: float):
        super().__init__()
        sizes = [hidden_channels] * (num_layers - 1) + [out_channels]
        self.convs = torch.nn.ModuleList([SAGEConv((-1, -1), s) for s in sizes])
        self.dropouts = torch.nn.ModuleList([torch.nn.Dropout(dropout) for _ in sizes[:-1]])

    def forward(self, x: Tensor, edge_index: Tensor) -> Tensor:
        for i, conv in enumerate(self.convs):
            x = conv(x, edge_index)
            if i < len(self.dropouts):
                x = self.dropouts[i](x.relu())
        return x


class _RGCN(torch.nn.Module):
    # Per-type projection to hidden_channels, then R-GCN layers on the homogeneous view.
    def __init__(self, node_types: List[NodeType], edge_types: List[EdgeType], featured: List[NodeType],
                 hidden_channels: int, out_channels: int, num_layers: int, dropout: float,
                 num_bases: Optional[int]):
        super().__init__()
        self.node_types, self.edge_types = list(node_types), list(edge_types)
        self.proj = torch.nn.ModuleDict({t: Linear(-1, hidden_channels) for t in featured})
        sizes = [hidden_channels] * (num_layers - 1) + [out_channels]
        self.convs = torch.nn.ModuleList([RGCNConv(hidden_channels if i == 0 else hidden_channels, s,
                                                   num_relations=len(edge_types), num_bases=num_bases)
                                          for i, s in enumerate(sizes)])
        self.dropout = torch.nn.Dropout(dropout)

    def forward(self, x_dict: Dict[NodeType, Tensor], edge_index_dict: Dict[EdgeType, Tensor]
                ) -> Dict[NodeType, Tensor]:
        xs, offset, offsets = [], 0, {}
        for t in self.node_types:
            x = self.proj[t](x_dict[t]) if t in self.proj else x_dict[t]
            offsets[t] = (offset, offset + x.size(0))
            offset += x.size(0)
            xs.append(x)
        h = torch.cat(xs)
        edges, types = [], []
        for r, et in enumerate(self.edge_types):
            ei = edge_index_dict.get(et)
            if ei is None or ei.numel() == 0:
                continue
            s, _, d = et
            edges.append(torch.stack([ei[0] + offsets[s][0], ei[1] + offsets[d][0]]))
            types.append(torch.full((ei.size(1),), r, dtype=torch.long, device=ei.device))
        edge_index = torch.cat(edges, 1) if edges else torch.empty(2, 0, dtype=torch.long, device=h.device)
        edge_type = torch.cat(types) if types else torch.empty(0, dtype=torch.long, device=h.device)
        for i, conv in enumerate(self.convs):
            h = conv(h, edge_index, edge_type)
            if i < len(self.convs) - 1:
                h = self.dropout(h.relu())
        return {t: h[a:b] for t, (a, b) in offsets.items()}


class HeteroNodeModel(torch.nn.Module):
    r"""A heterogeneous GNN with learnable embeddings for featureless node
    types, predicting one node type (see :mod:`pyg_ham.models.hetero`).

    Call it as ``model(x_dict, edge_index_dict, n_id_dict=None)``: node types
    with an embedding table take rows :obj:`n_id_dict[type]` (the sampled
    nodes' global ids; all rows when absent, *i.e.* full batch) and need no
    entry in :obj:`x_dict`. Returns the logits of every
    :attr:`target_type` node of the input.

    Args:
        gnn (torch.nn.Module): Maps :obj:`(x_dict, edge_index_dict)` to a dict
            of per-type outputs.
        embeddings (Dict[str, torch.nn.Embedding]): The tables.
        target_type (str): The predicted node type.
        ham_embeddings (bool): Whether HAM may act on the tables.
        name (str): ``"sage"`` or ``"rgcn"``.
    """

    def __init__(self, gnn: torch.nn.Module, embeddings: Dict[NodeType, torch.nn.Embedding],
                 target_type: NodeType, ham_embeddings: bool = True, name: str = "sage"):
        super().__init__()
        self.gnn = gnn
        self.embeddings = torch.nn.ModuleDict(embeddings)
        self.target_type = target_type
        self.ham_embeddings = bool(ham_embeddings)
        self.name = name

    @property
    def ham_exclude(self) -> List[str]:
        r""":mod:`fnmatch` patterns to pass as :obj:`exclude=` to
        :func:`~pyg_ham.optim.ham_param_groups` /
        :func:`~pyg_ham.optim.build_optimizer`: the embedding tables when
        :obj:`ham_embeddings=False`, else nothing."""
        return [] if self.ham_embeddings or not len(self.embeddings) else ["embeddings.*"]

    @property
    def num_embedded_nodes(self) -> int:
        r"""Rows over all embedding tables."""
        return sum(int(e.num_embeddings) for e in self.embeddings.values())

    def embedding_bytes(self) -> int:
        r"""Bytes held by the embedding tables (without optimizer state)."""
        return sum(e.weight.numel() * e.weight.element_size() for e in self.embeddings.values())

    def forward(self, x_dict: Dict[NodeType, Tensor], edge_index_dict: Dict[EdgeType, Tensor],
                n_id_dict: Optional[Dict[NodeType, Tensor]] = None) -> Tensor:
        x_dict = dict(x_dict)
        for t, emb in self.embeddings.items():
            ids = (n_id_dict or {}).get(t)
            x_dict[t] = emb.weight if ids is None else emb(ids)
        out = self.gnn(x_dict, edge_index_dict)
        if self.target_type not in out:
            raise ConfigError(f"node type {self.target_type!r} received no messages: the graph needs an edge "
                              f"type into it (add reverse relations, e.g. torch_geometric.transforms.ToUndirected)")
        return out[self.target_type]

    def forward_batch(self, data: HeteroData) -> Tensor:
        r"""Runs on a :class:`~torch_geometric.data.HeteroData` graph or
        mini-batch, taking embedding rows from :obj:`data[type].n_id` when
        present (slice :obj:`[:data[target].batch_size]` for the seeds)."""
        n_id = {t: data[t].n_id for t in self.embeddings if "n_id" in data[t]}
        x_dict = {t: data[t].x for t in data.node_types if "x" in data[t]}
        return self(x_dict, data.edge_index_dict, n_id)


def _dummy_inputs(data: HeteroData, featured: List[NodeType]) -> Tuple[Dict, Dict, Dict]:
    # One node per type and one edge per edge type: enough to size every lazy parameter.
    x = {t: data[t].x.new_zeros(1, data[t].x.size(-1)) for t in featured}
    ei = {et: torch.zeros(2, 1, dtype=torch.long) for et in data.edge_types}
    n_id = {t: torch.zeros(1, dtype=torch.long) for t in data.node_types if t not in featured}
    return x, ei, n_id


def initialize_lazy(model: HeteroNodeModel, data: HeteroData) -> HeteroNodeModel:
    r"""Creates :obj:`model`'s lazily sized parameters by a dry forward (eval
    mode, no gradients) on a one-node-per-type dummy graph shaped like
    :obj:`data`; call it before building the optimizer. Returns :obj:`model`."""
    featured = [t for t in data.node_types if "x" in data[t]]
    x, ei, n_id = _dummy_inputs(data, featured)
    device = next((p.device for p in model.parameters() if not isinstance(p, torch.nn.UninitializedParameter)),
                  torch.device("cpu"))
    was_training = model.training
    model.eval()
    with torch.no_grad():
        model({k: v.to(device) for k, v in x.items()}, {k: v.to(device) for k, v in ei.items()},
              {k: v.to(device) for k, v in n_id.items()})
    model.train(was_training)
    lazy = [n for n, p in model.named_parameters() if isinstance(p, torch.nn.UninitializedParameter)]
    if lazy:
        raise ConfigError(f"parameters {lazy[:3]} are still uninitialised after the dry forward; "
                          f"every node type needs an incoming edge type")
    return model


def build_hetero_model(
    name: str,
    data: HeteroData,
    out_channels: int,
    target_type: NodeType = "paper",
    hidden_channels: int = 64,
    num_layers: int = 2,
    dropout: float = 0.5,
    embedding_dim: Optional[int] = None,
    ham_embeddings: bool = True,
    aggr: str = "sum",
    num_bases: Optional[int] = None,
    seed: Optional[int] = None,
) -> HeteroNodeModel:
    r"""Builds a heterogeneous node classifier for :obj:`data` (whose node
    types without :obj:`x` get :class:`torch.nn.Embedding` tables) and
    initialises its lazy parameters.

    Args:
        name (str): ``"sage"`` (GraphSAGE via :func:`to_hetero`) or ``"rgcn"``.
        data (HeteroData): The full graph: node types, edge types, feature
            sizes and the number of nodes of featureless types.
        out_channels (int): Number of classes.
        target_type (str, optional): The predicted node type.
            (default: :obj:`"paper"`)
        hidden_channels (int, optional): Hidden size. (default: :obj:`64`)
        num_layers (int, optional): Message passing layers (match the number
            of sampled hops). (default: :obj:`2`)
        dropout (float, optional): Dropout after every hidden layer.
            (default: :obj:`0.5`)
        embedding_dim (int, optional): Width of the embedding tables.
            (default: :obj:`hidden_channels`)
        ham_embeddings (bool, optional): Let HAM act on the embedding tables
            (see :attr:`HeteroNodeModel.ham_exclude`). (default: :obj:`True`)
        aggr (str, optional): How :func:`to_hetero` combines the edge types
            into a destination type (``"sum"``, ``"mean"``, ``"max"``, ...).
            (default: :obj:`"sum"`)
        num_bases (int, optional): Basis decomposition of ``"rgcn"``.
            (default: :obj:`None`)
        seed (int, optional): Seeds :func:`torch.manual_seed` before the
            parameters are created. (default: :obj:`None`)
    """
    name = check_choice("model", name, HETERO_MODELS)
    if not isinstance(data, HeteroData):
        raise ConfigError(f"build_hetero_model needs a HeteroData graph (got {type(data).__name__}); "
                          f"use build_node_model for homogeneous graphs")
    if target_type not in data.node_types:
        raise ConfigError(f"target_type {target_type!r} is not a node type of the graph; "
                          f"choose one of {data.node_types}")
    if "x" not in data[target_type]:
        raise ConfigError(f"the target type {target_type!r} has no features x")
    out_channels = check_int("out_channels", out_channels)
    hidden_channels = check_int("hidden_channels", hidden_channels)
    num_layers = check_int("num_layers", num_layers)
    dropout = check_dropout(dropout)
    embedding_dim = check_int("embedding_dim", hidden_channels if embedding_dim is None else embedding_dim)
    if seed is not None:
        torch.manual_seed(int(seed))
    featured = [t for t in data.node_types if "x" in data[t]]
    embeddings = {}
    for t in data.node_types:
        if t in featured:
            continue
        n = data[t].num_nodes
        if n is None or int(n) < 1:
            raise ConfigError(f"node type {t!r} has no features and no num_nodes; set data[{t!r}].num_nodes")
        embeddings[t] = torch.nn.Embedding(int(n), embedding_dim)
    if name == "sage":
        gnn = to_hetero(_SAGE(hidden_channels, out_channels, num_layers, dropout), data.metadata(), aggr=aggr)
    else:
        if embedding_dim != hidden_channels:
            raise ConfigError(f"model 'rgcn' needs embedding_dim == hidden_channels "
                              f"(got {embedding_dim} and {hidden_channels})")
        gnn = _RGCN(data.node_types, data.edge_types, featured, hidden_channels, out_channels, num_layers,
                    dropout, num_bases)
    model = HeteroNodeModel(gnn, embeddings, target_type, ham_embeddings=ham_embeddings, name=name)
    return initialize_lazy(model, data)
