r"""Gradual magnitude pruning (GMP)."""
from __future__ import annotations

from typing import Any, Dict, Optional

import torch
from torch.optim import Optimizer

from pyg_ham.errors import ConfigError
from pyg_ham.optim.groups import Selector
from pyg_ham.sparse.base import Sparsifier
from pyg_ham.sparse.masks import MAGNITUDE_RULES, magnitude_masks
from pyg_ham.sparse.schedules import auto_interval, fraction_to_step, gmp_sparsity, is_gmp_step
from pyg_ham.validation import check_choice, check_int, check_number

__all__ = ["GMP"]


class GMP(Sparsifier):
    r"""Gradual magnitude pruning, from the `"To prune, or not to prune: exploring the
    efficacy of pruning for model compression" <https://arxiv.org/abs/1710.01878>`_ paper
    (Zhu & Gupta, 2017).

    Training starts dense (or at :obj:`initial_sparsity`); from step :math:`t_0` to
    :math:`t_1`, every :math:`\Delta t` steps (and at :math:`t_1`), the smallest-magnitude
    weights are pruned up to the cubic schedule

    .. math::
        s_t = s_f + (s_i - s_f) \Big(1 - \frac{t - t_0}{t_1 - t_0}\Big)^3,

    and the remaining steps fine-tune the final mask at :math:`s_f` (the target sparsity).
    Pruned weights are never regrown, so masks only shrink.

    Args:
        model, optimizer, sparsity, total_steps, select, seed, mask_state_every_step: see
            :class:`~pyg_ham.sparse.Sparsifier`.
        initial_sparsity (float): :math:`s_i`. (default: :obj:`0.0`)
        start (float): :math:`t_0` as a fraction of :obj:`total_steps`. (default: :obj:`0.1`)
        end (float): :math:`t_1` as a fraction of :obj:`total_steps`. (default: :obj:`0.75`)
        interval (int, optional): :math:`\Delta t`, steps between pruning steps; :obj:`None`
            gives about 20 pruning steps, at most 100 steps apart. (default: :obj:`None`)
        distribution (str): ``"uniform"`` (every tensor at :math:`s_t`), ``"erk"`` or
            ``"global"`` (one magnitude threshold). (default: :obj:`"uniform"`)
        power_scale (float): the ERK exponent. (default: :obj:`1.0`)
    """

    name = "gmp"

    def __init__(self, model: torch.nn.Module, optimizer: Optional[Optimizer], sparsity: float, total_steps: int,
                 *, select: Selector = None, seed: int = 0, initial_sparsity: float = 0.0, start: float = 0.1,
                 end: float = 0.75, interval: Optional[int] = None, distribution: str = "uniform",
                 power_scale: float = 1.0, mask_state_every_step: bool = False) -> None:
        sparsity = float(check_number("sparsity", sparsity, 0, 1, high_open=True))
        self.initial_sparsity = float(check_number("initial_sparsity", initial_sparsity, 0, 1, high_open=True))
        start = float(check_number("start", start, 0, 1))
        end = float(check_number("end", end, 0, 1))
        if end < start:
            raise ConfigError(f"end must be >= start (fractions of training), got start={start}, end={end}")
        if self.initial_sparsity > sparsity:
            raise ConfigError(f"initial_sparsity must be <= sparsity, got {self.initial_sparsity} > {sparsity}")
        self.distribution = check_choice("distribution", distribution, MAGNITUDE_RULES)
        self.power_scale = float(check_number("power_scale", power_scale, 0))
        self.start_step = fraction_to_step(start, check_int("total_steps", total_steps))
        self.end_step = fraction_to_step(end, total_steps)
        self.interval = check_int("interval", interval, allow_none=True) or auto_interval(
            self.end_step - self.start_step)
        self._current = self.initial_sparsity
        super().__init__(model, optimizer, sparsity, total_steps, select=select, seed=seed,
                         mask_state_every_step=mask_state_every_step)

    def scheduled_sparsity(self, step: int) -> float:
        """:math:`s_t` at :obj:`step`."""
        return gmp_sparsity(step, self.sparsity, self.initial_sparsity, self.start_step, self.end_step)

    @property
    def current_sparsity(self) -> float:
        return self._current

    def _prune(self, step: int) -> None:
        self._current = self.scheduled_sparsity(step)
        self.set_masks(magnitude_masks(self.params, self._current, self.distribution, allowed=self.masks,
                                       power_scale=self.power_scale))

    def _init_masks(self) -> None:
        if self.initial_sparsity > 0 or is_gmp_step(0, self.start_step, self.end_step, self.interval):
            self._prune(0)

    def _update(self, step: int) -> None:
        if is_gmp_step(step, self.start_step, self.end_step, self.interval):
            self._prune(step)

    def _extra_state(self) -> Dict[str, Any]:
        return {"current": self._current}

    def _load_extra_state(self, state: Dict[str, Any]) -> None:
        self._current = float(state.get("current", self._current))
