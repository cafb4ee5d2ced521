"""Pieces every trainer shares: the optimizer from a config, the sparsifier, one update step."""
from __future__ import annotations

from typing import Any, Optional

import torch
from torch import Tensor

from pyg_ham.optim import build_optimizer
from pyg_ham.results import RunResult
from pyg_ham.train.config import ExperimentConfig

__all__ = ["make_optimizer", "make_sparsifier", "update", "fit_run"]


def make_optimizer(model: torch.nn.Module, cfg: ExperimentConfig) -> torch.optim.Optimizer:
    """``build_optimizer`` with the config's optimizer, lr, weight decay and HAM settings."""
    kwargs: dict = {}
    if cfg.optimizer.lower() == "sgd":
        kwargs["momentum"] = cfg.momentum
    return build_optimizer(model, cfg.optimizer, lr=cfg.lr, weight_decay=cfg.weight_decay, ham=cfg.ham,
                           alpha=cfg.alpha, beta=cfg.beta, max_exponent=cfg.max_exponent, **kwargs)


def make_sparsifier(model: torch.nn.Module, optimizer: torch.optim.Optimizer, cfg: ExperimentConfig,
                    total_steps: int, seed: int) -> Optional[Any]:
    """The config's sparsifier (``None`` when training dense)."""
    if not cfg.sparsifier or cfg.sparsity <= 0:
        return None
    from pyg_ham.sparse import build_sparsifier

    return build_sparsifier(cfg.sparsifier, model, optimizer, cfg.sparsity, total_steps, seed=seed)


def update(loss: Tensor, optimizer: torch.optim.Optimizer, sparsifier: Optional[Any] = None) -> None:
    """zero_grad, backward, (mask), step, (re-mask): one optimisation step."""
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    if sparsifier is not None:
        sparsifier.before_step()
    optimizer.step()
    if sparsifier is not None:
        sparsifier.after_step()


def fit_run(task: Any, cfg: ExperimentConfig, model: torch.nn.Module, optimizer: torch.optim.Optimizer,
            train_epoch: Any, evaluate: Any, *, seed: int, sparsifier: Optional[Any] = None,
            checkpoint: Any = None, resume: bool = False, desc: str = "", extra: Optional[dict] = None,
            stateful: Optional[dict] = None) -> RunResult:
    """:func:`~pyg_ham.train.fit` with the config's schedule, patience and output settings; the
    record gets the parameter count and, when sparse, the achieved sparsity."""
    from pyg_ham.models import count_parameters
    from pyg_ham.train.engine import build_scheduler, fit

    stateful = dict(stateful or {})
    if sparsifier is not None:
        stateful["sparsifier"] = sparsifier
    result = fit(model, optimizer, train_epoch, evaluate, cfg.epochs, seed=seed,
                 higher_is_better=task.higher_is_better,
                 scheduler=build_scheduler(cfg.scheduler, optimizer, cfg.epochs, task.higher_is_better),
                 patience=cfg.patience, eval_every=cfg.eval_every, checkpoint=checkpoint, resume=resume,
                 stateful=stateful, progress=not cfg.quiet, desc=desc or task.name, extra=extra)
    result.extra["num_params"] = count_parameters(model)
    if sparsifier is not None:
        result.extra["sparsity"] = sparsifier.report()
    return result
