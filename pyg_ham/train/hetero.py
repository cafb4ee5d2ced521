r"""Heterogeneous node-level training (ogbn-mag and the like): full-batch or mini-batch
(per-edge-type neighbour sampling) over one :class:`~torch_geometric.data.HeteroData` graph.

The dataset task is a :class:`~pyg_ham.datasets.hetero.HeteroNodeTask` (its ``kind`` is
``"hetero-node"``); the model is :func:`~pyg_ham.models.hetero.build_hetero_model`'s
(``sage``: GraphSAGE through PyG's ``to_hetero``, or ``rgcn``), whose featureless node types
get learnable embedding tables. Those tables are matrices, so HAM's default selection
(``ndim >= 2``) steps them; ``cfg.ham_embeddings=False`` (``--no-ham-embeddings``) keeps them
out through the model's ``ham_exclude`` (read by :func:`~pyg_ham.train.common.make_optimizer`).
Lazy parameters are created when the model is built, so the optimizer sees all of them.

Evaluation scores the target type (papers) with the dataset's evaluator (OGB's for ogbn-mag):

* ``eval_mode="full"`` (default): one forward over the whole graph, every neighbour of
  every node (exact; what the OGB leaderboard reports);
* ``eval_mode="sampled"`` (mini-batch only): the evaluated papers in batches of
  ``cfg.batch_size``, neighbours sampled with ``cfg.eval_fanout`` (default: the training
  fanout ``cfg.fanout``) on every edge type, from a generator re-seeded at every evaluation
  (the same samples each epoch).

Each run's record says which (``"evaluation"``), and holds ``ham_embeddings``,
``embedded_nodes`` (rows over all tables) and ``embedding_bytes`` (the tables alone; the
optimizer's state adds its own copies, two for Adam). The normalisation, jumping-knowledge
and attention-head settings (``norm``, ``jk``, ``heads``) do not apply to these models.
"""
from __future__ import annotations

import math
from typing import Any, Dict, Iterable, List, Tuple

import torch
from torch import Tensor

from pyg_ham.config import DEFAULT_FANOUT
from pyg_ham.datasets.hetero import HeteroNodeTask
from pyg_ham.errors import ConfigError
from pyg_ham.train.config import ExperimentConfig
from pyg_ham.train.node import EVAL_SEED_OFFSET, FullBatchNodeTask
from pyg_ham.train.task import GeneratorState, RunSpec, TrainingTask, register_task_kind

__all__ = ["build_hetero_model_for", "FullBatchHeteroNodeTask", "MiniBatchHeteroNodeTask"]

#: Offset of the evaluation sampler's seed from the run's seed (its own stream).
_EVAL_SEED_OFFSET = EVAL_SEED_OFFSET


def build_hetero_model_for(task: HeteroNodeTask, cfg: ExperimentConfig) -> torch.nn.Module:
    r"""The heterogeneous model named by ``cfg.model`` (default ``sage``) with the config's sizes,
    embedding tables of width ``cfg.hidden`` and ``cfg.ham_embeddings``."""
    from pyg_ham.models.hetero import build_hetero_model

    return build_hetero_model((cfg.model or "sage").lower(), task.data, task.num_classes,
                              target_type=task.target_type, hidden_channels=cfg.hidden, num_layers=cfg.layers,
                              dropout=cfg.dropout, ham_embeddings=cfg.ham_embeddings)


@register_task_kind("hetero-node")
class FullBatchHeteroNodeTask(FullBatchNodeTask):
    r"""One run on the whole heterogeneous graph: one step per epoch on every training node of
    the target type, evaluation over the full neighbourhood. :meth:`create` picks
    :class:`MiniBatchHeteroNodeTask` when ``cfg.batch_size`` is set.

    Args:
        task (HeteroNodeTask): the dataset task.
        cfg (ExperimentConfig): the settings.
        spec (dict): the run.
        device (torch.device): where to train (the graph moves there once per experiment).
    """

    default_model = "sage"

    @classmethod
    def check_processes(cls, cfg: Any, processes: int) -> None:
        raise ConfigError(f"{cfg.dataset}: heterogeneous node training runs in one process only so far; "
                          f"drop --nproc")

    @classmethod
    def create(cls, task: HeteroNodeTask, cfg: ExperimentConfig, spec: RunSpec, device: torch.device,
               **options: Any) -> TrainingTask:
        if cfg.eval_mode == "layerwise":
            raise ConfigError(f"{task.name}: eval_mode 'layerwise' is for homogeneous GNNs (BasicGNN.inference); "
                              f"use eval_mode full (whole graph) or sampled (the training fanout)")
        from pyg_ham.train import distributed

        distributed.check_config(cfg, distributed.world_size())  # one process only so far
        kind = FullBatchHeteroNodeTask if cfg.batch_size is None else MiniBatchHeteroNodeTask
        return kind(task, cfg, spec, device, **options)

    def __init__(self, task: HeteroNodeTask, cfg: ExperimentConfig, spec: RunSpec, device: torch.device) -> None:
        super().__init__(task, cfg, spec, device)  # the split, the graph on the device, the training nodes
        self.target = task.target_type
        self.model: Any = None

    def build_model(self) -> torch.nn.Module:
        self.model = build_hetero_model_for(self.task, self.cfg)
        return self.model

    def batch_loss(self, model: torch.nn.Module, batch: Any) -> Tuple[Tensor, int]:
        out = model(self.data.x_dict, self.data.edge_index_dict)
        return self.task.loss(out, self.train_idx), self.train_idx.numel()

    @property
    def evaluation(self) -> str:
        r"""How :meth:`predict` evaluates (recorded in the run's record)."""
        return "full neighbourhood (whole graph)"

    def predict(self, model: torch.nn.Module) -> Dict[str, Tuple[Tensor, Any]]:
        out = model(self.data.x_dict, self.data.edge_index_dict)
        return {k: (out, self.split[k]) for k in self.eval_splits}

    def record(self) -> Dict[str, Any]:
        model = self.model
        return {**super().record(), "evaluation": self.evaluation,
                "ham_embeddings": bool(self.cfg.ham_embeddings),
                "embedded_nodes": int(model.num_embedded_nodes) if model is not None else 0,
                "embedding_bytes": int(model.embedding_bytes()) if model is not None else 0}


class MiniBatchHeteroNodeTask(FullBatchHeteroNodeTask):
    r"""Mini-batches of ``cfg.batch_size`` shuffled training nodes of the target type, with
    ``cfg.fanout`` neighbours per hop (default 10) sampled on every edge type by
    :func:`pyg_ham.sampling.neighbor_loader` (:class:`~pyg_ham.sampling.TorchHeteroNeighborSampler`
    without pyg-lib). Embedding rows are looked up by the sampled nodes' ``n_id``. The shuffle
    and sampling generators are checkpointed, so a resumed run replays the same batches."""

    def __init__(self, task: HeteroNodeTask, cfg: ExperimentConfig, spec: RunSpec, device: torch.device) -> None:
        super().__init__(task, cfg, spec, device)
        from pyg_ham.sampling import neighbor_loader
        from pyg_ham.sampling.layout import graph_device

        # the sampler runs where the graph is (pyg_ham.train.placement: the device, or the host)
        self.generator = torch.Generator(device=graph_device(self.data)).manual_seed(self.seed)
        self.loader = neighbor_loader(self.data, self.fanout, batch_size=cfg.batch_size,
                                      input_nodes=(self.target, self.split["train"]), shuffle=True,
                                      generator=self.generator)

    @property
    def fanout(self) -> List[int]:
        return list(self.cfg.fanout) if self.cfg.fanout is not None else [DEFAULT_FANOUT] * self.cfg.layers

    @property
    def eval_fanout(self) -> List[int]:
        return list(self.cfg.eval_fanout) if self.cfg.eval_fanout is not None else self.fanout

    @property
    def evaluation(self) -> str:
        if self.cfg.eval_mode == "sampled":
            return (f"sampled: fanout {','.join(map(str, self.eval_fanout))} on every edge type, "
                    f"{self.cfg.batch_size} {self.target} nodes per batch")
        return super().evaluation

    def steps_per_epoch(self) -> int:
        return math.ceil(self.split["train"].numel() / self.cfg.batch_size)

    def train_batches(self) -> Iterable[Any]:
        from pyg_ham.train.common import batches_ahead

        return batches_ahead(self.loader, self.device, self.cfg)

    def batch_loss(self, model: torch.nn.Module, batch: Any) -> Tuple[Tensor, int]:
        batch = batch.to(self.device)
        size = int(batch[self.target].batch_size)
        out = model.forward_batch(batch)[:size]
        store = batch[self.target]
        labels = store.y[:size] if isinstance(store.get("y"), Tensor) else None  # its own: no lookup on the host
        return self.task.loss(out, store.n_id[:size], target=labels), size

    def predict(self, model: torch.nn.Module) -> Dict[str, Tuple[Tensor, Any]]:
        if self.cfg.eval_mode != "sampled":
            return super().predict(model)
        from pyg_ham.sampling import neighbor_loader

        splits = self.eval_splits
        idx = torch.cat([self.split[k] for k in splits])
        gen = torch.Generator(device=self.generator.device).manual_seed(self.seed + _EVAL_SEED_OFFSET)
        loader = neighbor_loader(self.data, self.eval_fanout, batch_size=self.cfg.batch_size,
                                 input_nodes=(self.target, idx),
                                 generator=gen, force="pyg_ham")
        out = torch.cat([model.forward_batch(b.to(self.device))[:b[self.target].batch_size] for b in loader])
        pieces = out.split([self.split[k].numel() for k in splits])
        return {k: (pred, self.split[k]) for k, pred in zip(splits, pieces)}

    def stateful(self) -> Dict[str, Any]:
        states: Dict[str, Any] = {"sampling_generator": GeneratorState(self.generator)}
        shuffle = getattr(self.loader, "generator", None)
        if shuffle is not None:
            states["shuffle_generator"] = GeneratorState(shuffle)
        return states
