"""A PyG :class:`~torch_geometric.sampler.BaseSampler` for multi-hop neighbour
sampling in plain PyTorch, on the device where the graph lives."""
from __future__ import annotations

from typing import List, Optional, Tuple, Union

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
from pyg_ham.sampling.kernels import sample_one_hop
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
        replace (bool, optional): Sample with replacement.
            (default: :obj:`False`)
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
        replace: bool = False,
        device: Optional[Union[str, torch.device]] = None,
        seed: Optional[int] = None,
        generator: Optional[torch.Generator] = None,
        with_edge_id: Optional[bool] = None,
    ):
        if not isinstance(data, Data):
            raise ConfigError(f"data must be a torch_geometric.data.Data graph; "
                              f"{type(data).__name__} is not supported")
        if getattr(data, "edge_index", None) is None:
            raise ConfigError("data.edge_index is missing: neighbour sampling needs an edge_index")
        self.num_neighbors = check_num_neighbors(num_neighbors)
        self.replace = bool(replace)
        self.device = check_device(device) or data.edge_index.device
        if seed is not None and generator is not None:
            raise ConfigError("pass either seed or generator, not both")
        if generator is not None and generator.device.type != self.device.type:
            raise ConfigError(f"generator lives on {generator.device}, but sampling runs on "
                              f"{self.device}; create it with torch.Generator(device=...)")
        if seed is not None:
            generator = torch.Generator(device=self.device).manual_seed(int(seed))
        self.generator = generator
        self.with_edge_id = True if with_edge_id is None else bool(with_edge_id)  # PyG's loader always has e_id
        self.num_nodes = int(data.num_nodes)
        self.csc: CSCGraph = get_csc(data.edge_index, self.num_nodes, self.device)
        self._node_map: Optional[Tensor] = None
        self._worker_id: Optional[int] = None

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

    # ----------------------------------------------------------------- sampling
    def sample(self, seeds: Tensor) -> SamplerOutput:
        r"""Samples the multi-hop neighbourhood of :obj:`seeds` (global ids).

        Returns a :class:`~torch_geometric.sampler.SamplerOutput` on
        :obj:`device` without :obj:`metadata`.
        """
        device, csc, gen = self.device, self.csc, self._generator()
        if seeds.device.type == "cpu" and seeds.numel():  # checked before the copy: no GPU sync
            lo, hi = int(seeds.min()), int(seeds.max())
            if lo < 0 or hi >= self.num_nodes:
                raise ConfigError(f"seed nodes must lie in [0, {self.num_nodes}) (got range [{lo}, {hi}])")
        seeds = seeds.to(device=device, dtype=torch.int64, non_blocking=True)
        node_map = self._get_node_map()
        num_seeds = seeds.numel()
        # Duplicate seeds keep their own slots; later hops link to the last copy.
        node_map.scatter_reduce_(0, seeds, torch.arange(num_seeds, device=device, dtype=node_map.dtype),
                                 reduce="amax")

        nodes, rows, cols, edges = [seeds], [], [], []
        num_sampled_nodes, num_sampled_edges = [num_seeds], []
        frontier, frontier_offset, num_total = seeds, 0, num_seeds
        try:
            for k in self.num_neighbors:
                pos, tgt = sample_one_hop(csc, frontier, k, self.replace, gen)
                nbr = csc.row.index_select(0, pos)
                local, new_nodes = self._map_to_local(node_map, nbr, num_total)
                rows.append(local)
                cols.append(tgt + frontier_offset)
                if self.with_edge_id:
                    edges.append(csc.edge_id(pos))
                num_sampled_edges.append(pos.numel())
                num_sampled_nodes.append(new_nodes.numel())
                nodes.append(new_nodes)
                frontier, frontier_offset = new_nodes, num_total
                num_total += new_nodes.numel()
        except BaseException:
            node_map.fill_(-1)
            raise
        node = torch.cat(nodes)
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
        r"""Samples around :obj:`index.node` (see :meth:`sample`), keeping
        :obj:`(input_id, time)` as :obj:`metadata` for
        :class:`~torch_geometric.loader.NodeLoader`."""
        out = self.sample(index.node)
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
