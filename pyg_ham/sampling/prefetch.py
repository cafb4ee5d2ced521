r"""Batches one step ahead: :class:`Prefetcher` gathers the next mini-batch and starts
moving it to the training device while the current step runs.

Iterating a :class:`Prefetcher` over a loader takes batch :math:`k+1` from the loader
(sampling and the feature gather, on the CPU or wherever the loader samples) and issues its
copy to :obj:`device` before it hands out batch :math:`k`, so the step of batch :math:`k`
(queued asynchronously on a GPU) overlaps the next batch's gather and copy:

* on CUDA, a batch whose tensors are on the CPU is copied into pinned memory and moved with
  :obj:`non_blocking=True` on a side stream; the training stream waits on that stream (an
  event on the device, no host synchronisation) before the batch is handed out, and every
  moved tensor is recorded on the training stream so that its memory is not reused early;
* anywhere else (the CPU, or a batch already on :obj:`device`) the same code runs, and the
  move is a plain copy or a no-op.

The batches are the loader's own, in its order, bit for bit: the prefetcher only reads one
ahead. It never reads past the end of the loader's epoch, so a loader's random state at the
end of an epoch is what it would have been without it. A loader that draws from torch's
*global* generator (PyG's own :class:`~torch_geometric.loader.NeighborLoader`) would
interleave those draws differently with the training step's (dropout): the trainers prefetch
only from loaders with their own generator (:func:`prefetch_is_exact`).
"""
from __future__ import annotations

from typing import Any, Iterable, Iterator, Optional

import torch
from torch import Tensor

__all__ = ["Prefetcher", "prefetch_is_exact", "move_batch"]

_END = object()


def _tensors(batch: Any) -> Iterator[Tensor]:
    # every tensor of a Data / HeteroData / Batch (its stores), or of a plain tensor or sequence
    if isinstance(batch, Tensor):
        yield batch
    elif hasattr(batch, "stores"):
        for store in batch.stores:
            yield from (v for v in store.values() if isinstance(v, Tensor))
    elif isinstance(batch, (list, tuple)):
        for item in batch:
            yield from _tensors(item)


def move_batch(batch: Any, device: torch.device) -> Any:
    r"""Moves :obj:`batch` (a tensor, a :class:`~torch_geometric.data.Data` /
    :class:`~torch_geometric.data.HeteroData` batch, or a list/tuple of them) to
    :obj:`device` with :obj:`non_blocking=True`, through pinned memory when it goes from the
    CPU to a GPU; a no-op for what is already there."""
    if isinstance(batch, (list, tuple)):
        return type(batch)(move_batch(item, device) for item in batch)
    if not isinstance(batch, Tensor) and not hasattr(batch, "stores"):
        return batch
    if device.type == "cuda" and any(t.device.type == "cpu" for t in _tensors(batch)):
        batch = batch.pin_memory()
    return batch.to(device, non_blocking=True)


def prefetch_is_exact(loader: Any) -> bool:
    r"""Whether reading :obj:`loader` one batch ahead leaves every batch and every random draw
    of training as it is: the loader samples from its own generator (a
    :class:`~pyg_ham.sampling.TorchNeighborLoader`, or any loader without sampling of its own),
    not from torch's global one (PyG's :class:`~torch_geometric.loader.NeighborLoader`), and
    a loader of stored examples whose dataset has no :obj:`transform` (which may draw)."""
    from torch_geometric.loader import NeighborLoader

    from pyg_ham.sampling.loader import TorchNeighborLoader

    if isinstance(loader, NeighborLoader):
        return isinstance(loader, TorchNeighborLoader)
    return getattr(getattr(loader, "dataset", None), "transform", None) is None


class Prefetcher:
    r"""Iterates :obj:`batches` one batch ahead, each batch moved to :obj:`device`
    (see the module docstring).

    Args:
        batches (Iterable): The loader (read once per :func:`iter`, as a loader is).
        device (torch.device or str): Where the batches are used.
    """

    def __init__(self, batches: Iterable[Any], device: torch.device) -> None:
        self.batches, self.device = batches, torch.device(device)

    def __len__(self) -> int:
        return len(self.batches)  # type: ignore[arg-type]

    def __iter__(self) -> Iterator[Any]:
        stream: Optional[Any] = torch.cuda.Stream(self.device) if self.device.type == "cuda" else None
        source = iter(self.batches)
        ahead = self._start(next(source, _END), stream)
        while ahead is not _END:
            current = self._ready(ahead, stream)
            ahead = self._start(next(source, _END), stream)  # gathered and copied while `current` trains
            yield current

    def _start(self, batch: Any, stream: Optional[Any]) -> Any:
        if batch is _END or stream is None:
            return batch if batch is _END else move_batch(batch, self.device)
        with torch.cuda.stream(stream):
            return move_batch(batch, self.device)

    def _ready(self, batch: Any, stream: Optional[Any]) -> Any:
        if stream is not None:
            current = torch.cuda.current_stream(self.device)
            current.wait_stream(stream)  # on the device: no host synchronisation
            for t in _tensors(batch):
                if t.device.type == "cuda":
                    t.record_stream(current)
        return batch
