r"""Is a finished run trustworthy? Classify its per-epoch history as stable, unstable or diverged.

A run is

* ``"diverged"`` when a training loss is not finite (NaN or infinite);
* ``"unstable"`` when

  - **the loss spikes**: at some epoch the training loss is more than
    :data:`SPIKE_RATIO` times its best value so far *and* above the first epoch's loss
    (training has lost everything it had learnt), or
  - **HAM's exponent saturates**: in some epoch more than :data:`CLAMP_SHARE` of the
    selected weights' exponents sit at the clamp (the history key ``clamp_fraction``);

* stable otherwise (``None``).

The thresholds come from the measured results in ``results/`` (100 epochs, 10 folds or
seeds): with HAM at its defaults (:math:`\alpha = 200`, Adam lr 0.01, so
:math:`\eta\alpha = 2`) and ``configs/tu-gin.yaml``, every MUTAG fold spikes 10–2700× above
its best loss so far and 2–2700× above its first loss; with HAM off, or
:math:`\alpha = 20`, MUTAG stays at most 2.8× above its best (5.6× with SGD + momentum).
Node tasks overfit to a tiny training loss, so their late-epoch noise reaches up to 29× the
best loss (Cora GCN AdamW + HAM) — but always stays below the first epoch's loss (≤ 0.96×),
which is why a spike must also exceed where training started. Missing history keys
(``clamp_fraction`` in results written before HAM recorded it) count as unknown, never as
unstable.
"""
from __future__ import annotations

import math
from typing import Any, Dict, Optional, Sequence

from pyg_ham.results import schema

__all__ = ["SPIKE_RATIO", "CLAMP_SHARE", "STEP_SAFE", "run_stability", "record_stability", "document_stability",
           "stability_advice", "nice_alpha"]

#: A training loss this many times its best value so far (and above the first epoch's) is a spike.
SPIKE_RATIO = 10.0
#: A share of the selected weights' exponents at HAM's clamp above this, in any epoch, is saturation.
CLAMP_SHARE = 0.25
#: The largest :math:`\eta\alpha` the measured recipes train stably with (Adam lr 0.01, α = 20).
STEP_SAFE = 0.2


def _finite(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


def run_stability(history: Sequence[Dict[str, Any]], *, spike_ratio: float = SPIKE_RATIO,
                  clamp_share: float = CLAMP_SHARE, lr: Optional[float] = None, alpha: Optional[float] = None,
                  ham: bool = True) -> Optional[Dict[str, Any]]:
    r"""Classify a finished run by its per-epoch history.

    Args:
        history (list of dict): the run's records, one per epoch, each with ``epoch`` and
            ``loss`` (and, where HAM recorded them, ``clamp_fraction`` and ``max_step``).
        spike_ratio (float): a loss more than this many times its best so far (and above the
            first epoch's loss) is a spike. (default: :data:`SPIKE_RATIO`)
        clamp_share (float): a ``clamp_fraction`` above this is saturation.
            (default: :data:`CLAMP_SHARE`)
        lr (float, optional): the learning rate :math:`\eta`, for the advice.
        alpha (float, optional): HAM's :math:`\alpha`, for the advice.
        ham (bool): whether HAM was on, for the advice. (default: :obj:`True`)

    Returns:
        dict or None: ``None`` for a stable run, else ``status`` (``"diverged"`` or
        ``"unstable"``), ``reason`` (one line), ``epoch`` (the first epoch concerned),
        ``kind`` (``"non-finite loss"``, ``"loss spike"`` or ``"clamp saturation"``),
        ``ratio`` (loss / best so far at that epoch, for a spike), ``clamp_fraction`` (for
        saturation) and ``advice`` (see :func:`stability_advice`).
    """
    if not (spike_ratio > 1 and clamp_share > 0):
        raise ValueError(f"spike_ratio must be > 1 and clamp_share > 0, got {spike_ratio}, {clamp_share}")
    found: Optional[Dict[str, Any]] = None
    best, first = math.inf, None
    for i, record in enumerate(history):  # epoch records (pyg_ham.results.schema)
        epoch = record.get("epoch", i + 1)
        loss = schema.value(record, "loss")
        if loss is not None and not _finite(loss):
            found = {"status": "diverged", "kind": "non-finite loss", "epoch": epoch,
                     "reason": f"training loss is {loss} at epoch {epoch}"}
            break
        clamp = schema.value(record, "clamp_fraction")
        if found is None and _finite(clamp) and clamp > clamp_share:
            found = {"status": "unstable", "kind": "clamp saturation", "epoch": epoch, "clamp_fraction": clamp,
                     "reason": f"{100 * clamp:.0f}% of HAM's exponents at the clamp in epoch {epoch}"}
        if loss is None:
            continue
        if first is None:
            first = loss
        elif found is None and best > 0 and loss > spike_ratio * best and loss > first:
            found = {"status": "unstable", "kind": "loss spike", "epoch": epoch, "ratio": loss / best,
                     "reason": f"training loss {loss:.4g} at epoch {epoch} is {loss / best:.3g}× its best so far "
                               f"({best:.4g}) and above its first ({first:.4g})"}
        best = min(best, loss)
        # keep reading after an instability: a later non-finite loss makes the run diverged
    if found is None:
        return None
    found["advice"] = stability_advice(lr, alpha, ham)
    return found


def nice_alpha(value: float) -> float:
    """The largest of 1, 2, 5 × 10^k not above :obj:`value` (e.g. 20 for 20, 5 for 9.9)."""
    if not (value > 0 and math.isfinite(value)):
        raise ValueError(f"value must be a finite number > 0, got {value}")
    k = math.floor(math.log10(value))
    for m in (5, 2, 1):
        if m * 10 ** k <= value * (1 + 1e-9):
            return float(f"{m * 10 ** k:.6g}")
    return float(f"{10 ** k:.6g}")  # pragma: no cover - m = 1 always fits


def stability_advice(lr: Optional[float], alpha: Optional[float], ham: bool = True,
                     safe: float = STEP_SAFE) -> str:
    r"""One line saying what to change after an unstable or diverged run.

    With HAM on and :math:`\eta\alpha` above :obj:`safe`, suggest the :math:`\alpha` that
    brings it to :obj:`safe` (e.g. ``"η·α = 2 is large; try --alpha 20"`` at lr 0.01, α 200);
    otherwise suggest a lower learning rate.

    Args:
        lr (float, optional): the learning rate :math:`\eta` (``None``: unknown).
        alpha (float, optional): HAM's :math:`\alpha` (``None``: unknown).
        ham (bool): whether HAM was on. (default: :obj:`True`)
        safe (float): the :math:`\eta\alpha` to aim for. (default: :data:`STEP_SAFE`)
    """
    if ham and _finite(lr) and _finite(alpha) and lr > 0 and alpha > 0:
        step = lr * alpha
        if step > safe:
            return f"η·α = {step:.3g} is large; try --alpha {nice_alpha(safe / lr):g}"
        return f"η·α = {step:.3g}; try a lower --lr (e.g. --lr {lr / 10:g})"
    if _finite(lr) and lr > 0:
        return f"try a lower --lr (e.g. --lr {lr / 10:g})"
    return "try a lower --lr" + (" or --alpha" if ham else "")


def record_stability(record: Dict[str, Any], config: Optional[Dict[str, Any]] = None) -> Optional[Dict[str, Any]]:
    r"""The instability of one run record of a result document: its own ``unstable`` entry
    when it has one, ``diverged`` when flagged so, else :func:`run_stability` of its history.

    Args:
        record (dict): a run of a result document (``history``, maybe ``diverged`` or
            ``unstable``).
        config (dict, optional): the document's config (``lr``, ``alpha``, ``ham``) for the advice.
    """
    config = config or {}
    kw = {"lr": config.get("lr"), "alpha": config.get("alpha"), "ham": bool(config.get("ham", True))}
    found = run_stability(record.get("history") or [], **kw)
    given = record.get("unstable")
    if isinstance(given, dict) and (found is None or found["status"] != "diverged"):
        found = {"status": given.get("status", "unstable"), **given}
        found.setdefault("advice", stability_advice(**kw))
    if schema.run_diverged(record) and (found is None or found["status"] != "diverged"):
        found = {"status": "diverged", "kind": "non-finite loss", "epoch": (found or {}).get("epoch"),
                 "reason": "training loss became non-finite", "advice": stability_advice(**kw)}
    return found


def document_stability(doc: Dict[str, Any]) -> Dict[str, Any]:
    r"""Count the diverged and unstable runs of a result document.

    Returns:
        dict: ``runs`` (how many), ``diverged`` and ``unstable`` (the run keys of each,
        ``unstable`` excluding the diverged ones), ``details`` (key → the
        :func:`record_stability` entry) and ``advice`` (of the first flagged run, or ``None``).
    """
    runs = doc.get("runs") or []
    details: Dict[str, Dict[str, Any]] = {}
    for i, r in enumerate(runs):
        found = record_stability(r, doc.get("config"))
        if found is not None:
            details[str(r.get("key", f"run{i}"))] = found
    return {"runs": len(runs), "diverged": [k for k, v in details.items() if v["status"] == "diverged"],
            "unstable": [k for k, v in details.items() if v["status"] != "diverged"], "details": details,
            "advice": next((v["advice"] for v in details.values()), None)}
