r"""One run: load the task a config names (:func:`load_task`) and train one run of it
(:func:`train_run`). The runner (:mod:`pyg_ham.train.runner`) and the worker processes
(:mod:`pyg_ham.train.jobs`) both call these; the runner calls the jobs, never the other way round."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

import torch

from pyg_ham.config import ExperimentConfig
from pyg_ham.datasets import load_dataset
from pyg_ham.results import RunResult
from pyg_ham.train import kinds  # noqa: F401 - registers the "node", "graph", "hetero-node" kinds
from pyg_ham.train.common import make_optimizer
from pyg_ham.train.engine import fit, seed_everything
from pyg_ham.train.task import RunSpec, task_kind

__all__ = ["load_task", "train_run"]


def load_task(cfg: ExperimentConfig) -> Any:
    """The task named by ``cfg.dataset``, from the dataset registry (adapters register theirs)."""
    on_disk = cfg.on_disk or "disk" in (cfg.graph_placement, cfg.feature_placement)  # disk: the on-disk layout
    return load_dataset(cfg.dataset, cfg.root, on_disk=on_disk, **cfg.dataset_options)


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
