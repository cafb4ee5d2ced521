"""Mini-batches feed PyG GNNs: trim_to_layer works and full fanouts reproduce full-graph outputs."""
import sys
from pathlib import Path

import torch
from torch_geometric.nn.models import GraphSAGE
from torch_geometric.utils import trim_to_layer

from pyg_ham.sampling import neighbor_loader

sys.path.insert(0, str(Path(__file__).parent))  # the brute-force helpers next to this file
from sampling_brute import random_graph  # noqa: E402


def test_trim_to_layer_keeps_what_each_layer_needs():
    data = random_graph(120, 700, seed=11)
    batch = next(iter(neighbor_loader(data, [4, 3, 2], batch_size=10, seed=0, force="pyg_ham")))
    x, edge_index = batch.x, batch.edge_index
    nodes, edges = batch.num_sampled_nodes, batch.num_sampled_edges
    for layer in range(3):
        x, edge_index, _ = trim_to_layer(layer, nodes, edges, x, edge_index)
        # After trimming for layer l, the last l hops' nodes and edges are gone ...
        assert x.size(0) == sum(nodes[:len(nodes) - layer])
        assert edge_index.size(1) == sum(edges[:len(edges) - layer])
        # ... and the kept edges only touch kept nodes.
        assert edge_index.numel() == 0 or int(edge_index.max()) < x.size(0)


def test_two_layer_gnn_matches_full_graph_with_all_neighbours():
    torch.manual_seed(0)
    data = random_graph(150, 900, seed=12, num_isolated=5)
    model = GraphSAGE(data.num_features, 16, num_layers=2, out_channels=4).eval()
    with torch.no_grad():
        full = model(data.x, data.edge_index)
        for batch in neighbor_loader(data, [-1, -1], batch_size=32, shuffle=True, seed=1,
                                     force="pyg_ham"):
            bs = batch.batch_size
            plain = model(batch.x, batch.edge_index)[:bs]
            trimmed = model(batch.x, batch.edge_index,
                            num_sampled_nodes_per_hop=batch.num_sampled_nodes,
                            num_sampled_edges_per_hop=batch.num_sampled_edges)[:bs]
            torch.testing.assert_close(plain, full[batch.n_id[:bs]])
            torch.testing.assert_close(trimmed, full[batch.n_id[:bs]])
