"""Mini-batch neighbour loaders: :class:`TorchNeighborLoader` and the
:func:`neighbor_loader` factory that picks PyG's or ours."""
from __future__ import annotations

from typing import Any, Callable, Dict, List, Literal, Optional, Tuple, Union

import torch
import torch_geometric.typing
from torch_geometric.data import Data, FeatureStore, GraphStore, HeteroData
from torch_geometric.loader import NeighborLoader, NodeLoader
from torch_geometric.sampler import BaseSampler
from torch_geometric.sampler.base import SubgraphType
from torch_geometric.typing import InputNodes, OptTensor

from pyg_ham.errors import ConfigError, MissingDependencyError
from pyg_ham.sampling.layout import graph_device
from pyg_ham.sampling.placement import PlaceBatch
from pyg_ham.sampling.sampler import TorchNeighborSampler
from pyg_ham.sampling.validate import (
    check_backend,
    check_batch_size,
    check_device,
    check_graph,
    check_input_nodes,
    check_num_neighbors,
)

Backend = Literal["auto", "pyg_ham", "pyg"]

def _shuffle_generator(seed: Optional[int], generator: Optional[torch.Generator]) -> Optional[torch.Generator]:
    # A CPU generator for the DataLoader's shuffling, derived from seed/generator but
    # not seeded identically to the sampling generator (their streams stay unrelated).
    if seed is None and generator is None:
        return None
    if seed is None:
        assert generator is not None
        seed = int(torch.randint(2**62, (1,), generator=generator, device=generator.device))
    return torch.Generator().manual_seed(int(seed) ^ 0x5DEECE66D)


class TorchNeighborLoader(NeighborLoader):
    r"""A :class:`~torch_geometric.loader.NeighborLoader` replacement that
    samples with :class:`~pyg_ham.sampling.TorchNeighborSampler`: plain
    PyTorch, no :obj:`pyg-lib` / :obj:`torch-sparse`, on the graph's own
    device (or :obj:`device`).

    Mini-batches are :class:`~torch_geometric.data.Data` objects built by
    :class:`~torch_geometric.loader.NodeLoader`, holding the sampled nodes'
    features and labels plus :obj:`n_id`, :obj:`e_id`, :obj:`input_id`,
    :obj:`batch_size`, :obj:`num_sampled_nodes` and :obj:`num_sampled_edges`,
    as PyG's loader returns them; the first :obj:`batch_size` nodes are the
    seeds. :obj:`input_nodes` is range-checked once, when the loader is built.
    Every tensor of a batch is on the sampling device (see
    :mod:`pyg_ham.sampling.placement`): when some are stored elsewhere,
    :obj:`loader.transform` is a :class:`~pyg_ham.sampling.placement.PlaceBatch`
    that moves them and then applies :obj:`transform`. Built through
    :class:`~torch_geometric.loader.NeighborLoader`'s own constructor with
    :obj:`neighbor_sampler` set. Parameters and their order are
    :class:`~torch_geometric.loader.NeighborLoader`'s, then ours (keyword-only).

    A :class:`~torch_geometric.data.HeteroData` graph is sampled by the same
    sampler into :class:`~torch_geometric.data.HeteroData` mini-batches with :obj:`n_id`
    and :obj:`num_sampled_nodes` per node type, :obj:`e_id` and
    :obj:`num_sampled_edges` per edge type, and :obj:`input_id` /
    :obj:`batch_size` on the input node type, as PyG's ``NeighborLoader``.

    Args:
        data (torch_geometric.data.Data or HeteroData or Tuple[FeatureStore, GraphStore]):
            The graph, or a remote :obj:`(FeatureStore, GraphStore)` pair as
            :class:`~torch_geometric.loader.NeighborLoader` takes it (see
            :mod:`pyg_ham.sampling.stores`; :obj:`input_nodes` required,
            node-level :obj:`time_attr` only, no :obj:`weight_attr`).
        num_neighbors (List[int] or Dict[Tuple[str, str, str], List[int]]):
            Fanout per hop (:obj:`-1`: all); for a
            :class:`~torch_geometric.data.HeteroData` graph also a dict with
            a list per edge type.
        input_nodes (torch.Tensor, optional): Seed node indices or a boolean
            mask; for a :class:`~torch_geometric.data.HeteroData` graph a node
            type or a :obj:`(node_type, indices or mask)` pair, *e.g.*
            :obj:`("paper", train_idx)`. (default: :obj:`None`: all nodes)
        input_time (torch.Tensor, optional): The time of every seed
            (temporal sampling: no neighbour newer than it is sampled); by
            default the seeds' node-level time. (default: :obj:`None`)
        replace (bool, optional): Sample with replacement.
            (default: :obj:`False`)
        subgraph_type (str, optional): :obj:`"directional"`,
            :obj:`"bidirectional"` or :obj:`"induced"` (every edge among the
            sampled nodes). (default: :obj:`"directional"`)
        disjoint (bool, optional): One subgraph per seed, with :obj:`batch`
            mapping nodes to seeds. (default: :obj:`False`)
        temporal_strategy (str, optional): :obj:`"uniform"` or :obj:`"last"`
            (the most recent neighbours). (default: :obj:`"uniform"`)
        time_attr (str, optional): Node- or edge-level time attribute.
            (default: :obj:`None`)
        weight_attr (str, optional): Edge weight attribute: draws
            proportional to weight. (default: :obj:`None`)
        transform_sampler_output (callable, optional): Applied to every
            sampler output. (default: :obj:`None`)
        is_sorted (bool, optional): Ignored (sortedness is detected).
        neighbor_sampler (BaseSampler, optional): A ready sampler to use
            instead of building one. (default: :obj:`None`)
        directed (bool, optional): Deprecated; :obj:`False` means
            :obj:`subgraph_type="induced"`. (default: :obj:`True`)
        device (torch.device or str, optional): Where sampling runs; the CSC
            layout is moved there once. (default: the graph's device)
        seed (int, optional): Makes sampling and shuffling reproducible.
            (default: :obj:`None`)
        generator (torch.Generator, optional): Sampling generator on
            :obj:`device`, instead of :obj:`seed`. (default: :obj:`None`)
        with_edge_id (bool, optional): Return :obj:`e_id` and edge features;
            :obj:`None` means :obj:`True`. (default: :obj:`None`)
        transform (callable, optional): Applied to every mini-batch.
            (default: :obj:`None`)
        filter_per_worker (bool, optional): See
            :class:`~torch_geometric.loader.NodeLoader`. (default: :obj:`None`)
        **kwargs (optional): Arguments of :class:`torch.utils.data.DataLoader`
            such as :obj:`batch_size`, :obj:`shuffle`, :obj:`num_workers`.
    """

    def __init__(
        self,
        data: Union[Data, HeteroData, Tuple[FeatureStore, GraphStore]],
        num_neighbors: Union[List[int], Dict[Any, List[int]]],
        input_nodes: InputNodes = None,
        input_time: OptTensor = None,
        replace: bool = False,
        subgraph_type: Union[SubgraphType, str] = "directional",
        disjoint: bool = False,
        temporal_strategy: str = "uniform",
        time_attr: Optional[str] = None,
        weight_attr: Optional[str] = None,
        transform: Optional[Callable] = None,
        transform_sampler_output: Optional[Callable] = None,
        is_sorted: bool = False,
        filter_per_worker: Optional[bool] = None,
        neighbor_sampler: Optional[BaseSampler] = None,
        directed: bool = True,
        *,
        device: Optional[Union[str, torch.device]] = None,
        seed: Optional[int] = None,
        generator: Optional[torch.Generator] = None,
        with_edge_id: Optional[bool] = None,
        **kwargs: Any,
    ):
        check_graph(data)
        if input_time is not None and time_attr is None:
            raise ConfigError("input_time is set but time_attr is not: temporal sampling needs "
                              "time_attr, the name of the node- or edge-level time attribute")
        check_input_nodes(data, input_nodes)
        if neighbor_sampler is None:
            neighbor_sampler = TorchNeighborSampler(
                data, num_neighbors, subgraph_type=subgraph_type, replace=replace, disjoint=disjoint,
                temporal_strategy=temporal_strategy, time_attr=time_attr, weight_attr=weight_attr,
                is_sorted=is_sorted, share_memory=kwargs.get("num_workers", 0) > 0, directed=directed,
                device=device, seed=seed, generator=generator, with_edge_id=with_edge_id)
        sampler = neighbor_sampler
        sampler_device = getattr(sampler, "device", torch.device("cpu"))
        if sampler_device.type != "cpu" and kwargs.get("num_workers", 0) > 0:
            raise ConfigError(f"num_workers must be 0 when sampling on {sampler_device} "
                              f"(GPU sampling is fast and cannot run in worker processes)")
        if input_time is None and getattr(sampler, "edge_time", None) is not None:
            raise ConfigError(f"time_attr={time_attr!r} is an edge-level time: pass input_time, "
                              f"the time of every seed (no neighbour newer than it is sampled)")
        if kwargs.get("generator") is None:
            kwargs["generator"] = _shuffle_generator(seed, getattr(sampler, "generator", None))
        # One device per batch: PyG gathers every attribute where it is stored; the tensors not
        # stored on the sampling device are then moved there, before the user's transform.
        transform = PlaceBatch.wrap(data, sampler_device, transform)
        # PyG's public constructor: given neighbor_sampler, it builds no sampler (PyG 2.8: its
        # NeighborSampler, which needs pyg-lib, is built only when neighbor_sampler is None).
        super().__init__(data, num_neighbors, input_nodes=input_nodes, input_time=input_time, replace=replace,
                         subgraph_type=subgraph_type, disjoint=disjoint, temporal_strategy=temporal_strategy,
                         time_attr=time_attr, weight_attr=weight_attr, transform=transform,
                         transform_sampler_output=transform_sampler_output, is_sorted=is_sorted,
                         filter_per_worker=filter_per_worker, neighbor_sampler=sampler, directed=directed,
                         **kwargs)


def has_pyg_neighbor_sampling() -> bool:
    r"""Whether PyG's own :class:`~torch_geometric.loader.NeighborLoader` can
    sample here (it needs :obj:`pyg-lib` or :obj:`torch-sparse`)."""
    return bool(torch_geometric.typing.WITH_PYG_LIB or torch_geometric.typing.WITH_TORCH_SPARSE)


def choose_backend(data: Data, device: Optional[Union[str, torch.device]] = None,
                   force: Backend = "auto") -> str:
    r"""Returns :obj:`"pyg"` or :obj:`"pyg_ham"`: :obj:`"auto"` picks PyG's
    loader when :obj:`pyg-lib` is installed and the graph (or :obj:`device`)
    is on the CPU, ours otherwise."""
    backend = check_backend(force)
    device = check_device(device)
    if backend != "auto":
        return backend
    on_cpu = (device or graph_device(data)).type == "cpu"
    return "pyg" if torch_geometric.typing.WITH_PYG_LIB and on_cpu else "pyg_ham"


def neighbor_loader(
    data: Union[Data, HeteroData, Tuple[FeatureStore, GraphStore]],
    num_neighbors: Union[List[int], Dict[Any, List[int]]],
    *,
    batch_size: int,
    input_nodes: InputNodes = None,
    shuffle: bool = False,
    replace: bool = False,
    device: Optional[Union[str, torch.device]] = None,
    seed: Optional[int] = None,
    generator: Optional[torch.Generator] = None,
    force: Backend = "auto",
    **loader_kwargs: Any,
) -> NodeLoader:
    r"""Builds a neighbour-sampling mini-batch loader over :obj:`data`.

    Returns PyG's :class:`~torch_geometric.loader.NeighborLoader` when
    :obj:`pyg-lib` is installed and the graph is on the CPU, and a
    :class:`TorchNeighborLoader` otherwise; :obj:`force` overrides the choice.
    Both yield the same kind of mini-batch (see :class:`TorchNeighborLoader`).
    Only :obj:`data` and :obj:`num_neighbors` are positional; every
    :class:`~torch_geometric.loader.NeighborLoader` option (:obj:`disjoint`,
    :obj:`weight_attr`, :obj:`time_attr`, :obj:`input_time`,
    :obj:`temporal_strategy`, :obj:`subgraph_type`, ...) goes through
    :obj:`**loader_kwargs` by keyword.

    Args:
        data, num_neighbors, input_nodes, replace: As in
            :class:`TorchNeighborLoader`.
        batch_size (int): Seed nodes per mini-batch.
        shuffle (bool, optional): Shuffle the seeds every epoch.
            (default: :obj:`False`)
        device (torch.device or str, optional): Sample on this device (ours
            only). (default: :obj:`None`: the graph's device)
        seed (int, optional): Reproducible shuffling and (ours) sampling; PyG's
            loader samples from torch's global generator. (default: :obj:`None`)
        generator (torch.Generator, optional): Sampling generator on
            :obj:`device` (ours); PyG's loader derives only its shuffling from
            it. (default: :obj:`None`)
        force (str, optional): :obj:`"auto"`, :obj:`"pyg_ham"` or
            :obj:`"pyg"`. (default: :obj:`"auto"`)
        **loader_kwargs (optional): Passed on to the loader, *e.g.*
            :obj:`num_workers`, :obj:`drop_last`, :obj:`transform`.
    """
    if isinstance(data, Data):  # per-edge-type fanouts are checked by the sampler
        check_num_neighbors(num_neighbors)
    check_batch_size(batch_size)
    backend = choose_backend(data, device, force)
    if backend == "pyg_ham":
        return TorchNeighborLoader(data, num_neighbors, input_nodes=input_nodes, replace=replace,
                                   device=device, seed=seed, generator=generator,
                                   batch_size=batch_size, shuffle=shuffle, **loader_kwargs)

    if not has_pyg_neighbor_sampling():
        raise MissingDependencyError("force='pyg' needs pyg-lib or torch-sparse installed; "
                                     "use force='auto' or 'pyg_ham'")
    device = check_device(device)
    if device is not None and device.type != "cpu":
        raise ConfigError(f"device={str(device)!r} needs force='pyg_ham' or 'auto' "
                          f"(PyG's NeighborLoader samples on the CPU)")
    check_input_nodes(data, input_nodes)
    if loader_kwargs.get("generator") is None and (seed is not None or generator is not None):
        # PyG's sampler draws from torch's global generator; the shuffle is derived from ours
        loader_kwargs["generator"] = _shuffle_generator(seed, generator)
    return NeighborLoader(data, num_neighbors, input_nodes=input_nodes, replace=replace,
                          batch_size=batch_size, shuffle=shuffle, **loader_kwargs)
