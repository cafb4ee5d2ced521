r"""The task-independent epoch loop shared by the node, graph and vision trainers.

It owns what every trainer needs: seeding, best-validation model selection (the test
metric is read at the best-validation epoch, as the OGB leaderboards require), the
per-epoch history with HAM's weight diagnostics, early stopping, the LR schedule, a
progress bar, and checkpoints so that an interrupted run resumes exactly where it stopped.
A task kind supplies what differs through :class:`~pyg_ham.train.task.TrainingTask`.
"""
from __future__ import annotations

import math
import random
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Dict, List, Optional, Union

import numpy as np
import torch
from tqdm.auto import tqdm

from pyg_ham.config import SCHEDULERS
from pyg_ham.optim import track_exponents
from pyg_ham.results import RunResult, schema
from pyg_ham.results.io import atomic_write
from pyg_ham.train.diagnostics import WeightDiagnostics
from pyg_ham.train.stability import run_stability

if TYPE_CHECKING:
    from pyg_ham.config import ExperimentConfig
    from pyg_ham.train.task import TrainingTask

__all__ = ["seed_everything", "is_better", "best_epoch", "fit", "build_scheduler", "SCHEDULERS", "rerun_hint"]

Scores = Dict[str, float]
#: HAM's exponent diagnostics observe one optimizer step in this many, and always the first of an
#: epoch (one-step epochs: every step): the in-pass statistics cost about one more step each.
EXPONENT_SAMPLE_EVERY = 50


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch (all devices)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def is_better(value: float, best: Optional[float], higher_is_better: bool = True) -> bool:
    """Strictly better than :obj:`best` (ties keep the earlier epoch; NaN is never better)."""
    if value is None or math.isnan(value):
        return False
    if best is None or math.isnan(best):
        return True
    return value > best if higher_is_better else value < best


def best_epoch(history: List[Dict[str, Any]], higher_is_better: bool = True, key: str = "valid") -> int:
    """The 1-based epoch of the best :obj:`key` score in :obj:`history` (0 if none)."""
    best, chosen = None, 0
    for record in schema.evaluated(history):
        if key in record and is_better(record[key], best, higher_is_better):
            best, chosen = record[key], record["epoch"]
    return chosen


def build_scheduler(name: str, optimizer: torch.optim.Optimizer, epochs: int,
                    higher_is_better: bool = True) -> Optional[Any]:
    """A per-epoch LR scheduler: ``none``, ``cosine`` (to 0 over :obj:`epochs`), ``step``
    (halve every ``epochs // 4``) or ``plateau`` (halve after 10 epochs without validation gain)."""
    if name == "none":
        return None
    if name == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=max(epochs, 1))
    if name == "step":
        return torch.optim.lr_scheduler.StepLR(optimizer, step_size=max(epochs // 4, 1), gamma=0.5)
    if name == "plateau":
        return torch.optim.lr_scheduler.ReduceLROnPlateau(
            optimizer, mode="max" if higher_is_better else "min", factor=0.5, patience=10)
    from pyg_ham.errors import ConfigError
    raise ConfigError(f"unknown scheduler {name!r}; choose one of: {', '.join(SCHEDULERS)}")


def rerun_hint(cfg: "ExperimentConfig") -> str:
    """How to continue after a result or checkpoint could not be written (a full disk)."""
    flag = "" if getattr(cfg, "resume", False) else " with --resume"
    return (f"then rerun the same command{flag}: the finished runs are kept and the run in progress continues "
            f"from its last saved epoch")


def _save_atomic(obj: Any, path: Path, then: str = "then rerun the same command") -> None:
    """``torch.save`` to a temporary file that replaces :obj:`path` (:func:`~pyg_ham.results.io.atomic_write`:
    no partial file on any error, a full disk says what to free)."""
    atomic_write(path, lambda f: torch.save(obj, f), binary=True, then=then)


def _rng_state() -> Dict[str, Any]:
    state = {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: Dict[str, Any]) -> None:
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def fit(
    task: "TrainingTask",
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    cfg: "ExperimentConfig",
    *,
    checkpoint: Optional[Union[str, Path]] = None,
    resume: bool = False,
) -> RunResult:
    r"""Train one run of :obj:`task` for ``cfg.epochs`` epochs and return the scores at the
    best-validation epoch.

    Each epoch runs one optimisation step per batch of :meth:`TrainingTask.train_batches`
    (:func:`~pyg_ham.train.common.training_step`: ``zero_grad``, ``backward``, the sparsifier's
    mask, ``optimizer.step()``; SAM evaluates that closure a second time at its perturbed point;
    schedule-free optimizers are switched by ``train()``/``eval()`` around training and
    evaluation) and records the
    mean training loss, weighted by each batch's example count; every ``cfg.eval_every`` epochs
    (and at the last) :meth:`TrainingTask.predict` is scored on ``{train, valid, test}``. The
    run keeps the epoch with the best ``valid`` score (ties keep the earlier one) and reports
    ``test`` at that epoch, as the OGB leaderboards require. The history (one record per epoch,
    of the kinds :mod:`pyg_ham.results.schema` defines) records, per epoch,
    the loss, the scores, the epoch time, the learning rate, and for the weights HAM acts on
    the fraction of near-zero weights, their L1 norm and the fraction of signs flipped since
    the previous epoch; with HAM also the share of its exponents at the clamp
    (``clamp_fraction``) and its largest :math:`|\eta\alpha g|` (``max_step``), computed inside
    the step's pass on the first step of every epoch and one in :data:`EXPONENT_SAMPLE_EVERY`
    after it, accumulated on the device (:mod:`pyg_ham.optim.stats`). A non-finite loss ends the
    run (``"diverged": True`` in the record); a run whose loss spikes far above its best, or
    whose HAM exponents saturate the clamp, is marked ``"unstable"``
    (:func:`~pyg_ham.train.stability.run_stability`); either way ``"instability"`` says why,
    from which epoch, and what to change.

    Args:
        task (TrainingTask): one run of a task kind (its seed, batches, loss, predictions).
        model (Module): the model (its state is checkpointed).
        optimizer (Optimizer): the optimizer, HAM-wrapped or not.
        cfg (ExperimentConfig): ``epochs``, ``scheduler``, ``patience``, ``eval_every``,
            ``sparsity``/``sparsifier`` and ``quiet`` are read.
        checkpoint (str or Path, optional): file written after every epoch.
        resume (bool): continue from :obj:`checkpoint` if it exists. (default: :obj:`False`)
    """
    from pyg_ham.models import count_parameters
    from pyg_ham.train import distributed
    from pyg_ham.train.common import describe_step, make_sparsifier, set_optimizer_mode, training_step

    epochs, seed = cfg.epochs, task.seed
    higher_is_better = task.task.higher_is_better
    sparsifier = make_sparsifier(model, optimizer, cfg, epochs * task.steps_per_epoch(), seed)
    scheduler = build_scheduler(cfg.scheduler, optimizer, epochs, higher_is_better)
    stateful = dict(task.stateful())
    if sparsifier is not None:
        stateful["sparsifier"] = sparsifier
    if scheduler is not None:
        stateful["scheduler"] = scheduler
    path = Path(checkpoint) if checkpoint is not None else None
    history: List[Dict[str, Any]] = []
    start = 1
    diagnostics = WeightDiagnostics.from_optimizer(model, optimizer)
    # HAM's clamp share and largest step: sampled steps, read once per epoch
    exponents = track_exponents(optimizer, every=EXPONENT_SAMPLE_EVERY)
    # several processes: the model in DDP for training (the unwrapped one is evaluated and saved),
    # each rank its own dropout stream; rank 0 alone writes the checkpoint (every rank's state in it)
    world, rank = distributed.world_size(), distributed.rank()
    net = distributed.wrap_model(model, task.device, sync_bn=getattr(cfg, "sync_bn", True))
    seed_everything(seed + 1_000_003 * rank)
    ck = None
    if resume and path is not None:
        ck = distributed.on_main(lambda: torch.load(path, map_location="cpu", weights_only=False)
                                 if path.exists() else None)
    if ck is not None:
        if ck.get("world_size", 1) != world:
            from pyg_ham.errors import ConfigError
            raise ConfigError(f"checkpoint {path} was written by {ck.get('world_size', 1)} process(es), this run has "
                              f"{world}; resume with --nproc {ck.get('world_size', 1)} or drop --resume")
        own = ck["ranks"][rank] if "ranks" in ck else ck
        model.load_state_dict(ck["model"])
        optimizer.load_state_dict(ck["optimizer"])
        for name, obj in stateful.items():
            obj.load_state_dict(own["stateful"][name])
        diagnostics.load_state_dict(ck["diagnostics"])
        history, start = ck["history"], ck["epoch"] + 1
        _set_rng_state(own["rng"])

    def train_epoch() -> float:
        total = torch.zeros((), device=task.device)
        count = 0
        for batch in task.train_batches():
            batch = task.prepare_batch(batch)  # once: SAM's second pass sees the same batch
            loss, size = training_step(lambda: task.batch_loss(net, batch), net, optimizer, sparsifier)  # noqa: B023
            total += loss.detach() * size
            count += size
        if world > 1:  # the mean over the global batch: every rank's sum and count
            summed = distributed.all_reduce_sum(torch.stack([total.float(), torch.tensor(float(count)).to(total)]))
            total, count = summed[0], int(summed[1])
        return float(total) / max(count, 1)  # one host sync per epoch

    def evaluate() -> Scores:
        scores = {split: task.score(pred, target) for split, (pred, target) in task.predict(model).items()}
        return distributed.broadcast_object(scores)  # every rank selects and stops on rank 0's scores

    best_valid: Optional[float] = None
    stale = 0  # evaluations since the best one (restored on resume)
    for record in schema.evaluated(history):
        if is_better(record["valid"], best_valid, higher_is_better):
            best_valid, stale = record["valid"], 0
        else:
            stale += 1
    diverged = False
    if cfg.patience is not None and stale >= cfg.patience:
        start = epochs + 1  # resumed after its early stop (its record could not be written): nothing more to train
    progress = not cfg.quiet and distributed.is_main()
    bar = tqdm(range(start, epochs + 1), desc=task.desc or "train", disable=not progress, leave=False,
               initial=start - 1, total=epochs, dynamic_ncols=True)
    for epoch in bar:
        t0 = time.perf_counter()
        model.train()
        set_optimizer_mode(optimizer, training=True)  # schedule-free: the training point y
        loss = train_epoch()
        train_time = time.perf_counter() - t0
        record: Dict[str, Any] = schema.new_epoch(epoch, loss, train_time, float(optimizer.param_groups[0]["lr"]))
        if not math.isfinite(loss):
            history.append(schema.mark_diverged(record))
            diverged = True
            break
        if epoch % cfg.eval_every == 0 or epoch == epochs:
            model.eval()
            set_optimizer_mode(optimizer, training=False)  # schedule-free: the averaged weights x
            with torch.no_grad():
                schema.add_scores(record, evaluate())
            if is_better(record["valid"], best_valid, higher_is_better):
                best_valid, stale = record["valid"], 0
            else:
                stale += 1
        record.update(diagnostics.step())
        if exponents is not None:
            record.update(exponents.read())
        history.append(record)
        if scheduler is not None:
            if isinstance(scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau):
                if schema.is_evaluated(record):
                    scheduler.step(record["valid"])
            else:
                scheduler.step()
        if progress:
            bar.set_postfix(loss=f"{loss:.4f}", valid=f"{record.get('valid', float('nan')):.4f}",
                            best=f"{best_valid if best_valid is not None else float('nan'):.4f}")
        if path is not None:
            own = {"stateful": {n: o.state_dict() for n, o in stateful.items()}, "rng": _rng_state()}
            ranks = distributed.gather_objects(own) if world > 1 else None
            if distributed.is_main():
                ck = {"model": model.state_dict(), "optimizer": optimizer.state_dict(), **own,
                      "diagnostics": diagnostics.state_dict(), "history": history, "epoch": epoch}
                if ranks is not None:
                    ck.update(world_size=world, ranks=ranks)
                _save_atomic(ck, path, rerun_hint(cfg))
        if cfg.patience is not None and stale >= cfg.patience:
            break
    bar.close()

    chosen = best_epoch(history, higher_is_better)
    best = next((r for r in history if r["epoch"] == chosen), {})  # an evaluated epoch, or none
    out_extra = task.record()
    if diverged:
        out_extra["diverged"] = True
    instability = run_stability(history, lr=cfg.lr, alpha=cfg.alpha, ham=cfg.ham)
    if instability is not None:  # flagged in the record: reason, first epoch, what to change
        flag = {k: instability[k] for k in ("status", "kind", "reason", "epoch", "advice")}
        if instability["status"] == "diverged":
            out_extra["diverged"] = True
        else:
            out_extra["unstable"] = flag
        out_extra["instability"] = flag
    out_extra["num_params"] = count_parameters(model)
    out_extra["optimizer_step"] = describe_step(optimizer)
    if sparsifier is not None:
        out_extra["sparsity"] = sparsifier.report()
    return RunResult(seed=seed, best_epoch=chosen, train=schema.score(best, "train"),
                     valid=schema.score(best, "valid"), test=schema.score(best, "test"),
                     history=history, extra=out_extra)
