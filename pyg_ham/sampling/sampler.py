r"""The neighbour sampler: one PyG :class:`~torch_geometric.sampler.BaseSampler`
for :class:`~torch_geometric.data.Data` and
:class:`~torch_geometric.data.HeteroData` graphs, in plain PyTorch on the
device where the graph lives. A :class:`~torch_geometric.data.Data` graph is
sampled as the one-type case of the layout of
:class:`~pyg_ham.sampling.layout.HeteroCSC`."""
from __future__ import annotations

from typing import Any, Callable, Dict, List, Optional, Tuple, Union

import torch
from torch import Tensor
from torch_geometric.data import Data, FeatureStore, GraphStore, HeteroData
from torch_geometric.sampler import (
    BaseSampler,
    EdgeSamplerInput,
    HeteroSamplerOutput,
    NegativeSampling,
    NodeSamplerInput,
    SamplerOutput,
)
from torch_geometric.typing import EdgeType, NodeType

from pyg_ham.errors import ConfigError
from pyg_ham.sampling.kernels import sample_rows
from pyg_ham.sampling.layout import HOMO_EDGE_TYPE, build_remote_csc, get_hetero_csc, graph_device
from pyg_ham.sampling.options import (
    KeyMap,
    TemporalIndex,
    check_sampler_options,
    check_weight,
    first_occurrence_unique,
    sort_columns,
)
from pyg_ham.sampling.stores import NoEdgeAttrs, RemoteNodeStore, is_remote, read_remote, remote_meta
from pyg_ham.sampling.validate import (
    check_device,
    check_hetero_num_neighbors,
    check_num_neighbors,
    check_seed_range,
)

Take = Callable[[Tensor], Tensor]  # picks every (frontier node, edge type) pair's entry of a frontier tensor


class TorchNeighborSampler(BaseSampler):
    r"""Multi-hop neighbour sampler written in plain, vectorised PyTorch (no
    :obj:`pyg-lib` or :obj:`torch-sparse`), in the style of
    `"Inductive Representation Learning on Large Graphs"
    <https://arxiv.org/abs/1706.02216>`_, for
    :class:`~torch_geometric.data.Data` and
    :class:`~torch_geometric.data.HeteroData` graphs alike, with the
    semantics of :class:`~torch_geometric.loader.NeighborLoader`.

    At hop :math:`h`, for every edge type :math:`e = (s, r, d)` and every
    node :math:`v` of type :math:`d` reached at hop :math:`h - 1` (the seeds
    at hop 1), up to :obj:`num_neighbors[e][h]` of its in-neighbours
    :math:`\{u : (u, v) \in \mathcal{E}_e\}` are sampled, and the nodes not
    seen before join the batch (a :class:`~torch_geometric.data.Data` graph
    has one node and one edge type). The output follows the
    :class:`~torch_geometric.loader.NeighborLoader` contract
    (:class:`~torch_geometric.sampler.SamplerOutput` for a
    :class:`~torch_geometric.data.Data` graph,
    :class:`~torch_geometric.sampler.HeteroSamplerOutput` per type otherwise):

    * seed nodes come first, in input order; then the new nodes of each hop,
      in order of first occurrence;
    * edges are ordered by hop with :obj:`row` the sampled neighbour and
      :obj:`col` the node it was sampled for (messages flow towards the
      seeds), :obj:`edge` their ids in the input :obj:`edge_index`;
    * :obj:`num_sampled_nodes` (:obj:`num_hops + 1` counts per node type) and
      :obj:`num_sampled_edges` (:obj:`num_hops` per edge type) for
      :func:`~torch_geometric.utils.trim_to_layer`.

    A hop is one call of the vectorised kernel over all (frontier node, edge
    type) pairs of the combined layout (two when it mixes :obj:`-1` with
    finite fanouts); without replacement, the :math:`\min(\deg, k)`
    neighbours are a uniform random subset (Floyd's algorithm on all targets
    at once); new nodes are de-duplicated through one node-to-local-id array
    over all nodes, reset after every batch.

    Args:
        data (torch_geometric.data.Data or HeteroData or Tuple[FeatureStore, GraphStore]):
            The graph or a remote pair (its layout is the graph store's
            :meth:`~torch_geometric.data.GraphStore.csc`, used as it is for one
            edge type: a memory-mapped CSC stays on disk).
        num_neighbors (List[int] or Dict[Tuple[str, str, str], List[int]]):
            Fanout per hop, for all edge types or (:obj:`HeteroData`) per edge
            type; :obj:`-1` takes all in-neighbours and :obj:`0` none.
        subgraph_type, replace, disjoint, temporal_strategy, time_attr,
            weight_attr, is_sorted, directed, device, seed, generator,
            with_edge_id: As in :class:`~pyg_ham.sampling.TorchNeighborLoader`;
            :obj:`seed` / :obj:`generator` make the sampler's own generator
            (default: torch's global one); :obj:`disjoint` keys nodes by (seed
            slot, node) (:class:`~pyg_ham.sampling.options.KeyMap`);
            :obj:`time_attr` sorts every column of a private copy of the
            layout by time, so that the neighbours not newer than the seed are
            a prefix (:class:`~pyg_ham.sampling.options.TemporalIndex`);
            :obj:`weight_attr`: see :func:`~pyg_ham.sampling.kernels.sample_rows`.
        share_memory (bool, optional): Share the layout with worker processes.
        sample_direction (str, optional): Only :obj:`"forward"`.
    """

    def __init__(
        self,
        data: Union[Data, HeteroData, Tuple[FeatureStore, GraphStore]],
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
        # A remote (FeatureStore, GraphStore) pair: its types and sizes (its layout is read below).
        self.is_remote = is_remote(data)
        remote = remote_meta(data) if self.is_remote else None
        self.is_hetero = remote.is_hetero if remote is not None else isinstance(data, HeteroData)
        if remote is None and self.is_hetero and not data.edge_types:  # type: ignore[union-attr]
            raise ConfigError("the HeteroData graph has no edge types: neighbour sampling needs at "
                              "least one edge_index")
        if remote is None and not self.is_hetero and getattr(data, "edge_index", None) is None:
            raise ConfigError("data.edge_index is missing: neighbour sampling needs an edge_index")
        edge_types = ([HOMO_EDGE_TYPE] if not self.is_hetero else list(remote.edge_types) if remote is not None
                      else [tuple(et) for et in data.edge_types])  # type: ignore[union-attr]
        fanouts = (check_hetero_num_neighbors(num_neighbors, edge_types) if self.is_hetero
                   else {HOMO_EDGE_TYPE: check_num_neighbors(num_neighbors)})
        self.num_neighbors: Any = fanouts if self.is_hetero else fanouts[HOMO_EDGE_TYPE]
        self.num_hops = len(fanouts[edge_types[0]])
        self.replace = bool(replace)
        self.temporal_strategy = temporal_strategy
        self.device = check_device(device) or graph_device(data)
        if seed is not None and generator is not None:
            raise ConfigError("pass either seed or generator, not both")
        if generator is not None and generator.device.type != self.device.type:
            raise ConfigError(f"generator lives on {generator.device}, but sampling runs on "
                              f"{self.device}; create it with torch.Generator(device=...)")
        if seed is not None:
            generator = torch.Generator(device=self.device).manual_seed(int(seed))
        self.generator = generator
        self.with_edge_id = True if with_edge_id is None else bool(with_edge_id)  # PyG's loader always has e_id
        # The graph enters in two places: its layout (get_hetero_csc, or the GraphStore's CSC) and,
        # in _setup_options, the stores holding time_attr / weight_attr (or the FeatureStore).
        self.graph = (build_remote_csc(read_remote(data), self.device) if self.is_remote
                      else get_hetero_csc(data, self.device))
        self.node_types, self.edge_types = self.graph.node_types, self.graph.edge_types
        self.num_nodes: Any = dict(self.graph.num_nodes) if self.is_hetero else self.graph.total_nodes
        self._setup_options(data, time_attr, weight_attr)
        if share_memory and self.device.type == "cpu":
            for t in (self.csc.colptr, self.csc.row, self.csc.perm, self.weight):
                if t is not None:
                    t.share_memory_()
        self._type_bounds = torch.tensor(self.graph.node_offset[1:-1], dtype=torch.int64, device=self.device)
        self._plan = [self._make_hop(fanouts, h) for h in range(self.num_hops)]
        self._induced_plan = self._make_hop(None, 0)
        self._node_map: Optional[Tensor] = None
        self._worker_id: Optional[int] = None

    @property
    def is_temporal(self) -> bool:
        return self.temporal is not None

    # ------------------------------------------------------------------ set-up
    def _where(self, attr: str, key: Any) -> str:
        return f"data.{attr}" if not self.is_hetero else f"data[{key!r}].{attr}"

    def _setup_options(self, data: Union[Data, HeteroData], time_attr: Optional[str],
                       weight_attr: Optional[str]) -> None:
        # Weights and time per position of the layout; temporal sampling sorts every (virtual)
        # column by time (a private copy of the shared layout).
        g = self.graph
        self.csc = g.csc
        self.node_time: Optional[Tensor] = None  # per global node id
        self.edge_time: Optional[Tensor] = None  # per position
        self.temporal: Optional[TemporalIndex] = None
        self.time_attr, self.weight_attr = time_attr, weight_attr
        node_stores: List[Any]
        edge_stores: List[Any]
        if self.is_remote:
            node_stores = [RemoteNodeStore(data[0], t if self.is_hetero else None) for t in self.node_types]
            edge_stores = [NoEdgeAttrs() for _ in self.edge_types]
        else:
            node_stores = [data[t] for t in self.node_types] if self.is_hetero else [data]
            edge_stores = [data[et] for et in self.edge_types] if self.is_hetero else [data]
        order = None
        if time_attr is not None:
            on_nodes, on_edges = self._time_level(data, time_attr, node_stores, edge_stores)
            if on_nodes:
                # Node types without a time are never excluded.
                node_time = torch.full((g.total_nodes,), float("-inf"), dtype=torch.float64, device=self.device)
                for i in on_nodes:
                    t, v = self.node_types[i], node_stores[i][time_attr]
                    if not isinstance(v, Tensor) or v.dim() != 1 or v.numel() != g.num_nodes[t]:
                        raise ConfigError(f"{self._where(time_attr, t)} must hold one time per node, "
                                          f"shape ({g.num_nodes[t]},)")
                    node_time[g.node_offset[i]:g.node_offset[i + 1]] = v.to(self.device, torch.float64)
                self.node_time = node_time
                pos_time = node_time.index_select(0, g.csc.row.to(torch.int64))
            else:
                pos_time = self._per_edge_values(edge_stores, time_attr, float("-inf"), "time")
                self.edge_time = pos_time
            self.csc, order = sort_columns(g.csc, pos_time)
            self.temporal = TemporalIndex(self.csc, pos_time.index_select(0, order))
        self.weight: Optional[Tensor] = None
        if weight_attr is not None:
            if self.is_remote:
                raise ConfigError("weight_attr is not supported for a (FeatureStore, GraphStore) pair (nor by "
                                  "PyG's sampler); pass a Data or HeteroData graph for weighted sampling")
            if not any(weight_attr in store for store in edge_stores):
                raise ConfigError(f"weight_attr={weight_attr!r} is not an attribute of any edge type; set "
                                  f"data{'[edge_type]' if self.is_hetero else ''}.{weight_attr} (one weight per edge)")
            weight = self._per_edge_values(edge_stores, weight_attr, 1.0, "weight")  # no weight: uniform
            self.weight = weight if order is None else weight.index_select(0, order)

    def _time_level(self, data: Union[Data, HeteroData], attr: str, node_stores: List[Any],
                    edge_stores: List[Any]) -> Tuple[List[int], List[int]]:
        # The node types and the edge types (indices) that hold the time attribute.
        if self.is_remote:  # node-level times from the feature store only
            on_nodes = [i for i, store in enumerate(node_stores) if attr in store]
            if not on_nodes:
                raise ConfigError(f"time_attr={attr!r} is not a node attribute of the feature store; put one "
                                  f"time per node (edge-level time needs a Data or HeteroData graph)")
            return on_nodes, []
        if not self.is_hetero:  # one store, node- and edge-level
            value, n, m = data.get(attr), self.graph.total_nodes, self.graph.csc.num_edges
            if not isinstance(value, Tensor) or value.dim() != 1 or value.numel() not in (n, m):
                got = tuple(value.shape) if isinstance(value, Tensor) else type(value).__name__
                raise ConfigError(f"time_attr={attr!r} needs data.{attr}, one time per node ({n},) or per "
                                  f"edge ({m},) (got {got})")
            return ([0], []) if value.numel() == n and data.is_node_attr(attr) else ([], [0])
        on_nodes = [i for i, store in enumerate(node_stores) if attr in store]
        on_edges = [e for e, store in enumerate(edge_stores) if attr in store]
        if on_nodes and on_edges:
            raise ConfigError(f"time_attr={attr!r} is both a node- and an edge-level attribute; "
                              f"keep it on one level")
        if not on_nodes and not on_edges:
            raise ConfigError(f"time_attr={attr!r} is not an attribute of any node or edge type; "
                              f"set data[type].{attr}")
        return on_nodes, on_edges

    def _per_edge_values(self, edge_stores: List[Any], attr: str, fill: float, what: str) -> Tensor:
        # store[attr] of every edge type (fill where an edge type has none), per layout position.
        g, csc = self.graph, self.graph.csc
        values = torch.full((csc.num_edges,), fill, dtype=torch.float64, device=self.device)
        eid = csc.edge_id(torch.arange(csc.num_edges, device=self.device))
        for e, (et, store) in enumerate(zip(self.edge_types, edge_stores)):
            if attr not in store:
                continue
            num, v = store.edge_index.size(1), store[attr]
            if what == "weight":
                v = check_weight(v, num, f"{self._where(attr, et)} (weight_attr)")
            elif not isinstance(v, Tensor) or v.dim() != 1 or v.numel() != num:
                raise ConfigError(f"{self._where(attr, et)} must hold one time per edge, shape ({num},)")
            lo = int(csc.colptr[g.col_offset[e]])  # edge type e's positions are lo, ..., lo + num - 1
            values[lo:lo + num] = v.to(self.device, torch.float64).index_select(0, eid[lo:lo + num])
        return values

    def _make_hop(self, fanouts: Optional[Dict[EdgeType, List[int]]], h: int) -> Dict[str, Any]:
        # One hop's plan: the edge types to sample (finite fanouts first, then "all"), their
        # fanouts, destination types and virtual-column shifts. Within each group, edge types go
        # by source type, so that the new nodes (in order of first occurrence) come out grouped by
        # type. fanouts=None: the induced subgraph's hop (all edge types, all neighbours).
        g, type_index = self.graph, {t: i for i, t in enumerate(self.node_types)}
        ks = [-1] * len(self.edge_types) if fanouts is None else [fanouts[et][h] for et in self.edge_types]
        src = [type_index[et[0]] for et in self.edge_types]
        finite = sorted((e for e, k in enumerate(ks) if k > 0), key=lambda e: src[e])
        full = sorted((e for e, k in enumerate(ks) if k < 0), key=lambda e: src[e])
        order = finite + full
        dst = [type_index[self.edge_types[e][2]] for e in order]
        srcs = [src[e] for e in order]
        offsets = [g.col_offset[e] - g.node_offset[d] for e, d in zip(order, dst)]
        return dict(
            order=order, num_finite=len(finite), dst=dst, offsets=offsets, induced=fanouts is None,
            grouped=all(a <= b for a, b in zip(srcs, srcs[1:])),
            k=torch.tensor([ks[e] for e in order], dtype=torch.int64, device=self.device),
            k_max=max([ks[e] for e in finite], default=0),
            uniform=len({ks[e] for e in finite}) <= 1,
            shift=torch.tensor(offsets, dtype=torch.int64, device=self.device),
        )

    # ------------------------------------------------------------------ helpers
    def _generator(self) -> Optional[torch.Generator]:
        # In a DataLoader worker, a copied generator would repeat the main
        # process' stream; reseed it from the worker's (reproducible) seed.
        info = torch.utils.data.get_worker_info()
        if self.generator is not None and info is not None and self._worker_id != info.id:
            self.generator.manual_seed(info.seed)
            self._worker_id = info.id
        return self.generator

    def _get_node_map(self) -> Tensor:
        # Global id -> id within its node type's sampled nodes, -1 elsewhere; int32 whenever the
        # layout's indices are (halves its memory on large graphs).
        if self._node_map is None or self._node_map.device != self.device:
            self._node_map = torch.full((self.graph.total_nodes,), -1, dtype=self.graph.csc.row.dtype,
                                        device=self.device)
        return self._node_map

    def _hop(self, hop: Dict[str, Any], front: Tensor, front_start: List[int], front_len: List[int],
             num_total: List[int], gen: Optional[torch.Generator], seed_time: Optional[Tensor] = None,
             front_batch: Optional[Tensor] = None) -> Tuple[Tensor, Tensor, Tensor, Take, List[int]]:
        # Samples one hop for all (frontier node, edge type) pairs, edge types in hop["order"], each
        # edge type's pairs contiguous. Returns the CSC positions of the sampled edges, the index and
        # the local id of the frontier node each was sampled for, a Take and the edges per edge type
        # (in hop["order"]). The frontier of type t is the last front_len[t] of its num_total[t]
        # nodes (in per-type blocks from front_start[t]), so their local ids are consecutive.
        dst, device = hop["dst"], self.device
        sizes = [front_len[d] for d in dst]
        pair_block = sizes_t = None
        if len(dst) == 1:  # one edge type: its pairs are its destination type's frontier block
            d, n = dst[0], sizes[0]
            s = front_start[d]
            take: Take = (lambda t: t) if n == front.numel() else (lambda t: t.narrow(0, s, n))
            pair_cols = take(front) + hop["offsets"][0] if hop["offsets"][0] else take(front)
            local: Union[int, Tensor] = num_total[d] - n
        else:
            num_pairs = sum(sizes)
            # One copy to the device: pairs, first frontier position and first local id per edge type.
            sizes_t, starts_t, base_t = torch.tensor([sizes, [front_start[d] for d in dst], [
                num_total[d] - front_len[d] for d in dst]], dtype=torch.int64, device=device)
            pair_block = torch.repeat_interleave(torch.arange(len(dst), device=device), sizes_t, output_size=num_pairs)
            index = torch.arange(num_pairs, device=device) - (torch.cumsum(sizes_t, 0) - sizes_t).index_select(
                0, pair_block)
            pair_front = index + starts_t.index_select(0, pair_block)
            pair_cols = front.index_select(0, pair_front) + hop["shift"].index_select(0, pair_block)
            local = index + base_t.index_select(0, pair_block)
            take = lambda t: t.index_select(0, pair_front)  # noqa: E731
        pair_time = None
        if seed_time is not None:
            assert front_batch is not None  # temporal sampling is disjoint
            pair_time = seed_time.index_select(0, take(front_batch))
        pos, tgt = self._sample_pairs(hop, pair_cols, pair_block, sum(sizes[:hop["num_finite"]]), gen, pair_time)
        col = tgt + local if isinstance(local, int) else local.index_select(0, tgt)
        if sizes_t is None:
            return pos, tgt, col, take, [pos.numel()]
        # tgt is sorted: an edge type's edges end where tgt reaches the next edge type's pairs.
        ends = torch.searchsorted(tgt, torch.cumsum(sizes_t, 0))
        return pos, tgt, col, take, torch.diff(ends, prepend=ends.new_zeros(1)).tolist()

    def _edge_lists(self) -> Tuple[List[List[Tensor]], List[List[Tensor]], List[List[Tensor]]]:
        # Per edge type, the chunks of the batch's rows, cols and edge ids.
        return tuple([[] for _ in self.edge_types] for _ in range(3))  # type: ignore[return-value]

    @staticmethod
    def _append(out: Tuple[List[List[Tensor]], ...], order: List[int], counts: List[int],
                *values: Optional[Tensor]) -> None:
        # Appends every value (rows, cols, edges of one hop, in hop order) to its edge type's lists.
        for lists, value in zip(out, values):
            if value is not None:
                for b, part in enumerate([value] if len(order) == 1 else value.split(counts)):
                    lists[order[b]].append(part)

    def _sample_pairs(self, hop: Dict[str, Any], cols: Tensor, pair_block: Optional[Tensor], num_finite_pairs: int,
                      gen: Optional[torch.Generator], pair_time: Optional[Tensor]) -> Tuple[Tensor, Tensor]:
        # cols: virtual columns of all pairs, the first num_finite_pairs with finite fanouts;
        # pair_time: the seed time of every pair (temporal sampling).
        deg = None
        if pair_time is not None:
            assert self.temporal is not None
            deg = self.temporal.valid_deg(cols, pair_time)
        strategy = self.temporal_strategy if pair_time is not None else "uniform"
        weight = None if hop["induced"] else self.weight  # induced: every edge, whatever its weight
        parts, every = [], num_finite_pairs == cols.numel()  # every pair has a finite fanout: no slicing
        if num_finite_pairs:
            k = hop["k_max"]
            if not hop["uniform"]:
                assert pair_block is not None  # several edge types
                k = hop["k"].index_select(0, pair_block[:num_finite_pairs])
            parts.append(sample_rows(self.csc.colptr, cols if every else cols[:num_finite_pairs], k, hop["k_max"],
                                     self.replace, gen, deg=deg if deg is None or every else deg[:num_finite_pairs],
                                     weight=weight, strategy=strategy))
        if num_finite_pairs < cols.numel():
            pos, tgt = sample_rows(self.csc.colptr, cols[num_finite_pairs:], -1,
                                   deg=None if deg is None else deg[num_finite_pairs:], weight=weight)
            parts.append((pos, tgt + num_finite_pairs if num_finite_pairs else tgt))
        if len(parts) == 1:
            return parts[0]
        return torch.cat([p for p, _ in parts]), torch.cat([t for _, t in parts])

    def _number_by_type(self, glob: Tensor, num_total: List[int], totals: Optional[Tensor], grouped: bool = False,
                        dtype: torch.dtype = torch.int64) -> Tuple[Optional[Tensor], Tensor, List[int]]:
        # New nodes (global ids, in order of first occurrence): the order that sorts them by type
        # (stable; None when already grouped in type order), the local id of every sorted entry
        # (num_total[type] + rank within its type) and the count per type; totals (num_total on
        # the device, None for one node type) is updated.
        if totals is None:
            return None, torch.arange(num_total[0], num_total[0] + glob.numel(), device=glob.device,
                                      dtype=dtype), [glob.numel()]
        if grouped:
            ends = torch.cat([torch.searchsorted(glob, self._type_bounds), glob.new_full((1,), glob.numel())])
            count = torch.diff(ends, prepend=ends.new_zeros(1))
            shift = torch.repeat_interleave(totals - (ends - count), count, output_size=glob.numel())
            order = None
        else:
            types, order = torch.sort(torch.bucketize(glob, self._type_bounds, right=True), stable=True)
            count = torch.bincount(types, minlength=len(self.node_types))
            shift = (totals - (torch.cumsum(count, 0) - count)).index_select(0, types)
        totals.add_(count)
        return order, (torch.arange(glob.numel(), device=glob.device) + shift).to(dtype), count.tolist()

    def _map_to_local(self, node_map: Tensor, nbr: Tensor, num_total: List[int], totals: Optional[Tensor],
                      grouped: bool) -> Tuple[Tensor, Tensor, List[int]]:
        r"""Maps the global ids :obj:`nbr` to ids within their node type;
        not-yet-seen nodes get consecutive ids after :obj:`num_total[type]`
        in order of first occurrence. Returns :obj:`(ids, new nodes sorted by
        type (stable), new nodes per type)`."""
        local = node_map.index_select(0, nbr)
        new_at = (local < 0).nonzero().view(-1)
        m = new_at.numel()
        if m == 0:
            return local, new_at, [0] * len(self.node_types)
        cand = nbr.index_select(0, new_at).to(torch.int64)
        # One winner per node, its first occurrence (largest m - 1 - i); unseen entries hold -1.
        rank = torch.arange(m - 1, -1, -1, device=nbr.device, dtype=node_map.dtype)
        node_map.scatter_reduce_(0, cand, rank, reduce="amax")
        uniq = cand.index_select(0, (node_map.index_select(0, cand) == rank).nonzero().view(-1))
        order, ids, counts = self._number_by_type(uniq, num_total, totals, grouped, node_map.dtype)
        if order is not None:
            uniq = uniq.index_select(0, order)
        node_map.index_copy_(0, uniq, ids)
        local.index_copy_(0, new_at, node_map.index_select(0, cand))
        return local, uniq, counts

    def _map_to_local_disjoint(self, table: KeyMap, nbr: Tensor, nbr_batch: Tensor, num_total: List[int],
                               totals: Optional[Tensor]) -> Tuple[Tensor, Tensor, Tensor, List[int]]:
        r"""Disjoint counterpart of :meth:`_map_to_local`, keyed by (seed
        slot, global id). Returns :obj:`(ids, new nodes sorted by type
        (stable), their seed slots, new nodes per type)`."""
        N = self.graph.total_nodes
        key = nbr_batch * N + nbr
        local = table.lookup(key)
        new_at = (local < 0).nonzero().view(-1)
        uniq, inv = first_occurrence_unique(key.index_select(0, new_at))
        order, ids, counts = self._number_by_type(uniq % N, num_total, totals)
        new = uniq  # the new nodes sorted by type
        if order is not None:
            new, ids = uniq.index_select(0, order), torch.empty_like(ids).index_copy_(0, order, ids)
        table.add(uniq, ids)
        local.index_copy_(0, new_at, ids.index_select(0, inv))
        return local, new % N, torch.div(new, N, rounding_mode="floor"), counts

    # ----------------------------------------------------------------- sampling
    def sample(self, seeds: Tensor, input_type: Optional[NodeType] = None,
               seed_time: Optional[Tensor] = None) -> Union[SamplerOutput, HeteroSamplerOutput]:
        r"""Samples the multi-hop neighbourhood of :obj:`seeds` (ids of nodes
        of type :obj:`input_type`, which a
        :class:`~torch_geometric.data.Data` graph does not have); temporal
        samplers take :obj:`seed_time` (one time per seed; default: the
        seeds' node-level time).

        Returns a :class:`~torch_geometric.sampler.SamplerOutput` (or
        :class:`~torch_geometric.sampler.HeteroSamplerOutput`) on
        :obj:`device` without :obj:`metadata` (with :obj:`batch` when
        :obj:`disjoint`; before the :obj:`"bidirectional"` conversion).
        """
        g = self.graph
        if not self.is_hetero:
            if input_type is not None:
                raise ConfigError("a Data graph has no node types: call sample(seeds, seed_time=...)")
            t_in, of = 0, ""
        elif input_type not in g.num_nodes:
            raise ConfigError(f"input node type {input_type!r} is not in the graph; "
                              f"its node types are {self.node_types}")
        else:
            t_in, of = self.node_types.index(input_type), f" of {input_type!r}"
        if seeds.device.type == "cpu":  # checked before the copy: no GPU sync
            check_seed_range(seeds, g.num_nodes[self.node_types[t_in]], of)
        seeds = seeds.to(device=self.device, dtype=torch.int64, non_blocking=True)
        glob_seeds = seeds + g.node_offset[t_in] if t_in else seeds
        if self.is_temporal and seed_time is not None:
            seed_time = seed_time.to(self.device)
        elif self.is_temporal and self.node_time is not None:
            seed_time = self.node_time.index_select(0, glob_seeds)
        elif self.is_temporal:
            raise ConfigError("temporal sampling needs the seeds' times: pass input_time "
                              "(edge-level time_attr) or a node-level time_attr")
        return self._sample(glob_seeds, t_in, seed_time)

    def _sample(self, glob_seeds: Tensor, t_in: int,
                seed_time: Optional[Tensor]) -> Union[SamplerOutput, HeteroSamplerOutput]:
        device, g, gen = self.device, self.graph, self._generator()
        T, E = len(self.node_types), len(self.edge_types)
        num_seeds = glob_seeds.numel()
        # Non-disjoint: one node-to-local-id array over all nodes; disjoint: a table keyed by
        # (seed slot, global id), so that a node reached from two seeds is in both subgraphs.
        table: Optional[KeyMap] = None
        node_map: Optional[Tensor] = None
        front_batch: Optional[Tensor] = None
        if self.disjoint:
            front_batch = torch.arange(num_seeds, device=device)
            table = KeyMap(front_batch * g.total_nodes + glob_seeds, front_batch)
        else:
            node_map = self._get_node_map()
            # Duplicate seeds keep their own slots; later hops link to the last copy.
            node_map.scatter_reduce_(0, glob_seeds, torch.arange(num_seeds, device=device, dtype=node_map.dtype),
                                     reduce="amax")
        nodes: List[Tensor] = [glob_seeds]  # global ids, every chunk sorted by type
        batches: List[Tensor] = [] if front_batch is None else [front_batch]
        rows, cols, edges = self._edge_lists()
        num_sampled_nodes = [[0] for _ in range(T)]
        num_sampled_nodes[t_in][0] = num_seeds
        num_sampled_edges: Optional[List[List[int]]] = [[] for _ in range(E)]
        num_total = [0] * T
        num_total[t_in] = num_seeds
        totals = None  # num_total on the device, for several node types
        if T > 1:
            totals = torch.zeros(T, dtype=torch.int64, device=device)
            totals[t_in] = num_seeds
        # The frontier: global ids sorted by type, in per-type blocks.
        front, front_start, front_len = glob_seeds, [0] * T, [0] * T
        front_len[t_in] = num_seeds
        empty = torch.empty(0, dtype=torch.int64, device=device)
        try:
            for hop in self._plan:
                order = hop["order"]
                new_counts = [0] * T
                assert num_sampled_edges is not None
                for e in range(E):
                    num_sampled_edges[e].append(0)
                new_nodes, new_batch = empty, empty
                if sum(front_len[d] for d in hop["dst"]):
                    pos, tgt, col, take, counts = self._hop(hop, front, front_start, front_len, num_total, gen,
                                                            seed_time, front_batch)
                    nbr = self.csc.row.index_select(0, pos)
                    if table is None:
                        assert node_map is not None
                        local, new_nodes, new_counts = self._map_to_local(node_map, nbr, num_total, totals,
                                                                          hop["grouped"])
                    else:
                        assert front_batch is not None
                        local, new_nodes, new_batch, new_counts = self._map_to_local_disjoint(
                            table, nbr.to(torch.int64), take(front_batch).index_select(0, tgt), num_total, totals)
                    self._append((rows, cols, edges), order, counts, local, col,
                                 self.csc.edge_id(pos) if self.with_edge_id else None)
                    for b, c in enumerate(counts):
                        num_sampled_edges[order[b]][-1] = c
                start = 0  # the new nodes are the next frontier
                for t in range(T):
                    num_sampled_nodes[t].append(new_counts[t])
                    num_total[t] += new_counts[t]
                    front_start[t], front_len[t] = start, new_counts[t]
                    start += new_counts[t]
                nodes.append(new_nodes)
                if front_batch is not None:
                    batches.append(new_batch)
                    front_batch = new_batch
                front = new_nodes
            node_chunks = self._per_type(nodes, num_sampled_nodes)
            if self.subgraph_type == "induced":
                assert node_map is not None  # induced is never disjoint
                rows, cols, edges = self._induced_edges(node_chunks, num_total, node_map)
                num_sampled_edges = None
        except BaseException:
            if node_map is not None:
                node_map.fill_(-1)
            raise
        if node_map is not None:
            node_map.index_fill_(0, node_chunks[0] if T == 1 else torch.cat(nodes), -1)
        return self._output(node_chunks, batches, num_sampled_nodes, rows, cols, edges, num_sampled_edges)

    def _per_type(self, chunks: List[Tensor], num_sampled_nodes: List[List[int]]) -> List[Tensor]:
        # Per node type, its blocks of every hop's (type-sorted) chunk, hop by hop (seeds first).
        T = len(self.node_types)
        if T == 1:
            return [torch.cat(chunks)]
        per_type: List[List[Tensor]] = [[] for _ in range(T)]
        for h, chunk in enumerate(chunks):
            for t, part in enumerate(chunk.split([num_sampled_nodes[t][h] for t in range(T)])):
                per_type[t].append(part)
        return [torch.cat(parts) for parts in per_type]

    def _induced_edges(self, node_chunks: List[Tensor], num_total: List[int],
                       node_map: Tensor) -> Tuple[List[List[Tensor]], List[List[Tensor]], List[List[Tensor]]]:
        # Every edge among the sampled nodes: all in-edges of every sampled node, of every edge
        # type, whose source was sampled too (node_map >= 0).
        rows, cols, edges = self._edge_lists()
        hop = self._induced_plan
        front = node_chunks[0] if len(node_chunks) == 1 else torch.cat(node_chunks)
        front_start = [sum(num_total[:i]) for i in range(len(num_total))]
        if not sum(num_total[d] for d in hop["dst"]):
            return rows, cols, edges
        pos, _, col, _, counts = self._hop(hop, front, front_start, num_total, num_total, None)
        src = node_map.index_select(0, self.csc.row.index_select(0, pos))
        keep = src >= 0
        if len(counts) > 1:  # kept edges per edge type
            counts = torch.stack([part.sum() for part in keep.split(counts)]).tolist()
        keep = keep.nonzero().view(-1)
        self._append((rows, cols, edges), hop["order"], counts, src.index_select(0, keep), col.index_select(0, keep),
                     self.csc.edge_id(pos.index_select(0, keep)))
        return rows, cols, edges

    def _output(self, node_chunks: List[Tensor], batches: List[Tensor], num_sampled_nodes: List[List[int]],
                rows: List[List[Tensor]], cols: List[List[Tensor]], edges: List[List[Tensor]],
                num_sampled_edges: Optional[List[List[int]]]) -> Union[SamplerOutput, HeteroSamplerOutput]:
        empty = torch.empty(0, dtype=torch.int64, device=self.device)

        def cat(parts: List[Tensor]) -> Tensor:
            return torch.cat(parts).to(torch.int64) if parts else empty

        if not self.is_hetero:
            return SamplerOutput(
                node=node_chunks[0], row=cat(rows[0]), col=cat(cols[0]),
                edge=cat(edges[0]) if self.with_edge_id else None,
                batch=torch.cat(batches) if self.disjoint else None,
                num_sampled_nodes=num_sampled_nodes[0],
                num_sampled_edges=None if num_sampled_edges is None else num_sampled_edges[0])
        g = self.graph
        batch = self._per_type(batches, num_sampled_nodes) if self.disjoint else None
        return HeteroSamplerOutput(
            node={t: node_chunks[i] - g.node_offset[i] for i, t in enumerate(self.node_types)},
            row={et: cat(rows[e]) for e, et in enumerate(self.edge_types)},
            col={et: cat(cols[e]) for e, et in enumerate(self.edge_types)},
            edge={et: cat(edges[e]) for e, et in enumerate(self.edge_types)} if self.with_edge_id else {},
            batch=None if batch is None else {t: batch[i] for i, t in enumerate(self.node_types)},
            num_sampled_nodes={t: num_sampled_nodes[i] for i, t in enumerate(self.node_types)},
            num_sampled_edges=(None if num_sampled_edges is None else
                               {et: num_sampled_edges[e] for e, et in enumerate(self.edge_types)}),
        )

    def sample_from_nodes(self, index: NodeSamplerInput, **kwargs) -> Union[SamplerOutput, HeteroSamplerOutput]:
        r"""Samples around :obj:`index.node` (of type :obj:`index.input_type`
        in a :class:`~torch_geometric.data.HeteroData` graph; see
        :meth:`sample`; the seeds' times are :obj:`index.time`, else their
        node-level time), keeping :obj:`(input_id, time)` as :obj:`metadata`
        for :class:`~torch_geometric.loader.NodeLoader`."""
        if self.is_hetero and index.input_type is None:
            raise ConfigError("a HeteroData graph needs input_nodes with a node type, "
                              "e.g. input_nodes=('paper', train_idx)")
        out = self.sample(index.node, index.input_type if self.is_hetero else None, index.time)
        if self.subgraph_type == "bidirectional":
            out = out.to_bidirectional()
        out.metadata = (index.input_id, index.time)
        return out

    def sample_from_edges(
        self,
        index: EdgeSamplerInput,
        neg_sampling: Optional[NegativeSampling] = None,
    ) -> Union[SamplerOutput, HeteroSamplerOutput]:
        raise NotImplementedError(f"{type(self).__name__} samples from nodes only; "
                                  f"link-level sampling is not implemented")

    @property
    def edge_permutation(self) -> None:
        # Edge ids are mapped back to the input order before they are returned.
        return None


# The name of the heterogeneous sampler before the two became one (issue 27).
TorchHeteroNeighborSampler = TorchNeighborSampler
