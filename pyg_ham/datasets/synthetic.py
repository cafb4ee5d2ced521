r"""A contextual stochastic block model (CSBM) generated locally.

Nodes get balanced class labels :math:`y_i \in \{0, \dots, C-1\}`.  Edges: each of
the :math:`m = \lfloor N \bar d / 2 \rfloor` undirected edges picks a uniform source
:math:`i`; with probability :math:`h` (``homophily``) the target is a uniform node
of class :math:`y_i`, otherwise a uniform node of a uniformly chosen *other* class.
Self-loops and duplicates are dropped and edges are made undirected, so the edge
homophily (fraction of edges joining equal labels) is close to :math:`h`.
Features are a Gaussian mixture

.. math::
    \mathbf{x}_i = s \, \boldsymbol{\mu}_{y_i} + \boldsymbol{\varepsilon}_i,
    \qquad \boldsymbol{\varepsilon}_i \sim \mathcal{N}(\mathbf{0}, \mathbf{I}_d),

with random unit-norm class means :math:`\boldsymbol{\mu}_c` and signal strength
:math:`s` (``feature_signal``).  Everything is deterministic by ``seed``.
"""
from __future__ import annotations

import torch
from torch_geometric.data import Data
from torch_geometric.utils import coalesce, remove_self_loops, to_undirected

from pyg_ham.errors import ConfigError


def csbm(
    num_nodes: int = 2000,
    num_classes: int = 5,
    num_features: int = 32,
    avg_degree: float = 10.0,
    homophily: float = 0.8,
    feature_signal: float = 1.0,
    seed: int = 0,
) -> Data:
    r"""Generates a contextual stochastic block model graph.

    Args:
        num_nodes (int, optional): Number of nodes :math:`N`. (default: :obj:`2000`)
        num_classes (int, optional): Number of classes :math:`C`. (default: :obj:`5`)
        num_features (int, optional): Feature dimension :math:`d`. (default: :obj:`32`)
        avg_degree (float, optional): Target average degree :math:`\bar d`.
            (default: :obj:`10.0`)
        homophily (float, optional): Probability :math:`h` that an edge stays within
            its class. (default: :obj:`0.8`)
        feature_signal (float, optional): Distance scale :math:`s` of the class means.
            (default: :obj:`1.0`)
        seed (int, optional): Random seed. (default: :obj:`0`)
    """
    if int(num_classes) < 2 or int(num_nodes) < 2 * int(num_classes):
        raise ConfigError(
            f"synthetic: num_nodes={num_nodes}, num_classes={num_classes} are invalid; "
            f"use num_classes >= 2 and num_nodes >= 2 * num_classes")
    if int(num_features) < 1:
        raise ConfigError(f"synthetic: num_features={num_features} is invalid; use >= 1")
    if not 0.0 <= float(homophily) <= 1.0:
        raise ConfigError(f"synthetic: homophily={homophily} is invalid; use a value in [0, 1]")
    if float(avg_degree) <= 0:
        raise ConfigError(f"synthetic: avg_degree={avg_degree} is invalid; use a value > 0")
    n, c, d = int(num_nodes), int(num_classes), int(num_features)
    gen = torch.Generator().manual_seed(int(seed))

    # Balanced labels: node i of the sorted order belongs to class i % C, then shuffled.
    y = (torch.arange(n) % c)[torch.randperm(n, generator=gen)]
    members = torch.argsort(y, stable=True)               # nodes grouped by class
    sizes = torch.bincount(y, minlength=c)
    offsets = torch.cumsum(sizes, 0) - sizes

    m = int(n * float(avg_degree) / 2)
    src = torch.randint(0, n, (m,), generator=gen)
    same = torch.rand(m, generator=gen) < float(homophily)
    shift = torch.randint(1, c, (m,), generator=gen)
    dst_class = torch.where(same, y[src], (y[src] + shift) % c)
    pos = (torch.rand(m, generator=gen) * sizes[dst_class]).long()
    dst = members[offsets[dst_class] + pos]

    edge_index, _ = remove_self_loops(torch.stack([src, dst]))
    edge_index = coalesce(to_undirected(edge_index, num_nodes=n), num_nodes=n)

    means = torch.randn(c, d, generator=gen)
    means = means / means.norm(dim=1, keepdim=True).clamp_min(1e-12)
    x = float(feature_signal) * means[y] + torch.randn(n, d, generator=gen)
    return Data(x=x, edge_index=edge_index, y=y, num_nodes=n)
