"""Run records and their aggregation over seeds, as the OGB leaderboards report them."""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any, Dict, List, Optional, Sequence, Union

import torch

from pyg_ham.results import schema
from pyg_ham.results.io import provenance

__all__ = ["RunResult", "mean_std", "format_mean_std", "summarize", "result_document"]


@dataclass
class RunResult:
    """One training run: the scores at the best-validation epoch and its per-epoch history.

    Args:
        seed (int): the run's seed.
        best_epoch (int): the epoch chosen on the validation metric (1-based; 0 = no epoch).
        train, valid, test (float): the metric at :obj:`best_epoch`.
        history (list of dict): one record per epoch (loss, metrics, time, HAM diagnostics), of
            the kinds :mod:`pyg_ham.results.schema` defines.
        extra (dict): task-specific keys (``fold``, ``repeat``, ``split``, ``sparsity``...),
            written at the top level of the record.
    """

    seed: int
    best_epoch: int
    train: float
    valid: float
    test: float
    history: List[Dict[str, Any]] = field(default_factory=list)
    extra: Dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> schema.RunRecord:
        """The run record of a result document (:class:`~pyg_ham.results.schema.RunRecord`)."""
        out = asdict(self)
        extra = out.pop("extra")
        return {**out, **extra}  # type: ignore[return-value]

    @classmethod
    def from_dict(cls, record: Dict[str, Any]) -> "RunResult":
        """A run record of a result document (this version's or an earlier one's)."""
        return cls(**{k: record[k] for k in schema.RUN_KEYS if k in record},
                   extra={k: v for k, v in record.items() if k not in schema.RUN_KEYS})


def mean_std(values: Sequence[float]) -> tuple:
    """Mean and unbiased (``n - 1``) standard deviation, as OGB reports; the std of one value
    is undefined (``None``, ``null`` in JSON)."""
    values = [float(v) for v in values]
    if not values:
        return math.nan, None
    t = torch.tensor(values, dtype=torch.float64)
    return float(t.mean()), float(t.std(unbiased=True)) if len(values) > 1 else None


def _number(value: Any) -> Optional[float]:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or math.isnan(value):
        return None
    return float(value)


def format_mean_std(mean: Any, std: Any = None, runs: Optional[int] = None, digits: int = 4) -> str:
    r"""``"0.7174 ± 0.0029"``; ``"0.7174 (1 run)"`` when there is one run (its std is undefined,
    even where an older result file wrote ``0.0``); ``"0.7174"`` without a std; ``"-"``
    without a mean.

    Args:
        mean (float): the mean.
        std (float, optional): the standard deviation (``None``: undefined).
        runs (int, optional): the number of runs behind the mean (``None``: not known).
        digits (int): decimals. (default: :obj:`4`)
    """
    m, s = _number(mean), _number(std)
    if m is None:
        return "-"
    if runs == 1:
        return f"{m:.{digits}f} (1 run)"
    return f"{m:.{digits}f}" + (f" ± {s:.{digits}f}" if s is not None else "")


def summarize(runs: Sequence[Union[RunResult, Dict[str, Any]]], num_params: Optional[int] = None) -> Dict[str, Any]:
    """``test_mean``, ``test_std``, ``valid_mean``, ``valid_std`` (and train) over runs.

    When the records carry ``repeat`` keys (repeated cross-validation), the std is taken over
    the per-repeat means, the mean over all runs (Errica et al.'s reporting). A run without a
    finite score (one that diverged before the selected epoch) is left out of the means and
    counted: ``scored`` (runs with a finite test score, when fewer than ``runs``) and
    ``diverged`` (runs that diverged, when any).
    """
    records = [r.to_dict() if isinstance(r, RunResult) else r for r in runs]
    out: Dict[str, Any] = {"runs": len(records)}
    repeats = sorted({r["repeat"] for r in records if "repeat" in r})
    for key in ("test", "valid", "train"):
        scored = [r for r in records if _number(r.get(key)) is not None]
        values = [r[key] for r in scored]
        if len(repeats) > 1:
            per_repeat = [mean_std([r[key] for r in scored if r.get("repeat") == k])[0] for k in repeats]
            out[f"{key}_mean"], out[f"{key}_std"] = mean_std([v for v in per_repeat if not math.isnan(v)])
        else:
            out[f"{key}_mean"], out[f"{key}_std"] = mean_std(values)
    scored_test = sum(_number(r.get("test")) is not None for r in records)
    if scored_test < len(records):
        out["scored"] = scored_test
    diverged = sum(schema.run_diverged(r) for r in records)
    if diverged:
        out["diverged"] = diverged
    if num_params is not None:
        out["num_params"] = int(num_params)
    sparsity = [r["sparsity"]["overall"] for r in records if isinstance(r.get("sparsity"), dict)]
    if sparsity:  # achieved sparsity of the masked weights (sparse training)
        out["sparsity"] = sum(sparsity) / len(sparsity)
        out["sparsity_layers"] = records[0]["sparsity"].get("layers", {})
    return out


def result_document(dataset: str, task: str, metric: str, config: Dict[str, Any],
                    runs: Sequence[Union[RunResult, Dict[str, Any]]], num_params: Optional[int] = None,
                    device: Any = None, **extra: Any) -> Dict[str, Any]:
    """The JSON document every task writes: dataset, task, metric, config, runs, summary, provenance."""
    records = [r.to_dict() if isinstance(r, RunResult) else r for r in runs]
    return {"dataset": dataset, "task": task, "metric": metric, "config": config, "runs": records,
            "summary": summarize(records, num_params), **extra, "provenance": provenance(device)}
