r"""Remote graphs: a :obj:`(FeatureStore, GraphStore)` pair, as
:class:`~torch_geometric.loader.NeighborLoader` takes it.

The sampler needs three facts of a graph: its node types and their sizes,
its edge types, and every edge type's CSC layout. For a
:class:`~torch_geometric.data.Data` / :class:`~torch_geometric.data.HeteroData`
graph they come from its stores; for a remote pair, from
:meth:`GraphStore.get_all_edge_attrs` and :meth:`GraphStore.csc` (a store
that holds its edges in CSC, such as :class:`~pyg_ham.datasets.ondisk.OnDiskGraphStore`,
hands its own tensors over, memory-mapped ones included) and, for sizes an
edge attribute does not state, :meth:`FeatureStore.get_tensor_size`. The
features stay in the :class:`FeatureStore`: PyG's
:class:`~torch_geometric.loader.NodeLoader` gathers them per batch with
:meth:`FeatureStore.multi_get_tensor`.

A pair is homogeneous when its graph store's edge types are :obj:`None`
(PyG's rule), heterogeneous when every one is a :obj:`(src, rel, dst)` tuple.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Tuple

import torch
from torch import Tensor
from torch_geometric.data import FeatureStore, GraphStore, TensorAttr, remote_backend_utils
from torch_geometric.typing import EdgeType, NodeType

from pyg_ham.errors import ConfigError
from pyg_ham.sampling.csc import _INT32_MAX, CSCGraph


def is_remote(data: Any) -> bool:
    r"""Whether :obj:`data` is a :obj:`(FeatureStore, GraphStore)` pair."""
    return (isinstance(data, (tuple, list)) and len(data) == 2 and isinstance(data[0], FeatureStore)
            and isinstance(data[1], GraphStore))


def check_remote(data: Any) -> None:
    r"""Raises a :class:`ConfigError` for a tuple or list that is not a
    :obj:`(FeatureStore, GraphStore)` pair (the one remote form PyG takes)."""
    if isinstance(data, (tuple, list)) and not is_remote(data):
        kinds = ", ".join(type(d).__name__ for d in data)
        raise ConfigError(f"a remote graph must be a (FeatureStore, GraphStore) pair "
                          f"(torch_geometric.data.FeatureStore, GraphStore subclasses); got ({kinds})")


@dataclass
class RemoteGraph:
    r"""What the sampler reads of a remote pair.

    Args:
        is_hetero (bool): Whether the edge types are :obj:`(src, rel, dst)` tuples.
        node_types (List[str]): Node types (:obj:`["_"]`-free: the homogeneous
            case has the one type :obj:`None`).
        edge_types (List[Tuple[str, str, str]]): Edge types (:obj:`[None]` homogeneous).
        num_nodes (Dict[str, int]): Nodes per type.
        csc (List[CSCGraph]): Every edge type's layout, in :obj:`edge_types` order.
    """

    is_hetero: bool
    node_types: List[Optional[NodeType]]
    edge_types: List[Optional[EdgeType]]
    num_nodes: Dict[Optional[NodeType], int]
    csc: List[CSCGraph]


def _group(attr: TensorAttr) -> Optional[NodeType]:
    # A TensorAttr's node type; None when unset (a homogeneous store such as a Data graph).
    return attr.group_name if attr.is_set("group_name") else None


def _feature_size(feature_store: FeatureStore, group: Optional[NodeType]) -> Optional[int]:
    for attr in feature_store.get_all_tensor_attrs():
        if _group(attr) == group:
            size = feature_store.get_tensor_size(attr)
            if size is not None:
                return int(size[0])
    return None


def _to_csc_graph(row: Tensor, colptr: Tensor, perm: Optional[Tensor], num_cols: int, where: str) -> CSCGraph:
    if colptr.numel() != num_cols + 1:
        raise ConfigError(f"the graph store's CSC of {where} has {colptr.numel() - 1} columns but its "
                          f"destination type has {num_cols} nodes; put the edge index with size=(src, dst)")
    num_edges = row.numel()
    dtype = torch.int32 if max(num_cols, num_edges) < _INT32_MAX else torch.int64
    if row.dtype not in (torch.int32, torch.int64):
        raise ConfigError(f"the graph store's edge indices of {where} must be int32 or int64, got {row.dtype}")
    row = row if row.dtype == dtype or row.dtype == torch.int32 else row.to(dtype)
    if perm is not None:
        perm = perm.to(row.dtype)
    return CSCGraph(colptr.to(torch.int64), row, perm, num_cols)


def remote_meta(data: Tuple[FeatureStore, GraphStore]) -> RemoteGraph:
    r"""Reads the node and edge types and the node counts of a
    :obj:`(FeatureStore, GraphStore)` pair, without its layouts
    (:obj:`csc` empty; see :func:`read_remote`)."""
    feature_store, graph_store = data
    edge_attrs = graph_store.get_all_edge_attrs()
    if not edge_attrs:
        raise ConfigError("the graph store holds no edge index: neighbour sampling needs one "
                          "(graph_store.put_edge_index(...))")
    kinds = {attr.edge_type is None for attr in edge_attrs}
    if kinds == {True}:
        attr = edge_attrs[0]
        n = max(attr.size) if attr.size is not None else _feature_size(feature_store, None)
        if n is None:
            raise ConfigError("the number of nodes cannot be read from the stores: put the edge index "
                              "with size=(num_nodes, num_nodes) or a node feature tensor")
        return RemoteGraph(False, [None], [None], {None: int(n)}, [])
    if kinds != {False}:
        raise ConfigError("the graph store mixes edge type None with (src, rel, dst) edge types; "
                          "use one or the other")
    edge_types: List[EdgeType] = []
    for attr in edge_attrs:  # one edge type may be stored in several layouts: keep the first
        et = tuple(attr.edge_type)
        if len(et) != 3:
            raise ConfigError(f"edge type {attr.edge_type!r} of the graph store is not a (src, rel, dst) triple")
        if et not in edge_types:
            edge_types.append(et)  # type: ignore[arg-type]
    node_types: List[NodeType] = []
    for tensor_attr in feature_store.get_all_tensor_attrs():
        if isinstance(tensor_attr.group_name, str) and tensor_attr.group_name not in node_types:
            node_types.append(tensor_attr.group_name)
    for et in edge_types:
        for t in (et[0], et[2]):
            if t not in node_types:
                node_types.append(t)
    try:
        num_nodes = {t: int(remote_backend_utils.num_nodes(feature_store, graph_store, t)) for t in node_types}
    except ValueError as e:
        raise ConfigError(f"the number of nodes of a node type cannot be read from the stores ({e}); "
                          f"put its edge indices with size=(src, dst) or a feature tensor for it") from None
    return RemoteGraph(True, list(node_types), list(edge_types), num_nodes, [])  # type: ignore[arg-type]


def read_remote(data: Tuple[FeatureStore, GraphStore]) -> RemoteGraph:
    r"""Reads the node types, sizes and per-edge-type CSC layouts of a
    :obj:`(FeatureStore, GraphStore)` pair (see the module docstring)."""
    meta = remote_meta(data)
    graph_store = data[1]
    if not meta.is_hetero:
        row, colptr, perm = graph_store.csc()
        meta.csc = [_to_csc_graph(row, colptr, perm, meta.num_nodes[None], "the graph")]
        return meta
    rows, colptrs, perms = graph_store.csc()
    keys = {tuple(k): k for k in rows}
    for et in meta.edge_types:
        assert et is not None
        key = keys[tuple(et)]
        meta.csc.append(_to_csc_graph(rows[key], colptrs[key], (perms or {}).get(key), meta.num_nodes[et[2]],
                                      f"edge type {et}"))
    return meta


class RemoteNodeStore:
    r"""The node-level attributes of one node type of a :class:`FeatureStore`
    as the sampler's options read them (:obj:`attr in store`,
    :obj:`store[attr]`: the whole tensor)."""

    def __init__(self, feature_store: FeatureStore, group: Optional[NodeType]):
        self.feature_store, self.group = feature_store, group

    def _attr(self, name: str) -> Optional[TensorAttr]:
        for attr in self.feature_store.get_all_tensor_attrs():
            if _group(attr) == self.group and attr.attr_name == name:
                return attr
        return None

    def __contains__(self, name: str) -> bool:
        return self._attr(name) is not None

    def __getitem__(self, name: str) -> Tensor:
        attr = self._attr(name)
        if attr is None:
            raise KeyError(name)
        return self.feature_store.get_tensor(TensorAttr(self.group, name, None) if self.group is not None
                                             else attr.__class__(attr_name=name, index=None))


class NoEdgeAttrs:
    r"""An edge store without attributes: remote graphs keep no edge-level
    time or weight the sampler could read (PyG's sampler refuses
    :obj:`weight_attr` for them too)."""

    def __contains__(self, name: str) -> bool:
        return False
