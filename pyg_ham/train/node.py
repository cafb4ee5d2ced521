r"""Node-level training: full-batch or mini-batch (neighbour sampling) over one graph."""
from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Dict, Optional

import torch
from torch import Tensor

from pyg_ham.datasets import NodeTask
from pyg_ham.models import build_node_model
from pyg_ham.results import RunResult
from pyg_ham.train.common import fit_run, make_optimizer, make_sparsifier, update
from pyg_ham.train.config import ExperimentConfig
from pyg_ham.train.engine import seed_everything

__all__ = ["build_model_for", "train_node_run"]


def build_model_for(task: NodeTask, cfg: ExperimentConfig) -> torch.nn.Module:
    kwargs: Dict[str, Any] = {}
    name = (cfg.model or "gcn").lower()
    if name == "gcn" and cfg.batch_size is None:
        kwargs["cached"] = True  # full-batch: normalise the adjacency once
    return build_node_model(name, task.num_features, task.num_classes, hidden_channels=cfg.hidden,
                            num_layers=cfg.layers, dropout=cfg.dropout, norm=cfg.norm, jk=cfg.jk,
                            heads=cfg.heads, **kwargs)


def _fanout(cfg: ExperimentConfig) -> list:
    return list(cfg.fanout) if cfg.fanout is not None else [10] * cfg.layers


def train_node_run(task: NodeTask, cfg: ExperimentConfig, run: int, device: torch.device, *,
                   checkpoint: Optional[Path] = None, resume: bool = False) -> RunResult:
    r"""Train and evaluate one run (seed ``cfg.seed + run``, split ``run % num_splits``).

    Full-batch when ``cfg.batch_size`` is ``None``; otherwise mini-batches of ``batch_size``
    training nodes with neighbour sampling (``cfg.fanout`` per layer) through
    :func:`pyg_ham.sampling.neighbor_loader`. Evaluation is full-batch, or layer-wise
    (``eval_mode="layerwise"``, PyG's ``BasicGNN.inference``) for graphs that do not fit.
    """
    seed = cfg.seed + run
    seed_everything(seed)
    split = task.split(run)
    data = task.data
    model = build_model_for(task, cfg).to(device)
    optimizer = make_optimizer(model, cfg)
    train_idx = split["train"].to(device)

    if cfg.batch_size is None:
        steps_per_epoch = 1

        def batches():
            yield model(data.x, data.edge_index), train_idx
    else:
        from pyg_ham.sampling import neighbor_loader

        gen = torch.Generator(device=data.x.device).manual_seed(seed)
        loader = neighbor_loader(data, _fanout(cfg), cfg.batch_size, input_nodes=split["train"], shuffle=True,
                                 generator=gen)
        steps_per_epoch = math.ceil(split["train"].numel() / cfg.batch_size)

        def batches():
            for batch in loader:
                batch = batch.to(device)
                out = model(batch.x, batch.edge_index, num_sampled_nodes_per_hop=batch.num_sampled_nodes,
                            num_sampled_edges_per_hop=batch.num_sampled_edges)
                yield out[:batch.batch_size], batch.n_id[:batch.batch_size]

    sparsifier = make_sparsifier(model, optimizer, cfg, cfg.epochs * steps_per_epoch, seed)

    def train_epoch() -> float:
        total = torch.zeros((), device=device)
        count = 0
        for out, idx in batches():
            loss = task.loss(out, idx)
            update(loss, optimizer, sparsifier)
            total += loss.detach() * idx.numel()
            count += idx.numel()
        return float(total) / max(count, 1)  # one host sync per epoch

    def predict() -> Tensor:
        if cfg.eval_mode == "layerwise" and hasattr(model, "inference"):
            from pyg_ham.sampling import neighbor_loader

            loader = neighbor_loader(data, [-1], batch_size=cfg.batch_size or 4096)
            return model.inference(loader, device=device)
        return model(data.x, data.edge_index)

    def evaluate() -> Dict[str, float]:
        out = predict()
        keys = ("train", "valid", "test") if cfg.eval_train else ("valid", "test")
        return {k: task.evaluate(out, split[k]) for k in keys}

    stateful = None
    if cfg.batch_size is not None:  # both streams of a mini-batch epoch: who is sampled, in what order
        stateful = {"sampling_generator": _GeneratorState(gen)}
        if loader.generator is not None:
            stateful["shuffle_generator"] = _GeneratorState(loader.generator)
    return fit_run(task, cfg, model, optimizer, train_epoch, evaluate, seed=seed, sparsifier=sparsifier,
                   checkpoint=checkpoint, resume=resume, desc=f"{task.name} run {run}",
                   extra={"run": run, "split": run % task.num_splits}, stateful=stateful)


class _GeneratorState:
    """Adapts a ``torch.Generator`` to the ``state_dict`` protocol of checkpoints."""

    def __init__(self, gen: torch.Generator) -> None:
        self.gen = gen

    def state_dict(self) -> Dict[str, Tensor]:
        return {"state": self.gen.get_state()}

    def load_state_dict(self, state: Dict[str, Tensor]) -> None:
        self.gen.set_state(state["state"])
