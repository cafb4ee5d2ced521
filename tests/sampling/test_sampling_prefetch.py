"""Batches one step ahead (pyg_ham.sampling.prefetch): the loader's own batches, in its order,
bit for bit, read exactly one ahead (the trainer's run with and without it: tests/train/test_train_node.py)."""
import pytest
import torch
from torch_geometric.data import Data
from torch_geometric.loader import DataLoader

from pyg_ham.sampling import Prefetcher, TorchNeighborLoader, prefetch_is_exact
from pyg_ham.sampling.prefetch import move_batch


class CountingLoader:
    """A loader of numbered batches that logs how many the consumer has pulled."""

    def __init__(self, n):
        self.n, self.pulled = n, 0

    def __len__(self):
        return self.n

    def __iter__(self):
        for k in range(self.n):
            self.pulled = k + 1
            yield Data(x=torch.full((2, 3), float(k)), k=torch.tensor([k]))


def test_prefetcher_reads_exactly_one_batch_ahead_and_never_past_the_end():
    loader = CountingLoader(5)
    seen = []
    for batch in Prefetcher(loader, "cpu"):
        k = int(batch.k)
        seen.append(k)
        assert loader.pulled == min(k + 2, 5)  # batch k in hand: k + 1 taken from the loader, not k + 2
        assert torch.equal(batch.x, torch.full((2, 3), float(k)))
    assert seen == [0, 1, 2, 3, 4] and len(Prefetcher(loader, "cpu")) == 5
    assert list(Prefetcher(CountingLoader(0), "cpu")) == []


def _graph():
    g = torch.Generator().manual_seed(1)
    n = 120
    edge_index = torch.randint(0, n, (2, 700), generator=g)
    return Data(x=torch.randn(n, 5, generator=g), y=torch.randint(0, 3, (n,), generator=g),
                edge_index=edge_index, edge_attr=torch.randn(700, 2, generator=g))


def test_prefetched_batches_equal_the_loaders_bit_for_bit_with_the_same_generator_state():
    data = _graph()

    def epoch(prefetch):
        loader = TorchNeighborLoader(data, [4, 3], batch_size=16, shuffle=True, seed=3)
        batches = list(Prefetcher(loader, torch.device("cpu")) if prefetch else loader)
        return batches, loader.node_sampler.generator.get_state()

    (plain, state_a), (ahead, state_b) = epoch(False), epoch(True)
    assert len(plain) == len(ahead) == 8
    for a, b in zip(plain, ahead):
        assert a.keys() == b.keys()
        for key in a.keys():
            va, vb = a[key], b[key]
            assert torch.equal(va, vb) if isinstance(va, torch.Tensor) else va == vb, key
    assert torch.equal(state_a, state_b)  # nothing drawn past the epoch's end


def test_move_batch_and_which_loaders_prefetch_exactly():
    batch = Data(x=torch.arange(4.0))
    assert move_batch(batch, torch.device("cpu")).x.data_ptr() == batch.x.data_ptr()  # a no-op on the CPU
    assert move_batch([torch.ones(1), "label"], torch.device("cpu"))[1] == "label"
    data = _graph()
    assert prefetch_is_exact(TorchNeighborLoader(data, [2], batch_size=8))
    graphs = [Data(x=torch.ones(2, 1), edge_index=torch.zeros(2, 0, dtype=torch.long))] * 4
    assert prefetch_is_exact(DataLoader(graphs, batch_size=2))

    class WithTransform(list):
        transform = staticmethod(lambda d: d)

    assert not prefetch_is_exact(DataLoader(WithTransform(graphs), batch_size=2))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_prefetcher_moves_cpu_batches_to_the_gpu_through_pinned_memory():
    data = _graph()
    loader = TorchNeighborLoader(data, [4, 3], batch_size=16, seed=3)
    device = torch.device("cuda")
    for a, b in zip(loader, Prefetcher(TorchNeighborLoader(data, [4, 3], batch_size=16, seed=3), device)):
        assert b.x.device.type == "cuda" and torch.equal(a.x, b.x.cpu()) and torch.equal(a.n_id, b.n_id.cpu())
