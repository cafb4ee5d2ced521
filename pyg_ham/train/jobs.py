r"""Independent runs in parallel: ``--jobs N`` persistent worker processes, one run at a time each.

An experiment's runs (seeds, folds) and a comparison's or sweep's (variant, run) pairs are
independent: each seeds itself and trains from scratch (:func:`~pyg_ham.train.single.train_run`),
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

A worker that dies (``SIGKILL`` from the OOM killer, a segfault) costs only the run it held:
each worker has its own pipe, so the parent knows which run that was (a
:class:`~concurrent.futures.ProcessPoolExecutor` cannot tell, and breaks every pending run).
The dead worker is replaced, the others go on, and that run is trained once more, from its
last epoch checkpoint when this invocation wrote one (else from scratch: a run is seeded, so
either way it gives the result it would have given); if it dies again it is reported by name
with the reason (:func:`death_reason`), and the command exits with a failure status.

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
import time
import traceback
from collections import deque
from contextlib import closing
from dataclasses import dataclass, replace
from multiprocessing.connection import Connection, wait
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, List, Optional, Sequence, Tuple

import torch

from pyg_ham.errors import ConfigError, PygHamError
from pyg_ham.train.distributed import death_reason

__all__ = ["Unit", "Outcome", "RunsFailed", "run_parallel", "run_experiments_parallel", "raise_failures",
           "threads_per_job", "progress_postfix", "death_reason"]


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


def _worker_main(conn: Connection, threads: int, payload: Optional[bytes], sys_path: List[str],
                 device: Optional[int]) -> None:
    """One worker: set up once (threads, device, the shared task), then train the runs it is sent
    until it is sent ``None``. Ctrl-C is the parent's."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    sys.path[:] = sys_path + [p for p in sys.path if p not in sys_path]  # the parent's, as it is now
    torch.set_num_threads(threads)
    _WORKER["device"] = torch.device("cuda", device) if device is not None else None
    if _WORKER["device"] is not None:
        torch.cuda.set_device(_WORKER["device"])
    from pyg_ham.datasets import registry

    registry._load_adapters()  # task kinds that adapters register (e.g. vision)
    if payload is not None:
        try:
            _WORKER["task"] = pickle.loads(payload)
        except Exception as exc:  # noqa: BLE001 - every run of this worker reports it
            _WORKER["setup_error"] = f"the worker cannot load the task: {type(exc).__name__}: {exc}"
    while True:
        try:
            job = conn.recv()
        except (EOFError, OSError):  # the parent is gone
            return
        if job is None:
            return
        outcome = _work(*job)
        try:
            conn.send(outcome)
        except (EOFError, OSError):
            return
        except Exception as exc:  # noqa: BLE001 - e.g. a record that cannot be pickled
            conn.send(Outcome(error=f"{type(exc).__name__}: cannot send the run's result: {exc}"))


def _work(cfg: Any, spec: Dict[str, Any], checkpoint: Optional[Path], resume: bool) -> Outcome:
    from pyg_ham.config import resolve_device
    from pyg_ham.train import single

    if "setup_error" in _WORKER:
        return Outcome(error=_WORKER["setup_error"])
    try:
        task = _WORKER.get("task")
        if task is None:
            task = _WORKER["task"] = single.load_task(cfg)
        device = _WORKER.get("device") or resolve_device(cfg.device)
        result = single.train_run(task, replace(cfg, quiet=True), spec, device, checkpoint=checkpoint,
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
        ctx.set_forkserver_preload(["torch", "pyg_ham.train.single"])
        return ctx
    return multiprocessing.get_context("spawn")


@dataclass
class _Slot:
    """One worker process: its device slot, its pipe, and the unit it trains (``None``: idle)."""

    index: int
    process: Any
    conn: Connection
    job: Optional[int] = None
    since: int = 0  # time.time_ns() when it was handed the unit


class _Pool:
    r"""``workers`` processes, each trains one run at a time; a dead one is replaced.

    :class:`~concurrent.futures.ProcessPoolExecutor` cannot say which run a dead worker held
    and breaks the whole pool; here each worker has its own pipe, so the parent knows."""

    def __init__(self, ctx: Any, workers: int, threads: int, payload: Optional[bytes],
                 devices: Sequence[int]) -> None:
        self.ctx, self.threads, self.payload, self.devices = ctx, threads, payload, list(devices)
        self.slots: List[_Slot] = []
        for index in range(workers):
            self.slots.append(self.start(index))

    def start(self, index: int) -> _Slot:
        parent, child = self.ctx.Pipe(duplex=True)
        device = self.devices[index % len(self.devices)] if self.devices else None
        process = self.ctx.Process(target=_worker_main, daemon=True, name=f"pyg-ham-job-{index}",
                                   args=(child, self.threads, self.payload, list(sys.path), device))
        process.start()
        child.close()  # the worker's end: the parent reads EOF when the worker dies
        return _Slot(index, process, parent)

    def close(self) -> None:
        """Let every worker finish (they are idle) and exit."""
        for slot in self.slots:
            try:
                slot.conn.send(None)
            except (EOFError, OSError):
                pass
        for slot in self.slots:
            slot.process.join(timeout=10)
        self.stop()

    def stop(self) -> None:
        """Stop every worker now (the runs in progress keep their last epoch checkpoint)."""
        for slot in self.slots:
            if slot.process.is_alive():
                slot.process.terminate()
        for slot in self.slots:
            slot.process.join(timeout=10)
            if slot.process.is_alive():
                slot.process.kill()
                slot.process.join(timeout=5)
            slot.conn.close()
        self.slots = []


def _retry(unit: Unit, since: int) -> Tuple[Unit, str]:
    """The unit to train again after its worker died, and from where: its last epoch checkpoint
    if this invocation wrote one (or it resumes anyway), else from scratch."""
    ckpt = unit.checkpoint
    if ckpt is not None and ckpt.exists() and (unit.resume or ckpt.stat().st_mtime_ns >= since):
        return replace(unit, resume=True), f"from its last epoch checkpoint ({ckpt})"
    if ckpt is None:
        return unit, "from scratch (it keeps no checkpoint without --out or --checkpoint-dir)"
    return unit, "from scratch (it had not finished an epoch)"


def progress_postfix(best: Optional[Tuple[float, str]], failed: int) -> Dict[str, str]:
    """The progress bar's ``best=0.8120 (adam+ham run3)`` (best validation so far) and ``failed=N``."""
    out = {}
    if best is not None:
        out["best"] = f"{best[0]:.4f} ({best[1]})"
    if failed:
        out["failed"] = str(failed)
    return out


def run_parallel(units: Sequence[Unit], *, jobs: int, task: Any = None, devices: Optional[Sequence[int]] = None,
                 quiet: bool = False, higher_is_better: bool = True, desc: str = "runs",
                 log: Optional[Callable[[str], None]] = None) -> Iterator[Tuple[Unit, Outcome]]:
    r"""Train :obj:`units` in :obj:`jobs` worker processes; yield ``(unit, outcome)`` as each finishes.

    One progress bar counts the finished runs of all workers and shows the best validation
    score so far (the workers train quietly).

    A worker that dies (killed, out of memory, a segfault) costs only the run it held: the
    worker is replaced, the other workers go on, and that run is trained once more, from its
    last epoch checkpoint when this invocation wrote one (else from scratch); if it dies again
    it is yielded with an error naming why (:func:`death_reason`).

    Args:
        units (sequence of Unit): the runs, in the order they are handed out.
        jobs (int): the number of worker processes (at most one per unit is started).
        task (optional): the loaded dataset task, sent to each worker once (default: each worker
            loads its first unit's ``cfg.dataset`` with :func:`~pyg_ham.train.single.load_task`,
            as it must when the task cannot be pickled).
        devices (sequence of int, optional): CUDA device indices, one per worker (round robin).
        quiet (bool): no progress bar. (default: :obj:`False`)
        higher_is_better (bool): how "best so far" compares validation scores.
        desc (str): the progress bar's label.
        log (callable, optional): one line when a worker dies (default: stderr).

    Raises:
        KeyboardInterrupt: after stopping every worker.
    """
    from tqdm.auto import tqdm

    if not units:
        return
    say = log or (lambda msg: print(msg, file=sys.stderr, flush=True))
    payload = pickle.dumps(task, protocol=pickle.HIGHEST_PROTOCOL) if task is not None else None
    pool = _Pool(_context(devices), min(jobs, len(units)), threads_per_job(jobs), payload, list(devices or []))
    bar = tqdm(total=len(units), desc=desc, unit="run", disable=quiet, dynamic_ncols=True, file=sys.stderr)
    current = list(units)  # what to hand out (a retried run resumes from its checkpoint)
    queue = deque(range(len(units)))
    deaths = [0] * len(units)
    remaining = len(units)
    best: Optional[Tuple[float, str]] = None
    failed = 0

    def finished(index: int, outcome: Outcome) -> Tuple[Unit, Outcome]:
        nonlocal remaining, failed, best
        remaining -= 1
        if outcome.error:
            failed += 1
        else:
            valid = outcome.record.get("valid")
            if isinstance(valid, float) and valid == valid and (
                    best is None or (valid > best[0] if higher_is_better else valid < best[0])):
                best = (valid, units[index].label)
        bar.update(1)
        bar.set_postfix(progress_postfix(best, failed), refresh=True)
        return units[index], outcome

    completed = False
    try:
        while remaining:
            for slot in pool.slots:
                if slot.job is None and queue:
                    slot.job, slot.since = queue.popleft(), time.time_ns()
                    u = current[slot.job]
                    try:
                        slot.conn.send((u.cfg, u.spec, u.checkpoint, u.resume))
                    except (EOFError, OSError):  # it died meanwhile: its sentinel says so below
                        pass
            ready = wait([s.conn for s in pool.slots if s.job is not None] + [s.process.sentinel for s in pool.slots])
            for slot in list(pool.slots):
                dead = slot.process.sentinel in ready
                if slot.conn in ready and slot.job is not None:
                    try:
                        outcome = slot.conn.recv()
                    except (EOFError, OSError):
                        dead = True
                    else:
                        index, slot.job = slot.job, None
                        yield finished(index, outcome)
                if not dead:
                    continue
                slot.process.join(timeout=10)
                reason, index = death_reason(slot.process.exitcode), slot.job
                if slot.process.is_alive():  # its pipe broke, the process lingers: end it
                    slot.process.kill()
                    slot.process.join(timeout=5)
                slot.conn.close()
                if index is not None:
                    deaths[index] += 1
                    label = units[index].label
                    if deaths[index] == 1:
                        current[index], where = _retry(current[index], slot.since)
                        queue.appendleft(index)
                        with tqdm.external_write_mode(file=sys.stderr):
                            say(f"{label}: its worker process died ({reason}); training it once more, {where}")
                if queue:
                    pool.slots[pool.slots.index(slot)] = pool.start(slot.index)
                else:
                    pool.slots.remove(slot)
                if index is not None and deaths[index] > 1:
                    yield finished(index, Outcome(error=f"its worker process died twice ({reason})",
                                                  traceback=f"{label}: its worker process died twice; the second "
                                                            f"time {reason}\n"))
        completed = True
    finally:
        bar.close()
        if completed:
            pool.close()
        else:  # Ctrl-C, or the caller stopped early (an error while writing results)
            pool.stop()


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
                            higher_is_better=task.higher_is_better, desc=f"{task.name} runs", log=log)
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
