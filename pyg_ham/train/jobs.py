r"""Independent runs in parallel: ``--jobs N`` persistent worker processes, one run at a time each.

An experiment's runs (seeds, folds) and a comparison's or sweep's (variant, run) pairs are
independent: each seeds itself and trains from scratch (:func:`~pyg_ham.train.runner.train_run`),
so they may run in any order and in any process. :func:`run_parallel` starts :obj:`jobs`
worker processes once (forked from a ``forkserver`` that imports torch once, or spawned where
that is unavailable; start-up costs seconds), hands each a run when it is free and yields
every run's outcome as it finishes; the caller (the parent process) writes the result files,
so the JSON never lists a run twice or loses one.

Threads: with a budget of :math:`T` intra-op threads in the parent (``torch.get_num_threads()``:
the physical cores by default, ``OMP_NUM_THREADS`` when set) each of the :math:`N` workers
gets :math:`\max(1, \lfloor T / N \rfloor)` (:func:`threads_per_job`); ``--jobs 1`` trains in
the parent with :math:`T`, the same formula. Each run's result is then the same for any
:math:`N` whenever its kernels do not depend on the thread count (those of the tested node and
graph models on CPU do not; the tests compare ``--jobs 2`` with ``--jobs 1`` run by run).

Devices: with ``devices=[0, 1, ...]`` worker :math:`i` trains on ``cuda:devices[i % len(devices)]``.

Ctrl-C: the workers ignore ``SIGINT``; the parent stops them (what finished is on disk, the
runs in progress keep their last epoch checkpoint) and re-raises :class:`KeyboardInterrupt`. A
run that raises is yielded with its error and traceback; the other runs go on.

A script that calls :func:`~pyg_ham.train.runner.run_experiment` or
:func:`~pyg_ham.compare.compare.compare` with ``jobs > 1`` needs the usual
``if __name__ == "__main__":`` guard (the workers import the main module, as with any
:mod:`multiprocessing` start method but ``fork``).
"""
from __future__ import annotations

import multiprocessing
import pickle
import signal
import sys
import traceback
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from contextlib import closing
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, List, Optional, Sequence, Tuple

import torch

from pyg_ham.errors import ConfigError, PygHamError

__all__ = ["Unit", "Outcome", "RunsFailed", "run_parallel", "run_experiments_parallel", "raise_failures",
           "threads_per_job", "progress_postfix"]


@dataclass
class Unit:
    r"""One run to train in a worker.

    Attributes:
        key (tuple): identifies the run to the caller, e.g. ``("adam+ham", "run3")``.
        label (str): how the progress bar and messages name it.
        cfg (ExperimentConfig): its settings.
        spec (dict): the run (see :func:`~pyg_ham.train.runner.run_specs`).
        checkpoint (Path, optional): its per-epoch checkpoint file.
        resume (bool): continue from :obj:`checkpoint` if it exists.
    """

    key: Tuple[Any, ...]
    label: str
    cfg: Any
    spec: Dict[str, Any]
    checkpoint: Optional[Path] = None
    resume: bool = False


@dataclass
class Outcome:
    r"""What one run produced: its record (``RunResult.to_dict()``) or, when it raised, a
    one-line :obj:`error`, the :obj:`traceback` and whether the error is a user-facing one
    (:obj:`user_error`: a :class:`~pyg_ham.errors.PygHamError`, e.g. a bad setting)."""

    record: Optional[Dict[str, Any]] = None
    error: Optional[str] = None
    traceback: str = ""
    user_error: bool = False


def threads_per_job(jobs: int, budget: Optional[int] = None) -> int:
    r"""Intra-op threads of each of :obj:`jobs` workers: :math:`\max(1, \lfloor T / N \rfloor)`
    with :math:`T` = :obj:`budget` (default: ``torch.get_num_threads()``)."""
    budget = torch.get_num_threads() if budget is None else budget
    return max(1, budget // max(jobs, 1))


# --- the worker side -------------------------------------------------------------------------

_WORKER: Dict[str, Any] = {}


def _init_worker(threads: int, task: Any, devices: Optional[Sequence[int]], counter: Any) -> None:
    """Runs once in every worker: its threads, its device, the shared task; Ctrl-C is the parent's."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    torch.set_num_threads(threads)
    with counter.get_lock():
        index = counter.value
        counter.value += 1
    _WORKER["device"] = torch.device("cuda", devices[index % len(devices)]) if devices else None
    if _WORKER["device"] is not None:
        torch.cuda.set_device(_WORKER["device"])
    _WORKER["task"] = task
    from pyg_ham.datasets import registry

    registry._load_adapters()  # task kinds that adapters register (e.g. vision)


def _work(cfg: Any, spec: Dict[str, Any], checkpoint: Optional[Path], resume: bool) -> Outcome:
    from pyg_ham.train import runner
    from pyg_ham.train.config import resolve_device

    try:
        task = _WORKER.get("task")
        if task is None:
            task = _WORKER["task"] = runner.load_task(cfg)
        device = _WORKER.get("device") or resolve_device(cfg.device)
        result = runner.train_run(task, replace(cfg, quiet=True), spec, device, checkpoint=checkpoint,
                                  resume=resume)
        return Outcome(record=result.to_dict())
    except PygHamError as exc:  # bad input: the parent stops every run and says what to fix
        return Outcome(error=str(exc), traceback=traceback.format_exc(), user_error=True)
    except Exception as exc:  # noqa: BLE001 - reported to the parent, which goes on with the others
        message = (f"{type(exc).__name__}: {exc}".splitlines() or [type(exc).__name__])[0]
        return Outcome(error=message, traceback=traceback.format_exc())


# --- the parent side -------------------------------------------------------------------------

def _context(devices: Optional[Sequence[int]] = None) -> multiprocessing.context.BaseContext:
    """How workers start: from a ``forkserver`` that imports torch and pyg-ham once and forks every
    worker from it (once running, it serves later pools of this process at once), else ``spawn``.
    Not ``fork``: a parent that has initialised CUDA or started threads cannot be forked safely."""
    if "forkserver" in multiprocessing.get_all_start_methods():
        ctx = multiprocessing.get_context("forkserver")
        ctx.set_forkserver_preload(["torch", "pyg_ham.train.runner"])
        return ctx
    return multiprocessing.get_context("spawn")


def _stop(executor: ProcessPoolExecutor) -> None:
    """Stop every worker now (the runs in progress keep their last epoch checkpoint)."""
    terminate = getattr(executor, "terminate_workers", None)  # Python >= 3.14
    if terminate is not None:
        terminate()
        return
    processes = list((getattr(executor, "_processes", None) or {}).values())
    executor.shutdown(wait=False, cancel_futures=True)
    for p in processes:
        if p.is_alive():
            p.terminate()
    for p in processes:
        p.join(timeout=10)


def progress_postfix(best: Optional[Tuple[float, str]], failed: int) -> Dict[str, str]:
    """The progress bar's ``best=0.8120 (adam+ham run3)`` (best validation so far) and ``failed=N``."""
    out = {}
    if best is not None:
        out["best"] = f"{best[0]:.4f} ({best[1]})"
    if failed:
        out["failed"] = str(failed)
    return out


def run_parallel(units: Sequence[Unit], *, jobs: int, task: Any = None, devices: Optional[Sequence[int]] = None,
                 quiet: bool = False, higher_is_better: bool = True, desc: str = "runs"
                 ) -> Iterator[Tuple[Unit, Outcome]]:
    r"""Train :obj:`units` in :obj:`jobs` worker processes; yield ``(unit, outcome)`` as each finishes.

    One progress bar counts the finished runs of all workers and shows the best validation
    score so far (the workers train quietly).

    Args:
        units (sequence of Unit): the runs, in the order they are handed out.
        jobs (int): the number of worker processes (at most one per unit is started).
        task (optional): the loaded dataset task, sent to each worker once (default: each worker
            loads its first unit's ``cfg.dataset`` with :func:`~pyg_ham.train.runner.load_task`,
            as it must when the task cannot be pickled).
        devices (sequence of int, optional): CUDA device indices, one per worker (round robin).
        quiet (bool): no progress bar. (default: :obj:`False`)
        higher_is_better (bool): how "best so far" compares validation scores.
        desc (str): the progress bar's label.

    Raises:
        KeyboardInterrupt: after stopping every worker.
    """
    from tqdm.auto import tqdm

    if not units:
        return
    workers = min(jobs, len(units))
    ctx = _context(devices)
    counter = ctx.Value("i", 0)
    executor = ProcessPoolExecutor(max_workers=workers, mp_context=ctx, initializer=_init_worker,
                                   initargs=(threads_per_job(jobs), task, list(devices or []), counter))
    bar = tqdm(total=len(units), desc=desc, unit="run", disable=quiet, dynamic_ncols=True, file=sys.stderr)
    best: Optional[Tuple[float, str]] = None
    failed = 0
    finished = False
    try:
        futures: Dict[Future, int] = {executor.submit(_work, u.cfg, u.spec, u.checkpoint, u.resume): i
                                      for i, u in enumerate(units)}
        pending = set(futures)
        while pending:
            done, pending = wait(pending, return_when=FIRST_COMPLETED)
            for future in sorted(done, key=futures.__getitem__):
                unit = units[futures[future]]
                try:
                    outcome = future.result()
                except Exception as exc:  # noqa: BLE001 - a worker died (killed, out of memory, ...)
                    outcome = Outcome(error=f"{type(exc).__name__}: worker process died ({exc})",
                                      traceback="".join(traceback.format_exception(exc)))
                if outcome.error:
                    failed += 1
                else:
                    valid = outcome.record.get("valid")
                    if isinstance(valid, float) and valid == valid and (
                            best is None or (valid > best[0] if higher_is_better else valid < best[0])):
                        best = (valid, unit.label)
                bar.update(1)
                bar.set_postfix(progress_postfix(best, failed), refresh=True)
                yield unit, outcome
        finished = True
    finally:
        bar.close()
        if finished:
            executor.shutdown(wait=True)
        else:  # Ctrl-C, or the caller stopped early (an error while writing results)
            _stop(executor)


def _picklable(obj: Any) -> bool:
    """Whether :obj:`obj` can be sent to a worker (else each worker loads the task from its config)."""
    try:
        pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)
    except Exception:  # noqa: BLE001 - e.g. a task holding a local function
        return False
    return True


class RunsFailed(PygHamError):
    """Some runs of an experiment raised (each was reported with its traceback); the others finished."""


def run_experiments_parallel(experiments: Sequence[Any], jobs: int, *, devices: Optional[Sequence[int]] = None,
                             quiet: bool = False, log: Callable[[str], None] = print
                             ) -> Dict[int, List[Tuple[Dict[str, Any], Outcome]]]:
    r"""Train the pending runs of several :class:`~pyg_ham.train.runner.Experiment` s (the variants
    of a comparison, the grid of a sweep, or one experiment) in :obj:`jobs` workers; each finished
    run is added to its experiment (which writes its JSON) as it comes.

    Returns:
        dict: experiment index -> ``[(spec, outcome), ...]`` of its runs that raised (empty: none).

    Raises:
        ConfigError: a run met bad input (every worker is stopped first).
        KeyboardInterrupt: after stopping every worker.
    """
    from tqdm.auto import tqdm

    units = [Unit(key=(i, spec["key"]), label=f"{exp.label}{spec['key']}", cfg=exp.cfg, spec=spec,
                  checkpoint=exp.checkpoint(spec), resume=exp.cfg.resume)
             for i, exp in enumerate(experiments) for spec in exp.pending()]
    if not units:
        return {}
    task = experiments[0].task
    shared = all(exp.task is task for exp in experiments) and _picklable(task)
    failures: Dict[int, List[Tuple[Dict[str, Any], Outcome]]] = {}
    outcomes = run_parallel(units, jobs=jobs, task=task if shared else None, devices=devices, quiet=quiet,
                            higher_is_better=task.higher_is_better, desc=f"{task.name} runs")
    with closing(outcomes):  # an exception here (bad input, Ctrl-C while writing) stops the workers too
        for unit, outcome in outcomes:
            index = unit.key[0]
            if outcome.user_error:
                raise ConfigError(f"{unit.label}: {outcome.error}")
            with tqdm.external_write_mode(file=sys.stderr):
                if outcome.error:
                    failures.setdefault(index, []).append((unit.spec, outcome))
                    log(f"{unit.label} FAILED: {outcome.error}")
                else:
                    experiments[index].add(unit.spec, outcome.record)
    for index, failed in failures.items():  # in run order, as the result document lists runs
        order = {spec["key"]: n for n, spec in enumerate(experiments[index].specs)}
        failed.sort(key=lambda item: order[item[0]["key"]])
    return failures


def raise_failures(failed: List[Tuple[Dict[str, Any], Outcome]], cfg: Any, log: Callable[[str], None]) -> None:
    """Log the tracebacks of an experiment's failed runs and raise :class:`RunsFailed` naming them."""
    for spec, outcome in failed:
        log(f"{spec['key']} failed:\n{outcome.traceback.rstrip()}")
    keys = ", ".join(spec["key"] for spec, _ in failed)
    finished = bool(cfg.out) and Path(cfg.out).exists()
    kept = f"the finished runs are in {cfg.out}; rerun with --resume to retry" if finished else "rerun to retry"
    raise RunsFailed(f"run(s) {keys} failed ({failed[0][1].error}); {kept}")
