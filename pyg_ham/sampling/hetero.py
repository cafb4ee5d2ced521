r"""Neighbour sampling of :class:`~torch_geometric.data.HeteroData` graphs in
plain PyTorch: :class:`TorchHeteroNeighborSampler`, a PyG
:class:`~torch_geometric.sampler.BaseSampler` whose
:class:`~torch_geometric.sampler.HeteroSamplerOutput` goes through PyG's own
:class:`~torch_geometric.loader.NodeLoader` filtering.

All edge types of a hop are sampled together: every edge type
:math:`(s, r, d)` gets its own block of "virtual columns" (one per node of
type :math:`d`) in one combined CSC layout, so that a hop is one call of the
vectorised kernel over all (frontier node, edge type) pairs, whatever the
number of edge types (two calls when a hop mixes :obj:`-1` with finite
fanouts; fanouts that differ between edge types go through
:func:`sample_one_hop_per_row`).
"""
from __future__ import annotations

import weakref
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

import torch
from torch import Tensor
from torch_geometric.data import HeteroData
from torch_geometric.sampler import (
    BaseSampler,
    EdgeSamplerInput,
    HeteroSamplerOutput,
    NegativeSampling,
    NodeSamplerInput,
)
from torch_geometric.typing import EdgeType, EdgeTypeStr, NodeType

from pyg_ham.errors import ConfigError
from pyg_ham.sampling.csc import _INT32_MAX, CSCGraph, get_csc
from pyg_ham.sampling.kernels import _floyd_rows, sample_one_hop, sample_rows
from pyg_ham.sampling.options import (
    KeyMap,
    TemporalIndex,
    check_sampler_options,
    check_weight,
    first_occurrence_unique,
    sort_columns,
)
from pyg_ham.sampling.validate import check_device, check_num_neighbors

__all__ = [
    "HeteroCSC",
    "TorchHeteroNeighborSampler",
    "build_hetero_csc",
    "clear_hetero_csc_cache",
    "check_hetero_input_nodes",
    "check_hetero_num_neighbors",
    "get_hetero_csc",
    "sample_one_hop_per_row",
]


def _edge_type_name(edge_type: EdgeType) -> str:
    return "__".join(edge_type)


def check_hetero_num_neighbors(
    num_neighbors: Any,
    edge_types: Sequence[EdgeType],
) -> Dict[EdgeType, List[int]]:
    r"""Returns the fanout of every edge type, one int per hop, as
    :class:`~torch_geometric.loader.NeighborLoader` reads it: a list applies
    to every edge type; a dict maps edge types (tuples or
    :obj:`"src__rel__dst"` strings) to lists, must name every edge type of
    the graph and nothing else, and all lists must have the same length.

    Args:
        num_neighbors (List[int] or Dict[EdgeType, List[int]]): The fanout.
        edge_types (List[Tuple[str, str, str]]): The graph's edge types.
    """
    edge_types = [tuple(et) for et in edge_types]
    if not isinstance(num_neighbors, dict):
        values = check_num_neighbors(num_neighbors)
        return {et: list(values) for et in edge_types}
    out: Dict[EdgeType, List[int]] = {}
    known = {_edge_type_name(et): et for et in edge_types}
    for key, value in num_neighbors.items():
        try:
            name = str(EdgeTypeStr(key))
        except (ValueError, IndexError, TypeError):
            name = None
        if name is None or name not in known:
            raise ConfigError(f"num_neighbors names the edge type {key!r}, which is not in the graph; "
                              f"its edge types are {list(known.values())}")
        try:
            out[known[name]] = check_num_neighbors(value)
        except ConfigError as e:
            raise ConfigError(f"num_neighbors[{known[name]!r}]: {e}") from None
    hops = {len(v) for v in out.values()}
    if len(hops) > 1:
        raise ConfigError(f"the number of hops must be the same across all edge types in "
                          f"num_neighbors (got lists of lengths {sorted(hops)})")
    missing = [et for et in edge_types if et not in out]
    if missing:
        raise ConfigError(f"num_neighbors has no fanout for the edge type(s) {missing}; give every "
                          f"edge type a list (0s to skip one) or pass one list for all")
    return {et: out[et] for et in edge_types}


def check_hetero_input_nodes(data: HeteroData, input_nodes: Any) -> None:
    r"""Raises a :class:`ConfigError` unless :obj:`input_nodes` is a node type
    of :obj:`data` or a :obj:`(node_type, index or boolean mask or None)`
    pair that fits it."""
    if isinstance(input_nodes, str):
        node_type, nodes = input_nodes, None
    elif isinstance(input_nodes, (tuple, list)) and len(input_nodes) == 2 and isinstance(input_nodes[0], str):
        node_type, nodes = input_nodes
    else:
        raise ConfigError(f"input_nodes of a HeteroData graph must be a node type or a "
                          f"(node_type, index or mask) pair such as ('paper', train_idx) "
                          f"(got {type(input_nodes).__name__})")
    if node_type not in data.node_types:
        raise ConfigError(f"input_nodes names the node type {node_type!r}, which is not in the graph; "
                          f"its node types are {data.node_types}")
    if isinstance(nodes, Tensor) and nodes.dtype == torch.bool:
        num = data[node_type].num_nodes
        if nodes.dim() != 1 or nodes.numel() != num:
            raise ConfigError(f"the input_nodes mask of {node_type!r} has shape {tuple(nodes.shape)}, "
                              f"expected ({num},)")
    elif nodes is not None and not isinstance(nodes, (Tensor, list, tuple)):
        raise ConfigError(f"input_nodes[1] must be an index tensor, a boolean mask or None "
                          f"(got {type(nodes).__name__})")


class HeteroCSC:
    r"""All edge types of a heterogeneous graph in one CSC layout.

    Node type :math:`t` occupies the global ids :obj:`node_offset[t] + i`;
    edge type :math:`e = (s, r, d)` occupies the "virtual columns"
    :obj:`col_offset[e] + j`, one per node :math:`j` of type :math:`d`, whose
    entries are the global ids of :math:`j`'s in-neighbours of type :math:`s`
    along :math:`e`. :obj:`csc.perm` maps every position to the id of the
    edge within :obj:`data[e].edge_index`. The per-edge-type layouts come
    from :func:`~pyg_ham.sampling.get_csc` (sorted once and cached).

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

    def __init__(self, node_types: List[NodeType], edge_types: List[EdgeType],
                 num_nodes: Dict[NodeType, int], csc: CSCGraph,
                 node_offset: List[int], col_offset: List[int]):
        self.node_types, self.edge_types = node_types, edge_types
        self.num_nodes, self.csc = num_nodes, csc
        self.node_offset, self.col_offset = node_offset, col_offset

    @property
    def total_nodes(self) -> int:
        return self.node_offset[-1]


def build_hetero_csc(data: HeteroData, device: torch.device) -> HeteroCSC:
    r"""Builds the :class:`HeteroCSC` of :obj:`data` on :obj:`device` by
    concatenating the cached per-edge-type CSC layouts (no second sort)."""
    node_types, edge_types = data.metadata()
    edge_types = [tuple(et) for et in edge_types]
    num_nodes: Dict[NodeType, int] = {}
    for t in node_types:
        n = data[t].num_nodes
        if n is None:
            raise ConfigError(f"node type {t!r} has no num_nodes; set data[{t!r}].num_nodes")
        num_nodes[t] = int(n)
    node_offset = [0]
    for t in node_types:
        node_offset.append(node_offset[-1] + num_nodes[t])
    index = {t: i for i, t in enumerate(node_types)}
    per_type: List[CSCGraph] = []
    for et in edge_types:
        edge_index = data[et].get("edge_index")
        if edge_index is None:
            raise ConfigError(f"edge type {et!r} has no edge_index: neighbour sampling needs one per edge type")
        per_type.append(get_csc(edge_index, num_nodes[et[2]], device, num_src_nodes=num_nodes[et[0]]))
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
    return HeteroCSC(list(node_types), edge_types, num_nodes, csc, node_offset, col_offset)


# (edge types, ids and versions of their edge_index tensors, node counts, device) -> HeteroCSC
_HETERO_CACHE: Dict[tuple, HeteroCSC] = {}


def get_hetero_csc(data: HeteroData, device: torch.device) -> HeteroCSC:
    r"""Returns the (cached) :class:`HeteroCSC` of :obj:`data` on :obj:`device`,
    so that several loaders over one graph share one combined layout. The
    entry is dropped when one of the :obj:`edge_index` tensors is
    garbage-collected and rebuilt if one was modified in place."""
    edge_types = [tuple(et) for et in data.edge_types]
    tensors = [data[et].get("edge_index") for et in edge_types]
    if any(t is None for t in tensors):
        return build_hetero_csc(data, device)  # raises the missing edge_index error
    key = (tuple(edge_types), tuple((id(t), t._version) for t in tensors),
           tuple((t, data[t].num_nodes) for t in data.node_types), torch.device(device))
    graph = _HETERO_CACHE.get(key)
    if graph is None:
        graph = build_hetero_csc(data, device)
        _HETERO_CACHE[key] = graph
        for t in tensors:
            weakref.finalize(t, _HETERO_CACHE.pop, key, None)
    return graph


def clear_hetero_csc_cache() -> None:
    r"""Drops every cached :class:`HeteroCSC` (the per-edge-type layouts stay
    in :func:`~pyg_ham.sampling.get_csc`'s cache; see
    :func:`~pyg_ham.sampling.clear_csc_cache`)."""
    _HETERO_CACHE.clear()


def sample_one_hop_per_row(
    csc: CSCGraph,
    cols: Tensor,
    k: Tensor,
    k_max: int,
    replace: bool = False,
    generator: Optional[torch.Generator] = None,
) -> Tuple[Tensor, Tensor]:
    r"""Like :func:`~pyg_ham.sampling.sample_one_hop`, but with its own fanout
    :math:`k_r \geq 1` per column: :math:`\min(\deg_r, k_r)` distinct
    in-neighbours (or :math:`k_r` draws with :obj:`replace`) for every
    :obj:`cols[r]`, in :obj:`k_max` vector steps for all rows at once.

    Robert Floyd's algorithm for :math:`k_r` draws from
    :math:`\{0, \ldots, \deg_r - 1\}` runs over
    :math:`j = \deg_r - k_r, \ldots, \deg_r - 1`; placing row :math:`r`'s
    steps in the last :math:`k_r` of :obj:`k_max` slots gives
    :math:`j = \deg_r - k_\max + i` in slot :math:`i` for every row, and the
    first :math:`k_\max - k_r` slots are left out.

    Args:
        csc (CSCGraph): The graph.
        cols (torch.Tensor): Columns to sample for, shape :obj:`[n]`.
        k (torch.Tensor): Fanout per column (:obj:`>= 1`), shape :obj:`[n]`.
        k_max (int): :obj:`k.max()`.
        replace (bool, optional): Sample with replacement.
            (default: :obj:`False`)
        generator (torch.Generator, optional): Random number generator on
            :obj:`csc.device`. (default: :obj:`None`)

    Returns:
        :obj:`(pos, tgt)` as in :func:`~pyg_ham.sampling.sample_one_hop`.
    """
    device = csc.device
    n = cols.numel()
    if n == 0:
        empty = torch.empty(0, dtype=torch.int64, device=device)
        return empty, empty
    start = csc.colptr.index_select(0, cols)
    deg = csc.colptr.index_select(0, cols + 1) - start
    return _floyd_rows(start, deg, k, k_max, replace, generator)


class TorchHeteroNeighborSampler(BaseSampler):
    r"""Multi-hop neighbour sampler for heterogeneous graphs
    (:class:`~torch_geometric.data.HeteroData`) in plain, vectorised PyTorch
    (no :obj:`pyg-lib` / :obj:`torch-sparse`), with the semantics of
    :class:`~torch_geometric.loader.NeighborLoader` on heterogeneous graphs:

    at hop :math:`h`, for every edge type :math:`e = (s, r, d)` and every
    node :math:`v` of type :math:`d` reached at hop :math:`h - 1` (the seeds
    at hop 1), up to :obj:`num_neighbors[e][h]` of its in-neighbours
    :math:`\{u : (u, v) \in \mathcal{E}_e\}` are sampled, and the nodes of
    type :math:`s` not seen before join the batch. The output is a
    :class:`~torch_geometric.sampler.HeteroSamplerOutput`:

    * per node type, the seeds first (on the input type), then each hop's
      new nodes in order of first occurrence;
    * per edge type, :obj:`row` indexes the source type's sampled nodes and
      :obj:`col` the destination type's, edges ordered by hop, :obj:`edge`
      the edges' ids in :obj:`data[e].edge_index`;
    * :obj:`num_sampled_nodes` (per node type, :obj:`num_hops + 1` counts)
      and :obj:`num_sampled_edges` (per edge type, :obj:`num_hops` counts)
      for :func:`~torch_geometric.utils.trim_to_layer`.

    All edge types of a hop are sampled by one kernel call (two when the hop
    mixes :obj:`-1` with finite fanouts; see :class:`HeteroCSC` and
    :func:`sample_one_hop_per_row`); new nodes of all
    types are de-duplicated through one node-to-local-id array over all
    nodes, reset after every batch.

    Args:
        data (torch_geometric.data.HeteroData): The graph.
        num_neighbors (List[int] or Dict[Tuple[str, str, str], List[int]]):
            Fanout per hop, for all edge types or per edge type; :obj:`-1`
            takes all in-neighbours and :obj:`0` none.
        subgraph_type (str, optional): :obj:`"directional"`,
            :obj:`"bidirectional"` or :obj:`"induced"`.
            (default: :obj:`"directional"`)
        replace (bool, optional): Sample with replacement.
            (default: :obj:`False`)
        disjoint (bool, optional): One subgraph per seed (:obj:`batch` in the
            output); nodes are keyed by (seed slot, node). (default: :obj:`False`)
        temporal_strategy (str, optional): :obj:`"uniform"` or :obj:`"last"`.
        time_attr (str, optional): Node- or edge-level time; each column of
            the layout is sorted by it so that the neighbours not newer than
            the seed are a prefix (:class:`~pyg_ham.sampling.options.TemporalIndex`).
            Implies :obj:`disjoint`. (default: :obj:`None`)
        weight_attr (str, optional): Edge weights (see
            :func:`~pyg_ham.sampling.kernels.sample_rows`). (default: :obj:`None`)
        is_sorted (bool, optional): Ignored (detected). share_memory (bool,
            optional): Share the layout with worker processes.
        directed (bool, optional): Deprecated; :obj:`False` means induced.
        sample_direction (str, optional): Only :obj:`"forward"`.
        device (torch.device or str, optional): Where sampling runs.
            (default: the device of the first :obj:`edge_index`)
        seed (int, optional): Seed of the sampler's own random generator.
            (default: :obj:`None`: torch's global generator)
        generator (torch.Generator, optional): A generator on :obj:`device`
            to draw from instead of :obj:`seed`. (default: :obj:`None`)
        with_edge_id (bool, optional): Return the sampled edges' ids
            (:obj:`e_id` in the batch). (default: :obj:`True`)
    """

    def __init__(
        self,
        data: HeteroData,
        num_neighbors: Union[List[int], Dict[EdgeType, List[int]]],
        subgraph_type: Union[str, Any] = "directional",
        replace: bool = False,
        disjoint: bool = False,
        temporal_strategy: str = "uniform",
        time_attr: Optional[str] = None,
        weight_attr: Optional[str] = None,
        is_sorted: bool = False,
        share_memory: bool = False,
        directed: bool = True,
        sample_direction: str = "forward",
        *,
        device: Optional[Union[str, torch.device]] = None,
        seed: Optional[int] = None,
        generator: Optional[torch.Generator] = None,
        with_edge_id: Optional[bool] = None,
    ):
        self.subgraph_type, self.disjoint = check_sampler_options(
            data, subgraph_type, disjoint, temporal_strategy, time_attr, weight_attr, directed, sample_direction)
        if not isinstance(data, HeteroData):
            raise ConfigError(f"data must be a torch_geometric.data.HeteroData graph "
                              f"(got {type(data).__name__}); use TorchNeighborSampler for Data")
        if not data.edge_types:
            raise ConfigError("the HeteroData graph has no edge types: neighbour sampling needs at "
                              "least one edge_index")
        edge_types = [tuple(et) for et in data.edge_types]
        self.num_neighbors = check_hetero_num_neighbors(num_neighbors, edge_types)
        self.num_hops = len(next(iter(self.num_neighbors.values())))
        self.replace = bool(replace)
        self.temporal_strategy = temporal_strategy
        first = data[edge_types[0]].get("edge_index")
        self.device = check_device(device) or (first.device if first is not None else torch.device("cpu"))
        if seed is not None and generator is not None:
            raise ConfigError("pass either seed or generator, not both")
        if generator is not None and generator.device.type != self.device.type:
            raise ConfigError(f"generator lives on {generator.device}, but sampling runs on "
                              f"{self.device}; create it with torch.Generator(device=...)")
        if seed is not None:
            generator = torch.Generator(device=self.device).manual_seed(int(seed))
        self.generator = generator
        self.with_edge_id = True if with_edge_id is None else bool(with_edge_id)
        self.graph = get_hetero_csc(data, self.device)
        self.node_types, self.edge_types = self.graph.node_types, self.graph.edge_types
        self.num_nodes = dict(self.graph.num_nodes)
        self._setup_options(data, time_attr, weight_attr)
        if share_memory and self.device.type == "cpu":
            for t in (self.csc.colptr, self.csc.row, self.csc.perm, self.weight):
                if t is not None:
                    t.share_memory_()
        self._plan = self._make_plan()
        self._node_map: Optional[Tensor] = None
        self._worker_id: Optional[int] = None

    @property
    def is_temporal(self) -> bool:
        return self.temporal is not None

    def _edge_type_positions(self) -> Tensor:
        # The edge type of every position of the joined layout.
        g = self.graph
        sizes = torch.tensor([int(g.csc.colptr[g.col_offset[e] + g.num_nodes[et[2]]] - g.csc.colptr[g.col_offset[e]])
                              for e, et in enumerate(self.edge_types)], dtype=torch.int64, device=self.device)
        return torch.repeat_interleave(torch.arange(len(self.edge_types), device=self.device), sizes,
                                       output_size=g.csc.num_edges)

    def _per_edge_values(self, data: HeteroData, attr: str, fill: float, what: str) -> Tensor:
        # data[e][attr] of every edge type (fill where an edge type has none), per joined position.
        csc = self.graph.csc
        etype = self._edge_type_positions()
        values = torch.full((csc.num_edges,), fill, dtype=torch.float64, device=self.device)
        assert csc.perm is not None  # the joined layout always has one
        eid = csc.perm.to(torch.int64)
        for e, et in enumerate(self.edge_types):
            if attr not in data[et]:
                continue
            num = data[et].edge_index.size(1)
            v = data[et][attr]
            if what == "weight":
                v = check_weight(v, num, f"data[{et!r}].{attr} (weight_attr)")
            elif not isinstance(v, Tensor) or v.dim() != 1 or v.numel() != num:
                raise ConfigError(f"data[{et!r}].{attr} must hold one time per edge, shape ({num},)")
            at = (etype == e).nonzero().view(-1)
            values.index_copy_(0, at, v.to(self.device, torch.float64).index_select(0, eid.index_select(0, at)))
        return values

    def _setup_options(self, data: HeteroData, time_attr: Optional[str], weight_attr: Optional[str]) -> None:
        # Weights and time per position of the joined layout; temporal sampling sorts every
        # virtual column by time (a private copy of the shared layout).
        g = self.graph
        self.csc: CSCGraph = g.csc
        self.node_time: Optional[Tensor] = None  # per global node id
        self.edge_time: Optional[Tensor] = None
        self.temporal: Optional[TemporalIndex] = None
        self.time_attr, self.weight_attr = time_attr, weight_attr
        if time_attr is not None:
            on_nodes = [t for t in self.node_types if time_attr in data[t]]
            on_edges = [et for et in self.edge_types if time_attr in data[et]]
            if on_nodes and on_edges:
                raise ConfigError(f"time_attr={time_attr!r} is both a node- and an edge-level attribute; "
                                  f"keep it on one level")
            if not on_nodes and not on_edges:
                raise ConfigError(f"time_attr={time_attr!r} is not an attribute of any node or edge type; "
                                  f"set data[type].{time_attr}")
            if on_nodes:
                # Node types without a time are never excluded.
                node_time = torch.full((g.total_nodes,), float("-inf"), dtype=torch.float64, device=self.device)
                for i, t in enumerate(self.node_types):
                    if t in on_nodes:
                        v = data[t][time_attr]
                        if not isinstance(v, Tensor) or v.dim() != 1 or v.numel() != self.num_nodes[t]:
                            raise ConfigError(f"data[{t!r}].{time_attr} must hold one time per node, "
                                              f"shape ({self.num_nodes[t]},)")
                        node_time[g.node_offset[i]:g.node_offset[i + 1]] = v.to(self.device, torch.float64)
                self.node_time = node_time
                pos_time = node_time.index_select(0, g.csc.row.to(torch.int64))
            else:
                pos_time = self._per_edge_values(data, time_attr, float("-inf"), "time")
                self.edge_time = pos_time
            self.csc, order = sort_columns(g.csc, pos_time)
            self.temporal = TemporalIndex(self.csc, pos_time.index_select(0, order))
        else:
            order = None
        self.weight: Optional[Tensor] = None
        if weight_attr is not None:
            if not any(weight_attr in data[et] for et in self.edge_types):
                raise ConfigError(f"weight_attr={weight_attr!r} is not an attribute of any edge type; "
                                  f"set data[edge_type].{weight_attr}")
            weight = self._per_edge_values(data, weight_attr, 1.0, "weight")  # no weight: uniform
            self.weight = weight if order is None else weight.index_select(0, order)

    def _make_plan(self) -> List[Dict[str, Any]]:
        # Per hop: the edge types to sample (finite fanouts first, then "all"),
        # their fanouts, destination type and virtual-column shift, as tensors.
        g, type_index = self.graph, {t: i for i, t in enumerate(self.node_types)}
        plan = []
        for h in range(self.num_hops):
            ks = [self.num_neighbors[et][h] for et in self.edge_types]
            # Within each group, edge types by source type: then the new nodes, in order
            # of first occurrence, come out grouped by type (no sort needed).
            src = [type_index[et[0]] for et in self.edge_types]
            finite = sorted((e for e, k in enumerate(ks) if k > 0), key=lambda e: src[e])
            full = sorted((e for e, k in enumerate(ks) if k < 0), key=lambda e: src[e])
            order = finite + full
            dst = [type_index[self.edge_types[e][2]] for e in order]
            srcs = [src[e] for e in order]
            plan.append(dict(
                order=order, num_finite=len(finite), dst=dst,
                grouped=all(a <= b for a, b in zip(srcs, srcs[1:])),
                k=torch.tensor([ks[e] for e in order], dtype=torch.int64, device=self.device),
                k_max=max([ks[e] for e in finite], default=0),
                uniform=len({ks[e] for e in finite}) <= 1,
                shift=torch.tensor([g.col_offset[e] - g.node_offset[d] for e, d in zip(order, dst)],
                                   dtype=torch.int64, device=self.device),
            ))
        # Induced subgraphs: all edge types, all neighbours, of every sampled node.
        every = sorted(range(len(self.edge_types)), key=lambda e: type_index[self.edge_types[e][0]])
        dst_all = [type_index[self.edge_types[e][2]] for e in every]
        self._induced_plan = dict(
            order=every, dst=dst_all, num_finite=0,
            shift=torch.tensor([g.col_offset[e] - g.node_offset[d] for e, d in zip(every, dst_all)],
                               dtype=torch.int64, device=self.device))
        return plan

    # ------------------------------------------------------------------ helpers
    def _generator(self) -> Optional[torch.Generator]:
        # In a DataLoader worker, reseed a copied generator from the worker's seed.
        info = torch.utils.data.get_worker_info()
        if self.generator is not None and info is not None and self._worker_id != info.id:
            self.generator.manual_seed(info.seed)
            self._worker_id = info.id
        return self.generator

    def _get_node_map(self) -> Tensor:
        # Global id -> id within its node type's sampled nodes, -1 elsewhere.
        if self._node_map is None or self._node_map.device != self.device:
            self._node_map = torch.full((self.graph.total_nodes,), -1, dtype=self.graph.csc.row.dtype,
                                        device=self.device)
        return self._node_map

    def _node_type_of(self, glob: Tensor) -> Tensor:
        bounds = torch.tensor(self.graph.node_offset[1:-1], dtype=glob.dtype, device=glob.device)
        return torch.bucketize(glob, bounds, right=True)

    def _sample_pairs(self, hop: Dict[str, Any], cols: Tensor, pair_block: Tensor, num_finite_pairs: int,
                      gen: Optional[torch.Generator], pair_time: Optional[Tensor] = None) -> Tuple[Tensor, Tensor]:
        # cols: virtual columns of all (frontier node, edge type) pairs, the first
        # num_finite_pairs with finite fanouts; pair_block: each pair's position in hop["order"];
        # pair_time: the seed time of every pair (temporal sampling).
        csc = self.csc
        plain = self.weight is None and pair_time is None
        deg = None
        if pair_time is not None:
            assert self.temporal is not None
            deg = self.temporal.valid_deg(cols, pair_time)
        strategy = self.temporal_strategy if pair_time is not None else "uniform"
        pos_parts, tgt_parts = [], []
        if num_finite_pairs:
            fcols = cols[:num_finite_pairs]
            k = hop["k_max"] if hop["uniform"] else hop["k"].index_select(0, pair_block[:num_finite_pairs])
            if not plain:
                pos, tgt = sample_rows(csc.colptr, fcols, k, hop["k_max"], self.replace, gen,
                                       deg=None if deg is None else deg[:num_finite_pairs],
                                       weight=self.weight, strategy=strategy)
            elif hop["uniform"]:
                pos, tgt = sample_one_hop(csc, fcols, hop["k_max"], self.replace, gen)
            else:
                pos, tgt = sample_one_hop_per_row(csc, fcols, k, hop["k_max"], self.replace, gen)
            pos_parts.append(pos)
            tgt_parts.append(tgt)
        if num_finite_pairs < cols.numel():
            if plain:
                pos, tgt = sample_one_hop(csc, cols[num_finite_pairs:], -1)
            else:
                pos, tgt = sample_rows(csc.colptr, cols[num_finite_pairs:], -1,
                                       deg=None if deg is None else deg[num_finite_pairs:], weight=self.weight)
            pos_parts.append(pos)
            tgt_parts.append(tgt + num_finite_pairs)
        if not pos_parts:
            empty = torch.empty(0, dtype=torch.int64, device=self.device)
            return empty, empty
        return torch.cat(pos_parts), torch.cat(tgt_parts)

    def _pairs(self, hop: Dict[str, Any], front: Tensor, front_start: List[int],
               front_len: List[int]) -> Tuple[List[int], Tensor, Tensor, Tensor, Tensor]:
        # All (frontier node, edge type) pairs of a hop, edge types in hop["order"], each edge
        # type's pairs contiguous: (sizes, sizes_t, pair_block, pair_front, pair_cols).
        device, dst = self.device, hop["dst"]
        sizes = [front_len[d] for d in dst]
        num_pairs = sum(sizes)
        sizes_t = torch.tensor(sizes, dtype=torch.int64, device=device)
        starts_t = torch.tensor([front_start[d] for d in dst], dtype=torch.int64, device=device)
        pair_block = torch.repeat_interleave(torch.arange(len(hop["order"]), device=device), sizes_t,
                                             output_size=num_pairs)
        first_pair = torch.cumsum(sizes_t, 0) - sizes_t
        pair_front = torch.arange(num_pairs, device=device) + (starts_t - first_pair).index_select(0, pair_block)
        pair_cols = front.index_select(0, pair_front) + hop["shift"].index_select(0, pair_block)
        return sizes, sizes_t, pair_block, pair_front, pair_cols

    # ----------------------------------------------------------------- sampling
    def sample(self, seeds: Tensor, input_type: NodeType, seed_time: Optional[Tensor] = None) -> HeteroSamplerOutput:
        r"""Samples the multi-hop neighbourhood of :obj:`seeds` (ids of nodes
        of type :obj:`input_type`; temporal samplers need :obj:`seed_time`,
        one per seed). Returns a
        :class:`~torch_geometric.sampler.HeteroSamplerOutput` on
        :obj:`device` without :obj:`metadata` (with :obj:`batch` per node
        type when :obj:`disjoint`)."""
        if input_type not in self.num_nodes:
            raise ConfigError(f"input node type {input_type!r} is not in the graph; "
                              f"its node types are {self.node_types}")
        device, g, gen = self.device, self.graph, self._generator()
        T, E = len(self.node_types), len(self.edge_types)
        t_in = self.node_types.index(input_type)
        if seeds.device.type == "cpu" and seeds.numel():
            lo, hi = int(seeds.min()), int(seeds.max())
            if lo < 0 or hi >= self.num_nodes[input_type]:
                raise ConfigError(f"seed nodes of {input_type!r} must lie in "
                                  f"[0, {self.num_nodes[input_type]}) (got range [{lo}, {hi}])")
        seeds = seeds.to(device=device, dtype=torch.int64, non_blocking=True)
        num_seeds = seeds.numel()
        glob_seeds = seeds + g.node_offset[t_in]
        if self.is_temporal:
            if seed_time is None:
                raise ConfigError("temporal sampling needs the seeds' times: pass input_time "
                                  "(edge-level time_attr) or a node-level time_attr")
            seed_time = seed_time.to(device)
        # Non-disjoint: one node-to-local-id array over all nodes; disjoint: a table keyed by
        # (seed slot, global id), so that a node reached from two seeds is in both subgraphs.
        table: Optional[KeyMap] = None
        node_map: Optional[Tensor] = None
        slot = torch.arange(num_seeds, device=device)
        if self.disjoint:
            table = KeyMap(slot * g.total_nodes + glob_seeds, slot)
            seed_local = slot
        else:
            node_map = self._get_node_map()
            seed_local = torch.arange(num_seeds, device=device, dtype=node_map.dtype)
            node_map.scatter_reduce_(0, glob_seeds, seed_local, reduce="amax")

        nodes: List[Tensor] = [glob_seeds]  # global ids, every chunk sorted by type
        batches: List[Tensor] = [slot]
        rows: List[List[Tensor]] = [[] for _ in range(E)]
        cols: List[List[Tensor]] = [[] for _ in range(E)]
        edges: List[List[Tensor]] = [[] for _ in range(E)]
        num_sampled_nodes = [[0] for _ in range(T)]
        num_sampled_nodes[t_in][0] = num_seeds
        num_sampled_edges: Optional[List[List[int]]] = [[] for _ in range(E)]
        totals = torch.zeros(T, dtype=torch.int64, device=device)
        totals[t_in] = num_seeds
        # The frontier: global ids sorted by type, their ids within their type, per-type blocks.
        front, front_local, front_batch = glob_seeds, seed_local.to(torch.int64), slot
        front_start, front_len = [0] * T, [0] * T
        front_len[t_in] = num_seeds
        try:
            for hop in self._plan:
                order = hop["order"]
                counts = [0] * len(order)
                new_batch = None
                sizes = [front_len[d] for d in hop["dst"]]
                if sum(sizes):
                    sizes, sizes_t, pair_block, pair_front, pair_cols = self._pairs(hop, front, front_start,
                                                                                    front_len)
                    pair_time = None
                    if seed_time is not None:
                        pair_time = seed_time.index_select(0, front_batch.index_select(0, pair_front))
                    pos, tgt = self._sample_pairs(hop, pair_cols, pair_block, sum(sizes[:hop["num_finite"]]),
                                                  gen, pair_time)
                    # tgt is sorted and every edge type's pairs are contiguous: its edges
                    # end where tgt reaches the next edge type's first pair.
                    ends = torch.searchsorted(tgt, torch.cumsum(sizes_t, 0))
                    counts = torch.diff(ends, prepend=ends.new_zeros(1)).tolist()
                    nbr = self.csc.row.index_select(0, pos)
                    if table is None:
                        assert node_map is not None
                        local, new_nodes, new_counts = self._map_to_local(node_map, nbr, totals, hop["grouped"])
                        new_local = node_map.index_select(0, new_nodes).to(torch.int64)
                    else:
                        nbr_batch = front_batch.index_select(0, pair_front.index_select(0, tgt))
                        local, new_nodes, new_batch, new_local, new_counts = self._map_to_local_disjoint(
                            table, nbr.to(torch.int64), nbr_batch, totals)
                    col = front_local.index_select(0, pair_front).index_select(0, tgt)
                    assert self.csc.perm is not None
                    eid = self.csc.perm.index_select(0, pos).to(torch.int64) if self.with_edge_id else None
                    for b, (r, c) in enumerate(zip(local.split(counts), col.split(counts))):
                        rows[order[b]].append(r)
                        cols[order[b]].append(c)
                    if eid is not None:
                        for b, e in enumerate(eid.split(counts)):
                            edges[order[b]].append(e)
                else:
                    new_nodes = torch.empty(0, dtype=torch.int64, device=device)
                    new_local = new_nodes
                    new_counts = [0] * T
                if new_batch is None:
                    new_batch = torch.empty(new_nodes.numel(), dtype=torch.int64, device=device)
                per_edge = [0] * E
                for b, c in enumerate(counts):
                    per_edge[order[b]] = c
                assert num_sampled_edges is not None
                for e in range(E):
                    num_sampled_edges[e].append(per_edge[e])
                # The new nodes are the next frontier.
                start = 0
                for t in range(T):
                    num_sampled_nodes[t].append(new_counts[t])
                    front_start[t], front_len[t] = start, new_counts[t]
                    start += new_counts[t]
                nodes.append(new_nodes)
                batches.append(new_batch)
                front, front_local, front_batch = new_nodes, new_local, new_batch
            all_nodes = torch.cat(nodes)
            node_dict = self._per_type(nodes, num_sampled_nodes, subtract_offset=True)
            if self.subgraph_type == "induced":
                assert node_map is not None  # induced is never disjoint
                rows, cols, edges = self._induced_edges(node_dict, node_map)
                num_sampled_edges = None
        except BaseException:
            if node_map is not None:
                node_map.fill_(-1)
            raise
        if node_map is not None:
            node_map.index_fill_(0, all_nodes, -1)

        empty = torch.empty(0, dtype=torch.int64, device=device)
        row_dict, col_dict, edge_dict = {}, {}, {}
        for e, et in enumerate(self.edge_types):
            row_dict[et] = torch.cat(rows[e]).to(torch.int64) if rows[e] else empty
            col_dict[et] = torch.cat(cols[e]) if cols[e] else empty
            edge_dict[et] = (torch.cat(edges[e]) if edges[e] else empty) if self.with_edge_id else None
        return HeteroSamplerOutput(
            node=node_dict,
            row=row_dict,
            col=col_dict,
            edge=edge_dict if self.with_edge_id else {},
            batch=self._per_type(batches, num_sampled_nodes) if self.disjoint else None,
            num_sampled_nodes={t: num_sampled_nodes[i] for i, t in enumerate(self.node_types)},
            num_sampled_edges=(None if num_sampled_edges is None else
                               {et: num_sampled_edges[e] for e, et in enumerate(self.edge_types)}),
        )

    def _per_type(self, chunks: List[Tensor], num_sampled_nodes: List[List[int]],
                  subtract_offset: bool = False) -> Dict[NodeType, Tensor]:
        # Per node type, its blocks of every hop's (type-sorted) chunk, hop by hop (seeds first).
        T = len(self.node_types)
        per_type: List[List[Tensor]] = [[] for _ in range(T)]
        for h, chunk in enumerate(chunks):
            for t, part in enumerate(chunk.split([num_sampled_nodes[t][h] for t in range(T)])):
                per_type[t].append(part)
        return {name: torch.cat(per_type[t]) - (self.graph.node_offset[t] if subtract_offset else 0)
                for t, name in enumerate(self.node_types)}

    def _induced_edges(self, node_dict: Dict[NodeType, Tensor],
                       node_map: Tensor) -> Tuple[List[List[Tensor]], List[List[Tensor]], List[List[Tensor]]]:
        # Every edge among the sampled nodes: all in-edges of every sampled node, of every edge
        # type, whose source was sampled too (node_map >= 0).
        g, E = self.graph, len(self.edge_types)
        rows: List[List[Tensor]] = [[] for _ in range(E)]
        cols: List[List[Tensor]] = [[] for _ in range(E)]
        edges: List[List[Tensor]] = [[] for _ in range(E)]
        front = torch.cat([node_dict[t] + g.node_offset[i] for i, t in enumerate(self.node_types)])
        front_len = [node_dict[t].numel() for t in self.node_types]
        front_start = [sum(front_len[:i]) for i in range(len(front_len))]
        front_local = torch.cat([torch.arange(n, device=self.device) for n in front_len])
        hop = self._induced_plan
        sizes, sizes_t, pair_block, pair_front, pair_cols = self._pairs(hop, front, front_start, front_len)
        if not sum(sizes):
            return rows, cols, edges
        pos, tgt = sample_one_hop(self.csc, pair_cols, -1)
        src = node_map.index_select(0, self.csc.row.index_select(0, pos)).to(torch.int64)
        block = pair_block.index_select(0, tgt)
        col = front_local.index_select(0, pair_front).index_select(0, tgt)
        keep = (src >= 0).nonzero().view(-1)
        src, block, col = src.index_select(0, keep), block.index_select(0, keep), col.index_select(0, keep)
        assert self.csc.perm is not None
        eid = self.csc.perm.index_select(0, pos.index_select(0, keep)).to(torch.int64)
        order: List[int] = list(hop["order"])  # type: ignore[call-overload]
        for b, e in enumerate(order):
            at = (block == b).nonzero().view(-1)
            rows[e].append(src.index_select(0, at))
            cols[e].append(col.index_select(0, at))
            edges[e].append(eid.index_select(0, at))
        return rows, cols, edges

    def _map_to_local_disjoint(self, table: KeyMap, nbr: Tensor, nbr_batch: Tensor,
                               totals: Tensor) -> Tuple[Tensor, Tensor, Tensor, Tensor, List[int]]:
        r"""Disjoint counterpart of :meth:`_map_to_local`, keyed by (seed
        slot, global id). Returns :obj:`(ids, new nodes sorted by type
        (stable), their seed slots, their ids, new nodes per type)`."""
        T, N = len(self.node_types), self.graph.total_nodes
        key = nbr_batch * N + nbr
        local = table.lookup(key)
        new_at = (local < 0).nonzero().view(-1)
        uniq, inv = first_occurrence_unique(key.index_select(0, new_at))
        glob = uniq % N
        types, order = torch.sort(self._node_type_of(glob), stable=True)
        count = torch.bincount(types, minlength=T)
        block_start = torch.cumsum(count, 0) - count
        ids_sorted = torch.arange(uniq.numel(), device=nbr.device) + (totals - block_start).index_select(0, types)
        ids = torch.empty_like(ids_sorted)
        ids[order] = ids_sorted
        table.add(uniq, ids)
        local.index_copy_(0, new_at, ids.index_select(0, inv))
        totals.add_(count)
        uniq_sorted = uniq.index_select(0, order)
        return (local, uniq_sorted % N, torch.div(uniq_sorted, N, rounding_mode="floor"), ids_sorted,
                count.tolist())

    def _map_to_local(self, node_map: Tensor, nbr: Tensor, totals: Tensor,
                      grouped: bool = False) -> Tuple[Tensor, Tensor, List[int]]:
        r"""Maps the global ids :obj:`nbr` to ids within their node type;
        not-yet-seen nodes get consecutive ids after :obj:`totals[type]` (updated
        in place) in order of first occurrence. Returns :obj:`(ids, new
        nodes sorted by type (stable), new nodes per type)`. :obj:`grouped`
        says that :obj:`nbr` is already grouped by node type in type order."""
        T = len(self.node_types)
        local = node_map.index_select(0, nbr)
        new_at = (local < 0).nonzero().view(-1)
        m = new_at.numel()
        if m == 0:
            return local, new_at, [0] * T
        cand = nbr.index_select(0, new_at).to(torch.int64)
        rank = torch.arange(m - 1, -1, -1, device=nbr.device, dtype=node_map.dtype)
        node_map.scatter_reduce_(0, cand, rank, reduce="amax")
        uniq = cand.index_select(0, (node_map.index_select(0, cand) == rank).nonzero().view(-1))
        if grouped:  # types ascend along uniq: the block ends by binary search
            bounds = torch.tensor(self.graph.node_offset[1:-1], dtype=uniq.dtype, device=uniq.device)
            ends = torch.cat([torch.searchsorted(uniq, bounds), uniq.new_full((1,), uniq.numel())])
            count = torch.diff(ends, prepend=ends.new_zeros(1))
            block_start = ends - count
            shift = torch.repeat_interleave(totals - block_start, count, output_size=uniq.numel())
        else:
            types = self._node_type_of(uniq)
            types, order = torch.sort(types, stable=True)
            uniq = uniq.index_select(0, order)
            count = torch.bincount(types, minlength=T)
            block_start = torch.cumsum(count, 0) - count
            shift = (totals - block_start).index_select(0, types)
        ids = torch.arange(uniq.numel(), device=nbr.device) + shift
        node_map.index_copy_(0, uniq, ids.to(node_map.dtype))
        totals.add_(count)
        local.index_copy_(0, new_at, node_map.index_select(0, cand))
        return local, uniq, count.tolist()

    def sample_from_nodes(self, index: NodeSamplerInput, **kwargs) -> HeteroSamplerOutput:
        r"""Samples around :obj:`index.node` of type :obj:`index.input_type`
        (see :meth:`sample`; the seeds' times are :obj:`index.time`, else their
        node-level time), keeping :obj:`(input_id, time)` as :obj:`metadata`
        for :class:`~torch_geometric.loader.NodeLoader`."""
        if index.input_type is None:
            raise ConfigError("a HeteroData graph needs input_nodes with a node type, "
                              "e.g. input_nodes=('paper', train_idx)")
        seed_time = index.time
        if seed_time is None and self.node_time is not None and index.input_type in self.num_nodes:
            t = self.node_types.index(index.input_type)
            glob = index.node.to(self.device, torch.int64) + self.graph.node_offset[t]
            seed_time = self.node_time.index_select(0, glob)
        out = self.sample(index.node, index.input_type, seed_time)
        if self.subgraph_type == "bidirectional":
            out = out.to_bidirectional()
        out.metadata = (index.input_id, index.time)
        return out

    def sample_from_edges(
        self,
        index: EdgeSamplerInput,
        neg_sampling: Optional[NegativeSampling] = None,
    ) -> HeteroSamplerOutput:
        raise NotImplementedError(f"{type(self).__name__} samples from nodes only; "
                                  f"link-level sampling is not implemented")

    @property
    def edge_permutation(self) -> None:
        # Edge ids are mapped back to each edge type's input order before they are returned.
        return None
