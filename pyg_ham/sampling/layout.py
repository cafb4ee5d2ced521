r"""The one CSC layout the sampler walks: every edge type of a graph in one
compressed sparse column layout (:class:`HeteroCSC`), a
:class:`~torch_geometric.data.Data` graph being the case of one node type and
one edge type, built from the per-edge-type layouts of
:func:`~pyg_ham.sampling.get_csc` and cached."""
from __future__ import annotations

from dataclasses import dataclass
from itertools import accumulate
from typing import Dict, List, Tuple, Union

import torch
from torch_geometric.data import Data, HeteroData
from torch_geometric.typing import EdgeType, NodeType

from pyg_ham.errors import ConfigError
from pyg_ham.sampling.csc import _INT32_MAX, CSCGraph, cached, get_csc
from pyg_ham.sampling.stores import RemoteGraph, is_remote

# The node and edge type of a Data graph in its one-type layout.
HOMO_NODE_TYPE: NodeType = "_"
HOMO_EDGE_TYPE: EdgeType = ("_", "to", "_")


@dataclass(eq=False)
class HeteroCSC:
    r"""All edge types of a graph in one CSC layout (a
    :class:`~torch_geometric.data.Data` graph: :obj:`HOMO_NODE_TYPE` and
    :obj:`HOMO_EDGE_TYPE`). Node type :math:`t` occupies the global ids :obj:`node_offset[t] + i`;
    edge type :math:`e = (s, r, d)` occupies the "virtual columns"
    :obj:`col_offset[e] + j`, one per node :math:`j` of type :math:`d`, whose
    entries are the global ids of :math:`j`'s in-neighbours of type :math:`s`
    along :math:`e`. :obj:`csc.edge_id` maps every position to the id of the
    edge within :obj:`data[e].edge_index`.

    Args:
        node_types (List[str]): The node types.
        edge_types (List[Tuple[str, str, str]]): The edge types.
        num_nodes (Dict[str, int]): Nodes per type.
        csc (CSCGraph): The combined layout (its :obj:`num_nodes` is the
            number of virtual columns).
        node_offset (List[int]): First global id of every node type (plus the
            total at the end).
        col_offset (List[int]): First virtual column of every edge type.
    """

    node_types: List[NodeType]
    edge_types: List[EdgeType]
    num_nodes: Dict[NodeType, int]
    csc: CSCGraph
    node_offset: List[int]
    col_offset: List[int]

    @property
    def total_nodes(self) -> int:
        return self.node_offset[-1]


def build_hetero_csc(data: Union[Data, HeteroData], device: torch.device) -> HeteroCSC:
    r"""Builds the :class:`HeteroCSC` of :obj:`data` on :obj:`device` by
    concatenating the cached per-edge-type CSC layouts (no second sort)."""
    if isinstance(data, Data):
        n = int(data.num_nodes)
        return HeteroCSC([HOMO_NODE_TYPE], [HOMO_EDGE_TYPE], {HOMO_NODE_TYPE: n},
                         get_csc(data.edge_index, n, device), [0, n], [0])
    node_types, edge_types = data.metadata()
    edge_types = [tuple(et) for et in edge_types]
    missing = [t for t in node_types if data[t].num_nodes is None]
    if missing:
        raise ConfigError(f"node type {missing[0]!r} has no num_nodes; set data[{missing[0]!r}].num_nodes")
    num_nodes: Dict[NodeType, int] = {t: int(data[t].num_nodes) for t in node_types}
    per_type: List[CSCGraph] = []
    for et in edge_types:
        edge_index = data[et].get("edge_index")
        if edge_index is None:
            raise ConfigError(f"edge type {et!r} has no edge_index: neighbour sampling needs one per edge type")
        per_type.append(get_csc(edge_index, num_nodes[et[2]], device, num_src_nodes=num_nodes[et[0]]))
    return combine(list(node_types), edge_types, num_nodes, per_type, device)


def combine(node_types: List[NodeType], edge_types: List[EdgeType], num_nodes: Dict[NodeType, int],
            per_type: List[CSCGraph], device: torch.device) -> HeteroCSC:
    r"""Concatenates the per-edge-type layouts :obj:`per_type` (edge type
    :math:`(s, r, d)`: columns the nodes of :math:`d`, rows ids of :math:`s`)
    into one :class:`HeteroCSC` on :obj:`device`; one node and one edge type
    is that layout itself, moved (a memory-mapped one stays mapped on the CPU)."""
    node_offset = [0] + list(accumulate(num_nodes[t] for t in node_types))
    index = {t: i for i, t in enumerate(node_types)}
    if len(node_types) == 1 and len(per_type) == 1:
        return HeteroCSC(node_types, edge_types, num_nodes, per_type[0].to(device), node_offset, [0])
    per_type = [c.to(device) for c in per_type]
    total_edges = sum(c.num_edges for c in per_type)
    dtype = torch.int32 if max(node_offset[-1], total_edges) < _INT32_MAX else torch.int64
    perm_dtype = torch.int32 if max([0] + [c.num_edges for c in per_type]) < _INT32_MAX else torch.int64
    colptrs, rows, perms, col_offset = [], [], [], []
    num_cols = edge_offset = 0
    for et, c in zip(edge_types, per_type):
        col_offset.append(num_cols)
        colptrs.append(c.colptr[:-1] + edge_offset)
        rows.append(c.row.to(dtype) + node_offset[index[et[0]]])
        perms.append(torch.arange(c.num_edges, dtype=perm_dtype, device=device) if c.perm is None
                     else c.perm.to(perm_dtype))
        num_cols += c.num_nodes
        edge_offset += c.num_edges
    colptrs.append(torch.tensor([edge_offset], dtype=torch.int64, device=device))
    empty = torch.empty(0, dtype=dtype, device=device)
    csc = CSCGraph(torch.cat(colptrs), torch.cat(rows) if rows else empty,
                   torch.cat(perms) if perms else empty.to(perm_dtype), num_cols)
    return HeteroCSC(node_types, edge_types, num_nodes, csc, node_offset, col_offset)


def build_remote_csc(remote: RemoteGraph, device: torch.device) -> HeteroCSC:
    r"""The :class:`HeteroCSC` of a remote :obj:`(FeatureStore, GraphStore)`
    pair read by :func:`~pyg_ham.sampling.stores.read_remote` (a homogeneous
    pair: :obj:`HOMO_NODE_TYPE` and :obj:`HOMO_EDGE_TYPE`)."""
    if not remote.is_hetero:
        n = remote.num_nodes[None]
        return combine([HOMO_NODE_TYPE], [HOMO_EDGE_TYPE], {HOMO_NODE_TYPE: n}, remote.csc, device)
    return combine(list(remote.node_types), list(remote.edge_types), dict(remote.num_nodes),  # type: ignore[arg-type]
                   remote.csc, device)


def graph_device(data: Union[Data, HeteroData]) -> torch.device:
    r"""The device of the graph's (first) :obj:`edge_index`, the CPU without one
    (and for a remote pair)."""
    if is_remote(data):
        return torch.device("cpu")
    if isinstance(data, HeteroData):
        edge_index = data[data.edge_types[0]].get("edge_index") if data.edge_types else None
    else:
        edge_index = getattr(data, "edge_index", None)
    return edge_index.device if edge_index is not None else torch.device("cpu")


# (ids of the edge_index tensors, (edge types, node counts, device)) -> (their versions, HeteroCSC)
_HETERO_CACHE: Dict[tuple, Tuple[tuple, HeteroCSC]] = {}


def get_hetero_csc(data: Union[Data, HeteroData], device: torch.device) -> HeteroCSC:
    r"""Returns the (cached) :class:`HeteroCSC` of :obj:`data` on :obj:`device`,
    so that several loaders over one graph share one combined layout. The
    entry is dropped when one of the :obj:`edge_index` tensors is
    garbage-collected and rebuilt if one was modified in place (a
    :class:`~torch_geometric.data.Data` graph's layout is
    :func:`~pyg_ham.sampling.get_csc`'s cached one)."""
    if isinstance(data, Data):
        return build_hetero_csc(data, device)
    edge_types = [tuple(et) for et in data.edge_types]
    tensors = [data[et].get("edge_index") for et in edge_types]
    if any(t is None for t in tensors):
        return build_hetero_csc(data, device)  # raises the missing edge_index error
    key = (tuple(edge_types), tuple((t, data[t].num_nodes) for t in data.node_types), torch.device(device))
    return cached(_HETERO_CACHE, tensors, key, lambda: build_hetero_csc(data, device))


def clear_hetero_csc_cache() -> None:
    r"""Drops every cached :class:`HeteroCSC` (the per-edge-type layouts stay
    in :func:`~pyg_ham.sampling.get_csc`'s cache; see
    :func:`~pyg_ham.sampling.clear_csc_cache`)."""
    _HETERO_CACHE.clear()
