"""Vectorised one-hop neighbour sampling on a :class:`CSCGraph` (no loop over nodes)."""
from __future__ import annotations

from typing import Optional, Tuple, Union

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
    return _floyd(((deg - k).unsqueeze(1) + torch.arange(k, device=deg.device)), rand)


def _floyd(j: Tensor, rand: Tensor) -> Tensor:
    # Floyd's steps on all rows at once: slot i draws t ~ U{0, ..., j[:, i]} and keeps it unless an
    # earlier slot holds it, then takes j[:, i] itself (slots with j < 0 stay negative: left out).
    picks = torch.minimum((rand * (j + 1)).to(torch.int64), j)
    for i in range(1, j.size(1)):
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
    r"""Samples up to :obj:`k` in-neighbours of every node in :obj:`nodes`
    (global ids) of :obj:`csc`, on its device: :obj:`k = -1` all of them;
    without :obj:`replace`, :math:`\min(\deg, k)` distinct ones, each
    :math:`k`-subset equally likely (:meth:`floyd_sample`); with it, :math:`k`
    independent uniform draws (none for isolated nodes).

    Returns:
        :obj:`(pos, tgt)`: CSC positions of the sampled edges and, for each,
        the index into :obj:`nodes` of the node it was sampled for. Edges are
        grouped by :obj:`tgt` in increasing order.
    """
    return sample_rows(csc.colptr, nodes, k, replace=replace, generator=generator)


def expand_segments(start: Tensor, count: Tensor) -> Tuple[Tensor, Tensor]:
    r"""Lists the positions :obj:`start[r] + i` for :math:`0 \leq i <
    \text{count}[r]` of every row :math:`r`, grouped by row.

    Returns:
        :obj:`(pos, seg)`: the positions and, for each, its row.
    """
    n = start.numel()
    total = int(count.sum()) if n else 0
    seg = torch.repeat_interleave(torch.arange(n, device=start.device), count, output_size=total)
    shift = start - (torch.cumsum(count, 0) - count)
    return torch.arange(total, device=start.device) + shift.index_select(0, seg), seg


def _floyd_rows(start: Tensor, deg: Tensor, k: Union[int, Tensor], k_max: int, replace: bool,
                generator: Optional[torch.Generator]) -> Tuple[Tensor, Tensor]:
    # Uniform draws of min(deg, k_r) offsets in [0, deg) per row. Floyd's algorithm for k_r
    # draws runs over j = deg - k_r, ..., deg - 1; placing row r's steps in the last k_r of k_max
    # slots gives j = deg - k_max + i in slot i for every row, the first k_max - k_r left out.
    n, device = start.numel(), start.device
    rand = torch.rand((n, k_max), dtype=torch.float64, device=device, generator=generator)
    if replace:
        picks = _uniform_below(rand, deg.unsqueeze(1))
        count = (deg > 0).to(torch.int64) * k
    else:
        slot = torch.arange(k_max, device=device)
        j = (deg - k_max).unsqueeze(1) + slot
        if isinstance(k, Tensor):
            j = torch.where(slot < (k_max - k).unsqueeze(1), -1, j)
        picks = _floyd(j, rand)
        count = torch.minimum(deg, k) if isinstance(k, Tensor) else deg.clamp(max=k)
    # Row r's draws are the last count[r] of its k_max slots: gather them as positions start[r] + pick.
    src, tgt = expand_segments(torch.arange(0, n * k_max, k_max, device=device) + (k_max - count), count)
    return picks.add_(start.unsqueeze(1)).view(-1).index_select(0, src), tgt


def sample_one_hop_per_row(
    csc: CSCGraph,
    cols: Tensor,
    k: Tensor,
    k_max: int,
    replace: bool = False,
    generator: Optional[torch.Generator] = None,
) -> Tuple[Tensor, Tensor]:
    r""":func:`sample_one_hop` with its own fanout :math:`k_r \geq 1` per
    column (:obj:`k`, of maximum :obj:`k_max`): :math:`\min(\deg_r, k_r)`
    distinct in-neighbours (or :math:`k_r` draws with :obj:`replace`) for
    every :obj:`cols[r]`, in :obj:`k_max` vector steps for all rows at once;
    returns :obj:`(pos, tgt)` as :func:`sample_one_hop`."""
    return sample_rows(csc.colptr, cols, k, k_max, replace, generator)


def _weighted_rows(start: Tensor, deg: Tensor, k: Union[int, Tensor], k_max: int, weight: Tensor,
                   replace: bool, generator: Optional[torch.Generator]) -> Tuple[Tensor, Tensor]:
    # Weighted draws over each row's deg positions from start (the whole row is expanded).
    n, device = start.numel(), start.device
    pos, seg = expand_segments(start, deg)
    w = weight.index_select(0, pos).to(torch.float64)
    positive = w > 0
    if isinstance(k, int) and k < 0:  # all neighbours of positive weight
        keep = positive.nonzero().view(-1)
        return pos.index_select(0, keep), seg.index_select(0, keep)
    k_row = k if isinstance(k, Tensor) else torch.full((n,), k, dtype=torch.int64, device=device)
    first = torch.cumsum(deg, 0) - deg  # first expanded slot of every row
    if replace:
        # Inverse CDF: k_r independent draws with P(i) = w_i / sum(w) from each row.
        cw = torch.cumsum(w, 0)
        safe_first = first.clamp(max=max(pos.numel() - 1, 0))
        base = (cw - w).index_select(0, safe_first) if pos.numel() else torch.zeros(n, dtype=torch.float64,
                                                                                   device=device)
        total_w = torch.zeros(n, dtype=torch.float64, device=device).index_add_(0, seg, w)
        count = torch.where(total_w > 0, k_row, 0)
        rand = torch.rand((n, k_max), dtype=torch.float64, device=device, generator=generator)
        slot = torch.arange(k_max, device=device)
        take = (slot < count.unsqueeze(1)).view(-1).nonzero().view(-1)
        rows = torch.div(take, k_max, rounding_mode="floor")
        target = base.index_select(0, rows) + rand.view(-1).index_select(0, take) * total_w.index_select(0, rows)
        at = torch.searchsorted(cw, target, right=True)
        # Guard the rounding at the row's end: never past its last positive weight.
        last = torch.full((n,), -1, dtype=torch.int64, device=device).scatter_reduce_(
            0, seg, torch.where(positive, torch.arange(pos.numel(), device=device), -1), reduce="amax")
        at = torch.minimum(torch.maximum(at, first.index_select(0, rows)), last.index_select(0, rows))
        return pos.index_select(0, at), rows
    # Efraimidis-Spirakis: the k smallest keys E_i / w_i (E_i ~ Exp(1)) are distributed as k
    # successive draws without replacement, each proportional to the remaining weights.
    u = torch.rand(pos.numel(), dtype=torch.float64, device=device, generator=generator)
    key = torch.where(positive, -torch.log1p(-u) / w, float("inf"))
    order = torch.sort(key).indices
    order = order.index_select(0, torch.sort(seg.index_select(0, order), stable=True).indices)
    npos = torch.zeros(n, dtype=torch.int64, device=device).index_add_(0, seg, positive.to(torch.int64))
    count = torch.minimum(npos, k_row)
    seg_sorted = seg.index_select(0, order)
    rank = torch.arange(pos.numel(), device=device) - first.index_select(0, seg_sorted)
    keep = (rank < count.index_select(0, seg_sorted)).nonzero().view(-1)
    return pos.index_select(0, order.index_select(0, keep)), seg_sorted.index_select(0, keep)


def sample_rows(
    colptr: Tensor,
    cols: Tensor,
    k: Union[int, Tensor],
    k_max: Optional[int] = None,
    replace: bool = False,
    generator: Optional[torch.Generator] = None,
    deg: Optional[Tensor] = None,
    weight: Optional[Tensor] = None,
    strategy: str = "uniform",
) -> Tuple[Tensor, Tensor]:
    r"""One-hop sampling of the columns :obj:`cols` of a CSC layout with every
    :class:`~torch_geometric.loader.NeighborLoader` option: for row
    :math:`r`, the candidates are the first :obj:`deg[r]` positions of column
    :obj:`cols[r]` (all of them when :obj:`deg` is :obj:`None`; a temporal
    sampler passes the number of neighbours not newer than the seed, the
    column being sorted by time), of which it takes

    * :obj:`k = -1`: all (with :obj:`weight`, all of positive weight);
    * :obj:`strategy="last"`: the last :math:`\min(\deg_r, k)` (the most recent);
    * :obj:`weight` given, :obj:`replace=False`: :math:`\min(k, |\{w > 0\}|)`
      successive draws without replacement, each proportional to the weight
      of the candidates not drawn yet (the distribution of
      :obj:`torch.multinomial(w, k, replacement=False)`), by
      Efraimidis–Spirakis keys :math:`E_i / w_i`, :math:`E_i \sim
      \mathrm{Exp}(1)`: the :math:`k` smallest keys of every row;
    * :obj:`weight` given, :obj:`replace=True`: :math:`k` independent draws
      with :math:`P(i) = w_i / \sum_j w_j` (inverse CDF);
    * otherwise :math:`\min(\deg_r, k)` uniform distinct candidates
      (Floyd's algorithm) or :math:`k` uniform draws with :obj:`replace`.

    Zero-weight candidates are never drawn.

    Args:
        colptr (torch.Tensor): Column offsets of the layout.
        cols (torch.Tensor): The columns to sample, shape :obj:`[n]`.
        k (int or torch.Tensor): The fanout, one int (:obj:`-1`: all) or one
            per row (each :obj:`>= 1`).
        k_max (int, optional): :obj:`k.max()` when :obj:`k` is a tensor.
        replace (bool, optional): Sample with replacement. (default: :obj:`False`)
        generator (torch.Generator, optional): Random number generator.
        deg (torch.Tensor, optional): Candidates per row. (default: the degree)
        weight (torch.Tensor, optional): Weight of every CSC position.
        strategy (str, optional): :obj:`"uniform"` or :obj:`"last"`.

    Returns:
        :obj:`(pos, tgt)` as in :func:`sample_one_hop`, grouped by :obj:`tgt`.
    """
    if cols.numel() == 0 or (isinstance(k, int) and k == 0):
        empty = torch.empty(0, dtype=torch.int64, device=colptr.device)
        return empty, empty
    start = colptr.index_select(0, cols)
    if deg is None:
        deg = colptr.index_select(0, cols + 1) - start
    if k_max is None:
        k_max = int(k.max()) if isinstance(k, Tensor) else k
    if weight is not None and strategy != "last":
        return _weighted_rows(start, deg, k, k_max, weight, replace, generator)
    if isinstance(k, int) and k < 0:
        return expand_segments(start, deg)
    if strategy == "last":
        count = torch.minimum(deg, k if isinstance(k, Tensor) else torch.full_like(deg, k))
        return expand_segments(start + deg - count, count)
    return _floyd_rows(start, deg, k, k_max, replace, generator)
