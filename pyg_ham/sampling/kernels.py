"""Vectorised one-hop neighbour sampling on a :class:`CSCGraph` (no loop over nodes)."""
from __future__ import annotations

from typing import Optional, Tuple

import torch
from torch import Tensor

from pyg_ham.sampling.csc import CSCGraph


def _uniform_below(rand: Tensor, bound: Tensor) -> Tensor:
    # floor(rand * bound) for rand in [0, 1); the clamp guards the rounding of
    # rand * bound up to bound itself.
    return torch.minimum((rand * bound).to(torch.int64), bound - 1)


def floyd_sample(deg: Tensor, k: int, rand: Tensor) -> Tensor:
    r"""Draws, for every row :math:`r`, a uniformly random subset of
    :math:`\min(\deg_r, k)` distinct offsets from :math:`\{0, \ldots,
    \deg_r - 1\}`, with Robert Floyd's algorithm run on all rows at once:

    .. math::
        \text{for } j = \deg - k, \ldots, \deg - 1: \quad
        t \sim \mathcal{U}\{0, \ldots, j\}, \quad
        S \leftarrow S \cup \{ j \text{ if } t \in S \text{ else } t \}

    Slots with :math:`j < 0` (rows with :math:`\deg < k`) are left out, so
    such rows get all of their :math:`\deg` offsets. Exactly :math:`k` vector
    steps, no rejection, :math:`O(n k^2)` work.

    Args:
        deg (torch.Tensor): Degrees of shape :obj:`[n]` (:obj:`torch.int64`).
        k (int): The number of offsets to draw per row (:obj:`k >= 1`).
        rand (torch.Tensor): Uniform :math:`[0, 1)` numbers of shape
            :obj:`[n, k]`.

    Returns:
        A :obj:`[n, k]` tensor of offsets, :obj:`-1` (or below) in left-out
        slots.
    """
    # Column i holds j = deg - k + i and the draw t ~ U{0, ..., j} (negative: skipped slot).
    j = (deg - k).unsqueeze(1) + torch.arange(k, device=deg.device)
    picks = torch.minimum((rand * (j + 1)).to(torch.int64), j)
    for i in range(1, k):
        t = picks[:, i]
        dup = (picks[:, :i] == t.unsqueeze(1)).any(dim=1)
        picks[:, i] = torch.where(dup, j[:, i], t)
    return picks


def sample_one_hop(
    csc: CSCGraph,
    nodes: Tensor,
    k: int,
    replace: bool = False,
    generator: Optional[torch.Generator] = None,
) -> Tuple[Tensor, Tensor]:
    r"""Samples up to :obj:`k` in-neighbours of every node in :obj:`nodes`.

    * :obj:`k = -1`: all in-neighbours.
    * :obj:`replace=False`: :math:`\min(\deg, k)` distinct neighbours, each
      :math:`k`-subset equally likely (:meth:`floyd_sample`).
    * :obj:`replace=True`: :math:`k` independent uniform draws (none for
      isolated nodes).

    Args:
        csc (CSCGraph): The graph.
        nodes (torch.Tensor): Global ids of the target nodes, shape :obj:`[n]`.
        k (int): The fanout (:obj:`-1` for all neighbours).
        replace (bool, optional): Sample with replacement.
            (default: :obj:`False`)
        generator (torch.Generator, optional): Random number generator on
            :obj:`csc.device`. (default: :obj:`None`)

    Returns:
        :obj:`(pos, tgt)`: CSC positions of the sampled edges and, for each,
        the index into :obj:`nodes` of the node it was sampled for. Edges are
        grouped by :obj:`tgt` in increasing order.
    """
    device = csc.device
    n = nodes.numel()
    if n == 0 or k == 0:
        empty = torch.empty(0, dtype=torch.int64, device=device)
        return empty, empty
    start = csc.colptr.index_select(0, nodes)
    deg = csc.colptr.index_select(0, nodes + 1) - start

    if k < 0:  # all neighbours
        total = int(deg.sum())
        tgt = torch.repeat_interleave(torch.arange(n, device=device), deg, output_size=total)
        shift = start - (torch.cumsum(deg, 0) - deg)  # first position minus first output slot
        pos = torch.arange(total, device=device) + shift.index_select(0, tgt)
        return pos, tgt

    rand = torch.rand((n, k), dtype=torch.float64, device=device, generator=generator)
    if replace:
        picks = _uniform_below(rand, deg.unsqueeze(1))  # -1 for isolated nodes
        count = (deg > 0).to(torch.int64) * k
    else:
        picks = floyd_sample(deg, k, rand)
        count = deg.clamp(max=k)
    # Row r's valid draws are its last count[r] slots; gather them without a mask.
    total = int(count.sum())
    tgt = torch.repeat_interleave(torch.arange(n, device=device), count, output_size=total)
    shift = torch.arange(0, n * k, k, device=device) + (k - count) - (torch.cumsum(count, 0) - count)
    src = torch.arange(total, device=device) + shift.index_select(0, tgt)
    pos = picks.add_(start.unsqueeze(1)).view(-1).index_select(0, src)
    return pos, tgt
