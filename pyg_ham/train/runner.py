r"""Run a whole experiment: every seed (node tasks, OGB graph tasks) or every fold (TU
cross-validation), writing the result JSON after each finished run so nothing is lost."""
from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Tuple

import torch

from pyg_ham.datasets import GraphTask, load_dataset
from pyg_ham.errors import ConfigError
from pyg_ham.results import RunResult, format_mean_std, read_json, result_document, write_json
from pyg_ham.train import distributed, graph, hetero, node  # noqa: F401 - registers the "node", "graph", "hetero-node" kinds
from pyg_ham.train.common import make_optimizer
from pyg_ham.train.config import ExperimentConfig, resolve_device
from pyg_ham.train.engine import fit, seed_everything
from pyg_ham.train.stability import document_stability
from pyg_ham.train.task import RunSpec, task_kind

__all__ = ["run_experiment", "run_specs", "train_run", "load_task", "comparable_config", "checkpoint_dir",
           "summary_line", "GIN_PROTOCOL_NOTE"]

GIN_PROTOCOL_NOTE = ("gin (optimistic): one epoch chosen by the mean accuracy on the held-out folds, "
                     "which are also the reported ones (Xu et al., 2019)")
#: Settings that do not change results (ignored when checking that --resume continues the same experiment).
_NON_RESULT_KEYS = {"out", "checkpoint_dir", "resume", "overwrite", "quiet", "device", "root", "recipe"}


def load_task(cfg: ExperimentConfig) -> Any:
    """The task named by ``cfg.dataset``, from the dataset registry (adapters register theirs)."""
    return load_dataset(cfg.dataset, cfg.root, **cfg.dataset_options)


def train_run(task: Any, cfg: ExperimentConfig, spec: RunSpec, device: torch.device, *,
              checkpoint: Optional[Path] = None, resume: bool = False, **options: Any) -> RunResult:
    r"""Train one run: seed, build the task kind's run, its model and optimizer, and :func:`fit`.

    Args:
        task: the loaded dataset task (its ``kind`` picks the registered :class:`TrainingTask`).
        cfg (ExperimentConfig): the settings.
        spec (dict): the run (``key``, ``seed``, ``fields``, ``split``), see :func:`run_specs`.
        device (torch.device): where to train.
        checkpoint (Path, optional): per-epoch checkpoint file.
        resume (bool): continue from :obj:`checkpoint` if it exists. (default: :obj:`False`)
        **options: passed to the task kind (e.g. ``model=`` for the vision adapter).
    """
    seed_everything(spec["seed"])
    run = task_kind(task).create(task, cfg, spec, device, **options)
    model = run.build_model().to(device)
    optimizer = make_optimizer(model, cfg)
    result = fit(run, model, optimizer, cfg, checkpoint=checkpoint, resume=resume)
    result.extra["key"] = spec["key"]
    return result


def _protocol(task: Any, cfg: ExperimentConfig) -> str:
    if not isinstance(task, GraphTask):
        return "seeds"
    protocol = task.default_protocol if cfg.protocol == "default" else cfg.protocol
    if protocol in ("cv", "gin") and task.task_type != "multiclass":
        raise ConfigError(f"{task.name}: protocol {protocol!r} needs single-label classes; use --protocol official")
    if protocol == "official" and task.default_protocol != "official":
        raise ConfigError(f"{task.name} has no official split; use --protocol cv (default) or gin")
    return protocol


def run_specs(task: Any, cfg: ExperimentConfig) -> Tuple[str, List[Dict[str, Any]]]:
    """The runs of an experiment: ``(protocol, [spec, ...])``; each spec has a ``key``, a
    ``seed``, record fields (``run`` or ``repeat``/``fold``) and, for graph tasks, its split."""
    protocol = _protocol(task, cfg)
    if protocol in ("seeds", "official"):
        split = task.official_split() if protocol == "official" else None
        return protocol, [{"key": f"run{r}", "seed": cfg.seed + r, "fields": {"run": r}, "split": split}
                          for r in range(cfg.runs)]
    specs = []
    for repeat in range(cfg.repeats):
        for fold, split in enumerate(task.folds(cfg.folds, seed=cfg.seed + repeat)):
            if protocol == "gin":  # the held-out fold also selects the epoch
                split = {"train": torch.cat([split["train"], split["valid"]]).sort().values,
                         "valid": split["test"], "test": split["test"]}
            specs.append({"key": f"repeat{repeat}_fold{fold}", "seed": cfg.seed + repeat * cfg.folds + fold,
                          "fields": {"repeat": repeat, "fold": fold}, "split": split})
    return protocol, specs


def _apply_gin_protocol(records: List[Dict[str, Any]], higher_is_better: bool) -> int:
    """Choose one epoch by the mean held-out score over folds; report every fold there."""
    length = min(len(r["history"]) for r in records)
    means = [sum(r["history"][e]["valid"] for r in records) / len(records) for e in range(length)]
    best = max(range(length), key=lambda e: means[e] if higher_is_better else -means[e])
    for r in records:
        r["best_epoch"] = r["history"][best]["epoch"]
        r["valid"] = r["test"] = r["history"][best]["valid"]
        r["train"] = r["history"][best].get("train", math.nan)
    return best + 1


def checkpoint_dir(cfg: ExperimentConfig) -> Optional[Path]:
    """Where per-epoch checkpoints go: ``--checkpoint-dir``, else the ``--out`` path with ``.ckpt``."""
    if cfg.checkpoint_dir:
        return Path(cfg.checkpoint_dir)
    return Path(cfg.out).with_suffix(".ckpt") if cfg.out else None


def comparable_config(config: Dict[str, Any]) -> Dict[str, Any]:
    """The settings of a config that change results (what "the same experiment" means). A setting
    added after a result was written (absent from its config) counts as its default, which is the
    behaviour that result was trained with."""
    full = {**ExperimentConfig().to_dict(), **config}
    return {k: v for k, v in full.items() if k not in _NON_RESULT_KEYS}


def _load_previous(cfg: ExperimentConfig, out: Optional[Path]) -> Dict[str, Dict[str, Any]]:
    if out is None or not out.exists():
        return {}
    previous = read_json(out)
    if not cfg.resume:
        finished = len(previous.get("runs") or [])
        if finished and not cfg.overwrite:
            raise ConfigError(f"{out} already holds {finished} finished run(s); continue them with --resume, "
                              f"or pass --overwrite to replace them")
        return {}
    if comparable_config(previous.get("config", {})) != comparable_config(cfg.to_dict()):
        raise ConfigError(f"{out} holds results of a different configuration; choose another --out "
                          f"or drop --resume to start afresh")
    return {r["key"]: r for r in previous.get("runs", []) if "key" in r}


def summary_line(doc: Dict[str, Any]) -> str:
    """``dataset model optimizer(+HAM): test metric mean ± std (valid ...) over N runs, P params``,
    then how many runs diverged or were unstable and what to change."""
    cfg, s = doc["config"], doc["summary"]
    opt = cfg["optimizer"] + (f"+HAM(alpha={cfg['alpha']:g}, beta={cfg['beta']:g})" if cfg["ham"] else "")
    params = f", {s['num_params']:,} params" if "num_params" in s else ""
    flagged = document_stability(doc)
    warning = ""
    if flagged["diverged"] or flagged["unstable"]:
        parts = [f"{len(flagged[k])} {k}" for k in ("diverged", "unstable") if flagged[k]]
        warning = f"; {' and '.join(parts)} of {s['runs']}: {flagged['advice']}"
    unit = "folds" if doc.get("protocol") in ("cv", "gin") else "runs"
    return (f"{doc['dataset']} {doc.get('model', '')} {opt}: test {doc['metric']} "
            f"{format_mean_std(s['test_mean'], s['test_std'], s['runs'])} (valid "
            f"{format_mean_std(s['valid_mean'], s['valid_std'], s['runs'])}) over {s['runs']} {unit}{params}{warning}")


def run_experiment(cfg: ExperimentConfig, log: Callable[[str], None] = print,
                   task: Optional[Any] = None) -> Dict[str, Any]:
    r"""Train every run of :obj:`cfg` and return the result document (also written to
    ``cfg.out`` after each run). With ``cfg.resume`` finished runs are skipped and an
    interrupted run continues from its last epoch checkpoint.

    Under ``torchrun`` every rank runs this; the process group starts here (after the config
    is validated on every rank) and rank 0 alone reads and writes ``cfg.out``, checkpoints and
    logs (:mod:`pyg_ham.train.distributed`)."""
    cfg.validate()
    with distributed.session(resolve_device(cfg.device)) as device:
        return _run_experiment(cfg, log if distributed.is_main() else (lambda msg: None), task, device)


def _run_experiment(cfg: ExperimentConfig, log: Callable[[str], None], task: Optional[Any],
                    device: torch.device) -> Dict[str, Any]:
    task = task if task is not None else load_task(cfg)
    kind = task_kind(task)
    protocol, specs = run_specs(task, cfg)
    out = Path(cfg.out) if cfg.out else None
    ckpt_dir = checkpoint_dir(cfg)
    previous = distributed.on_main(lambda: _load_previous(cfg, out))
    main = distributed.is_main()
    model_name = (cfg.model or kind.default_model).lower()

    records: List[Dict[str, Any]] = []

    def document(complete: bool) -> Dict[str, Any]:
        num_params = records[0].get("num_params") if records else None
        extra: Dict[str, Any] = {"model": model_name, "protocol": GIN_PROTOCOL_NOTE if protocol == "gin" else protocol,
                                 "complete": complete}
        if protocol in ("cv", "gin"):
            extra["splits"] = [{"key": s["key"], "valid": s["split"]["valid"].tolist(),
                                "test": s["split"]["test"].tolist()} for s in specs]
        doc = result_document(task.name, task.kind, task.metric, cfg.to_dict(), records,
                              num_params=num_params, device=device, **extra)
        doc["provenance"].update(processes)
        return doc

    processes = distributed.describe(device)

    for spec in specs:
        if spec["key"] in previous:
            records.append(previous[spec["key"]])
            continue
        checkpoint = ckpt_dir / f"{spec['key']}.pt" if ckpt_dir else None
        if checkpoint is not None and main:
            checkpoint.parent.mkdir(parents=True, exist_ok=True)
        result = train_run(task, cfg, spec, device, checkpoint=checkpoint, resume=cfg.resume)
        records.append(result.to_dict())
        if out is not None and main:
            write_json(out, document(complete=False))
        if checkpoint is not None and main and checkpoint.exists():
            checkpoint.unlink()
        if not cfg.quiet:
            flag = result.extra.get("instability")
            log(f"{spec['key']}: best epoch {result.best_epoch}, valid {result.valid:.4f}, test {result.test:.4f}"
                + (f" ({flag['status']}: {flag['reason']})" if flag else ""))
    if protocol == "gin":
        _apply_gin_protocol(records, task.higher_is_better)
    doc = document(complete=True)
    if out is not None and main:
        write_json(out, doc)
        if ckpt_dir is not None and ckpt_dir.exists() and not any(ckpt_dir.iterdir()):
            ckpt_dir.rmdir()
    return doc
