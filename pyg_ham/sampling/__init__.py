r"""Mini-batch neighbour sampling in plain PyTorch (no pyg-lib / torch-sparse),
on whatever device the graph lives on.

* :class:`TorchNeighborSampler`: a PyG :class:`~torch_geometric.sampler.BaseSampler`
  for ``Data`` and ``HeteroData`` graphs (a ``Data`` graph is the case of one type;
  vectorised, one loop over hops and fanout slots, none over nodes);
  :class:`TorchHeteroNeighborSampler` is its earlier name.
* :class:`TorchNeighborLoader`: PyG's ``NeighborLoader`` driven by that sampler,
  yielding the same mini-batches (``n_id``, ``e_id``, ``input_id``, ``batch_size``,
  ``num_sampled_nodes``, ``num_sampled_edges``; seeds first), per type for
  ``HeteroData`` (``input_nodes=("paper", idx)``).
* Both take a remote :obj:`(FeatureStore, GraphStore)` pair as PyG's
  ``NeighborLoader`` does (:mod:`pyg_ham.sampling.stores`): the layout is the
  graph store's CSC, the features are gathered from the feature store per batch.
* :func:`neighbor_loader`: returns PyG's ``NeighborLoader`` when pyg-lib is
  installed and the graph is on the CPU, a :class:`TorchNeighborLoader` otherwise
  (``force="pyg_ham"`` / ``"pyg"`` overrides).

Example::

    from pyg_ham.sampling import neighbor_loader

    loader = neighbor_loader(data, [15, 10, 5], batch_size=1024,
                             input_nodes=data.train_mask, shuffle=True, seed=0)
    for batch in loader:
        out = model(batch.x, batch.edge_index,
                    num_sampled_nodes_per_hop=batch.num_sampled_nodes,
                    num_sampled_edges_per_hop=batch.num_sampled_edges)[:batch.batch_size]
        loss = F.cross_entropy(out, batch.y[:batch.batch_size])

With the graph on a GPU (``data.to("cuda")``, or ``device="cuda"``), sampling and
the feature gather run there. On the CPU, most of an epoch is PyG's per-batch
feature gather; ``THP_MEM_ALLOC_ENABLE=1`` (a PyTorch allocator setting: huge pages
for large tensors) makes it markedly faster.
"""
from pyg_ham.sampling.csc import CSCGraph, clear_csc_cache, get_csc
from pyg_ham.sampling.kernels import floyd_sample, sample_one_hop, sample_one_hop_per_row
from pyg_ham.sampling.layout import HeteroCSC, clear_hetero_csc_cache, get_hetero_csc
from pyg_ham.sampling.loader import (
    TorchNeighborLoader,
    choose_backend,
    has_pyg_neighbor_sampling,
    neighbor_loader,
)
from pyg_ham.sampling.prefetch import Prefetcher, prefetch_is_exact
from pyg_ham.sampling.sampler import TorchHeteroNeighborSampler, TorchNeighborSampler
from pyg_ham.sampling.validate import check_hetero_num_neighbors

__all__ = [
    "CSCGraph",
    "HeteroCSC",
    "Prefetcher",
    "TorchHeteroNeighborSampler",
    "TorchNeighborLoader",
    "TorchNeighborSampler",
    "check_hetero_num_neighbors",
    "choose_backend",
    "clear_csc_cache",
    "clear_hetero_csc_cache",
    "floyd_sample",
    "get_csc",
    "get_hetero_csc",
    "prefetch_is_exact",
    "has_pyg_neighbor_sampling",
    "neighbor_loader",
    "sample_one_hop",
    "sample_one_hop_per_row",
]
