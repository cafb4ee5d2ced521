r"""``sweep``: an equal-budget grid search that selects on validation data only.

HAM's ``alpha`` × ``beta`` grid is searched against the baseline's ``weight_decay`` grid,
with the same number of configurations each (and, if asked, the same learning rates for
both); every configuration trains the same seeds/folds for the same epochs. Each arm keeps
the setting with the best mean validation score (OGB's rule: validation labels for
hyper-parameter selection, test labels for the final evaluation only), and the test score is
reported at that setting only. A configuration with a diverged or unstable run
(:mod:`pyg_ham.train.stability`) is never selected: the sweep names the ones it skipped. ``best.yaml``
holds the two selected variant strings, ready for ``pyg-ham compare --variants-file best.yaml``; when an
arm has nothing to select (every configuration flagged or unfinished) no ``best.yaml`` is written and
the sweep says so.
"""
from __future__ import annotations

import math
import shlex
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple, Union

import yaml

from pyg_ham.compare.compare import VariantOutcome, run_variants
from pyg_ham.compare.stats import higher_is_better
from pyg_ham.compare.table import csv_text, fmt_pm, markdown_table
from pyg_ham.compare.variants import Variant
from pyg_ham.errors import ConfigError
from pyg_ham.results import write_json
from pyg_ham.results.io import write_text
from pyg_ham.train.config import ExperimentConfig
from pyg_ham.train.stability import document_stability

__all__ = ["weight_decay_grid", "sweep_variants", "select_best", "flagged", "run_sweep", "tuned_string"]


def _round(x: float) -> float:
    return float(f"{x:.2g}")


def weight_decay_grid(n: int, low: float = 1e-5, high: float = 1e-1) -> List[float]:
    r"""``n`` weight decays: ``0`` and ``n - 1`` log-spaced values from :obj:`low` to :obj:`high`
    (2 significant digits), the baseline's grid when none is given."""
    if n < 1:
        raise ConfigError(f"the grid needs at least one configuration, got {n}")
    if n == 1:
        return [0.0]
    if n == 2:
        return [0.0, _round(math.sqrt(low * high))]
    step = (math.log10(high) - math.log10(low)) / (n - 2)
    return [0.0] + [_round(10 ** (math.log10(low) + i * step)) for i in range(n - 1)]


def _check_grid(name: str, values: Sequence[float]) -> List[float]:
    values = [float(v) for v in values]
    if not values:
        raise ConfigError(f"{name} grid is empty; give at least one value")
    if len(set(values)) != len(values):
        raise ConfigError(f"{name} grid has repeated values: {values}")
    if any(not math.isfinite(v) or v < 0 for v in values):
        raise ConfigError(f"{name} grid values must be finite numbers >= 0, got {values}")
    return values


def sweep_variants(optimizer: str, alphas: Sequence[float], betas: Sequence[float],
                   weight_decays: Optional[Sequence[float]] = None,
                   lrs: Optional[Sequence[float]] = None, sam: bool = False) -> Tuple[List[Variant], List[Variant]]:
    r"""The two arms of an equal-budget sweep: ``(baseline, ham)`` variants.

    The baseline searches :obj:`weight_decays` (default: :func:`weight_decay_grid` of
    ``len(alphas) * len(betas)`` values), HAM searches ``alphas × betas`` (its weight decay
    stays the config's); both search :obj:`lrs` when given, and both run inside SAM with
    :obj:`sam` (``--sam``, ``--rho``: ``adam+sam:...`` and ``adam+sam+ham:...``).

    Raises:
        ConfigError: the two arms would get different numbers of configurations.
    """
    alphas, betas = _check_grid("alpha", alphas), _check_grid("beta", betas)
    n_ham = len(alphas) * len(betas)
    if weight_decays is None:
        weight_decays = weight_decay_grid(n_ham)
    weight_decays = _check_grid("weight_decay", weight_decays)
    if len(weight_decays) != n_ham:
        raise ConfigError(f"equal budget: HAM gets {len(alphas)} alphas × {len(betas)} betas = {n_ham} configurations, "
                          f"the baseline {len(weight_decays)} weight decays; give {n_ham} weight decays "
                          f"or leave --weight-decays out (automatic grid)")
    lr_grid: List[Optional[float]] = list(_check_grid("lr", lrs)) if lrs else [None]
    if lrs and any(v <= 0 for v in lr_grid):  # type: ignore[operator]
        raise ConfigError(f"lr grid values must be > 0, got {lrs}")
    from pyg_ham.optim import canonical_optimizer_name

    name = canonical_optimizer_name(optimizer)
    baseline, ham = [], []
    for lr in lr_grid:
        lr_part = {"lr": lr} if lr is not None else {}
        baseline += [Variant(name, False, {**lr_part, "weight_decay": wd}, sam=sam) for wd in weight_decays]
        ham += [Variant(name, True, {**lr_part, "alpha": a, "beta": b}, sam=sam) for a in alphas for b in betas]
    return baseline, ham


def flagged(outcome: VariantOutcome) -> Optional[str]:
    r"""``"2 diverged, 1 unstable of 3 runs"`` when a configuration has diverged or unstable runs
    (:func:`~pyg_ham.train.stability.document_stability`), else ``None``."""
    if not outcome.doc:
        return None
    st = document_stability(outcome.doc)
    parts = [f"{len(st[k])} {k}" for k in ("diverged", "unstable") if st[k]]
    return f"{', '.join(parts)} of {st['runs']} runs" if parts else None


def select_best(outcomes: Sequence[VariantOutcome], metric: str) -> Optional[VariantOutcome]:
    """The complete, unflagged outcome with the best mean validation score (ties: the first in
    grid order); one with a diverged or unstable run (:func:`flagged`) is never selected."""
    best, best_value = None, None
    sign = 1.0 if higher_is_better(metric) else -1.0
    for o in outcomes:
        if o.error or not o.doc or not o.doc.get("complete") or flagged(o):
            continue
        value = o.doc["summary"].get("valid_mean")
        if not isinstance(value, (int, float)) or not math.isfinite(value):
            continue
        if best_value is None or sign * value > sign * best_value:
            best, best_value = o, value
    return best


def tuned_string(grid: Dict[str, Sequence[Any]], chosen: Dict[str, Any]) -> str:
    r"""OGB's form of the tuned hyper-parameters: ``"weight_decay: [0, 1e-05*, 0.0001]"``."""
    parts = []
    for key, values in grid.items():
        cells = [f"{v:g}" + ("*" if chosen.get(key) == v else "") for v in values]
        parts.append(f"{key}: [{', '.join(cells)}]")
    return ", ".join(parts)


def _arm(name: str, variants: List[Variant], outcomes: List[VariantOutcome], grid: Dict[str, List[float]],
         metric: str) -> Dict[str, Any]:
    best = select_best(outcomes, metric)
    results, skipped = [], []
    for o in outcomes:
        s = (o.doc or {}).get("summary") or {}
        status = "failed" if o.error else ("complete" if (o.doc or {}).get("complete") else "incomplete")
        flag = flagged(o)
        if flag:
            skipped.append(f"{o.variant.label} ({flag})")
        results.append({"variant": o.variant.label, "file": o.path.name, "overrides": dict(o.variant.overrides),
                        "valid_mean": s.get("valid_mean"), "valid_std": s.get("valid_std"),
                        "test_mean": s.get("test_mean"), "test_std": s.get("test_std"),
                        "runs": s.get("runs", 0), "selected": o is best,
                        "status": status, "flagged": flag,
                        "error": o.error})
    chosen = dict(best.variant.overrides) if best else {}
    return {"name": name, "configurations": len(variants), "grid": grid, "results": results,
            "skipped": skipped, "selected": best.variant.label if best else None,
            "selected_summary": (best.doc or {}).get("summary") if best else None,
            "tuned": tuned_string(grid, chosen) if best else None}


def _nothing(arm: Dict[str, Any]) -> str:
    if arm.get("skipped") and len(arm["skipped"]) == arm["configurations"]:
        return "nothing selected (every configuration diverged or was unstable)"
    return "nothing selected (no complete, stable configuration)"


def _markdown(doc: Dict[str, Any]) -> str:
    lines = [f"## Sweep · {doc['dataset']} · {doc['model']} · {doc['metric']} · selected on validation only", "",
             f"Equal budget: {doc['budget']['baseline']} baseline and {doc['budget']['ham']} HAM configurations, "
             f"{doc['budget']['epochs']} epochs × {doc['budget']['runs']} runs each. Test is shown at the selected "
             f"settings only.", ""]
    rows = []
    for arm in doc["arms"].values():
        for r in arm["results"]:
            rows.append([arm["name"], r["variant"], fmt_pm(r["valid_mean"], r["valid_std"], runs=r["runs"]),
                         fmt_pm(r["test_mean"], r["test_std"], runs=r["runs"]) if r["selected"] else "",
                         "**selected**" if r["selected"] else "",
                         r["status"] + (f": {r['error']}" if r["error"] else "")
                         + (f"; skipped: {r['flagged']}" if r.get("flagged") else "")])
    lines.append(markdown_table(["arm", "variant", "valid", "test (selected only)", "", "status"], rows))
    lines += [""] + [f"* {arm['name']}: {arm['tuned'] or _nothing(arm)}" for arm in doc["arms"].values()]
    lines += [f"* {arm['name']}: skipped as diverged or unstable: {', '.join(arm['skipped'])}"
              for arm in doc["arms"].values() if arm.get("skipped")]
    if doc.get("best_written") is False:
        lines += ["", f"No best.yaml: {doc['no_best']}."]
    if doc.get("variants") and doc.get("next_command"):
        lines += ["", f"Next: `{doc['next_command']}` (more seeds: add `--runs 10`)."]
    return "\n".join(lines) + "\n"


#: Settings of a sweep's config that do not carry over to the comparison it suggests.
_NOT_CARRIED = ("out", "checkpoint_dir", "resume")


def write_sweep_config(cfg: ExperimentConfig, out_dir: Union[str, Path]) -> Path:
    r"""Write ``OUT/config.yaml``: the sweep's whole configuration (dataset, root, options,
    model, epochs, runs/folds, protocol...), so that ``pyg-ham compare -c OUT/config.yaml
    --variants-file OUT/best.yaml`` compares the selected variants on exactly the same setting."""
    path = Path(out_dir) / "config.yaml"
    values = {k: v for k, v in cfg.to_dict().items() if k not in _NOT_CARRIED}
    header = (f"# The configuration of the sweep in {out_dir} (written by pyg-ham sweep); the variants in "
              f"best.yaml set the optimizer and HAM.\n")
    return write_text(path, header + yaml.safe_dump(values, sort_keys=False))


def run_sweep(cfg: ExperimentConfig, out_dir: Union[str, Path], *, alphas: Sequence[float],
              betas: Sequence[float], weight_decays: Optional[Sequence[float]] = None,
              lrs: Optional[Sequence[float]] = None, log: Callable[[str], None] = print, fresh: bool = False,
              task: Optional[Any] = None) -> Dict[str, Any]:
    r"""Run the equal-budget sweep of :obj:`cfg`'s optimizer with and without HAM.

    Writes ``OUT/<variant>.json`` per configuration (resumable as in ``compare``),
    ``OUT/sweep.{json,csv,md}``, ``OUT/best.yaml`` (``variants: [baseline, ham]``) and
    ``OUT/config.yaml`` (the sweep's configuration); ``next_command`` in the returned document
    is the ``pyg-ham compare`` command that compares the two selections on the same setting.

    Raises:
        ConfigError: unequal budgets, or the ``gin`` protocol (its validation folds are the
            test folds, so selecting on them would select on test).
    """
    if cfg.protocol == "gin":
        raise ConfigError("sweep selects on validation data, but with protocol gin the validation folds are the "
                          "test folds; use --protocol cv")
    baseline, ham = sweep_variants(cfg.optimizer, alphas, betas, weight_decays, lrs, sam=cfg.sam)
    out_dir = Path(out_dir)
    outcomes = run_variants(cfg, baseline + ham, out_dir, log=log, task=task, fresh=fresh)
    docs = [o.doc for o in outcomes if o.doc]
    first = docs[0] if docs else {}
    metric = first.get("metric", "?")
    lr_grid = {"lr": [float(v) for v in lrs]} if lrs else {}
    wds = [v.overrides["weight_decay"] for v in baseline if v.overrides.get("lr") == baseline[0].overrides.get("lr")]
    arms = {"baseline": _arm(cfg.optimizer, baseline, outcomes[: len(baseline)], {**lr_grid, "weight_decay": wds},
                             metric),
            "ham": _arm(f"{cfg.optimizer}+ham", ham, outcomes[len(baseline):],
                        {**lr_grid, "alpha": [float(a) for a in alphas], "beta": [float(b) for b in betas]}, metric)}
    selected = [a["selected"] for a in arms.values() if a["selected"]]
    empty = [a["name"] for a in arms.values() if not a["selected"]]
    best_file = out_dir / "best.yaml"
    for arm in arms.values():
        if arm["skipped"]:
            log(f"{arm['name']}: not selectable (diverged or unstable): {', '.join(arm['skipped'])}")
    from pyg_ham.train.distributed import is_main

    main = is_main()  # under torchrun rank 0 alone writes the sweep's files
    config_file = write_sweep_config(cfg, out_dir) if main else Path(out_dir) / "config.yaml"
    next_command = (f"pyg-ham compare -c {shlex.quote(str(config_file))} "
                    f"--variants-file {shlex.quote(str(best_file))}")
    doc = {"kind": "pyg-ham sweep", "dataset": first.get("dataset", cfg.dataset), "model": first.get("model"),
           "metric": metric, "protocol": first.get("protocol"),
           "selection": "best mean validation score per arm (ties: first in grid order); test never used",
           "budget": {"baseline": len(baseline), "ham": len(ham), "epochs": cfg.epochs,
                      "runs": first.get("summary", {}).get("runs", cfg.runs)},
           "config": {**cfg.to_dict(), "out": str(out_dir)}, "arms": arms, "variants": selected,
           "best_file": str(best_file), "config_file": str(config_file),
           "next_command": next_command if not empty else None, "best_written": not empty,
           "provenance": first.get("provenance")}
    if empty:
        doc["no_best"] = "nothing to select for " + " and ".join(
            f"{a['name']} ({_nothing(a).split('(', 1)[1].rstrip(')')})" for a in arms.values() if not a["selected"])
    if not main:
        return doc
    write_json(out_dir / "sweep.json", doc)
    write_text(out_dir / "sweep.md", _markdown(doc))
    rows = [{"arm": arm["name"], **{k: r[k] for k in ("variant", "valid_mean", "valid_std", "runs", "status")},
             "test_mean": r["test_mean"] if r["selected"] else None,
             "test_std": r["test_std"] if r["selected"] else None, "selected": r["selected"]}
            for arm in arms.values() for r in arm["results"]]
    write_text(out_dir / "sweep.csv", csv_text(rows, ["arm", "variant", "valid_mean", "valid_std", "test_mean",
                                                      "test_std", "runs", "selected", "status"]))
    if empty:
        best_file.unlink(missing_ok=True)  # an earlier sweep's selection no longer holds
        log(f"no {best_file} written: {doc['no_best']}")
    else:
        header = (f"# pyg-ham sweep on {doc['dataset']}: the settings selected on validation, equal budget "
                  f"({len(baseline)} configurations each).\n# Use: {next_command}\n")
        write_text(best_file, header + yaml.safe_dump({"variants": selected, "tuned": {k: a["tuned"] for k, a in
                                                                                       arms.items()}}, sort_keys=False))
    return doc
