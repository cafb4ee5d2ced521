r"""``build_sparsifier``: the one constructor that trainers and the CLI use."""
from __future__ import annotations

import inspect
from typing import Any, Dict, Optional, Type

import torch
from torch.optim import Optimizer

from pyg_ham.errors import ConfigError
from pyg_ham.optim.groups import Selector
from pyg_ham.sparse.base import Sparsifier
from pyg_ham.sparse.methods import ACDC, GMP, ERKPruning, MagnitudePruning, RandomPruning, RigL

__all__ = ["build_sparsifier", "sparsifier_class", "SPARSIFIERS", "SPARSIFIER_OPTIONS"]

_CLASSES: Dict[str, Type[Sparsifier]] = {cls.name: cls for cls in (
    RandomPruning, ERKPruning, MagnitudePruning, GMP, ACDC, RigL)}

#: Names accepted by :func:`build_sparsifier`.
SPARSIFIERS = tuple(_CLASSES)

_COMMON = ("self", "model", "optimizer", "sparsity", "total_steps", "select", "seed")


def _options(cls: Type[Sparsifier]) -> Dict[str, Any]:
    return {name: p.default for name, p in inspect.signature(cls.__init__).parameters.items()
            if name not in _COMMON}


#: The method-specific options of each sparsifier and their defaults.
SPARSIFIER_OPTIONS: Dict[str, Dict[str, Any]] = {name: _options(cls) for name, cls in _CLASSES.items()}


def sparsifier_class(name: str) -> Type[Sparsifier]:
    """The sparsifier class registered as :obj:`name` (case-insensitive)."""
    cls = _CLASSES.get(str(name).lower()) if isinstance(name, str) else None
    if cls is None:
        raise ConfigError(f"unknown sparsifier {name!r}; choose one of: {', '.join(SPARSIFIERS)}")
    return cls


def build_sparsifier(
    name: str,
    model: torch.nn.Module,
    optimizer: Optional[Optimizer],
    sparsity: float,
    total_steps: int,
    *,
    select: Selector = None,
    seed: int = 0,
    **options: Any,
) -> Sparsifier:
    r"""Build a sparsifier and apply its initial masks to :obj:`model` (in place) and to the
    optimizer state.

    Args:
        name (str): one of :data:`SPARSIFIERS`: ``"random"``, ``"erk"``, ``"magnitude"``
            (pruning at initialisation), ``"gmp"`` (gradual magnitude pruning), ``"acdc"``
            (alternating compressed/decompressed phases), ``"rigl"`` (prune and regrow).
        model (torch.nn.Module): the model (already initialised).
        optimizer (torch.optim.Optimizer): the optimizer over :obj:`model`, plain or HAM.
        sparsity (float): target fraction of zeros in the masked tensors, in :math:`[0, 1)`.
        total_steps (int): optimizer steps of the whole training (``epochs * steps_per_epoch``).
        select (Selector): which tensors are masked (default: :obj:`None`, HAM's rule:
            ``ndim >= 2``, with or without HAM).
        seed (int): seed of the sparsifier's random masks. (default: :obj:`0`)
        **options: method options, see :data:`SPARSIFIER_OPTIONS` and each class.

    Raises:
        ConfigError: for an unknown name or option, or an invalid value.
    """
    cls = sparsifier_class(name)
    allowed = SPARSIFIER_OPTIONS[cls.name]
    unknown = sorted(set(options) - set(allowed))
    if unknown:
        raise ConfigError(f"unknown option {unknown[0]!r} for sparsifier {cls.name!r}; "
                          f"allowed: {', '.join(allowed) or 'none'}")
    return cls(model, optimizer, sparsity, total_steps, select=select, seed=seed, **options)
