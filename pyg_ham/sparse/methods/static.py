r"""Pruning at initialisation: a fixed mask chosen before training."""
from __future__ import annotations

from typing import Optional

import torch
from torch.optim import Optimizer

from pyg_ham.optim.groups import Selector
from pyg_ham.sparse.base import Sparsifier
from pyg_ham.sparse.masks import (
    DENSITY_RULES,
    MAGNITUDE_RULES,
    kept_count,
    layer_densities,
    magnitude_masks,
    random_mask,
)
from pyg_ham.validation import check_choice, check_number

__all__ = ["RandomPruning", "ERKPruning", "MagnitudePruning"]


class RandomPruning(Sparsifier):
    r"""Random pruning at initialisation: each masked tensor keeps a uniformly random subset
    of its entries, fixed for the whole of training (the "random" baseline of the HAM paper
    and of `"Rigging the Lottery" <https://arxiv.org/abs/1911.11134>`_, Evci et al., 2020).

    A tensor keeps :math:`k_l = \mathrm{round}(d_l |\theta_l|)` entries, with layer-wise
    densities :math:`d_l` from :obj:`distribution` (see :mod:`pyg_ham.sparse.masks`).

    Args:
        model, optimizer, sparsity, total_steps, select, seed, mask_state_every_step: see
            :class:`~pyg_ham.sparse.Sparsifier`.
        distribution (str): ``"uniform"`` (:math:`d_l = 1 - s`) or ``"erk"``.
            (default: :obj:`"uniform"`)
        power_scale (float): the ERK exponent. (default: :obj:`1.0`)
    """

    name = "random"
    default_distribution = "uniform"

    def __init__(self, model: torch.nn.Module, optimizer: Optional[Optimizer], sparsity: float, total_steps: int,
                 *, select: Selector = None, seed: int = 0, distribution: Optional[str] = None,
                 power_scale: float = 1.0, mask_state_every_step: bool = False) -> None:
        self.distribution = check_choice("distribution", distribution or self.default_distribution, DENSITY_RULES)
        self.power_scale = float(check_number("power_scale", power_scale, 0))
        super().__init__(model, optimizer, sparsity, total_steps, select=select, seed=seed,
                         mask_state_every_step=mask_state_every_step)

    def _init_masks(self) -> None:
        densities = layer_densities(self.distribution, self.shapes(), self.sparsity, self.power_scale)
        self.set_masks({n: random_mask(p.shape, kept_count(densities[n], p.numel()), self.generator, p.device)
                        for n, p in self.params.items()})


class ERKPruning(RandomPruning):
    r"""Random pruning at initialisation with Erdős–Rényi-Kernel layer-wise densities
    (Mocanu et al., 2018; Evci et al., 2020): :class:`RandomPruning` with
    ``distribution="erk"``; small layers stay denser than large ones.

    .. math::
        d_l = \min\Big(1, \epsilon \frac{\sum_i n_i}{\prod_i n_i}\Big),
        \quad \textstyle\sum_l d_l |\theta_l| = (1 - s) \sum_l |\theta_l|.

    Args: as :class:`RandomPruning` (default :obj:`distribution` ``"erk"``).
    """

    name = "erk"
    default_distribution = "erk"


class MagnitudePruning(Sparsifier):
    r"""Magnitude pruning at initialisation: keep the largest-:math:`|w|` entries of the
    initial weights, fixed for the whole of training.

    Args:
        model, optimizer, sparsity, total_steps, select, seed, mask_state_every_step: see
            :class:`~pyg_ham.sparse.Sparsifier`.
        distribution (str): ``"uniform"`` (each tensor keeps its largest :math:`1 - s`
            fraction), ``"erk"`` (ERK densities) or ``"global"`` (one threshold over all
            masked tensors). (default: :obj:`"uniform"`)
        power_scale (float): the ERK exponent. (default: :obj:`1.0`)
    """

    name = "magnitude"

    def __init__(self, model: torch.nn.Module, optimizer: Optional[Optimizer], sparsity: float, total_steps: int,
                 *, select: Selector = None, seed: int = 0, distribution: str = "uniform",
                 power_scale: float = 1.0, mask_state_every_step: bool = False) -> None:
        self.distribution = check_choice("distribution", distribution, MAGNITUDE_RULES)
        self.power_scale = float(check_number("power_scale", power_scale, 0))
        super().__init__(model, optimizer, sparsity, total_steps, select=select, seed=seed,
                         mask_state_every_step=mask_state_every_step)

    def _init_masks(self) -> None:
        self.set_masks(magnitude_masks(self.params, self.sparsity, self.distribution, power_scale=self.power_scale))
