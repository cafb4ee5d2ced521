r"""The one schema of a run record and its per-epoch history.

Every run that :func:`~pyg_ham.train.fit` trains (node, graph, heterogeneous and vision
tasks) is written as a :class:`RunRecord`, whose ``history`` holds one epoch record per
epoch trained. An epoch record is one of three kinds:

* **evaluated** (:class:`EvaluatedEpoch`): the scores were computed this epoch (every
  ``eval_every`` epochs and at the last): ``epoch``, ``loss``, ``time``, ``lr``, the scores
  ``valid`` and ``test`` (and ``train`` unless ``eval_train`` is off), and the weight
  diagnostics (:data:`DIAGNOSTIC_KEYS`: ``near_zero``, ``zero``, ``l1``, ``sign_flips``, and
  with HAM ``clamp_fraction`` and ``max_step``) where there are weights to watch;
* **not evaluated** (:class:`TrainedEpoch`): the same without any score;
* **diverged** (:class:`DivergedEpoch`): the training loss was not finite; ``epoch``,
  ``loss``, ``time``, ``lr`` and ``diverged: True``, no scores, no diagnostics. It is the last
  epoch of its run.

Readers ask this module (:func:`epoch_kind`, :func:`is_evaluated`, :func:`evaluated_epochs`,
:func:`score`, :func:`value`, :func:`run_diverged`) instead of testing keys, so a key read on the wrong kind
of epoch (the ``KeyError: 'valid'`` of ``--protocol gin --eval-every 2``) cannot happen.
Result files written by earlier versions follow this schema (they lack only keys added
later, ``clamp_fraction``/``max_step`` and the run's ``instability``), and
:func:`check_run` accepts them. ``pyg-ham llm`` keeps transformers' ``log_history`` as its
history (its records are steps, not epochs) and is not described here.
"""
from __future__ import annotations

import math
from typing import Any, Dict, Iterable, List, Literal, Mapping, Optional, Sequence, Set, TypedDict, Union

__all__ = ["EpochKind", "TrainedEpoch", "EvaluatedEpoch", "DivergedEpoch", "EpochRecord", "Instability",
           "RunRecord", "RUN_KEYS", "BASE_KEYS", "SCORE_KEYS", "DIAGNOSTIC_KEYS", "new_epoch", "add_scores",
           "mark_diverged", "epoch_kind", "is_evaluated", "is_diverged", "evaluated", "evaluated_epochs",
           "score", "value", "NUMBER_KEYS", "run_diverged", "check_epoch", "check_run"]

EpochKind = Literal["evaluated", "not evaluated", "diverged"]

#: Keys of every epoch record.
BASE_KEYS = ("epoch", "loss", "time", "lr")
#: The scores of an evaluated epoch (``train`` only with ``eval_train``).
SCORE_KEYS = ("train", "valid", "test")
#: The weight diagnostics of a trained (evaluated or not) epoch, where the run has weights to watch.
DIAGNOSTIC_KEYS = ("near_zero", "zero", "l1", "sign_flips", "clamp_fraction", "max_step")


class _Base(TypedDict):
    epoch: int  # 1-based
    loss: float  # mean training loss of the epoch, weighted by each batch's example count
    time: float  # training seconds of the epoch (evaluation excluded)
    lr: float  # the first parameter group's learning rate during the epoch


class TrainedEpoch(_Base, total=False):
    """An epoch that trained and was not evaluated: :data:`BASE_KEYS` and the diagnostics."""

    near_zero: float  # share of the watched weights with |w| < eps
    zero: float  # share exactly zero
    l1: float  # their L1 norm
    sign_flips: float  # share whose sign changed since the previous epoch
    clamp_fraction: float  # HAM only: share of its exponents at the clamp
    max_step: float  # HAM only: its largest |eta * alpha * g|


class _Scores(TypedDict):
    valid: float
    test: float


class EvaluatedEpoch(TrainedEpoch, _Scores, total=False):
    """An epoch whose scores were computed: a :class:`TrainedEpoch` with ``valid``, ``test``
    (and ``train`` unless ``eval_train`` is off)."""

    train: float


class DivergedEpoch(_Base):
    """The epoch whose training loss was not finite (the last of its run)."""

    diverged: Literal[True]


EpochRecord = Union[EvaluatedEpoch, TrainedEpoch, DivergedEpoch]


class Instability(TypedDict, total=False):
    """Why a run was flagged (:func:`~pyg_ham.train.stability.run_stability`)."""

    status: str  # "unstable" or "diverged"
    kind: str  # "non-finite loss", "loss spike" or "clamp saturation"
    reason: str
    epoch: Optional[int]
    advice: str


class _RunRequired(TypedDict):
    seed: int
    best_epoch: int  # the selected epoch (1-based; 0: no epoch was evaluated)
    train: float  # the scores at best_epoch (NaN where not scored)
    valid: float
    test: float
    history: List[EpochRecord]


class RunRecord(_RunRequired, total=False):
    """One run of a result document (:class:`~pyg_ham.results.RunResult` ``.to_dict()``)."""

    key: str  # "run3", "repeat0_fold4"
    run: int  # seed protocols
    repeat: int  # cross-validation
    fold: int
    split: Any  # the task's split description
    num_params: int
    optimizer_step: Dict[str, Any]  # {"fused": bool, "ham_pass": "one" | "separate (why)"} (train.common)
    sparsity: Dict[str, Any]
    placement: Dict[str, Any]  # node runs: where the graph and features lived (pyg_ham.train.placement)
    prefetch: bool  # mini-batch node runs: batches read one step ahead (pyg_ham.sampling.prefetch)
    diverged: bool  # a non-finite training loss ended the run
    unstable: Instability  # a loss spike or clamp saturation (not diverged)
    instability: Instability  # either flag


#: The fields of :class:`~pyg_ham.results.RunResult`; the other keys of a record are its ``extra``.
RUN_KEYS = tuple(_RunRequired.__annotations__)


def new_epoch(epoch: int, loss: float, time: float, lr: float) -> TrainedEpoch:
    """The record of an epoch that trained (not evaluated yet)."""
    return {"epoch": epoch, "loss": loss, "time": time, "lr": lr}


def add_scores(record: Mapping[str, Any], scores: Mapping[str, float]) -> EvaluatedEpoch:
    """Make :obj:`record` an evaluated epoch: its scores (``valid`` and ``test`` required)."""
    missing = [k for k in ("valid", "test") if k not in scores]
    unknown = [k for k in scores if k not in SCORE_KEYS]
    if missing or unknown:
        raise ValueError(f"an evaluated epoch scores {', '.join(SCORE_KEYS)} (valid and test required); "
                         f"got {sorted(scores)}")
    record.update({k: float(v) for k, v in scores.items()})  # type: ignore[attr-defined]
    return record  # type: ignore[return-value]


def mark_diverged(record: Mapping[str, Any]) -> DivergedEpoch:
    """Make :obj:`record` the diverged epoch of its run."""
    record["diverged"] = True  # type: ignore[index]
    return record  # type: ignore[return-value]


def is_diverged(record: Mapping[str, Any]) -> bool:
    """Whether an epoch record is the diverged epoch."""
    return bool(record.get("diverged"))


def is_evaluated(record: Mapping[str, Any]) -> bool:
    """Whether an epoch record carries scores."""
    return not is_diverged(record) and "valid" in record


def epoch_kind(record: Mapping[str, Any]) -> EpochKind:
    """``"evaluated"``, ``"not evaluated"`` or ``"diverged"``."""
    if is_diverged(record):
        return "diverged"
    return "evaluated" if is_evaluated(record) else "not evaluated"


def evaluated(history: Iterable[Mapping[str, Any]]) -> List[Mapping[str, Any]]:
    """The evaluated epochs of a history, in order."""
    return [r for r in history if is_evaluated(r)]


def evaluated_epochs(history: Iterable[Mapping[str, Any]]) -> Set[int]:
    """The epoch numbers of a history's evaluated epochs."""
    return {int(r["epoch"]) for r in evaluated(history)}


def score(record: Mapping[str, Any], split: str, default: float = math.nan) -> float:
    """The :obj:`split` score of an epoch record (:obj:`default` where it was not scored)."""
    if split not in SCORE_KEYS:
        raise ValueError(f"unknown split {split!r}; the scores are {', '.join(SCORE_KEYS)}")
    value = record.get(split) if is_evaluated(record) else None
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else default


#: Every number an epoch record may carry.
NUMBER_KEYS = (*BASE_KEYS, *SCORE_KEYS, *DIAGNOSTIC_KEYS)


def value(record: Mapping[str, Any], key: str, default: Optional[float] = None) -> Optional[float]:
    """The number :obj:`key` of an epoch record (:obj:`default` where this kind of epoch, or a
    result file written before the key existed, has none); a score only on an evaluated epoch."""
    if key not in NUMBER_KEYS:
        raise ValueError(f"unknown epoch key {key!r}; an epoch record carries {', '.join(NUMBER_KEYS)}")
    if key in SCORE_KEYS and not is_evaluated(record):
        return default
    v = record.get(key)
    return float(v) if _number(v) else default


def run_diverged(run: Mapping[str, Any]) -> bool:
    """Whether a run record diverged (its flag, or a diverged epoch in its history)."""
    return bool(run.get("diverged")) or any(is_diverged(r) for r in run.get("history") or [])


def _number(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool)


def check_epoch(record: Mapping[str, Any]) -> List[str]:
    """What is wrong with one epoch record (``[]``: it follows the schema)."""
    problems = [f"missing {k!r}" for k in BASE_KEYS if k not in record]
    known = set(NUMBER_KEYS) | {"diverged"}
    problems += [f"unknown key {k!r}" for k in record if k not in known]
    problems += [f"{k!r} is not a number" for k in known - {"diverged"} if k in record and not _number(record[k])]
    if is_diverged(record):
        problems += [f"a diverged epoch has {k!r}" for k in (*SCORE_KEYS, *DIAGNOSTIC_KEYS) if k in record]
    elif "valid" in record or "test" in record or "train" in record:
        problems += [f"an evaluated epoch lacks {k!r}" for k in ("valid", "test") if k not in record]
    return problems


def check_run(run: Mapping[str, Any]) -> List[str]:
    """What is wrong with one run record and its history (``[]``: it follows the schema)."""
    problems = [f"missing {k!r}" for k in RUN_KEYS if k not in run]
    history: Sequence[Mapping[str, Any]] = run.get("history") or []
    epochs = [r.get("epoch") for r in history]
    if epochs != sorted(set(e for e in epochs if _number(e))):
        problems.append("epochs are not strictly increasing")
    for r in history:
        problems += [f"epoch {r.get('epoch')}: {p}" for p in check_epoch(r)]
    if any(is_diverged(r) for r in history[:-1]):
        problems.append("a diverged epoch is not the last")
    chosen = run.get("best_epoch")
    if chosen and history and chosen not in evaluated_epochs(history):
        problems.append(f"best_epoch {chosen} is not an evaluated epoch")
    return problems
