r"""Graph-level training: mini-batches of graphs with PyG's ``DataLoader``."""
from __future__ import annotations

from typing import Any, Dict, Iterable, Tuple

import torch
from torch import Tensor
from torch_geometric.loader import DataLoader

from pyg_ham.datasets import GraphTask
from pyg_ham.models import build_graph_model
from pyg_ham.train.config import ExperimentConfig
from pyg_ham.train.distributed import all_gather_cat, check_global_batch
from pyg_ham.train.task import RunSpec, TrainingTask, register_task_kind

__all__ = ["build_graph_model_for", "GraphLevelTask", "DEFAULT_GRAPH_BATCH_SIZE"]

DEFAULT_GRAPH_BATCH_SIZE = 32


def build_graph_model_for(task: GraphTask, cfg: ExperimentConfig) -> torch.nn.Module:
    """The graph model named by ``cfg.model`` (default ``gin``) with the config's sizes."""
    return build_graph_model((cfg.model or "gin").lower(), task.num_features, task.num_classes,
                             hidden_channels=cfg.hidden, num_layers=cfg.layers, dropout=cfg.dropout,
                             pool=cfg.pool, virtual_node=cfg.virtual_node, norm=cfg.norm,
                             edge_dim=None if task.is_ogb_mol else task.edge_dim, ogb_mol=task.is_ogb_mol,
                             jk=cfg.jk, heads=cfg.heads)


@register_task_kind("graph")
class GraphLevelTask(TrainingTask):
    r"""One model trained on ``spec["split"]["train"]`` (shuffled batches of ``cfg.batch_size``
    graphs, default 32), the epoch selected on ``valid`` and ``test`` reported there: one fold of
    cross-validation, or one seed of an OGB official split.

    The shuffle is a :class:`~torch.utils.data.distributed.DistributedSampler` seeded by the run's
    seed and the epoch: in :math:`R` processes each rank takes every :math:`R`-th graph of the same
    permutation in batches of ``batch_size / R`` (the global batch is one process's), and each
    rank evaluates every :math:`R`-th graph of a split, the predictions gathered so the metric
    sees each graph once."""

    default_model = "gin"

    @classmethod
    def check_processes(cls, cfg: Any, processes: int) -> None:
        if cfg.batch_size is None:  # the default global batch splits over the ranks too
            check_global_batch(DEFAULT_GRAPH_BATCH_SIZE, processes)

    def __init__(self, task: GraphTask, cfg: ExperimentConfig, spec: RunSpec, device: torch.device) -> None:
        super().__init__(task, cfg, spec, device)
        from torch.utils.data.distributed import DistributedSampler

        from pyg_ham.train import distributed
        from pyg_ham.train.node import EpochCounter

        world, rank = distributed.world_size(), distributed.rank()
        split = spec["split"]
        batch_size = cfg.batch_size or DEFAULT_GRAPH_BATCH_SIZE
        check_global_batch(batch_size, world)
        train = task.dataset[split["train"]]
        self.sampler = DistributedSampler(train, num_replicas=world, rank=rank, shuffle=True, seed=self.seed)
        self.epochs_started = EpochCounter(self.sampler)
        self.train_loader = DataLoader(train, batch_size=batch_size // world, sampler=self.sampler)
        self.eval_loaders = {k: DataLoader(task.dataset[split[k][rank::world]], batch_size=max(batch_size, 256))
                             for k in self.eval_splits}

    def build_model(self) -> torch.nn.Module:
        return build_graph_model_for(self.task, self.cfg)

    def steps_per_epoch(self) -> int:
        return len(self.train_loader)

    def train_batches(self) -> Iterable[Any]:
        from pyg_ham.train.common import batches_ahead

        self.epochs_started.next()
        return batches_ahead(self.train_loader, self.device, self.cfg)

    def stateful(self) -> Dict[str, Any]:
        return {"epoch_sampler": self.epochs_started}

    def batch_loss(self, model: torch.nn.Module, batch: Any) -> Tuple[Tensor, int]:
        batch = batch.to(self.device)
        return self.task.loss(model(batch), batch.y), batch.num_graphs

    def predict(self, model: torch.nn.Module) -> Dict[str, Tuple[Tensor, Any]]:
        out = {}
        for key, loader in self.eval_loaders.items():
            preds, targets = [], []
            for batch in loader:
                batch = batch.to(self.device)
                preds.append(model(batch))
                targets.append(batch.y)
            out[key] = (all_gather_cat(torch.cat(preds)), all_gather_cat(torch.cat(targets)))
        return out
