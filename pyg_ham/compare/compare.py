r"""``compare``: run optimizer variants on identical seeds and splits, then compare them paired.

Every variant's result document is written to ``OUT/<variant>.json`` by
:func:`~pyg_ham.train.runner.run_experiment` after each finished seed/fold (``resume=True``),
so an interrupted comparison loses at most the run in progress (which continues from its
epoch checkpoint) and a rerun skips what is done. A variant that crashes is reported with its
error (``OUT/<variant>.error.txt`` holds the traceback); the others go on.

With ``cfg.jobs > 1`` every (variant, run) pair is one job for the same ``jobs`` worker
processes (:mod:`pyg_ham.train.jobs`): the parent writes each variant's JSON as its runs
finish, a run that crashes is reported and the other runs (of that variant too) go on.
"""
from __future__ import annotations

import dataclasses
import shutil
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple, Union

from pyg_ham.compare.leaderboards import reference_rows
from pyg_ham.compare.stats import cv_test_train_ratio, higher_is_better, is_cv, pair_runs, paired_difference
from pyg_ham.compare.table import CSV_COLUMNS, comparison_csv_rows, comparison_markdown, csv_text
from pyg_ham.compare.variants import PAIRING_KEYS, Variant, baseline_of, default_variants, parse_variants
from pyg_ham.errors import ConfigError, PygHamError
from pyg_ham.results import read_json, schema, write_json
from pyg_ham.results.io import write_text
from pyg_ham.train.config import ExperimentConfig
from pyg_ham.train.runner import comparable_config
from pyg_ham.train.stability import document_stability

__all__ = ["VariantOutcome", "run_variants", "build_comparison", "write_comparison", "compare", "broken_note",
           "time_per_epoch", "as_variants"]

VariantLike = Union[str, Variant]


@dataclass
class VariantOutcome:
    r"""What running one variant produced.

    Attributes:
        variant (Variant): the variant.
        path (Path): its result JSON.
        doc (dict, optional): its result document (partial when it failed midway).
        error (str, optional): one line saying why it failed.
        skipped (bool): every run was already finished (nothing was trained).
    """

    variant: Variant
    path: Path
    doc: Optional[Dict[str, Any]] = None
    error: Optional[str] = None
    skipped: bool = False


def as_variants(variants: Optional[Sequence[VariantLike]], cfg: ExperimentConfig) -> List[Variant]:
    """Parse strings (each may hold several space-separated variants); default: without/with HAM."""
    if not variants:
        return default_variants(cfg)
    out: List[Variant] = []
    for v in variants:
        for parsed in ([v] if isinstance(v, Variant) else parse_variants([v])):
            if any(w.label == parsed.label for w in out):
                raise ConfigError(f"variant {parsed.label!r} is listed twice")
            out.append(parsed)
    return out




def _existing(path: Path, vcfg: ExperimentConfig, fresh_hint: str) -> Optional[Dict[str, Any]]:
    """The finished document at :obj:`path` (``None`` if absent or unfinished); a config clash is an error."""
    if not path.exists():
        return None
    doc = read_json(path)
    old, new = comparable_config(doc.get("config", {})), comparable_config(vcfg.to_dict())
    if old != new:
        keys = sorted(k for k in set(old) | set(new) if old.get(k) != new.get(k))
        raise ConfigError(f"{path} holds results of a different configuration (differs in {', '.join(keys)}); "
                          f"{fresh_hint}")
    return doc if doc.get("complete") else None


def run_variants(cfg: ExperimentConfig, variants: Sequence[VariantLike], out_dir: Union[str, Path], *,
                 log: Callable[[str], None] = print, task: Optional[Any] = None, fresh: bool = False,
                 fresh_hint: str = "use another --out folder or --fresh") -> List[VariantOutcome]:
    r"""Run every variant of :obj:`cfg` on the same seeds/folds, resumably.

    Args:
        cfg (ExperimentConfig): the shared settings (data, seeds, runs/folds, model...).
        variants (sequence): :class:`Variant` objects or variant strings.
        out_dir (str or Path): one ``<variant>.json`` per variant is written here.
        log (callable): progress messages. (default: :func:`print`)
        task (optional): a loaded task to reuse (default: loaded once, only if something runs).
        fresh (bool): delete this comparison's earlier results first. (default: :obj:`False`)

    With ``cfg.jobs > 1`` the runs of all variants train in ``cfg.jobs`` worker processes
    (``cfg.devices``: one CUDA device each); the results are those of ``jobs=1``.

    Raises:
        ConfigError: a bad variant, or earlier results in :obj:`out_dir` from another config.
        KeyboardInterrupt: passed on; everything finished so far is on disk.
    """
    from pyg_ham.train import distributed

    out_dir = Path(out_dir)
    distributed.check_config(cfg, distributed.launched_world_size())  # on every rank, before the group starts
    parsed = as_variants(variants, cfg)
    plans = []
    for v in parsed:  # validate everything before training anything
        bad = [k for k in v.overrides if k in PAIRING_KEYS]
        if bad:
            raise ConfigError(f"variant {v.label!r}: {', '.join(bad)} cannot differ between variants")
        path = out_dir / f"{v.slug}.json"
        vcfg = dataclasses.replace(v.apply(cfg), out=str(path), resume=True, checkpoint_dir=None)
        plans.append((v, path, vcfg))
    out_dir.mkdir(parents=True, exist_ok=True)
    if cfg.jobs > 1:
        return _run_variants_parallel(cfg, plans, out_dir, log=log, task=task, fresh=fresh, fresh_hint=fresh_hint)
    from pyg_ham.train.config import resolve_device

    # under torchrun one process group serves every variant (ending and restarting it between
    # experiments races on the rendezvous store)
    with distributed.session(resolve_device(cfg.device), cfg.devices):
        return _run_variants_in_turn(cfg, plans, out_dir, log=log, task=task, fresh=fresh, fresh_hint=fresh_hint)


def _run_variants_in_turn(cfg: ExperimentConfig, plans: Sequence[Any], out_dir: Path, *,
                          log: Callable[[str], None], task: Optional[Any], fresh: bool,
                          fresh_hint: str) -> List[VariantOutcome]:
    """:func:`run_variants` in this process, one variant after another."""
    from pyg_ham.train.runner import load_task, run_experiment

    outcomes: List[VariantOutcome] = []
    for i, (v, path, vcfg) in enumerate(plans, 1):
        error_file = out_dir / f"{v.slug}.error.txt"
        if fresh:
            _forget(path, error_file)
        done = _existing(path, vcfg, fresh_hint)
        if done is not None:
            log(f"[{i}/{len(plans)}] {v.label}: done already ({path.name}), skipped")
            outcomes.append(VariantOutcome(v, path, done, skipped=True))
            continue
        if task is None:
            task = load_task(cfg)
        log(f"[{i}/{len(plans)}] {v.label}")
        try:
            doc = run_experiment(vcfg, log=log, task=task)
        except PygHamError:
            raise
        except Exception as exc:  # noqa: BLE001 - a crashed variant is reported, not fatal
            message = (f"{type(exc).__name__}: {exc}".splitlines() or [type(exc).__name__])[0]
            error_file.write_text(traceback.format_exc())
            log(f"[{i}/{len(plans)}] {v.label} FAILED: {message} (traceback in {error_file})")
            partial = read_json(path) if path.exists() else None
            outcomes.append(VariantOutcome(v, path, partial, error=message))
            continue
        error_file.unlink(missing_ok=True)
        outcomes.append(VariantOutcome(v, path, doc))
    return outcomes


def _forget(path: Path, error_file: Path) -> None:
    path.unlink(missing_ok=True)
    error_file.unlink(missing_ok=True)
    shutil.rmtree(path.with_suffix(".ckpt"), ignore_errors=True)


def _run_variants_parallel(cfg: ExperimentConfig, plans: Sequence[Any], out_dir: Path, *,
                           log: Callable[[str], None], task: Optional[Any], fresh: bool,
                           fresh_hint: str) -> List[VariantOutcome]:
    """:func:`run_variants` with ``cfg.jobs`` workers: every (variant, run) pair is one job."""
    from pyg_ham.train.jobs import run_experiments_parallel
    from pyg_ham.train.runner import Experiment, load_task

    outcomes: Dict[int, VariantOutcome] = {}
    experiments: List[Tuple[int, Experiment]] = []
    for i, (v, path, vcfg) in enumerate(plans):
        if fresh:
            _forget(path, out_dir / f"{v.slug}.error.txt")
        done = _existing(path, vcfg, fresh_hint)
        if done is not None:
            log(f"[{i + 1}/{len(plans)}] {v.label}: done already ({path.name}), skipped")
            outcomes[i] = VariantOutcome(v, path, done, skipped=True)
            continue
        if task is None:
            task = load_task(cfg)
        experiments.append((i, Experiment(vcfg, task, log, label=f"{v.label} ")))
    if experiments:
        runs = sum(len(exp.pending()) for _, exp in experiments)
        log(f"{len(experiments)} variant(s), {runs} run(s) to train in {cfg.jobs} jobs")
    failures = run_experiments_parallel([exp for _, exp in experiments], cfg.jobs, devices=cfg.devices,
                                        quiet=cfg.quiet, log=log)
    for n, (i, exp) in enumerate(experiments):
        v, path, _ = plans[i]
        error_file = out_dir / f"{v.slug}.error.txt"
        failed = failures.get(n)
        if not failed:
            error_file.unlink(missing_ok=True)
            outcomes[i] = VariantOutcome(v, path, exp.finish())
            continue
        error_file.write_text("\n".join(f"{spec['key']}:\n{o.traceback}" for spec, o in failed))
        message = f"{', '.join(spec['key'] for spec, _ in failed)}: {failed[0][1].error}"
        log(f"{v.label} FAILED: {message} (traceback in {error_file})")
        outcomes[i] = VariantOutcome(v, path, read_json(path) if path.exists() else None, error=message)
    return [outcomes[i] for i in range(len(plans))]


def time_per_epoch(doc: Optional[Dict[str, Any]]) -> Optional[float]:
    """Median training seconds per epoch over every epoch of every run (robust to warm-up)."""
    times = sorted(t for r in (doc or {}).get("runs", []) for h in r.get("history", [])
                   if (t := schema.value(h, "time")) is not None)
    if not times:
        return None
    mid = len(times) // 2
    return times[mid] if len(times) % 2 else (times[mid - 1] + times[mid]) / 2


def _status(outcome: VariantOutcome) -> str:
    if outcome.error:
        return "failed"
    if outcome.doc is None:
        return "missing"
    return "complete" if outcome.doc.get("complete") else "incomplete"


def broken_note(label: str, stability: Dict[str, Any]) -> Optional[str]:
    r"""``"adam+ham diverged in 3 of 3 runs"``, ``"adam+ham unstable in 2 of 3 runs"`` (or both,
    ``"... diverged in 1 and unstable in 2 of 3 runs"``); ``None`` when no run is flagged.

    Args:
        label (str): the variant's label.
        stability (dict): its :func:`~pyg_ham.train.stability.document_stability`.
    """
    d, u, n = len(stability["diverged"]), len(stability["unstable"]), stability["runs"]
    if d and u:
        return f"{label} diverged in {d} and unstable in {u} of {n} runs"
    if d or u:
        return f"{label} {'diverged' if d else 'unstable'} in {d or u} of {n} runs"
    return None


def _flag_broken(out: Dict[str, Any], arms: Sequence[Any]) -> Dict[str, Any]:
    """Replace the verdict by what is broken when an arm has diverged or unstable runs."""
    notes = [note for label, st in arms if (note := broken_note(label, st))]
    out["unstable_runs"] = {label: {"diverged": st["diverged"], "unstable": st["unstable"],
                                    "runs": st["runs"], "advice": st["advice"],
                                    "details": {k: {f: v.get(f) for f in ("status", "kind", "epoch", "reason")}
                                                for k, v in st["details"].items()}}
                            for label, st in arms if st["details"]}
    if notes:
        out["statistical_verdict"] = out.get("verdict")
        out["verdict"] = "; ".join(notes)
    return out


def _pairwise(base: VariantOutcome, other: VariantOutcome, ratio: Optional[float], metric: str,
              confidence: float, stability: Optional[Dict[str, Dict[str, Any]]] = None) -> Dict[str, Any]:
    head = {"variant": other.variant.label, "baseline": base.variant.label, "confidence": confidence}
    stability = stability or {}
    arms = [(o.variant.label, stability[o.variant.label]) for o in (other, base) if o.variant.label in stability]
    missing = [o.variant.label for o in (base, other) if not (o.doc and o.doc.get("runs"))]
    if missing:
        return _flag_broken({**head, "error": f"no finished runs for {', '.join(missing)}", "n": 0}, arms)
    out: Dict[str, Any] = dict(head)
    for key in ("test", "valid"):
        pairs = pair_runs(base.doc, other.doc, key)
        if pairs["same_seeds"] is False or pairs["same_splits"] is False:
            return {**head, "n": 0, "error": "runs are not paired (seeds or splits differ); rerun with --fresh"}
        result = paired_difference(pairs["baseline"], pairs["variant"], test_train_ratio=ratio, metric=metric,
                                   confidence=confidence)
        result.update(keys=pairs["keys"], excluded=pairs["excluded"], unpaired=pairs["unpaired"],
                      same_seeds=pairs["same_seeds"], same_splits=pairs["same_splits"],
                      baseline_scores=pairs["baseline"], variant_scores=pairs["variant"])
        if key == "test":
            out.update(result)
        else:
            out["valid"] = {k: result[k] for k in ("mean", "ci_low", "ci_high", "t", "df", "p", "wilcoxon_p", "n",
                                                   "verdict")}
    return _flag_broken(out, arms)


def build_comparison(outcomes: Sequence[VariantOutcome], cfg: Optional[ExperimentConfig] = None, *,
                     references: bool = True, all_references: bool = False,
                     confidence: float = 0.95) -> Dict[str, Any]:
    r"""The comparison document of finished (or partly finished) variants.

    Returns:
        dict: ``dataset``, ``task``, ``metric``, ``higher_is_better``, ``model``, ``protocol``,
        ``cv``, ``num_runs``, ``config``, ``variants`` (label, status, error, summary,
        time_per_epoch, file, provenance), ``comparisons`` (per non-first variant: its
        baseline, the paired test difference ``mean`` with ``ci_low``/``ci_high``, ``t``,
        ``df``, ``p``, ``test`` (which t-test), ``wilcoxon_p``, ``verdict``, the paired
        scores, and the same for ``valid``), ``references`` and the first result's
        ``provenance``. When either side of a comparison has diverged or unstable runs (see
        :mod:`pyg_ham.train.stability`), its ``verdict`` says so (``"adam+ham diverged in 3
        of 3 runs"``) instead of what the paired test found (kept as
        ``statistical_verdict``), and ``unstable_runs`` lists the flagged runs per variant;
        each variant carries ``diverged``/``unstable`` counts, the run keys and ``advice``.
    """
    docs = [o.doc for o in outcomes if o.doc]
    first = docs[0] if docs else {}
    config = cfg.to_dict() if cfg is not None else dict(first.get("config") or {})
    metric = first.get("metric", "?")
    cv = bool(first) and is_cv(first)
    ratio = None
    if cv:
        ratio = cv_test_train_ratio(first)
        if ratio is None:
            ratio = 1.0 / max(int(config.get("folds", 10)) - 1, 1)
    variants = []
    stability = {o.variant.label: document_stability(o.doc) for o in outcomes if o.doc}
    for o in outcomes:
        doc = o.doc or {}
        st = stability.get(o.variant.label) or {"diverged": [], "unstable": [], "advice": None}
        variants.append({"label": o.variant.label, "optimizer": o.variant.optimizer, "ham": o.variant.ham,
                         "sam": o.variant.sam, "overrides": dict(o.variant.overrides), "file": o.path.name,
                         "status": _status(o),
                         "error": o.error, "skipped": o.skipped, "summary": doc.get("summary"),
                         "time_per_epoch": time_per_epoch(doc),
                         "diverged": len(st["diverged"]), "unstable": len(st["unstable"]),
                         "diverged_runs": st["diverged"], "unstable_runs": st["unstable"], "advice": st["advice"],
                         "provenance": doc.get("provenance")})
    base_of = baseline_of([o.variant for o in outcomes])
    by_label = {o.variant.label: o for o in outcomes}
    comparisons = [_pairwise(by_label[b], o, ratio, metric, confidence, stability)
                   for o in outcomes if (b := base_of[o.variant.label]) is not None]
    model = first.get("model") or (cfg.model if cfg is not None else None)
    dataset = first.get("dataset") or (cfg.dataset if cfg is not None else "?")
    refs = reference_rows(dataset, model, all_models=all_references) if references else []
    return {"kind": "pyg-ham comparison", "dataset": dataset, "task": first.get("task"), "metric": metric,
            "higher_is_better": higher_is_better(metric), "model": model, "protocol": first.get("protocol"),
            "cv": cv, "test_train_ratio": ratio, "num_runs": max((len(d.get("runs", [])) for d in docs), default=0),
            "config": config, "variants": variants, "comparisons": comparisons, "references": refs,
            "provenance": first.get("provenance")}


def write_comparison(comparison: Dict[str, Any], out_dir: Union[str, Path], *, plot: bool = False,
                     docs: Optional[Dict[str, Dict[str, Any]]] = None, name: str = "comparison") -> List[Path]:
    r"""Write ``comparison.json``, ``.csv`` and ``.md`` (and the PNG figures with :obj:`plot`,
    which need the variants' result documents :obj:`docs`, keyed by label). Under ``torchrun``
    rank 0 alone writes (the others return ``[]``)."""
    from pyg_ham.train.distributed import is_main

    if not is_main():
        return []
    out_dir = Path(out_dir)
    paths = [write_json(out_dir / f"{name}.json", comparison)]
    for suffix, text in ((".csv", csv_text(comparison_csv_rows(comparison), CSV_COLUMNS)),
                         (".md", comparison_markdown(comparison))):
        paths.append(write_text(out_dir / f"{name}{suffix}", text))
    if plot:
        from pyg_ham.compare.plots import write_plots

        paths += write_plots(comparison, docs or {}, out_dir)
    return paths


def compare(cfg: ExperimentConfig, variants: Optional[Sequence[VariantLike]] = None,
            out_dir: Union[str, Path] = "compare", *, plot: bool = False, log: Callable[[str], None] = print,
            fresh: bool = False, all_references: bool = False, confidence: float = 0.95,
            task: Optional[Any] = None) -> Dict[str, Any]:
    r"""Run :obj:`variants` of :obj:`cfg` paired (same seeds, same splits) and compare them.

    Writes ``OUT/<variant>.json`` (the train results), ``OUT/comparison.{json,csv,md}`` and,
    with :obj:`plot`, ``OUT/*.png``; returns the comparison document
    (see :func:`build_comparison`).

    Example:
        >>> cfg = ExperimentConfig(dataset="Cora", root="data", runs=10, epochs=200)
        >>> doc = compare(cfg, ["adam", "adam+ham:alpha=100"], "out/cora")
        >>> doc["comparisons"][0]["mean"], doc["comparisons"][0]["p"]
    """
    if plot:
        from pyg_ham.compare.plots import require_matplotlib

        require_matplotlib()  # fail before training, not after
    outcomes = run_variants(cfg, as_variants(variants, cfg), out_dir, log=log, task=task, fresh=fresh)
    comparison = build_comparison(outcomes, cfg, all_references=all_references, confidence=confidence)
    comparison["config"] = {**comparison["config"], "out": str(out_dir)}
    write_comparison(comparison, out_dir, plot=plot, docs={o.variant.label: o.doc for o in outcomes if o.doc})
    return comparison
