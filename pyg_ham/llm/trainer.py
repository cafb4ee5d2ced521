r"""HAM inside the Hugging Face :class:`transformers.Trainer`.

:class:`HAMTrainer` (or :class:`HAMTrainerMixin` for your own ``Trainer`` subclass, e.g.
TRL's) lets the ``Trainer`` build its optimizer as usual — from ``TrainingArguments.optim``,
``learning_rate``, ``weight_decay`` and its decay/no-decay groups — and then

1. splits each of those groups into the tensors that get the hyperbolic step and the others
   (:func:`~pyg_ham.llm.selection.split_param_groups`, before the LR scheduler is created, so
   the scheduler drives the ``lr`` of exactly the groups the step reads), and
2. attaches HAM to that optimizer object with :func:`~pyg_ham.optim.attach_ham` (a step
   post-hook), so ``accelerate``'s wrapping, the LR scheduler, gradient accumulation,
   gradient clipping and mixed precision (the step is skipped with the base step when the
   gradient scaler finds an overflow) keep working unchanged. The step uses the gradient the
   base step used: accumulated, clipped and unscaled.

An optimizer passed in yourself (``optimizers=(opt, sched)``) keeps its groups: HAM is
attached with each group's own ``ham`` key (``"auto"``, i.e. ``ndim >= 2``, where unset); a
:class:`~pyg_ham.optim.HAM` instance is used as it is. DeepSpeed builds its own optimizer
and is not supported.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Dict, List, Optional, Type

import torch
from torch.optim import Optimizer

from pyg_ham.errors import ConfigError
from pyg_ham.llm._deps import require
from pyg_ham.llm.selection import llm_ham_selector, split_param_groups
from pyg_ham.optim.groups import Selector, ham_selects
from pyg_ham.optim.ham import HAM, HAM_DEFAULTS, attach_ham

__all__ = ["HAMArguments", "HAMTrainerMixin", "HAMTrainer", "get_ham_trainer_class", "unwrap_optimizer"]

_MARK = "_pyg_ham_handle"


@dataclass
class HAMArguments:
    r"""HAM's settings for :class:`HAMTrainer` (next to ``TrainingArguments``).

    Args:
        enabled (bool): attach HAM; :obj:`False` gives the plain ``Trainer``. (default: :obj:`True`)
        alpha (float): HAM's :math:`\alpha`. (default: :obj:`200.0`)
        beta (float): HAM's :math:`\beta`. (default: :obj:`1e-3`)
        max_exponent (float, optional): clamp of the exponent (see :class:`~pyg_ham.optim.HAM`).
        include_embeddings (bool): the embedding matrices get the step too. (default: :obj:`False`)
        include_lm_head (bool): the LM head gets the step too. (default: :obj:`False`)
        select (Selector, optional): replaces the default selection (see
            :func:`~pyg_ham.llm.llm_ham_selector`).
        exclude (Selector, optional): removed from the selection.
        implementation (str, optional): ``"for-loop"``, ``"foreach"``, ``"fused"`` or :obj:`None`.
    """

    enabled: bool = True
    alpha: float = HAM_DEFAULTS["ham_alpha"]
    beta: float = HAM_DEFAULTS["ham_beta"]
    max_exponent: Optional[float] = HAM_DEFAULTS["ham_max_exponent"]
    include_embeddings: bool = False
    include_lm_head: bool = False
    select: Selector = None
    exclude: Selector = None
    implementation: Optional[str] = None

    def to_dict(self) -> Dict[str, Any]:
        out = asdict(self)
        for key in ("select", "exclude"):
            if callable(out[key]):
                out[key] = getattr(out[key], "__name__", repr(out[key]))
        return out


def unwrap_optimizer(optimizer: Any) -> Optimizer:
    """The innermost torch optimizer behind ``accelerate``/``Trainer`` wrappers (``.optimizer``)."""
    seen = 0
    while not isinstance(optimizer, HAM) and hasattr(optimizer, "optimizer") and seen < 8:
        inner = optimizer.optimizer
        if not isinstance(inner, Optimizer):
            break
        optimizer, seen = inner, seen + 1
    return optimizer


class HAMTrainerMixin:
    r"""Adds HAM to a :class:`transformers.Trainer` subclass: put it first in the bases,
    ``class MyTrainer(HAMTrainerMixin, SFTTrainer)``, and pass ``ham_args=HAMArguments(...)``.

    Attributes:
        ham_args (HAMArguments): the settings.
        ham_selected (list of str): names of the tensors that get the hyperbolic step (set
            when the optimizer is created).
    """

    def __init__(self, *args: Any, ham_args: Optional[HAMArguments] = None, **kwargs: Any) -> None:
        if ham_args is not None and not isinstance(ham_args, HAMArguments):
            raise ConfigError(f"ham_args must be a HAMArguments, got {type(ham_args).__name__}")
        self.ham_args = ham_args if ham_args is not None else HAMArguments()
        self.ham_selected: List[str] = []
        super().__init__(*args, **kwargs)
        if self.ham_args.enabled and getattr(self, "is_deepspeed_enabled", False):
            raise ConfigError("HAM with DeepSpeed is not supported (DeepSpeed builds its own optimizer)")

    def create_optimizer(self, model: Optional[torch.nn.Module] = None) -> Optimizer:
        built_here = getattr(self, "optimizer", None) is None
        optimizer = super().create_optimizer(model)  # type: ignore[misc]
        if not self.ham_args.enabled:
            return optimizer
        inner = unwrap_optimizer(optimizer)
        if isinstance(inner, HAM) or getattr(inner, _MARK, None) is not None:
            return optimizer  # HAM already there (a HAM instance, or attached on an earlier call)
        opt_model = self.model if model is None else model  # type: ignore[attr-defined]
        args = self.ham_args
        if built_here:
            predicate = llm_ham_selector(opt_model, include_embeddings=args.include_embeddings,
                                         include_lm_head=args.include_lm_head, select=args.select,
                                         exclude=args.exclude)
            self.ham_selected = split_param_groups(inner, opt_model.named_parameters(), predicate)
        else:
            names = {id(p): n for n, p in opt_model.named_parameters()}
            self.ham_selected = [names.get(id(p), "") for g in inner.param_groups for p in g["params"]
                                 if ham_selects(g.get("ham", "auto"), p)]
        try:
            handle = attach_ham(inner, args.alpha, args.beta, max_exponent=args.max_exponent,
                                implementation=args.implementation)
        except ValueError as exc:
            raise ConfigError(str(exc)) from None
        setattr(inner, _MARK, handle)
        return optimizer


_TRAINER_CLASS: Optional[type] = None


def get_ham_trainer_class() -> Type[Any]:
    """``HAMTrainer``: ``HAMTrainerMixin`` on :class:`transformers.Trainer` (built on first use)."""
    global _TRAINER_CLASS
    if _TRAINER_CLASS is None:
        transformers = require("transformers")
        _TRAINER_CLASS = type("HAMTrainer", (HAMTrainerMixin, transformers.Trainer), {
            "__module__": __name__,
            "__qualname__": "HAMTrainer",
            "__doc__": "A :class:`transformers.Trainer` with HAM around the optimizer it builds "
                       "(see :class:`HAMTrainerMixin`; extra argument ``ham_args``).",
        })
    return _TRAINER_CLASS


def __getattr__(name: str) -> Any:
    if name == "HAMTrainer":
        return get_ham_trainer_class()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
