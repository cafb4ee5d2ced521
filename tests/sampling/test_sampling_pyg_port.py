"""PyG's own NeighborLoader cases (``test/loader/test_neighbor_loader.py`` of
pyg-team/pytorch_geometric, unchanged from 2.8.0 to the master read for issue 27), run against
:class:`~pyg_ham.sampling.TorchNeighborLoader` without pyg-lib or torch-sparse.

Left out, as the issue allows: the two pyg-lib / torch-sparse kernel equality cases (they call those
kernels directly) and the torch_frame case. The remote-store cases (``MyFeatureStore`` /
``MyGraphStore``: ``test_custom_[hetero_]neighbor_loader[_duplicate]``,
``test_temporal_custom_neighbor_loader_on_karate``) run on the loader's
``(FeatureStore, GraphStore)`` path (issue 31), compared batch by batch with the in-memory graph.
Differences from PyG's file: the loader's ``str`` is its class name, and the cases PyG
skips without pyg-lib / torch-sparse (``int32`` indices, ``induced``) run here.
"""
import numpy as np
import pytest
import torch
from torch_geometric.data import Data, HeteroData
from torch_geometric.datasets import KarateClub
from torch_geometric.nn import GraphConv, to_hetero
from torch_geometric.sampler.base import SubgraphType
from torch_geometric.testing import MyFeatureStore, MyGraphStore, get_random_edge_index
from torch_geometric.utils import is_undirected, sort_edge_index, to_undirected

from pyg_ham.errors import ConfigError
from pyg_ham.sampling import TorchNeighborLoader as Loader

DEVICES = [torch.device("cpu")] + ([torch.device("cuda", 0)] if torch.cuda.is_available() else [])
DTYPES = [torch.int64, torch.int32]
SUBGRAPH_TYPES = [SubgraphType.directional, SubgraphType.bidirectional, SubgraphType.induced]


def edges_exist(sub_edge_index, edge_index, src_id, dst_id) -> bool:
    """Every edge of the batch (mapped back to global ids) is an edge of the graph."""
    n = int(edge_index.max()) + 1
    known = (n * edge_index[0] + edge_index[1]).cpu().numpy()
    sub = (n * src_id[sub_edge_index[0]] + dst_id[sub_edge_index[1]]).cpu().numpy()
    return bool(np.isin(sub, known).all())


@pytest.mark.parametrize("device", DEVICES, ids=str)
@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("subgraph_type", SUBGRAPH_TYPES, ids=lambda s: s.value)
@pytest.mark.parametrize("filter_per_worker", [None, True, False])
def test_homo_basic(device, dtype, subgraph_type, filter_per_worker):
    torch.manual_seed(12345)
    data = Data(x=torch.arange(100, device=device), edge_index=get_random_edge_index(100, 100, 500, dtype, device),
                edge_attr=torch.arange(500, device=device))
    loader = Loader(data, num_neighbors=[5, 5], batch_size=20, subgraph_type=subgraph_type,
                    filter_per_worker=filter_per_worker)
    assert str(loader) == "TorchNeighborLoader()" and len(loader) == 5
    assert loader([0]).n_id[:1].tolist() == [0]
    for i, batch in enumerate(loader):
        assert isinstance(batch, Data) and batch.x.device == batch.edge_index.device == device
        assert batch.x.size(0) <= 100 and batch.n_id.size() == (batch.num_nodes,)
        assert batch.input_id.numel() == batch.batch_size == 20
        assert 0 <= batch.edge_index.min() and batch.edge_index.max() < batch.num_nodes
        assert batch.edge_attr.device == device and batch.edge_attr.size(0) == batch.edge_index.size(1)
        assert torch.equal(batch.x[:20], torch.arange(20 * i, 20 * (i + 1), device=device))  # seeds first
        if subgraph_type != SubgraphType.bidirectional:
            assert batch.e_id.size() == (batch.num_edges,)
            assert 0 <= batch.edge_attr.min() and batch.edge_attr.max() < 500
            assert edges_exist(batch.edge_index.long(), data.edge_index.long(), batch.x, batch.x)


def _hetero_basic_graph(dtype):
    data = HeteroData()
    data["paper"].x = torch.arange(100)
    data["author"].x = torch.arange(100, 300)
    for (src, dst), (n_src, n_dst, m), first in [(("paper", "paper"), (100, 100, 500), 0),
                                                 (("paper", "author"), (100, 200, 1000), 500),
                                                 (("author", "paper"), (200, 100, 1000), 1500)]:
        data[src, dst].edge_index = get_random_edge_index(n_src, n_dst, m, dtype)
        data[src, dst].edge_attr = torch.arange(first, first + m)
    return data


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("subgraph_type", SUBGRAPH_TYPES, ids=lambda s: s.value)
def test_hetero_basic(dtype, subgraph_type):
    torch.manual_seed(12345)
    data = _hetero_basic_graph(dtype)
    with pytest.raises(ValueError, match="hops must be the same across all"):
        Loader(data, num_neighbors={("paper", "to", "paper"): [-1], ("paper", "to", "author"): [-1, -1],
                                    ("author", "to", "paper"): [-1, -1]},
               input_nodes="paper", batch_size=20, subgraph_type=subgraph_type)
    loader = Loader(data, num_neighbors=[10, 10], input_nodes="paper", batch_size=20, subgraph_type=subgraph_type)
    assert str(loader) == "TorchNeighborLoader()" and len(loader) == 5
    offset = {"paper": 0, "author": 100}
    attr_range = {("paper", "to", "paper"): (0, 500), ("paper", "to", "author"): (500, 1500),
                  ("author", "to", "paper"): (1500, 2500)}
    for batch in loader:
        assert isinstance(batch, HeteroData) and batch.input_type == "paper"
        assert set(batch.node_types) == {"paper", "author"} and set(batch.edge_types) == set(attr_range)
        assert batch["paper"].input_id.numel() == batch["paper"].batch_size == 20
        for t, (lo, hi) in (("paper", (0, 100)), ("author", (100, 300))):
            assert batch[t].n_id.size() == (batch[t].num_nodes,) and batch[t].x.size(0) <= hi - lo
            assert lo <= batch[t].x.min() and batch[t].x.max() < hi
        for et, (lo, hi) in attr_range.items():
            src, _, dst = et
            row, col = batch[et].edge_index
            assert 0 <= row.min() and row.max() < batch[src].num_nodes
            assert 0 <= col.min() and col.max() < batch[dst].num_nodes
            if subgraph_type != SubgraphType.bidirectional:
                assert batch[et].e_id.size() == (row.numel(),)
                assert lo <= batch[et].edge_attr.min() and batch[et].edge_attr.max() < hi
                assert edges_exist(batch[et].edge_index.long(), data[et].edge_index.long(),
                                   batch[src].x - offset[src], batch[dst].x - offset[dst])
            else:
                assert "e_id" not in batch[et] and "edge_attr" not in batch[et]
                if src == dst:
                    assert is_undirected(batch[et].edge_index)
                else:
                    other = batch[dst, "to", src].edge_index
                    assert torch.equal(batch[et].edge_index, sort_edge_index(other.flip([0]), sort_by_row=False))
        assert not batch.has_isolated_nodes()


class _GNN(torch.nn.Module):
    def __init__(self, in_channels, hidden_channels, out_channels):
        super().__init__()
        self.conv1 = GraphConv(in_channels, hidden_channels)
        self.conv2 = GraphConv(hidden_channels, out_channels)

    def forward(self, x, edge_index, edge_weight=None):
        return self.conv2(self.conv1(x, edge_index, edge_weight).relu(), edge_index, edge_weight)


@pytest.mark.parametrize("subgraph_type", SUBGRAPH_TYPES, ids=lambda s: s.value)
def test_homo_karate_matches_full_graph(subgraph_type):
    dataset = KarateClub()
    data = dataset[0]
    ei = data.edge_index[:, data.edge_index[0] < data.edge_index[1]]
    data.edge_index, data.edge_weight = to_undirected(ei, torch.rand(ei.size(1)))
    split = torch.arange(5, 8)
    loader = Loader(data, num_neighbors=[-1, -1], batch_size=3, input_nodes=split, subgraph_type=subgraph_type)
    assert len(loader) == 1
    batch = next(iter(loader))
    model = _GNN(dataset.num_features, 16, dataset.num_classes)
    out1 = model(data.x, data.edge_index, data.edge_weight)[split]
    out2 = model(batch.x, batch.edge_index, batch.edge_weight)[:batch.batch_size]
    assert torch.allclose(out1, out2, atol=1e-6)


@pytest.mark.parametrize("subgraph_type", SUBGRAPH_TYPES, ids=lambda s: s.value)
def test_hetero_karate_matches_full_graph(subgraph_type):
    dataset = KarateClub()
    data = dataset[0]
    hetero = HeteroData()
    hetero["v"].x = data.x
    hetero["v", "v"].edge_index = data.edge_index
    split = torch.arange(5, 8)
    loader = Loader(hetero, num_neighbors=[-1, -1], batch_size=3, input_nodes=("v", split),
                    subgraph_type=subgraph_type)
    assert len(loader) == 1
    batch = next(iter(loader))
    model = _GNN(dataset.num_features, 16, dataset.num_classes)
    hetero_model = to_hetero(model, hetero.metadata())
    out1 = model(data.x, data.edge_index)[split]
    out2 = hetero_model(batch.x_dict, batch.edge_index_dict)["v"][:batch["v"].batch_size]
    assert torch.allclose(out1, out2, atol=1e-6)


def test_temporal_hetero_karate_never_samples_the_future():
    data = KarateClub()[0]
    hetero = HeteroData()
    hetero["v"].x = data.x
    hetero["v"].time = torch.arange(data.num_nodes, 0, -1)
    hetero["v", "v"].edge_index = data.edge_index
    for batch in Loader(hetero, num_neighbors=[-1, -1], input_nodes="v", time_attr="time", batch_size=1):
        assert bool((batch["v"].time[0] >= batch["v"].time[1:]).all())


def _coo_csr_csc(edge_index, size):
    """The three layouts of one edge index, as PyG's custom-store test puts them."""
    n_src, n_dst = size
    order = torch.argsort(edge_index[0] * n_dst + edge_index[1])
    r, c = edge_index[:, order]
    csr = (torch.cat([torch.zeros(1, dtype=torch.long), torch.bincount(r, minlength=n_src).cumsum(0)]), c)
    order = torch.argsort(edge_index[1] * n_src + edge_index[0])
    r, c = edge_index[:, order]
    csc = (r, torch.cat([torch.zeros(1, dtype=torch.long), torch.bincount(c, minlength=n_dst).cumsum(0)]))
    return csr, csc


def _same_batches(loader1, loader2, types):
    """Full neighbourhoods (fanout -1): the same nodes and edges per batch, whatever their order."""
    assert len(loader1) == len(loader2)
    for b1, b2 in zip(loader1, loader2):
        for t in types["nodes"]:
            s1, s2 = (b1 if t is None else b1[t]), (b2 if t is None else b2[t])
            assert s1.batch_size == s2.batch_size if t == types["input"] else True
            assert torch.equal(s1.x.sort()[0], s2.x.sort()[0])
            assert torch.equal(s2.x, types["x"][t][s2.n_id])  # features gathered from the feature store
        for et in types["edges"]:
            e1, e2 = (b1 if et is None else b1[et]), (b2 if et is None else b2[et])
            src, dst = (None, None) if et is None else (et[0], et[2])
            n1s, n1d = (b1.n_id, b1.n_id) if et is None else (b1[src].n_id, b1[dst].n_id)
            n2s, n2d = (b2.n_id, b2.n_id) if et is None else (b2[src].n_id, b2[dst].n_id)
            g1 = set(zip(n1s[e1.edge_index[0]].tolist(), n1d[e1.edge_index[1]].tolist()))
            g2 = set(zip(n2s[e2.edge_index[0]].tolist(), n2d[e2.edge_index[1]].tolist()))
            assert g1 == g2 and e1.edge_index.size() == e2.edge_index.size()


def test_custom_neighbor_loader():
    # A Data graph and the same graph in MyFeatureStore / MyGraphStore (COO) give the same batches.
    torch.manual_seed(12345)
    x, ei = torch.arange(100, 200), get_random_edge_index(100, 100, 500)
    fs, gs = MyFeatureStore(), MyGraphStore()
    fs.put_tensor(x, group_name=None, attr_name="x", index=None)
    gs.put_edge_index(edge_index=(ei[0], ei[1]), edge_type=None, layout="coo", size=(100, 100))
    loader1 = Loader(Data(x=x, edge_index=ei), num_neighbors=[-1, -1], batch_size=20)
    loader2 = Loader((fs, gs), num_neighbors=[-1, -1], batch_size=20, input_nodes=torch.arange(100))
    assert str(loader1) == str(loader2)
    _same_batches(loader1, loader2, dict(nodes=[None], edges=[None], input=None, x={None: x}))
    # sampled (fanout 5): a subgraph of the store's graph, seeds first, edge ids of the store's edges
    for batch in Loader((fs, gs), num_neighbors=[5, 5], batch_size=20, input_nodes=torch.arange(100)):
        assert batch.n_id[:20].tolist() == batch.input_id.tolist()
        assert edges_exist(batch.edge_index, ei, batch.n_id, batch.n_id)
        assert torch.equal(torch.stack([batch.n_id[batch.edge_index[0]], batch.n_id[batch.edge_index[1]]]),
                           ei[:, batch.e_id])


@pytest.mark.parametrize("FeatureStore", [MyFeatureStore, HeteroData])
@pytest.mark.parametrize("GraphStore", [MyGraphStore, HeteroData])
@pytest.mark.parametrize("duplicate", [False, True])
def test_custom_hetero_neighbor_loader(FeatureStore, GraphStore, duplicate):
    # PyG's case: four edge types stored as COO, CSR, CSC and sorted COO (duplicate: one edge type is
    # stored twice, in two layouts, and sampled once); PyG's store classes and HeteroData as stores.
    if duplicate and GraphStore is HeteroData:
        pytest.skip("a HeteroData graph store keeps one edge index per edge type")
    torch.manual_seed(12345)
    fs, gs, data = FeatureStore(), GraphStore(), HeteroData()
    xs = {"paper": torch.arange(100), "author": torch.arange(100, 300)}
    for t, x in xs.items():
        data[t].x = x
        fs.put_tensor(x, group_name=t, attr_name="x", index=None)
    sizes = {"paper": 100, "author": 200}
    layouts = {("paper", "to", "paper"): "coo", ("paper", "to", "author"): "csr",
               ("author", "to", "paper"): "csc", ("author", "to", "author"): "coo_sorted"}
    for et, layout in layouts.items():
        size = (sizes[et[0]], sizes[et[2]])
        ei = get_random_edge_index(*size, 500 if et[0] == et[2] else 1000)
        if layout == "coo_sorted":
            ei = ei[:, torch.sort(ei[1], stable=True).indices]
        data[et].edge_index = ei
        csr, csc = _coo_csr_csc(ei, size)
        if GraphStore is HeteroData:  # its CSR / CSC need torch-sparse (not installed)
            layout = "coo"
        value = {"coo": (ei[0], ei[1]), "coo_sorted": (ei[0], ei[1]), "csr": csr, "csc": csc}[layout]
        gs.put_edge_index(edge_index=value, edge_type=et, layout=layout.replace("_sorted", ""), size=size,
                          is_sorted=layout == "coo_sorted")
        if duplicate and layout == "coo":
            gs.put_edge_index(edge_index=csc, edge_type=et, layout="csc", size=size)
    loader1 = Loader(data, batch_size=20, input_nodes=("paper", range(100)), num_neighbors=[-1] * 2)
    loader2 = Loader((fs, gs), batch_size=20, input_nodes=("paper", range(100)), num_neighbors=[-1] * 2)
    _same_batches(loader1, loader2, dict(nodes=list(xs), edges=list(layouts), input="paper", x=xs))


def test_temporal_custom_neighbor_loader_on_karate():
    data = KarateClub()[0]
    fs, gs = MyFeatureStore(), MyGraphStore()
    fs.put_tensor(data.x, group_name="v", attr_name="x", index=None)
    fs.put_tensor(torch.arange(data.num_nodes, 0, -1), group_name="v", attr_name="time", index=None)
    gs.put_edge_index(edge_index=(data.edge_index[0], data.edge_index[1]), edge_type=("v", "to", "v"),
                      layout="coo", size=(data.num_nodes, data.num_nodes))
    loader = Loader((fs, gs), num_neighbors=[-1, -1], input_nodes="v", time_attr="time", batch_size=1)
    assert len(loader) == data.num_nodes
    for batch in loader:
        assert bool((batch["v"].time[0] >= batch["v"].time[1:]).all())


def test_remote_store_errors():
    fs, gs = MyFeatureStore(), MyGraphStore()
    with pytest.raises(ConfigError, match="holds no edge index"):
        Loader((fs, gs), num_neighbors=[-1], batch_size=2, input_nodes=torch.arange(3))
    gs.put_edge_index(edge_index=(torch.tensor([0, 1]), torch.tensor([1, 2])), edge_type=None, layout="coo",
                      size=(3, 3))
    with pytest.raises(ConfigError, match="input_nodes is required"):
        Loader((fs, gs), num_neighbors=[-1], batch_size=2)
    with pytest.raises(ConfigError, match=r"must lie in \[0, 3\)"):
        Loader((fs, gs), num_neighbors=[-1], batch_size=2, input_nodes=torch.tensor([5]))
    with pytest.raises(ConfigError, match="weight_attr is not supported"):
        Loader((fs, gs), num_neighbors=[-1], batch_size=2, input_nodes=torch.arange(3), weight_attr="w")
    with pytest.raises(ConfigError, match="FeatureStore, GraphStore"):
        Loader((gs, fs), num_neighbors=[-1], batch_size=2)


def test_memmap_features(tmp_path):
    path = str(tmp_path / "x.npy")
    x = np.memmap(path, dtype=np.float32, mode="w+", shape=(100, 32))
    x[:] = np.random.randn(100, 32)
    data = Data(x=np.memmap(path, dtype=np.float32, mode="r", shape=(100, 32)),
                edge_index=get_random_edge_index(100, 100, 500))
    assert data.num_nodes == 100
    batch = next(iter(Loader(data, num_neighbors=[5, 5], batch_size=20, num_workers=2)))
    assert batch.num_nodes <= 100 and isinstance(batch.x, torch.Tensor)
    assert batch.x.size() == (batch.num_nodes, 32)


SMALL_EDGES = torch.tensor([[2, 3, 4, 5, 7, 7, 10, 11, 12, 13], [0, 1, 2, 3, 2, 3, 7, 7, 7, 7]])


def test_homo_sampled_info():
    batch = next(iter(Loader(Data(edge_index=SMALL_EDGES, num_nodes=14), num_neighbors=[1, 2, 4], batch_size=2)))
    assert batch.num_sampled_nodes == [2, 2, 3, 4] and batch.num_sampled_edges == [2, 4, 4]


def test_hetero_sampled_info():
    data = HeteroData()
    data["paper"].num_nodes = data["author"].num_nodes = 14
    for src, dst in (("paper", "paper"), ("paper", "author"), ("author", "paper")):
        data[src, dst].edge_index = SMALL_EDGES
    batch = next(iter(Loader(data, num_neighbors=[1, 2, 4], batch_size=2, input_nodes="paper")))
    assert batch["paper"].num_sampled_nodes == [2, 2, 3, 4]
    assert batch["author"].num_sampled_nodes == [0, 2, 3, 4]
    assert batch["paper", "paper"].num_sampled_edges == [2, 4, 4]
    assert batch["paper", "author"].num_sampled_edges == [0, 4, 4]
    assert batch["author", "paper"].num_sampled_edges == [2, 4, 4]


def test_mapping_back_to_the_graph():
    ei = torch.tensor([[0, 0, 0, 0, 0, 1, 1, 1, 2, 2, 3, 5], [1, 2, 3, 4, 5, 8, 6, 7, 9, 10, 6, 11]])
    data = Data(edge_index=ei, num_nodes=12)
    for batch in Loader(data, num_neighbors=[1], batch_size=2, shuffle=True):
        assert torch.equal(batch.n_id[batch.edge_index], data.edge_index[:, batch.e_id])


WEIGHTED_EDGES, WEIGHTS = torch.tensor([[1, 3, 0, 4], [2, 2, 1, 3]]), torch.tensor([0.0, 1.0, 0.0, 1.0])


def test_weighted_homo():
    data = Data(num_nodes=5, edge_index=WEIGHTED_EDGES, edge_weight=WEIGHTS)
    loader = Loader(data, input_nodes=torch.tensor([2]), num_neighbors=[1, 1], batch_size=1, weight_attr="edge_weight")
    assert len(loader) == 1
    batch = next(iter(loader))
    assert batch.n_id.tolist() == [2, 3, 4] and batch.num_edges == 2
    assert batch.n_id[batch.edge_index].tolist() == [[3, 4], [2, 3]]


def test_weighted_hetero():
    data = HeteroData()
    data["paper"].num_nodes = 5
    data["paper", "to", "paper"].edge_index = WEIGHTED_EDGES
    data["paper", "to", "paper"].edge_weight = WEIGHTS
    loader = Loader(data, input_nodes=("paper", torch.tensor([2])), num_neighbors=[1, 1], batch_size=1,
                    weight_attr="edge_weight")
    assert len(loader) == 1
    batch = next(iter(loader))
    assert batch["paper"].n_id.tolist() == [2, 3, 4] and batch["paper", "paper"].num_edges == 2
    assert batch["paper"].n_id[batch["paper", "paper"].edge_index].tolist() == [[3, 4], [2, 3]]


PATH_EDGES = torch.tensor([[0, 1, 1, 2, 2, 3, 3, 4], [1, 0, 2, 1, 3, 2, 4, 3]])


def test_edge_level_temporal_homo():
    data = Data(edge_index=PATH_EDGES, edge_time=torch.arange(8), num_nodes=5)
    for batch in Loader(data, num_neighbors=[-1, -1], input_time=torch.full((5,), 4), time_attr="edge_time",
                        batch_size=1):
        assert batch.edge_time.numel() == batch.num_edges
        assert batch.edge_time.numel() == 0 or batch.edge_time.max() <= 4


def test_edge_level_temporal_hetero():
    data = HeteroData()
    data["A"].num_nodes = 5
    data["A", "A"].edge_index = PATH_EDGES
    data["A", "A"].edge_time = torch.arange(8)
    for batch in Loader(data, num_neighbors=[-1, -1], input_nodes="A", input_time=torch.full((5,), 4),
                        time_attr="edge_time", batch_size=1):
        store = batch["A", "A"]
        assert store.edge_time.numel() == store.num_edges
        assert store.edge_time.numel() == 0 or store.edge_time.max() <= 4


def test_input_id_of_a_masked_input_type():
    data = HeteroData()
    data["a"].num_nodes, data["b"].num_nodes = 10, 12
    row, col = torch.randint(0, 10, (40,)), torch.randint(0, 12, (40,))
    data["a", "b"].edge_index = torch.stack([row, col])
    data["b", "a"].edge_index = torch.stack([col, row])
    mask = torch.ones(10, dtype=torch.bool)
    mask[0] = False
    for i, batch in enumerate(Loader(data, input_nodes=("a", mask), batch_size=2, num_neighbors=[2, 2])):
        assert batch["a"].input_id.tolist() == ([2 * i + 1, 2 * i + 2] if i < 4 else [2 * i + 1])


def test_temporal_single_link():
    data = HeteroData()
    for t in "abc":
        data[t].x = torch.arange(10)
    data["b"].time, data["c"].time = torch.arange(0, 10), torch.arange(1, 11)
    loop = torch.arange(10).view(1, -1).repeat(2, 1)
    for a, b in (("a", "b"), ("b", "a"), ("a", "c"), ("c", "a")):
        data[a, b].edge_index = loop
    batch = next(iter(Loader(data, num_neighbors=[-1], input_nodes="a", time_attr="time",
                             input_time=torch.arange(0, 10), batch_size=10)))
    assert batch["a"].num_nodes == 10 and batch["b"].num_nodes == 10 and batch["c"].num_nodes == 0
