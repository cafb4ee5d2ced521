"""Compressed sparse column (CSC) view of a graph, built once per graph and cached."""
from __future__ import annotations

import weakref
from dataclasses import dataclass
from typing import Any, Callable, Dict, Optional, Sequence, Tuple, Union

import torch
from torch import Tensor

from pyg_ham.errors import ConfigError

_INT32_MAX = 2**31 - 1


def _check_edge_index(edge_index: Tensor, num_nodes: int, num_src_nodes: Optional[int] = None) -> None:
    if (not isinstance(edge_index, Tensor) or edge_index.dim() != 2 or edge_index.size(0) != 2
            or edge_index.is_floating_point() or edge_index.is_complex() or edge_index.dtype == torch.bool):
        shape = tuple(edge_index.shape) if isinstance(edge_index, Tensor) else type(edge_index).__name__
        raise ConfigError(f"edge_index must be an integer tensor of shape [2, num_edges], got {shape}"
                          f"{' ' + str(edge_index.dtype) if isinstance(edge_index, Tensor) else ''}")
    if edge_index.numel():
        src_nodes = num_nodes if num_src_nodes is None else num_src_nodes
        lo_src, hi_src, lo, hi = (int(v) for v in torch.stack([edge_index[0].min(), edge_index[0].max(),
                                                               edge_index[1].min(), edge_index[1].max()]).tolist())
        for low, high, count, what in ((lo_src, hi_src, src_nodes, "source"), (lo, hi, num_nodes, "target")):
            if low < 0 or high >= count:
                bad = low if low < 0 else high
                raise ConfigError(f"edge_index holds {what} node index {bad} but there are {count} {what} nodes: "
                                  f"every index must lie in [0, {count}); fix edge_index or pass the right num_nodes")


@dataclass(frozen=True)
class CSCGraph:
    r"""A graph in compressed sparse column (CSC) layout, *i.e.* grouped by
    target node, so that the in-neighbours of node :math:`v` are
    :obj:`row[colptr[v]:colptr[v + 1]]`.

    For an :obj:`edge_index` whose messages flow from :obj:`edge_index[0]`
    (source) to :obj:`edge_index[1]` (target), the in-neighbourhood of
    :math:`v` is :math:`\{ u : (u, v) \in \mathcal{E} \}`; in directed graphs
    these are the nodes that send messages to :math:`v`.

    Args:
        colptr (torch.Tensor): Offsets of shape :obj:`[num_nodes + 1]`
            (:obj:`torch.int64`).
        row (torch.Tensor): Source node of every edge, sorted by target, of
            shape :obj:`[num_edges]` (:obj:`torch.int32` when node and edge
            counts fit, else :obj:`torch.int64`).
        perm (torch.Tensor, optional): Original edge id of every CSC position
            (same dtype as :obj:`row`), or :obj:`None` if the edges were
            already sorted by target.
        num_nodes (int): The number of nodes.
    """

    colptr: Tensor
    row: Tensor
    perm: Optional[Tensor]
    num_nodes: int

    @property
    def num_edges(self) -> int:
        return self.row.numel()

    @property
    def device(self) -> torch.device:
        return self.row.device

    def in_degree(self) -> Tensor:
        r"""In-degree of every node, shape :obj:`[num_nodes]`."""
        return self.colptr[1:] - self.colptr[:-1]

    def column(self) -> Tensor:
        r"""The column (target node) of every position, shape :obj:`[num_edges]`."""
        return torch.repeat_interleave(torch.arange(self.num_nodes, device=self.device), self.in_degree(),
                                       output_size=self.num_edges)

    def edge_id(self, pos: Tensor) -> Tensor:
        r"""Maps CSC positions to edge ids of the original :obj:`edge_index`."""
        if self.perm is None:
            return pos
        return self.perm.index_select(0, pos).to(torch.int64)

    def to(self, device: Union[str, torch.device]) -> "CSCGraph":
        device = torch.device(device)
        if device == self.device:
            return self
        perm = None if self.perm is None else self.perm.to(device)
        return CSCGraph(self.colptr.to(device), self.row.to(device), perm, self.num_nodes)

    @classmethod
    def from_edge_index(cls, edge_index: Tensor, num_nodes: int, num_src_nodes: Optional[int] = None) -> "CSCGraph":
        r"""Builds the CSC layout of :obj:`edge_index` on its own device with a
        stable sort by target, so that parallel edges keep their order.

        :obj:`edge_index` is validated here, once per build (one host sync):
        an integer tensor of shape :obj:`[2, num_edges]` with every index in
        :obj:`[0, num_nodes)` (sources in :obj:`[0, num_src_nodes)` for a bipartite
        edge type), else a :class:`~pyg_ham.errors.ConfigError`."""
        _check_edge_index(edge_index, num_nodes, num_src_nodes)
        src, dst = edge_index[0], edge_index[1]
        num_edges = src.numel()
        dtype = torch.int32 if max(num_nodes, num_edges) < _INT32_MAX else torch.int64
        if num_edges > 1 and bool((dst[1:] >= dst[:-1]).all()):
            perm = None
            row = src.to(dtype)
        else:
            order = torch.sort(dst, stable=True).indices
            perm = order.to(dtype)
            row = src.index_select(0, order).to(dtype)
        count = torch.bincount(dst, minlength=num_nodes) if num_edges > 0 else (
            torch.zeros(num_nodes, dtype=torch.int64, device=src.device))
        colptr = torch.zeros(num_nodes + 1, dtype=torch.int64, device=src.device)
        torch.cumsum(count, 0, out=colptr[1:])
        return cls(colptr, row.contiguous(), perm, num_nodes)


def cached(cache: Dict[tuple, Tuple[tuple, Any]], tensors: Sequence[Tensor], key: tuple,
           build: Callable[[], Any]) -> Any:
    r"""The value :obj:`build()` made for :obj:`tensors` (and :obj:`key`), kept
    in :obj:`cache` under their ids: rebuilt after an in-place change of one
    of them, dropped when one of them is garbage-collected."""
    full, versions = (tuple(id(t) for t in tensors), key), tuple(t._version for t in tensors)
    entry = cache.get(full)
    if entry is None or entry[0] != versions:
        if entry is None:
            for t in tensors:
                weakref.finalize(t, cache.pop, full, None)
        entry = cache[full] = (versions, build())
    return entry[1]


# (id(edge_index), num_nodes) -> (its version, {device: CSCGraph})
_CACHE: Dict[tuple, Tuple[tuple, Any]] = {}


def get_csc(
    edge_index: Tensor,
    num_nodes: int,
    device: Optional[Union[str, torch.device]] = None,
    num_src_nodes: Optional[int] = None,
) -> CSCGraph:
    r"""Returns the (cached) CSC layout of :obj:`edge_index` on :obj:`device`.

    The layout is built once per :obj:`edge_index` tensor and device; the
    cache entry is dropped when the tensor is garbage-collected and rebuilt if
    the tensor was modified in place or :obj:`num_nodes` changed.

    Args:
        edge_index (torch.Tensor): Edge indices of shape :obj:`[2, num_edges]`.
        num_nodes (int): The number of (target) nodes.
        device (torch.device, optional): Where the layout should live.
            (default: the device of :obj:`edge_index`)
        num_src_nodes (int, optional): The number of source nodes of a bipartite
            edge type. (default: :obj:`num_nodes`)
    """
    device = torch.device(device) if device is not None else edge_index.device
    per_device: Dict[torch.device, CSCGraph] = cached(_CACHE, [edge_index], (num_nodes,), dict)
    if device not in per_device:
        if per_device:  # Move an existing layout instead of sorting again.
            csc = next(iter(per_device.values())).to(device)
        else:
            csc = CSCGraph.from_edge_index(edge_index.to(device), num_nodes, num_src_nodes)
        per_device[device] = csc
    return per_device[device]


def clear_csc_cache() -> None:
    r"""Drops every cached CSC layout."""
    _CACHE.clear()
