"""Mini-batch neighbour sampling in plain PyTorch (no pyg-lib / torch-sparse),
on whatever device the graph lives on.

* :class:`TorchNeighborSampler`: a PyG :class:`~torch_geometric.sampler.BaseSampler`.
* :class:`TorchNeighborLoader`: PyG's :class:`~torch_geometric.loader.NodeLoader`
  driven by that sampler (same mini-batches as PyG's ``NeighborLoader``).
* :func:`neighbor_loader`: returns PyG's ``NeighborLoader`` when pyg-lib is
  installed and the graph is on the CPU, a :class:`TorchNeighborLoader` otherwise.
"""
from pyg_ham.sampling.csc import CSCGraph, clear_csc_cache, get_csc
from pyg_ham.sampling.kernels import floyd_sample, sample_one_hop
from pyg_ham.sampling.loader import (
    TorchNeighborLoader,
    choose_backend,
    has_pyg_neighbor_sampling,
    neighbor_loader,
)
from pyg_ham.sampling.sampler import TorchNeighborSampler

__all__ = [
    "CSCGraph",
    "TorchNeighborLoader",
    "TorchNeighborSampler",
    "choose_backend",
    "clear_csc_cache",
    "floyd_sample",
    "get_csc",
    "has_pyg_neighbor_sampling",
    "neighbor_loader",
    "sample_one_hop",
]
