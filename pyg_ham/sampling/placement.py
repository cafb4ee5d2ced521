r"""One device per mini-batch: where each stored tensor of a graph is gathered
and how it reaches the sampling device.

:class:`~torch_geometric.loader.NodeLoader`'s filtering gathers every
attribute where it is stored (moving the sampled index there), so with the
graph on a GPU and the features on the CPU a batch would mix devices. The
pyg_ham loaders put every tensor of a batch on the sampling device:

* stored on the sampling device: gathered there (:obj:`"local"`);
* stored on the CPU, sampling on a GPU: gathered on the CPU into pinned
  memory and copied asynchronously (:obj:`"pinned"`);
* anything else (*e.g.* stored on a GPU, sampling on the CPU): gathered
  where stored, then copied (:obj:`"copy"`).
"""
from __future__ import annotations

import copy
from typing import Any, Dict, Tuple

import torch
from torch import Tensor

LOCAL, PINNED, COPY = "local", "pinned", "copy"


def placement_plan(sample_device: torch.device, stored: Dict[Any, torch.device]) -> Dict[Any, str]:
    r"""Returns, for every stored tensor (key: any name, *e.g.*
    :obj:`(store key, attribute)`), how it reaches :obj:`sample_device`:
    :obj:`"local"`, :obj:`"pinned"` or :obj:`"copy"` (see the module
    docstring). A pure function of the devices.

    Args:
        sample_device (torch.device): Where the sampler runs (and the batch lives).
        stored (Dict[Any, torch.device]): Where each tensor is stored.
    """
    sample_device = torch.device(sample_device)
    plan = {}
    for key, device in stored.items():
        device = torch.device(device)
        if device == sample_device:
            plan[key] = LOCAL
        elif device.type == "cpu" and sample_device.type == "cuda":
            plan[key] = PINNED
        else:
            plan[key] = COPY
    return plan


def gather_to(value: Tensor, index: Tensor, device: torch.device, how: str) -> Tensor:
    r"""Gathers :obj:`value[index]` (along the first dimension) onto :obj:`device` as :obj:`how` says."""
    if how == LOCAL:
        return value.index_select(0, index.to(value.device, torch.int64))
    if how == PINNED:
        index = index.to("cpu", torch.int64)
        out = torch.empty((index.numel(),) + tuple(value.shape[1:]), dtype=value.dtype, pin_memory=True)
        torch.index_select(value, 0, index, out=out)
        return out.to(device, non_blocking=True)
    return value.index_select(0, index.to(value.device, torch.int64)).to(device)


def stored_tensors(data) -> Dict[Tuple[object, str], torch.device]:
    r"""The devices of the node- and edge-level tensors of a
    :class:`~torch_geometric.data.Data` / :class:`~torch_geometric.data.HeteroData`
    graph (not :obj:`edge_index`), keyed by :obj:`(store key, attribute)`;
    the store key is :obj:`None` for a :class:`~torch_geometric.data.Data` graph."""
    out = {}
    for store in list(data.node_stores) + list(data.edge_stores):
        key = store.__dict__.get("_key")  # None for a Data graph
        for name, value in store.items():
            if name == "edge_index" or not isinstance(value, Tensor):
                continue
            if store.is_node_attr(name) or store.is_edge_attr(name):
                out[(key, name)] = value.device
    return out


def without(data, keys):
    r"""A shallow copy of :obj:`data` without the attributes :obj:`keys`
    (:obj:`(store key, attribute)` pairs); :obj:`data` is unchanged."""
    view = copy.copy(data)
    for store_key, name in keys:
        store = view._store if store_key is None else view[store_key]
        if store.is_node_attr(name) and "num_nodes" not in store:
            store.num_nodes = store.num_nodes  # keep the count the removed attribute gave
        del store[name]
    return view
