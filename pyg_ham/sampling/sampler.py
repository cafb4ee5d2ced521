"""A PyG :class:`~torch_geometric.sampler.BaseSampler` for multi-hop neighbour
sampling in plain PyTorch, on the device where the graph lives."""
from __future__ import annotations

from typing import Any, List, Optional, Tuple, Union

import torch
from torch import Tensor
from torch_geometric.data import Data
from torch_geometric.sampler import (
    BaseSampler,
    EdgeSamplerInput,
    NegativeSampling,
    NodeSamplerInput,
    SamplerOutput,
)

from pyg_ham.errors import ConfigError
from pyg_ham.sampling.csc import CSCGraph, get_csc
from pyg_ham.sampling.kernels import sample_one_hop, sample_rows
from pyg_ham.sampling.options import (
    KeyMap,
    TemporalIndex,
    check_sampler_options,
    check_weight,
    first_occurrence_unique,
    sort_columns,
)
from pyg_ham.sampling.validate import check_device, check_num_neighbors


class TorchNeighborSampler(BaseSampler):
    r"""Multi-hop neighbour sampler written in plain, vectorised PyTorch (no
    :obj:`pyg-lib` or :obj:`torch-sparse`), in the style of
    `"Inductive Representation Learning on Large Graphs"
    <https://arxiv.org/abs/1706.02216>`_.

    Starting from the seed nodes, hop :math:`h` samples, for every node reached
    at hop :math:`h - 1`, up to :obj:`num_neighbors[h]` of its in-neighbours
    (:math:`\{u : (u, v) \in \mathcal{E}\}`) and adds the nodes not seen
    before. The output follows the :class:`~torch_geometric.loader.NeighborLoader`
    contract:

    * seed nodes come first, in input order; then the new nodes of each hop;
    * edges are ordered by hop with :obj:`row` the sampled neighbour and
      :obj:`col` the node it was sampled for (messages flow towards the seeds);
    * :obj:`num_sampled_nodes` / :obj:`num_sampled_edges` hold the per-hop
      counts used by :func:`~torch_geometric.utils.trim_to_layer`.

    Each hop is a handful of tensor operations: without replacement, the
    :math:`\min(\deg, k)` neighbours are a uniformly random subset drawn with
    Floyd's algorithm on all targets at once; newly reached nodes are
    de-duplicated through a node-to-local-id array of size :obj:`num_nodes`
    that is reset after every batch. Sampling runs on :obj:`device`; the CSC
    layout is built once per graph and device and cached.

    Args:
        data (torch_geometric.data.Data): The graph (homogeneous).
        num_neighbors (List[int]): Fanout per hop; :obj:`-1` takes all
            in-neighbours and :obj:`0` none.
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
            (default: the device of :obj:`data.edge_index`)
        seed (int, optional): Seed of the sampler's own random generator.
            (default: :obj:`None`: torch's global generator)
        generator (torch.Generator, optional): A generator on :obj:`device`
            to draw from instead of :obj:`seed`. (default: :obj:`None`)
        with_edge_id (bool, optional): Return the sampled edges' ids
            (:obj:`e_id`), needed to gather edge features; :obj:`None` means
            :obj:`True`, as PyG's :obj:`NeighborLoader`. (default: :obj:`None`)
    """

    def __init__(
        self,
        data: Data,
        num_neighbors: List[int],
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
        if not isinstance(data, Data):
            raise ConfigError(f"data must be a torch_geometric.data.Data graph; "
                              f"{type(data).__name__} is not supported")
        if getattr(data, "edge_index", None) is None:
            raise ConfigError("data.edge_index is missing: neighbour sampling needs an edge_index")
        self.num_neighbors = check_num_neighbors(num_neighbors)
        self.replace = bool(replace)
        self.temporal_strategy = temporal_strategy
        self.device = check_device(device) or data.edge_index.device
        if seed is not None and generator is not None:
            raise ConfigError("pass either seed or generator, not both")
        if generator is not None and generator.device.type != self.device.type:
            raise ConfigError(f"generator lives on {generator.device}, but sampling runs on "
                              f"{self.device}; create it with torch.Generator(device=...)")
        self.with_edge_id = True if with_edge_id is None else bool(with_edge_id)  # PyG's loader always has e_id
        self.num_nodes = int(data.num_nodes)
        csc: CSCGraph = get_csc(data.edge_index, self.num_nodes, self.device)
        num_edges = data.edge_index.size(1)
        # Temporal: node-level time (of the sampled neighbour) or edge-level time; every column
        # is sorted by it so that the neighbours not newer than the seed come first.
        self.node_time: Optional[Tensor] = None
        self.edge_time: Optional[Tensor] = None
        self.temporal: Optional[TemporalIndex] = None
        if time_attr is not None:
            value = data[time_attr] if time_attr in data else None
            if value is None or not isinstance(value, Tensor):
                raise ConfigError(f"time_attr={time_attr!r} is not an attribute of the graph; "
                                  f"set data.{time_attr} (one time per node or per edge)")
            value = value.to(self.device)
            if value.dim() == 1 and value.numel() == self.num_nodes and data.is_node_attr(time_attr):
                self.node_time = value
                pos_time = value.index_select(0, csc.row.to(torch.int64))
            elif value.dim() == 1 and value.numel() == num_edges:
                self.edge_time = value
                pos_time = value.index_select(0, csc.edge_id(torch.arange(num_edges, device=self.device)))
            else:
                raise ConfigError(f"data.{time_attr} has shape {tuple(value.shape)}; time_attr needs one time "
                                  f"per node ({self.num_nodes},) or per edge ({num_edges},)")
            csc, order = sort_columns(csc, pos_time)
            self.temporal = TemporalIndex(csc, pos_time.index_select(0, order))
        self.time_attr = time_attr
        self.weight: Optional[Tensor] = None
        if weight_attr is not None:
            value = data[weight_attr] if weight_attr in data else None
            weight = check_weight(value, num_edges, f"data.{weight_attr} (weight_attr)").to(self.device)
            self.weight = weight.index_select(0, csc.edge_id(torch.arange(num_edges, device=self.device)))
        self.weight_attr = weight_attr
        if share_memory and self.device.type == "cpu":
            for t in (csc.colptr, csc.row, csc.perm, self.weight):
                if t is not None:
                    t.share_memory_()
        if seed is not None:
            generator = torch.Generator(device=self.device).manual_seed(int(seed))
        self.generator = generator
        self.csc = csc
        self._node_map: Optional[Tensor] = None
        self._worker_id: Optional[int] = None

    @property
    def is_temporal(self) -> bool:
        return self.temporal is not None

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
        # Global -> local id of the nodes in the current batch, -1 elsewhere; int32
        # whenever the graph's indices are (halves its memory on large graphs).
        if self._node_map is None or self._node_map.device != self.device:
            self._node_map = torch.full((self.num_nodes,), -1, dtype=self.csc.row.dtype,
                                        device=self.device)
        return self._node_map

    def _hop(self, cols: Tensor, k: int, seed_time: Optional[Tensor],
             gen: Optional[torch.Generator]) -> Tuple[Tensor, Tensor]:
        # One hop for the columns cols; seed_time (one per column) limits them to older neighbours.
        if self.weight is None and seed_time is None:
            return sample_one_hop(self.csc, cols, k, self.replace, gen)
        deg = None
        if seed_time is not None:
            assert self.temporal is not None
            deg = self.temporal.valid_deg(cols, seed_time)
        strategy = self.temporal_strategy if seed_time is not None else "uniform"
        return sample_rows(self.csc.colptr, cols, k, replace=self.replace, generator=gen, deg=deg,
                           weight=self.weight, strategy=strategy)

    # ----------------------------------------------------------------- sampling
    def sample(self, seeds: Tensor, seed_time: Optional[Tensor] = None) -> SamplerOutput:
        r"""Samples the multi-hop neighbourhood of :obj:`seeds` (global ids);
        temporal samplers need :obj:`seed_time` (one time per seed).

        Returns a :class:`~torch_geometric.sampler.SamplerOutput` on
        :obj:`device` without :obj:`metadata` (with :obj:`batch` when
        :obj:`disjoint`; before the :obj:`"bidirectional"` conversion).
        """
        if seeds.device.type == "cpu" and seeds.numel():  # checked before the copy: no GPU sync
            lo, hi = int(seeds.min()), int(seeds.max())
            if lo < 0 or hi >= self.num_nodes:
                raise ConfigError(f"seed nodes must lie in [0, {self.num_nodes}) (got range [{lo}, {hi}])")
        seeds = seeds.to(device=self.device, dtype=torch.int64, non_blocking=True)
        if self.disjoint:
            return self._sample_disjoint(seeds, seed_time)
        device, csc, gen = self.device, self.csc, self._generator()
        node_map = self._get_node_map()
        num_seeds = seeds.numel()
        # Duplicate seeds keep their own slots; later hops link to the last copy.
        node_map.scatter_reduce_(0, seeds, torch.arange(num_seeds, device=device, dtype=node_map.dtype),
                                 reduce="amax")

        nodes, rows, cols, edges = [seeds], [], [], []
        num_sampled_nodes: List[int] = [num_seeds]
        num_sampled_edges: Optional[List[int]] = []
        frontier, frontier_offset, num_total = seeds, 0, num_seeds
        try:
            for k in self.num_neighbors:
                pos, tgt = self._hop(frontier, k, None, gen)
                nbr = csc.row.index_select(0, pos)
                local, new_nodes = self._map_to_local(node_map, nbr, num_total)
                rows.append(local)
                cols.append(tgt + frontier_offset)
                if self.with_edge_id:
                    edges.append(csc.edge_id(pos))
                assert num_sampled_edges is not None
                num_sampled_edges.append(pos.numel())
                num_sampled_nodes.append(new_nodes.numel())
                nodes.append(new_nodes)
                frontier, frontier_offset = new_nodes, num_total
                num_total += new_nodes.numel()
            node = torch.cat(nodes)
            if self.subgraph_type == "induced":
                # Every edge among the sampled nodes: all in-edges of each node whose source was sampled.
                pos, tgt = sample_one_hop(csc, node, -1)
                src = node_map.index_select(0, csc.row.index_select(0, pos))
                keep = (src >= 0).nonzero().view(-1)
                rows, cols = [src.index_select(0, keep)], [tgt.index_select(0, keep)]
                edges = [csc.edge_id(pos.index_select(0, keep))]
                num_sampled_edges = None
        except BaseException:
            node_map.fill_(-1)
            raise
        node_map.index_fill_(0, node, -1)

        empty = torch.empty(0, dtype=torch.int64, device=device)
        return SamplerOutput(
            node=node,
            row=torch.cat(rows).to(torch.int64) if rows else empty,
            col=torch.cat(cols) if cols else empty,
            edge=(torch.cat(edges) if edges else empty) if self.with_edge_id else None,
            num_sampled_nodes=num_sampled_nodes,
            num_sampled_edges=num_sampled_edges,
        )

    def _sample_disjoint(self, seeds: Tensor, seed_time: Optional[Tensor]) -> SamplerOutput:
        # One subgraph per seed slot b: a node is the pair (b, v), key b * N + v, looked up in a
        # sorted table; a node reached from two seeds appears once in each of their subgraphs.
        device, csc, gen, N = self.device, self.csc, self._generator(), self.num_nodes
        num_seeds = seeds.numel()
        if self.is_temporal:
            if seed_time is None:
                raise ConfigError("temporal sampling needs the seeds' times: pass input_time "
                                  "(edge-level time_attr) or a node-level time_attr")
            seed_time = seed_time.to(device)
        slot = torch.arange(num_seeds, device=device)
        table = KeyMap(slot * N + seeds, slot)
        nodes, batches, rows, cols, edges = [seeds], [slot], [], [], []
        num_sampled_nodes, num_sampled_edges = [num_seeds], []
        frontier, front_batch, frontier_offset, num_total = seeds, slot, 0, num_seeds
        for k in self.num_neighbors:
            times = None if seed_time is None else seed_time.index_select(0, front_batch)
            pos, tgt = self._hop(frontier, k, times, gen)
            nbr = csc.row.index_select(0, pos).to(torch.int64)
            key = front_batch.index_select(0, tgt) * N + nbr
            local = table.lookup(key)
            new_at = (local < 0).nonzero().view(-1)
            uniq, inv = first_occurrence_unique(key.index_select(0, new_at))
            ids = torch.arange(num_total, num_total + uniq.numel(), device=device)
            table.add(uniq, ids)
            local.index_copy_(0, new_at, ids.index_select(0, inv))
            new_nodes, new_batch = uniq % N, torch.div(uniq, N, rounding_mode="floor")
            rows.append(local)
            cols.append(tgt + frontier_offset)
            if self.with_edge_id:
                edges.append(csc.edge_id(pos))
            num_sampled_edges.append(pos.numel())
            num_sampled_nodes.append(new_nodes.numel())
            nodes.append(new_nodes)
            batches.append(new_batch)
            frontier, front_batch, frontier_offset = new_nodes, new_batch, num_total
            num_total += new_nodes.numel()
        empty = torch.empty(0, dtype=torch.int64, device=device)
        return SamplerOutput(
            node=torch.cat(nodes),
            row=torch.cat(rows) if rows else empty,
            col=torch.cat(cols) if cols else empty,
            edge=(torch.cat(edges) if edges else empty) if self.with_edge_id else None,
            batch=torch.cat(batches),
            num_sampled_nodes=num_sampled_nodes,
            num_sampled_edges=num_sampled_edges,
        )

    @staticmethod
    def _map_to_local(node_map: Tensor, nbr: Tensor, offset: int) -> Tuple[Tensor, Tensor]:
        r"""Maps the global ids :obj:`nbr` to local ids, giving not-yet-seen
        nodes consecutive ids from :obj:`offset` on in order of first
        occurrence. Returns :obj:`(local ids, new nodes)`."""
        local = node_map.index_select(0, nbr)
        new_at = (local < 0).nonzero().view(-1)
        m = new_at.numel()
        if m == 0:
            return local, new_at
        cand = nbr.index_select(0, new_at).to(torch.int64)
        # One winner per node, its first occurrence (largest m - 1 - i); unseen entries hold -1.
        rank = torch.arange(m - 1, -1, -1, device=nbr.device, dtype=node_map.dtype)
        node_map.scatter_reduce_(0, cand, rank, reduce="amax")
        uniq = cand.index_select(0, (node_map.index_select(0, cand) == rank).nonzero().view(-1))
        node_map.index_copy_(0, uniq, torch.arange(offset, offset + uniq.numel(), device=nbr.device,
                                                    dtype=node_map.dtype))
        local.index_copy_(0, new_at, node_map.index_select(0, cand))
        return local, uniq

    def sample_from_nodes(self, index: NodeSamplerInput, **kwargs) -> SamplerOutput:
        r"""Samples around :obj:`index.node` (see :meth:`sample`; the seeds'
        times are :obj:`index.time`, else their node-level time), keeping
        :obj:`(input_id, time)` as :obj:`metadata` for
        :class:`~torch_geometric.loader.NodeLoader`."""
        seed_time = index.time
        if seed_time is None and self.node_time is not None:
            seed_time = self.node_time.index_select(0, index.node.to(self.device, torch.int64))
        out = self.sample(index.node, seed_time)
        if self.subgraph_type == "bidirectional":
            out = out.to_bidirectional()
        out.metadata = (index.input_id, index.time)
        return out

    def sample_from_edges(
        self,
        index: EdgeSamplerInput,
        neg_sampling: Optional[NegativeSampling] = None,
    ) -> SamplerOutput:
        raise NotImplementedError(f"{type(self).__name__} samples from nodes only; "
                                  f"link-level sampling is not implemented")

    @property
    def edge_permutation(self) -> None:
        # Edge ids are mapped back to the input order before they are returned.
        return None
