"""Sampling is uniform: chi-square tests against the exact expected frequencies."""
from itertools import combinations

import pytest
import torch
from scipy.stats import chisquare
from torch_geometric.data import Data

from pyg_ham.sampling import TorchNeighborSampler, floyd_sample


def stars(num_hubs: int, deg: int) -> Data:
    """``num_hubs`` disjoint stars: hub h (id h) receives edges from its own ``deg`` leaves,
    listed in a shuffled order."""
    leaves = num_hubs + torch.arange(num_hubs * deg)
    hubs = torch.arange(num_hubs).repeat_interleave(deg)
    perm = torch.randperm(hubs.numel(), generator=torch.Generator().manual_seed(0))
    return Data(edge_index=torch.stack([leaves, hubs])[:, perm], num_nodes=num_hubs * (deg + 1))


@pytest.mark.parametrize("replace", [False, True])
def test_each_neighbour_picked_with_frequency_k_over_deg(replace):
    num_hubs, deg, k = 3000, 37, 6
    data = stars(num_hubs, deg)
    sampler = TorchNeighborSampler(data, [k], replace=replace, seed=123)
    out = sampler.sample(torch.arange(num_hubs))
    src = out.node[out.row]
    hub = out.node[out.col]
    assert bool((hub < num_hubs).all()) and out.row.numel() == num_hubs * k
    slot = (src - num_hubs) - hub * deg  # which of the hub's leaves, 0..deg-1
    counts = torch.bincount(slot, minlength=deg).double()
    expected = torch.full((deg,), num_hubs * k / deg, dtype=torch.float64)
    assert chisquare(counts.numpy(), expected.numpy()).pvalue > 1e-4
    per_hub = torch.zeros(num_hubs, deg).index_put_((hub, slot), torch.ones(slot.numel()),
                                                     accumulate=True)
    if not replace:
        assert per_hub.max() == 1  # k distinct leaves per hub
    else:
        assert per_hub.max() > 1  # repeats do happen


def test_floyd_draws_every_k_subset_equally_often():
    deg, k, draws = 7, 3, 35_000
    picks = floyd_sample(torch.full((draws,), deg), k, torch.rand(draws, k, dtype=torch.float64,
                                                                  generator=torch.Generator().manual_seed(5)))
    assert bool(((picks >= 0) & (picks < deg)).all())
    subsets = {s: i for i, s in enumerate(combinations(range(deg), k))}
    ids = torch.tensor([subsets[tuple(sorted(row))] for row in picks.tolist()])
    counts = torch.bincount(ids, minlength=len(subsets)).double()
    assert chisquare(counts.numpy()).pvalue > 1e-4


def test_floyd_takes_all_when_degree_at_most_k():
    deg = torch.tensor([0, 1, 4, 5, 9])
    picks = floyd_sample(deg, 5, torch.rand(5, 5, dtype=torch.float64))
    for d, row in zip(deg.tolist(), picks.tolist()):
        kept = sorted(v for v in row if v >= 0)
        assert kept == list(range(d)) if d <= 5 else len(set(kept)) == 5
