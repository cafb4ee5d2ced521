r"""The :class:`~torch_geometric.loader.NeighborLoader` options of the pyg_ham
samplers: argument checks, per-column time order of a CSC layout (temporal
sampling), and the (seed, node) table of disjoint sampling."""
from __future__ import annotations

import warnings
from typing import Any, Optional, Tuple

import torch
from torch import Tensor

from pyg_ham.errors import ConfigError
from pyg_ham.sampling.csc import CSCGraph
from pyg_ham.sampling.validate import check_graph

SUBGRAPH_TYPES = ("directional", "bidirectional", "induced")
TEMPORAL_STRATEGIES = ("uniform", "last")


def check_sampler_options(
    data: Any,
    subgraph_type: Any = "directional",
    disjoint: bool = False,
    temporal_strategy: str = "uniform",
    time_attr: Optional[str] = None,
    weight_attr: Optional[str] = None,
    directed: bool = True,
    sample_direction: str = "forward",
) -> Tuple[str, bool]:
    r"""Checks :class:`~torch_geometric.sampler.NeighborSampler`'s options and
    returns :obj:`(subgraph_type, disjoint)` as the sampler runs them:
    :obj:`directed=False` means :obj:`subgraph_type="induced"` (with PyG's
    deprecation warning) and temporal sampling is always disjoint."""
    check_graph(data)
    subgraph_type = getattr(subgraph_type, "value", subgraph_type)  # SubgraphType.induced -> "induced"
    if subgraph_type not in SUBGRAPH_TYPES:
        raise ConfigError(f"subgraph_type must be one of {', '.join(SUBGRAPH_TYPES)}, got {subgraph_type!r}")
    if not directed:
        warnings.warn("The usage of the 'directed' argument is deprecated. Use `subgraph_type='induced'` "
                      "instead.", stacklevel=3)
        subgraph_type = "induced"
    if temporal_strategy not in TEMPORAL_STRATEGIES:
        raise ConfigError(f"temporal_strategy must be one of {', '.join(TEMPORAL_STRATEGIES)}, "
                          f"got {temporal_strategy!r}")
    if sample_direction != "forward":
        raise ConfigError(f"sample_direction={sample_direction!r} is not supported by the pyg_ham sampler "
                          f"(only 'forward')")
    for name, value in (("time_attr", time_attr), ("weight_attr", weight_attr)):
        if value is not None and not isinstance(value, str):
            raise ConfigError(f"{name} must be the name of a graph attribute (a str), got {type(value).__name__}")
    disjoint = bool(disjoint) or time_attr is not None
    if disjoint and subgraph_type == "induced":
        raise ConfigError("disjoint (or temporal) sampling with subgraph_type='induced' is not supported "
                          "(nor by PyG); use 'directional' or 'bidirectional'")
    if weight_attr is not None and time_attr is not None and temporal_strategy == "last":
        raise ConfigError("weight_attr with temporal_strategy='last' is ambiguous (the most recent "
                          "neighbours are taken whatever their weight); use temporal_strategy='uniform'")
    return subgraph_type, disjoint


def check_weight(weight: Any, num_edges: int, where: str) -> Tensor:
    r"""Returns :obj:`weight` as a 1-D float tensor of :obj:`num_edges`
    non-negative finite entries, else raises a :class:`ConfigError`."""
    if not isinstance(weight, Tensor) or weight.dim() != 1 or weight.numel() != num_edges:
        shape = tuple(weight.shape) if isinstance(weight, Tensor) else type(weight).__name__
        raise ConfigError(f"{where} must be a tensor of shape ({num_edges},), one weight per edge, got {shape}")
    weight = weight.to(torch.float64)
    if weight.numel() and not bool(((weight >= 0) & torch.isfinite(weight)).all()):
        raise ConfigError(f"{where} must hold finite weights >= 0 (negative, inf or nan found)")
    return weight


def sort_columns(csc: CSCGraph, key: Tensor) -> Tuple[CSCGraph, Tensor]:
    r"""Reorders every column of :obj:`csc` by :obj:`key` (one value per
    position; stable, so ties keep their order). Returns the reordered layout
    (its :obj:`perm` maps positions to the original edge ids) and the order
    (old position of every new position)."""
    order = torch.sort(key, stable=True).indices
    order = order.index_select(0, torch.sort(csc.column().index_select(0, order), stable=True).indices)
    perm = order.to(csc.row.dtype) if csc.perm is None else csc.perm.index_select(0, order)
    return CSCGraph(csc.colptr, csc.row.index_select(0, order), perm, csc.num_nodes), order


class TemporalIndex:
    r"""Counts, for a column :math:`c` and a time :math:`t`, the neighbours of
    :math:`c` whose time is :math:`\leq t`, in a layout whose columns are
    sorted by time (:func:`sort_columns`), so that they are the first ones:

    .. math::
        \deg_t(c) = \big|\{ i \in \mathrm{col}(c) : \tau_i \leq t \}\big|,

    found by one binary search over the keys :math:`c \cdot R + \rho_i`
    (:math:`\rho_i` the rank of :math:`\tau_i` among the :math:`R` distinct
    times), which are sorted across the whole layout.

    Args:
        csc (CSCGraph): The time-sorted layout.
        time (torch.Tensor): The time of every position of :obj:`csc`.
    """

    def __init__(self, csc: CSCGraph, time: Tensor):
        self.colptr = csc.colptr
        self.times = torch.unique(time)
        self.num_times = max(self.times.numel(), 1)
        rank = torch.searchsorted(self.times, time)
        self.keys = csc.column() * self.num_times + rank

    def valid_deg(self, cols: Tensor, seed_time: Tensor) -> Tensor:
        r"""The number of neighbours of every :obj:`cols[r]` not newer than
        :obj:`seed_time[r]`."""
        q = torch.searchsorted(self.times, seed_time.to(self.times.dtype).contiguous(), right=True)
        end = torch.searchsorted(self.keys, cols * self.num_times + q)
        return end - self.colptr.index_select(0, cols)


class KeyMap:
    r"""A table of :obj:`key -> local id` held as sorted keys, for disjoint
    sampling where a node's identity is the pair (seed slot :math:`b`, node
    :math:`v`), key :math:`b \cdot N + v`."""

    def __init__(self, keys: Tensor, ids: Tensor):
        self.keys, order = torch.sort(keys)
        self.ids = ids.index_select(0, order)

    def lookup(self, keys: Tensor) -> Tensor:
        r"""The local id of every key, :obj:`-1` for unknown keys."""
        if self.keys.numel() == 0:
            return torch.full_like(keys, -1)
        at = torch.searchsorted(self.keys, keys).clamp_(max=self.keys.numel() - 1)
        hit = self.keys.index_select(0, at) == keys
        return torch.where(hit, self.ids.index_select(0, at), -1)

    def add(self, keys: Tensor, ids: Tensor) -> None:
        self.keys, order = torch.sort(torch.cat([self.keys, keys]))
        self.ids = torch.cat([self.ids, ids]).index_select(0, order)


def first_occurrence_unique(keys: Tensor) -> Tuple[Tensor, Tensor]:
    r"""The distinct values of :obj:`keys` in order of first occurrence, and
    for every entry of :obj:`keys` the index of its value among them."""
    if keys.numel() == 0:
        return keys, keys
    uniq, inv = torch.unique(keys, return_inverse=True)
    first = torch.full((uniq.numel(),), keys.numel(), dtype=torch.int64, device=keys.device)
    first.scatter_reduce_(0, inv, torch.arange(keys.numel(), device=keys.device), reduce="amin")
    order = torch.sort(first).indices
    rank = torch.empty_like(order)
    rank[order] = torch.arange(order.numel(), device=keys.device)
    return uniq.index_select(0, order), rank.index_select(0, inv)
