"""Pieces every run shares: the optimizer from a config, the sparsifier, one update step."""
from __future__ import annotations

from typing import Any, Optional

import torch
from torch import Tensor

from pyg_ham.optim import build_optimizer
from pyg_ham.train.config import ExperimentConfig

__all__ = ["make_optimizer", "make_sparsifier", "update"]


def make_optimizer(model: torch.nn.Module, cfg: ExperimentConfig) -> torch.optim.Optimizer:
    """``build_optimizer`` with the config's optimizer, lr, weight decay and HAM settings; a model's
    ``ham_exclude`` patterns (e.g. a heterogeneous model's embedding tables under
    ``ham_embeddings=False``) are kept out of HAM's selection."""
    kwargs: dict = {}
    if cfg.optimizer.lower() == "sgd":
        kwargs["momentum"] = cfg.momentum
    exclude = getattr(model, "ham_exclude", None) or None
    return build_optimizer(model, cfg.optimizer, lr=cfg.lr, weight_decay=cfg.weight_decay, ham=cfg.ham,
                           alpha=cfg.alpha, beta=cfg.beta, max_exponent=cfg.max_exponent, exclude=exclude,
                           **kwargs)


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
