r"""Masks for sparse training: which tensors are masked, how dense each layer is, which
entries are kept.

Layer-wise densities follow one of two rules:

* ``"uniform"``: every masked tensor keeps the same fraction :math:`1 - s` of its entries.
* ``"erk"``: Erdős–Rényi-Kernel densities, from the `"Rigging the Lottery: Making All
  Tickets Winners" <https://arxiv.org/abs/1911.11134>`_ paper (Evci et al., ICML 2020),
  extending the Erdős–Rényi rule of `"Scalable Training of Artificial Neural Networks with
  Adaptive Sparse Connectivity inspired by Network Science"
  <https://arxiv.org/abs/1707.04780>`_ (Mocanu et al., 2018). A tensor of shape
  :math:`(n_1, \ldots, n_k)` gets density

  .. math::
      d_l = \min\Big(1,\; \epsilon \Big(\frac{\sum_i n_i}{\prod_i n_i}\Big)^{p}\Big),

  with :math:`p = 1` (``power_scale``) and :math:`\epsilon` chosen so that the kept entries
  add up to :math:`(1 - s) \sum_l |\theta_l|`. Layers that would get :math:`d_l > 1` are made
  dense and :math:`\epsilon` is solved again over the others (largest ratio first).

Magnitude-based masks may also use ``"global"``: one threshold over all masked tensors.

A layer keeps :math:`k_l = \max(1, \mathrm{round}(d_l |\theta_l|))` entries (never
empty), so the achieved per-layer sparsity is within one weight of the target.
"""
from __future__ import annotations

import math
from typing import Dict, List, Mapping, Optional, Sequence, Tuple

import torch
from torch import Tensor

from pyg_ham.errors import ConfigError
from pyg_ham.optim.groups import Selector, as_predicate

__all__ = [
    "DENSITY_RULES", "MAGNITUDE_RULES", "select_parameters", "uniform_densities", "erk_densities",
    "layer_densities", "kept_count", "random_mask", "topk_mask", "magnitude_masks",
]

#: Rules for layer-wise densities.
DENSITY_RULES = ("uniform", "erk")
#: Rules for magnitude pruning: a layer-wise density rule, or one global threshold.
MAGNITUDE_RULES = ("uniform", "erk", "global")


def select_parameters(model: torch.nn.Module, select: Selector = None) -> List[Tuple[str, torch.nn.Parameter]]:
    """The trainable parameters of :obj:`model` that get a mask, as ``(name, param)`` pairs.

    The default is the rule HAM uses (:func:`~pyg_ham.optim.is_weight_matrix`, tensors with
    ``ndim >= 2``), whether or not the optimizer uses HAM, so that baseline and HAM runs are
    sparsified identically.

    Args:
        model (torch.nn.Module): the model.
        select (Selector): ``None`` for the default rule, :mod:`fnmatch` name pattern(s), or a
            predicate ``f(name, param) -> bool``. (default: :obj:`None`)
    """
    keep = as_predicate(select)
    out = [(name, p) for name, p in model.named_parameters() if p.requires_grad and keep(name, p)]
    if not out:
        raise ConfigError("select matches no trainable parameter of the model; use None (weights with ndim >= 2), "
                          "name patterns such as '*.weight', or a predicate f(name, param) -> bool")
    return out


def uniform_densities(shapes: Mapping[str, Sequence[int]], sparsity: float) -> Dict[str, float]:
    """The same density :math:`1 - s` for every tensor."""
    return {name: 1.0 - sparsity for name in shapes}


def erk_densities(shapes: Mapping[str, Sequence[int]], sparsity: float, power_scale: float = 1.0
                  ) -> Dict[str, float]:
    r"""Erdős–Rényi-Kernel densities (Evci et al., 2020) for tensors of the given shapes.

    Args:
        shapes (Mapping[str, Sequence[int]]): name → shape of each masked tensor.
        sparsity (float): overall target sparsity :math:`s \in [0, 1)`.
        power_scale (float): exponent :math:`p` of the ratio :math:`\sum_i n_i / \prod_i n_i`
            (:obj:`0` gives uniform densities). (default: :obj:`1.0`)
    """
    numel = {n: math.prod(s) for n, s in shapes.items()}
    raw = {n: (sum(s) / math.prod(s)) ** power_scale for n, s in shapes.items()}
    total_kept = (1.0 - sparsity) * sum(numel.values())
    dense: set = set()
    eps = 0.0
    while True:
        sparse = [n for n in shapes if n not in dense]
        if not sparse:
            break
        budget = total_kept - sum(numel[n] for n in dense)
        eps = budget / sum(raw[n] * numel[n] for n in sparse)
        largest = max(raw[n] for n in sparse)
        if eps * largest <= 1.0:
            break
        dense.update(n for n in sparse if raw[n] == largest)
    return {n: 1.0 if n in dense else eps * raw[n] for n in shapes}


def layer_densities(rule: str, shapes: Mapping[str, Sequence[int]], sparsity: float,
                    power_scale: float = 1.0) -> Dict[str, float]:
    """Densities by rule name: ``"uniform"`` or ``"erk"``."""
    if rule == "uniform":
        return uniform_densities(shapes, sparsity)
    if rule == "erk":
        return erk_densities(shapes, sparsity, power_scale)
    raise ConfigError(f"distribution must be one of {', '.join(DENSITY_RULES)}, got {rule!r}")


def kept_count(density: float, numel: int) -> int:
    """Entries a tensor of :obj:`numel` entries keeps at :obj:`density`: ``round``, at least 1."""
    return min(numel, max(1, int(round(density * numel))))


def random_mask(shape: Sequence[int], k: int, generator: torch.Generator,
                device: Optional[torch.device] = None) -> Tensor:
    """A boolean mask with exactly :obj:`k` ``True`` entries, uniformly at random.

    Drawn on the CPU with :obj:`generator` (the same mask on every device), then moved.
    """
    numel = math.prod(shape)
    mask = torch.zeros(numel, dtype=torch.bool)
    mask[torch.randperm(numel, generator=generator)[:k]] = True
    return mask.view(*shape).to(device)


def topk_mask(score: Tensor, k: int) -> Tensor:
    """A boolean mask of :obj:`score`'s shape keeping its :obj:`k` largest entries."""
    flat = score.reshape(-1)
    mask = torch.zeros(flat.shape, dtype=torch.bool, device=score.device)
    if k > 0:
        mask[torch.topk(flat, k, sorted=False).indices] = True
    return mask.view(score.shape)


def _magnitude_score(p: Tensor, allowed: Optional[Tensor]) -> Tensor:
    score = p.detach().abs().float()
    if allowed is not None:  # entries outside ``allowed`` can never be kept
        score = score.masked_fill(~allowed, -1.0)
    return score


def magnitude_masks(params: Mapping[str, Tensor], sparsity: float, rule: str = "uniform", *,
                    allowed: Optional[Mapping[str, Tensor]] = None, power_scale: float = 1.0
                    ) -> Dict[str, Tensor]:
    r"""Keep the largest-magnitude entries: the masks of magnitude pruning.

    Args:
        params (Mapping[str, Tensor]): name → tensor to prune.
        sparsity (float): overall target sparsity :math:`s \in [0, 1)`.
        rule (str): ``"uniform"`` (each tensor keeps its largest :math:`(1-s)` fraction),
            ``"erk"`` (ERK densities per tensor) or ``"global"`` (the largest
            :math:`(1-s)\sum_l|\theta_l|` entries over all tensors). (default: :obj:`"uniform"`)
        allowed (Mapping[str, Tensor], optional): boolean masks; entries outside them are
            never kept (so that gradual pruning never regrows). (default: :obj:`None`)
        power_scale (float): ERK exponent. (default: :obj:`1.0`)
    """
    allowed = allowed or {}
    if rule == "global":
        scores = {n: _magnitude_score(p, allowed.get(n)) for n, p in params.items()}
        device = next(iter(scores.values())).device
        flat = torch.cat([s.reshape(-1).to(device) for s in scores.values()])
        k = kept_count(1.0 - sparsity, flat.numel())
        keep = topk_mask(flat, k)
        out, offset = {}, 0
        for n, s in scores.items():
            out[n] = keep[offset:offset + s.numel()].view(s.shape).to(s.device)
            offset += s.numel()
        return out
    if rule not in DENSITY_RULES:
        raise ConfigError(f"distribution must be one of {', '.join(MAGNITUDE_RULES)}, got {rule!r}")
    densities = layer_densities(rule, {n: tuple(p.shape) for n, p in params.items()}, sparsity, power_scale)
    return {n: topk_mask(_magnitude_score(p, allowed.get(n)), kept_count(densities[n], p.numel()))
            for n, p in params.items()}
