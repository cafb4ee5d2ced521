r"""Graph-level training: mini-batches of graphs with PyG's ``DataLoader``."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Dict, Optional

import torch
from torch import Tensor
from torch_geometric.loader import DataLoader

from pyg_ham.datasets import GraphTask
from pyg_ham.models import build_graph_model
from pyg_ham.results import RunResult
from pyg_ham.train.common import fit_run, make_optimizer, make_sparsifier, update
from pyg_ham.train.config import ExperimentConfig
from pyg_ham.train.engine import seed_everything

__all__ = ["build_graph_model_for", "train_graph_run", "DEFAULT_GRAPH_BATCH_SIZE"]

DEFAULT_GRAPH_BATCH_SIZE = 32


def build_graph_model_for(task: GraphTask, cfg: ExperimentConfig) -> torch.nn.Module:
    return build_graph_model((cfg.model or "gin").lower(), task.num_features, task.num_classes,
                             hidden_channels=cfg.hidden, num_layers=cfg.layers, dropout=cfg.dropout,
                             pool=cfg.pool, virtual_node=cfg.virtual_node, norm=cfg.norm,
                             edge_dim=None if task.is_ogb_mol else task.edge_dim, ogb_mol=task.is_ogb_mol,
                             jk=cfg.jk, heads=cfg.heads)


def train_graph_run(task: GraphTask, cfg: ExperimentConfig, split: Dict[str, Tensor], seed: int,
                    device: torch.device, *, checkpoint: Optional[Path] = None, resume: bool = False,
                    extra: Optional[Dict[str, Any]] = None, desc: str = "") -> RunResult:
    r"""Train one model on ``split["train"]``, select the epoch on ``split["valid"]`` and
    report ``split["test"]`` at that epoch (one fold of cross-validation, or one OGB seed)."""
    seed_everything(seed)
    batch_size = cfg.batch_size or DEFAULT_GRAPH_BATCH_SIZE
    subsets = {k: task.dataset[split[k]] for k in ("train", "valid", "test")}
    train_loader = DataLoader(subsets["train"], batch_size=batch_size, shuffle=True)
    eval_loaders = {k: DataLoader(subsets[k], batch_size=max(batch_size, 256))
                    for k in (("train", "valid", "test") if cfg.eval_train else ("valid", "test"))}
    model = build_graph_model_for(task, cfg).to(device)
    optimizer = make_optimizer(model, cfg)
    sparsifier = make_sparsifier(model, optimizer, cfg, cfg.epochs * len(train_loader), seed)

    def train_epoch() -> float:
        total = torch.zeros((), device=device)
        count = 0
        for batch in train_loader:
            batch = batch.to(device)
            loss = task.loss(model(batch), batch.y)
            update(loss, optimizer, sparsifier)
            total += loss.detach() * batch.num_graphs
            count += batch.num_graphs
        return float(total) / max(count, 1)

    def evaluate() -> Dict[str, float]:
        scores = {}
        for key, loader in eval_loaders.items():
            preds, targets = [], []
            for batch in loader:
                batch = batch.to(device)
                preds.append(model(batch))
                targets.append(batch.y)
            scores[key] = task.evaluate(torch.cat(preds), torch.cat(targets))
        return scores

    return fit_run(task, cfg, model, optimizer, train_epoch, evaluate, seed=seed, sparsifier=sparsifier,
                   checkpoint=checkpoint, resume=resume, desc=desc, extra=extra)
