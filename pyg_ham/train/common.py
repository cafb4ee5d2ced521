"""Pieces every run shares: the optimizer from a config, the sparsifier, one update step."""
from __future__ import annotations

from contextlib import contextmanager
from typing import Any, Callable, Dict, Iterable, Iterator, List, Optional, Tuple

import torch
from torch import Tensor
from torch.nn.modules.batchnorm import _BatchNorm

from pyg_ham.optim import HAM, build_optimizer
from pyg_ham.optim.ham import ham_pass
from pyg_ham.optim.sam import innermost, takes_closure
from pyg_ham.train.config import ExperimentConfig

__all__ = ["make_optimizer", "describe_step", "make_sparsifier", "update", "training_step", "frozen_running_stats",
           "set_optimizer_mode", "batches_ahead", "prefetches"]


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
                           sam=cfg.sam, rho=cfg.rho, adaptive=cfg.adaptive, fused=cfg.fused, **kwargs)


def describe_step(optimizer: torch.optim.Optimizer) -> Dict[str, Any]:
    """How the optimizer stepped, for the run record: ``{"fused": the base was built with
    fused=True, "ham_pass": "one" | "separate (why)"}`` (``ham_pass`` only with HAM;
    :func:`~pyg_ham.optim.ham.ham_pass`)."""
    base = innermost(optimizer.base if isinstance(optimizer, HAM) else optimizer)
    out: Dict[str, Any] = {"fused": all(bool(g.get("fused")) for g in base.param_groups)}
    how = ham_pass(optimizer)
    if how is not None:
        out["ham_pass"] = how
    return out


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


@contextmanager
def frozen_running_stats(model: torch.nn.Module) -> Iterator[None]:
    r"""Forward passes inside leave every BatchNorm's running statistics and batch count as they
    were (the modules still normalise by the batch statistics in training mode): SAM's second pass
    at the perturbed weights must not update them a second time.

    ``pytorch_optimizer.disable_running_stats`` sets the momentum to 0 but still counts the batch
    (``num_batches_tracked``, which a ``momentum=None`` cumulative average divides by); this
    restores the count too."""
    saved: List[Tuple[_BatchNorm, Any, Optional[Tensor]]] = []
    for module in model.modules():
        if isinstance(module, _BatchNorm) and module.track_running_stats:
            count = module.num_batches_tracked
            saved.append((module, module.momentum, None if count is None else count.clone()))
            module.momentum = 0.0
    try:
        yield
    finally:
        for module, momentum, count in saved:
            module.momentum = momentum
            if count is not None:
                module.num_batches_tracked.copy_(count)


def training_step(compute_loss: Callable[[], Tuple[Tensor, int]], model: torch.nn.Module,
                  optimizer: torch.optim.Optimizer, sparsifier: Optional[Any] = None) -> Tuple[Tensor, int]:
    r"""One optimisation step around a closure; returns the first pass's ``(loss, size)``.

    The closure is ``zero_grad``, :obj:`compute_loss` (the forward: the batch's mean loss and
    example count), ``backward`` and the sparsifier's :meth:`before_step` (pruned gradients
    zeroed, RigL's dense gradients recorded). It runs once at the weights; an optimizer whose
    ``step`` needs a closure (SAM, also inside HAM) runs it a second time at the perturbed
    weights, with the BatchNorm running statistics frozen (:func:`frozen_running_stats`: they
    are updated once per step, by the first pass). So the base step, HAM after it and RigL's
    regrowth all see the second pass's gradient; under DDP each pass's backward all-reduces
    its gradient (DDP's hooks), so the perturbation and the step are the same on every rank.
    Then ``optimizer.step()`` and the sparsifier's :meth:`after_step`.
    """
    def closure() -> Tuple[Tensor, int]:
        optimizer.zero_grad(set_to_none=True)
        loss, size = compute_loss()
        loss.backward()
        if sparsifier is not None:
            sparsifier.before_step()
        return loss, size

    first = closure()
    if takes_closure(optimizer):
        def second_pass() -> Tensor:
            with frozen_running_stats(model):
                return closure()[0]

        optimizer.step(second_pass)
    else:
        optimizer.step()
    if sparsifier is not None:
        sparsifier.after_step()
    return first


def set_optimizer_mode(optimizer: torch.optim.Optimizer, training: bool) -> None:
    r"""Call the optimizer's ``train()`` or ``eval()`` where it has them (schedule-free
    optimizers: the parameters hold the training point :math:`y` in training mode and the
    averaged weights :math:`x` in evaluation mode), looking through HAM and SAM; a no-op for
    other optimizers."""
    switch = getattr(innermost(optimizer), "train" if training else "eval", None)
    if callable(switch):
        switch()


def prefetches(loader: Any, cfg: ExperimentConfig) -> bool:
    r"""Whether the training batches of :obj:`loader` are read one step ahead: ``cfg.prefetch``
    and a loader for which that changes nothing
    (:func:`~pyg_ham.sampling.prefetch.prefetch_is_exact`)."""
    from pyg_ham.sampling.prefetch import prefetch_is_exact

    return bool(getattr(cfg, "prefetch", True)) and prefetch_is_exact(loader)


def batches_ahead(loader: Any, device: torch.device, cfg: ExperimentConfig) -> Iterable[Any]:
    r"""A trainer's batches of one epoch: :obj:`loader` itself, or a
    :class:`~pyg_ham.sampling.Prefetcher` over it moving each next batch to :obj:`device`
    while the current step runs, as :func:`prefetches` says."""
    from pyg_ham.sampling.prefetch import Prefetcher

    return Prefetcher(loader, device) if prefetches(loader, cfg) else loader
