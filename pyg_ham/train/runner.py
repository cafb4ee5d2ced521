r"""Run a whole experiment: every seed (node tasks, OGB graph tasks) or every fold (TU
cross-validation), writing the result JSON after each finished run so nothing is lost."""
from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Tuple

import torch

from pyg_ham.datasets import GraphTask
from pyg_ham.errors import ConfigError
from pyg_ham.results import format_mean_std, read_json, result_document, schema, write_json
from pyg_ham.train import distributed, graph, hetero, node  # noqa: F401 - registers the "node", "graph", "hetero-node" kinds
from pyg_ham.train.config import ExperimentConfig, resolve_device
from pyg_ham.train.engine import rerun_hint
from pyg_ham.train.single import load_task, train_run
from pyg_ham.train.stability import document_stability
from pyg_ham.train.task import task_kind

__all__ = ["run_experiment", "Experiment", "run_specs", "train_run", "load_task", "comparable_config",
           "checkpoint_dir", "summary_line", "resume_note", "GIN_PROTOCOL_NOTE"]

GIN_PROTOCOL_NOTE = ("gin (optimistic): one epoch chosen by the mean accuracy on the held-out folds, "
                     "which are also the reported ones (Xu et al., 2019)")
#: Settings that do not change results (ignored when checking that --resume continues the same experiment).
_NON_RESULT_KEYS = {"out", "checkpoint_dir", "resume", "overwrite", "quiet", "device", "root", "recipe",
                    "jobs", "devices"}


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


def _apply_gin_protocol(records: List[Dict[str, Any]], higher_is_better: bool) -> Optional[int]:
    r"""Choose one epoch by the mean held-out score over folds and report every fold there.

    The epoch is chosen among those that every fold which did not diverge evaluated (with
    ``--eval-every`` or early stopping that is fewer than all epochs). A diverged fold takes no
    part in the choice; it is reported at the chosen epoch if it evaluated that epoch before
    diverging, else without a score (NaN: :func:`~pyg_ham.results.summarize` leaves it out
    of the means and counts it). Returns the chosen epoch (1-based), or ``None`` when no epoch
    was evaluated by every such fold (every fold diverged): the records are left as they are.
    """
    usable = [r for r in records if not schema.run_diverged(r)]
    common = set.intersection(*(schema.evaluated_epochs(r["history"]) for r in usable)) if usable else set()
    if not common:
        return None
    at = [{h["epoch"]: h for h in schema.evaluated(r["history"])} for r in usable]
    means = {e: sum(schema.score(epochs[e], "valid") for epochs in at) / len(at) for e in sorted(common)}
    best = max(sorted(common), key=lambda e: means[e] if higher_is_better else -means[e])  # ties: the earlier
    for r in records:
        epoch = next((h for h in schema.evaluated(r["history"]) if h["epoch"] == best), None)
        r["best_epoch"] = best if epoch is not None else 0
        r["valid"] = r["test"] = schema.score(epoch, "valid") if epoch is not None else math.nan
        r["train"] = schema.score(epoch, "train") if epoch is not None else math.nan
    return best


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
    opt = cfg["optimizer"] + (f"+SAM(rho={cfg['rho']:g}{', adaptive' if cfg.get('adaptive') else ''})"
                              if cfg.get("sam") else "")
    opt += f"+HAM(alpha={cfg['alpha']:g}, beta={cfg['beta']:g})" if cfg["ham"] else ""
    params = f", {s['num_params']:,} params" if "num_params" in s else ""
    flagged = document_stability(doc)
    warning = ""
    if flagged["diverged"] or flagged["unstable"]:
        parts = [f"{len(flagged[k])} {k}" for k in ("diverged", "unstable") if flagged[k]]
        warning = f"; {' and '.join(parts)} of {s['runs']}: {flagged['advice']}"
    unit = "folds" if doc.get("protocol") in ("cv", "gin", GIN_PROTOCOL_NOTE) else "runs"
    scored = s.get("scored", s["runs"])
    over = f"{s['runs']} {unit}" + (f" ({scored} with a score)" if scored != s["runs"] else "")
    if "gin_epoch" in doc:
        over += (f", epoch {doc['gin_epoch']} chosen over the folds" if doc["gin_epoch"] is not None
                 else ", no epoch evaluated by every fold that did not diverge")
    return (f"{doc['dataset']} {doc.get('model', '')} {opt}: test {doc['metric']} "
            f"{format_mean_std(s['test_mean'], s['test_std'], scored)} (valid "
            f"{format_mean_std(s['valid_mean'], s['valid_std'], scored)}) over {over}{params}{warning}")


class Experiment:
    r"""The bookkeeping of one experiment: its runs, those finished (in ``cfg.out`` from an
    earlier, interrupted invocation, or here), and its result document, written after each run.

    :func:`run_experiment` trains its :meth:`pending` runs one after another;
    ``compare``/``sweep`` hand those of several experiments to the same workers
    (:mod:`pyg_ham.train.jobs`). Either way :meth:`add` records a finished run (the document
    lists the runs in :func:`run_specs` order, each once) and :meth:`finish` completes it.

    Args:
        cfg (ExperimentConfig): the settings (validated here, device included).
        task (optional): the loaded dataset task (default: loaded from :obj:`cfg`).
        log (callable): one line per finished run (unless ``cfg.quiet``). (default: :func:`print`)
        label (str): prefix of those lines (e.g. the variant of a comparison). (default: ``""``)
    """

    def __init__(self, cfg: ExperimentConfig, task: Optional[Any] = None, log: Callable[[str], None] = print,
                 label: str = "", device: Optional[torch.device] = None) -> None:
        cfg.validate()
        self.main = distributed.is_main()  # under torchrun rank 0 alone reads and writes files and logs
        self.cfg, self.log, self.label = cfg, (log if self.main else (lambda msg: None)), label
        self.device = device if device is not None else resolve_device(cfg.device)
        if cfg.devices and cfg.jobs == 1 and not distributed.is_distributed():  # under torchrun: the session's
            self.device = torch.device("cuda", cfg.devices[0])
        self.task = task if task is not None else load_task(cfg)
        kind = task_kind(self.task)
        self.protocol, self.specs = run_specs(self.task, cfg)
        self.out = Path(cfg.out) if cfg.out else None
        self.ckpt_dir = checkpoint_dir(cfg)
        self.finished: Dict[str, Dict[str, Any]] = distributed.on_main(lambda: _load_previous(cfg, self.out))
        self.model_name = (cfg.model or kind.default_model).lower()
        self.processes = distributed.describe(self.device)  # world size, backend, every rank's device

    def pending(self) -> List[Dict[str, Any]]:
        """The runs not finished yet, in order."""
        return [s for s in self.specs if s["key"] not in self.finished]

    def checkpoint(self, spec: Dict[str, Any]) -> Optional[Path]:
        """The per-epoch checkpoint file of :obj:`spec`'s run (its folder is created)."""
        if self.ckpt_dir is None:
            return None
        if self.main:
            self.ckpt_dir.mkdir(parents=True, exist_ok=True)
        return self.ckpt_dir / f"{spec['key']}.pt"

    def records(self) -> List[Dict[str, Any]]:
        return [self.finished[s["key"]] for s in self.specs if s["key"] in self.finished]

    def document(self, complete: bool) -> Dict[str, Any]:
        records = self.records()
        num_params = records[0].get("num_params") if records else None
        extra: Dict[str, Any] = {"model": self.model_name, "complete": complete,
                                 "protocol": GIN_PROTOCOL_NOTE if self.protocol == "gin" else self.protocol}
        if self.protocol in ("cv", "gin"):
            extra["splits"] = [{"key": s["key"], "valid": s["split"]["valid"].tolist(),
                                "test": s["split"]["test"].tolist()} for s in self.specs]
        doc = result_document(self.task.name, self.task.kind, self.task.metric, self.cfg.to_dict(), records,
                              num_params=num_params, device=self.device, **extra)
        doc["provenance"].update(self.processes)
        return doc

    def add(self, spec: Dict[str, Any], record: Dict[str, Any]) -> None:
        """Record a finished run: write the (partial) document, drop the run's checkpoint."""
        self.finished[spec["key"]] = record
        if not self.main:
            return
        if self.out is not None:
            write_json(self.out, self.document(complete=False), then=rerun_hint(self.cfg))
        checkpoint = self.ckpt_dir / f"{spec['key']}.pt" if self.ckpt_dir else None
        if checkpoint is not None and checkpoint.exists():
            checkpoint.unlink()
        if not self.cfg.quiet:
            flag = record.get("instability")
            self.log(f"{self.label}{spec['key']}: best epoch {record['best_epoch']}, valid {record['valid']:.4f}, "
                     f"test {record['test']:.4f}" + (f" ({flag['status']}: {flag['reason']})" if flag else ""))

    def finish(self) -> Dict[str, Any]:
        """The complete document (written to ``cfg.out``); the empty checkpoint folder is removed."""
        records = self.records()
        extra = {}
        if self.protocol == "gin":
            extra["gin_epoch"] = _apply_gin_protocol(records, self.task.higher_is_better)
        doc = {**self.document(complete=True), **extra}
        if self.out is not None and self.main:
            write_json(self.out, doc, then=rerun_hint(self.cfg))
            if self.ckpt_dir is not None and self.ckpt_dir.exists() and not any(self.ckpt_dir.iterdir()):
                self.ckpt_dir.rmdir()
        return doc


def resume_note(exp: Experiment) -> Optional[Dict[str, Any]]:
    r"""With ``--resume`` say what an earlier invocation left: how many runs were finished and
    how many will train. Returns the stored document when it is complete and nothing is left
    to train (it is not rewritten: its provenance stays that of the runs), else ``None``."""
    if not (exp.cfg.resume and exp.finished):
        return None
    done, total, left = len(exp.finished), len(exp.specs), len(exp.pending())
    if left:
        exp.log(f"resuming {exp.out}: {done} of {total} runs finished earlier, training the other {left}")
        return None
    stored = distributed.on_main(lambda: read_json(exp.out)) if exp.out is not None else None
    if stored and stored.get("complete"):
        exp.log(f"{exp.out} already holds this experiment's {total} finished run{'s' * (total != 1)}: nothing trained, "
                f"its result is printed again (--overwrite trains afresh)")
        return stored
    exp.log(f"{exp.out}: all {total} runs finished earlier; completing the result")
    return None


def run_experiment(cfg: ExperimentConfig, log: Callable[[str], None] = print,
                   task: Optional[Any] = None) -> Dict[str, Any]:
    r"""Train every run of :obj:`cfg` and return the result document (also written to
    ``cfg.out`` after each run). With ``cfg.resume`` finished runs are skipped and an
    interrupted run continues from its last epoch checkpoint. With ``cfg.jobs > 1`` the runs
    train in that many worker processes (:mod:`pyg_ham.train.jobs`); a run that fails is
    reported and the others go on, then :class:`~pyg_ham.train.jobs.RunsFailed` says which failed.

    Under ``torchrun`` every rank runs this; the process group starts here (after the config
    is validated on every rank) and rank 0 alone reads and writes ``cfg.out``, checkpoints and
    logs (:mod:`pyg_ham.train.distributed`)."""
    cfg.validate()
    distributed.check_config(cfg, distributed.launched_world_size())  # on every rank, before the group starts
    with distributed.session(resolve_device(cfg.device), cfg.devices) as device:
        exp = Experiment(cfg, task, log, device=device)
        stored = resume_note(exp)
        if stored is not None:
            return stored
        if cfg.jobs > 1:
            from pyg_ham.train.jobs import raise_failures, run_experiments_parallel

            failures = run_experiments_parallel([exp], cfg.jobs, devices=cfg.devices, quiet=cfg.quiet, log=log)
            if failures:
                raise_failures(failures[0], cfg, log)
        for spec in exp.pending():  # in this process, with its torch threads (the budget workers share)
            result = train_run(exp.task, cfg, spec, exp.device, checkpoint=exp.checkpoint(spec), resume=cfg.resume)
            exp.add(spec, result.to_dict())
        return exp.finish()
