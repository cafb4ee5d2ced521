r"""Alternating Compressed/DeCompressed training (AC/DC)."""
from __future__ import annotations

from typing import Any, Dict, Optional

import torch
from torch.optim import Optimizer

from pyg_ham.errors import ConfigError
from pyg_ham.optim.groups import Selector
from pyg_ham.sparse.base import Sparsifier
from pyg_ham.sparse.masks import MAGNITUDE_RULES, magnitude_masks
from pyg_ham.sparse.schedules import acdc_compressed, fraction_to_step
from pyg_ham.validation import check_choice, check_int, check_number

__all__ = ["ACDC"]


class ACDC(Sparsifier):
    r"""Alternating Compressed/DeCompressed training, from the `"AC/DC: Alternating
    Compressed/DeCompressed Training of Deep Neural Networks"
    <https://arxiv.org/abs/2106.12379>`_ paper (Peste et al., NeurIPS 2021).

    Schedule over :math:`T` steps::

        [ dense warm-up | C | D | C | D | ... | final C ]
          warmup·T        phase·T each          final·T

    At the start of every compressed phase (C) the weights are magnitude-pruned to the
    target sparsity and the mask is held for the phase; in decompressed phases (D) the masks
    are all ``True`` (no mask) and the pruned weights, which restart from zero with zero
    optimizer state, train again. A C phase that runs into the final C phase keeps its mask.

    Args:
        model, optimizer, sparsity, total_steps, select, seed, mask_state_every_step: see
            :class:`~pyg_ham.sparse.Sparsifier`.
        warmup (float): dense warm-up as a fraction of training. (default: :obj:`0.1`)
        phase (float): length of each C and D phase as a fraction of training.
            (default: :obj:`0.05`)
        final (float): length of the final compressed phase. (default: :obj:`0.1`)
        distribution (str): ``"uniform"`` (every tensor at the target), ``"erk"`` or
            ``"global"`` (one magnitude threshold, as in the paper). (default: :obj:`"uniform"`)
        power_scale (float): the ERK exponent. (default: :obj:`1.0`)
    """

    name = "acdc"

    def __init__(self, model: torch.nn.Module, optimizer: Optional[Optimizer], sparsity: float, total_steps: int,
                 *, select: Selector = None, seed: int = 0, warmup: float = 0.1, phase: float = 0.05,
                 final: float = 0.1, distribution: str = "uniform", power_scale: float = 1.0,
                 mask_state_every_step: bool = False) -> None:
        total_steps = check_int("total_steps", total_steps)
        warmup = float(check_number("warmup", warmup, 0, 1))
        final = float(check_number("final", final, 0, 1))
        phase = float(check_number("phase", phase, 0, 1))
        if phase == 0.0:
            raise ConfigError(f"phase must be a number in (0, 1], got {phase!r}")
        if warmup + final > 1.0:
            raise ConfigError(f"warmup + final must be <= 1 (fractions of training), got {warmup} + {final}")
        self.distribution = check_choice("distribution", distribution, MAGNITUDE_RULES)
        self.power_scale = float(check_number("power_scale", power_scale, 0))
        self.warmup_steps = fraction_to_step(warmup, total_steps)
        self.phase_steps = max(1, fraction_to_step(phase, total_steps))
        self.final_start = total_steps - fraction_to_step(final, total_steps)
        self.compressed = False
        super().__init__(model, optimizer, sparsity, total_steps, select=select, seed=seed,
                         mask_state_every_step=mask_state_every_step)

    def is_compressed(self, step: int) -> bool:
        """Whether :obj:`step` (the mask in force for the next update) is in a C phase."""
        return acdc_compressed(step, self.warmup_steps, self.phase_steps, self.final_start)

    @property
    def current_sparsity(self) -> float:
        return self.sparsity if self.compressed else 0.0

    def _init_masks(self) -> None:
        self._update(0)

    def _update(self, step: int) -> None:
        compressed = self.is_compressed(step)
        if compressed and not self.compressed:
            self.set_masks(magnitude_masks(self.params, self.sparsity, self.distribution,
                                           power_scale=self.power_scale))
        elif not compressed and self.compressed:
            self.set_masks({n: torch.ones_like(m) for n, m in self.masks.items()})
        self.compressed = compressed

    def _extra_state(self) -> Dict[str, Any]:
        return {"compressed": self.compressed}

    def _load_extra_state(self, state: Dict[str, Any]) -> None:
        self.compressed = bool(state.get("compressed", self.compressed))
