r"""One device per mini-batch: where each stored tensor of a graph is gathered
and how it reaches the sampling device.

:class:`~torch_geometric.loader.NodeLoader`'s filtering gathers every
attribute where it is stored (moving the sampled index there), so with the
graph on a GPU and the features on the CPU a batch would mix devices. The
pyg_ham loaders put every tensor of a batch on the sampling device, through
the loader's public :obj:`transform` (:class:`PlaceBatch`, run on the batch
PyG has gathered, before the user's transform):

* stored on the sampling device: gathered there, nothing to do (:obj:`"local"`);
* stored on the CPU, sampling on a GPU: gathered on the CPU, copied into
  pinned memory and from there asynchronously (:obj:`"pinned"`);
* anything else (*e.g.* stored on a GPU, sampling on the CPU): gathered
  where stored, then copied (:obj:`"copy"`).
"""
from __future__ import annotations

from typing import Any, Callable, Dict, Optional, Tuple

import torch
from torch import Tensor
from torch_geometric.data import Data, HeteroData

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
    to = torch.device(sample_device)

    def how(at: torch.device) -> str:
        return LOCAL if at == to else PINNED if at.type == "cpu" and to.type == "cuda" else COPY

    return {key: how(torch.device(device)) for key, device in stored.items()}


def move_to(value: Tensor, device: torch.device, how: str) -> Tensor:
    r"""Moves a gathered tensor to :obj:`device` as :obj:`how` says
    (:obj:`"pinned"`: through pinned memory, asynchronously)."""
    if how == PINNED:
        return value.pin_memory().to(device, non_blocking=True)
    return value.to(device)


class PlaceBatch:
    r"""A loader :obj:`transform` that moves the tensors of a batch stored off
    the sampling :obj:`device` onto it (:obj:`moved`: :obj:`(store key,
    attribute) -> how`, from :func:`placement_plan`), then applies the
    user's :obj:`transform`."""

    def __init__(self, device: torch.device, moved: Dict[Tuple[Any, str], str],
                 transform: Optional[Callable] = None):
        self.device, self.moved, self.transform = torch.device(device), moved, transform

    @classmethod
    def wrap(cls, data: Any, device: torch.device, transform: Optional[Callable]) -> Optional[Callable]:
        r"""The transform a loader over :obj:`data` sampling on :obj:`device`
        needs: :obj:`transform` itself when every tensor is stored there."""
        plan = placement_plan(device, stored_tensors(data))
        moved = {key: how for key, how in plan.items() if how != LOCAL}
        return cls(device, moved, transform) if moved else transform

    def __call__(self, batch: Any) -> Any:
        for (store_key, name), how in self.moved.items():
            store = batch if store_key is None else batch[store_key]
            value = store.get(name)
            if isinstance(value, Tensor):  # absent: no edge ids (with_edge_id=False), no edge features
                store[name] = move_to(value, self.device, how)
        return batch if self.transform is None else self.transform(batch)


def stored_tensors(data: Any) -> Dict[Tuple[Any, str], torch.device]:
    r"""The devices of the node- and edge-level tensors of a
    :class:`~torch_geometric.data.Data` / :class:`~torch_geometric.data.HeteroData`
    graph (not :obj:`edge_index`), keyed by :obj:`(store key, attribute)`;
    the store key is :obj:`None` for a :class:`~torch_geometric.data.Data` graph
    (none for a :obj:`(FeatureStore, GraphStore)` pair, whose store returns its
    tensors where it keeps them)."""
    if not isinstance(data, (Data, HeteroData)):  # a (FeatureStore, GraphStore) pair gathers on its own
        return {}
    stores = (list(data.node_items()) + list(data.edge_items()) if isinstance(data, HeteroData)
              else [(None, data)])
    out = {}
    for key, store in stores:
        for name, value in store.items():
            if name == "edge_index" or not isinstance(value, Tensor):
                continue
            if store.is_node_attr(name) or store.is_edge_attr(name):
                out[(key, name)] = value.device
    return out
