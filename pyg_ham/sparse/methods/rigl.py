r"""Rigged Lottery (RigL): dynamic sparse training at constant sparsity."""
from __future__ import annotations

from typing import Any, Dict, Optional

import torch
from torch.optim import Optimizer

from pyg_ham.optim.groups import Selector
from pyg_ham.sparse.base import Sparsifier
from pyg_ham.sparse.masks import DENSITY_RULES, kept_count, layer_densities, random_mask, topk_mask
from pyg_ham.sparse.schedules import auto_interval, cosine_drop_fraction, fraction_to_step
from pyg_ham.validation import check_choice, check_int, check_number

__all__ = ["RigL"]


class RigL(Sparsifier):
    r"""RigL, from the `"Rigging the Lottery: Making All Tickets Winners"
    <https://arxiv.org/abs/1911.11134>`_ paper (Evci et al., ICML 2020).

    Starts from a random mask with ERK (or uniform) layer-wise densities. Every
    :math:`\Delta T` steps until :math:`T_{end}`, each masked tensor with :math:`n_l` active
    entries

    1. drops the :math:`k = \lfloor f(t)\, n_l \rfloor` active entries of smallest
       :math:`|w|`,
    2. grows the :math:`k` entries outside the remaining mask with the largest dense
       gradient :math:`|\nabla_w L|` of the latest batch (recorded by :meth:`before_step`);
       new connections start from zero weight and zero optimizer state,

    with the cosine-decayed update fraction
    :math:`f(t) = \frac{\alpha}{2}\big(1 + \cos(\pi t / T_{end})\big)`. The number of
    active entries of every tensor stays constant.

    Args:
        model, optimizer, sparsity, total_steps, select, seed, mask_state_every_step: see
            :class:`~pyg_ham.sparse.Sparsifier`.
        drop_fraction (float): the initial update fraction :math:`\alpha`. (default: :obj:`0.3`)
        interval (int, optional): :math:`\Delta T`, steps between mask updates; :obj:`None`
            gives about 20 updates, at most 100 steps apart (the paper's 100 on long runs).
            (default: :obj:`None`)
        end (float): :math:`T_{end}` as a fraction of training. (default: :obj:`0.75`)
        distribution (str): initial layer-wise densities, ``"erk"`` or ``"uniform"``.
            (default: :obj:`"erk"`)
        power_scale (float): the ERK exponent. (default: :obj:`1.0`)
    """

    name = "rigl"

    def __init__(self, model: torch.nn.Module, optimizer: Optional[Optimizer], sparsity: float, total_steps: int,
                 *, select: Selector = None, seed: int = 0, drop_fraction: float = 0.3,
                 interval: Optional[int] = None, end: float = 0.75, distribution: str = "erk",
                 power_scale: float = 1.0, mask_state_every_step: bool = False) -> None:
        self.drop_fraction = float(check_number("drop_fraction", drop_fraction, 0, 1))
        self.end_step = fraction_to_step(float(check_number("end", end, 0, 1)), check_int("total_steps", total_steps))
        self.interval = check_int("interval", interval, allow_none=True) or auto_interval(self.end_step)
        self.distribution = check_choice("distribution", distribution, DENSITY_RULES)
        self.power_scale = float(check_number("power_scale", power_scale, 0))
        self.counts: Dict[str, int] = {}
        super().__init__(model, optimizer, sparsity, total_steps, select=select, seed=seed,
                         mask_state_every_step=mask_state_every_step)

    def is_update_step(self, step: int) -> bool:
        """Whether the masks are updated after step :obj:`step`."""
        return 0 < step < self.end_step and step % self.interval == 0

    def _wants_dense_grads(self, step: int) -> bool:
        return self.is_update_step(step)

    def _init_masks(self) -> None:
        densities = layer_densities(self.distribution, self.shapes(), self.sparsity, self.power_scale)
        self.counts = {n: kept_count(densities[n], p.numel()) for n, p in self.params.items()}
        self.set_masks({n: random_mask(p.shape, self.counts[n], self.generator, p.device)
                        for n, p in self.params.items()})

    def _update(self, step: int) -> None:
        if not self.is_update_step(step):
            return
        if self._dense_grads is None:
            raise RuntimeError("RigL needs the dense gradients: call before_step() after loss.backward() "
                               "and before optimizer.step()")
        fraction = cosine_drop_fraction(step, self.drop_fraction, self.end_step)
        new: Dict[str, torch.Tensor] = {}
        for n, p in self.params.items():
            active, mask = self.counts[n], self.masks[n]
            k = int(fraction * active)
            if k == 0 or active == p.numel():
                continue
            keep = topk_mask(p.detach().abs().float().masked_fill(~mask, -1.0), active - k)
            grad = self._dense_grads.get(n)
            score = torch.zeros(p.shape, device=p.device) if grad is None else grad.abs().float()
            grow = topk_mask(score.masked_fill(keep, -1.0), k)
            new[n] = keep | grow
        if new:
            self.set_masks(new)

    def _extra_state(self) -> Dict[str, Any]:
        return {"counts": dict(self.counts)}

    def _load_extra_state(self, state: Dict[str, Any]) -> None:
        self.counts = {n: int(c) for n, c in state["counts"].items()}
