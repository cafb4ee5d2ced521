r"""Node-level training: full-batch or mini-batch (neighbour sampling) over one graph."""
from __future__ import annotations

import math
from typing import Any, Dict, Iterable, List, Tuple

import torch
from torch import Tensor

from pyg_ham.config import DEFAULT_FANOUT
from pyg_ham.datasets import NodeTask
from pyg_ham.errors import ConfigError
from pyg_ham.models import build_node_model
from pyg_ham.train.config import ExperimentConfig
from pyg_ham.train.task import GeneratorState, RunSpec, TrainingTask, register_task_kind

__all__ = ["build_model_for", "FullBatchNodeTask", "MiniBatchNodeTask"]

#: Offset of the sampled evaluation's seed from the run's seed (its own stream, the same at every
#: evaluation).
EVAL_SEED_OFFSET = 7919


def build_model_for(task: NodeTask, cfg: ExperimentConfig) -> torch.nn.Module:
    """The node model named by ``cfg.model`` (default ``gcn``) with the config's sizes."""
    kwargs: Dict[str, Any] = {}
    name = (cfg.model or "gcn").lower()
    if name == "gcn" and cfg.batch_size is None:
        kwargs["cached"] = True  # full-batch: normalise the adjacency once
    return build_node_model(name, task.num_features, task.num_classes, hidden_channels=cfg.hidden,
                            num_layers=cfg.layers, dropout=cfg.dropout, norm=cfg.norm, jk=cfg.jk,
                            heads=cfg.heads, **kwargs)


@register_task_kind("node")
class FullBatchNodeTask(TrainingTask):
    r"""One run on the whole graph: split ``run % num_splits``, one step per epoch on every
    training node. Evaluation is full-batch, or layer-wise (``eval_mode="layerwise"``, PyG's
    ``BasicGNN.inference`` over all neighbours) for graphs whose activations do not fit;
    mini-batch runs may also evaluate ``"sampled"`` (see :class:`MiniBatchNodeTask`).
    :meth:`create` picks :class:`MiniBatchNodeTask` when ``cfg.batch_size`` is set."""

    default_model = "gcn"

    @classmethod
    def check_processes(cls, cfg: Any, processes: int) -> None:
        if cfg.batch_size is None:
            raise ConfigError(f"full-batch node training in {processes} processes would compute the same step "
                              f"{processes} times; set --batch-size to split mini-batches over the processes, "
                              f"or run in one process")

    @classmethod
    def create(cls, task: NodeTask, cfg: ExperimentConfig, spec: RunSpec, device: torch.device,
               **options: Any) -> TrainingTask:
        from pyg_ham.train import distributed

        if cfg.eval_mode == "layerwise" and cfg.jk not in (None, "last"):
            raise ConfigError(f"eval_mode 'layerwise' runs PyG's layer-by-layer inference, which has no jumping "
                              f"knowledge {cfg.jk!r}; use eval_mode full, or --jk last")
        distributed.check_config(cfg, distributed.world_size())  # full batch, uneven batch, ...
        if task.stores is not None and (cfg.batch_size is None or cfg.eval_mode != "sampled"):
            raise ConfigError(f"{task.name} is served from its on-disk layout, whose graph is never in memory: "
                              f"train it mini-batch with sampled evaluation (--batch-size, --fanout, "
                              f"--eval-mode sampled)")
        kind = FullBatchNodeTask if cfg.batch_size is None else MiniBatchNodeTask
        return kind(task, cfg, spec, device, **options)

    def __init__(self, task: NodeTask, cfg: ExperimentConfig, spec: RunSpec, device: torch.device) -> None:
        super().__init__(task, cfg, spec, device)
        self.run = int(spec["fields"]["run"])
        self.split = task.split(self.run)
        from pyg_ham.train.placement import place

        #: where the graph and the features live (pyg_ham.train.placement): decided and applied once
        #: per experiment (the tensors move once), recorded by every run
        self.placement = place(task, cfg, device, full_batch=cfg.batch_size is None)
        self.data = task.data
        self.train_idx = self.split["train"].to(device)

    def build_model(self) -> torch.nn.Module:
        return build_model_for(self.task, self.cfg)

    def train_batches(self) -> Iterable[Any]:
        return (None,)

    def batch_loss(self, model: torch.nn.Module, batch: Any) -> Tuple[Tensor, int]:
        out = model(self.data.x, self.data.edge_index)
        return self.task.loss(out, self.train_idx), self.train_idx.numel()

    def predict(self, model: torch.nn.Module) -> Dict[str, Tuple[Tensor, Any]]:
        if self.cfg.eval_mode == "layerwise" and hasattr(model, "inference"):
            from pyg_ham.sampling import neighbor_loader

            loader = neighbor_loader(self.data, [-1], batch_size=self.cfg.batch_size or 4096)
            out = model.inference(loader, device=self.device)
        else:  # (the whole graph is on the device: pyg_ham.train.placement refuses "full" otherwise)
            out = model(self.data.x, self.data.edge_index)
        return {k: (out, self.split[k]) for k in self.eval_splits}

    @property
    def evaluation(self) -> str:
        r"""How :meth:`predict` evaluates (recorded in the run's record)."""
        if self.cfg.eval_mode == "layerwise":
            return "layerwise: every neighbour, layer by layer over all nodes"
        return "full neighbourhood (whole graph)"

    def record(self) -> Dict[str, Any]:
        return {"run": self.run, "split": self.run % self.task.num_splits, "evaluation": self.evaluation,
                "placement": self.placement.record()}


class MiniBatchNodeTask(FullBatchNodeTask):
    r"""Mini-batches of ``cfg.batch_size`` shuffled training nodes with neighbour sampling
    (``cfg.fanout`` per layer, default 10) through :func:`pyg_ham.sampling.neighbor_loader`.
    Both random streams of an epoch (the shuffle and the sampled neighbours) are checkpointed.

    ``eval_mode="sampled"`` scores only the evaluated nodes (the nodes of the splits in
    :attr:`eval_splits`), in batches of ``cfg.batch_size`` with ``cfg.eval_fanout`` neighbours
    per layer (default: the training fanout; :obj:`-1` everywhere gives every seed its whole
    receptive field, the full evaluation), from a generator re-seeded at every evaluation (the
    same samples each time): no activation of an unscored node is kept, which is what lets
    ogbn-papers100M (1.4% of its nodes labelled) be evaluated at all.

    In :math:`R` processes (``torchrun``) ``cfg.batch_size`` stays the global batch: every rank
    draws the same epoch permutation of the training nodes (seeded by the run's seed and the
    epoch, :class:`~torch.utils.data.distributed.DistributedSampler`, padded by repetition to a
    multiple of :math:`R`), takes every :math:`R`-th node of it from its rank on, and samples
    batches of ``batch_size / R`` seeds with its own generator (seed ``seed + rank``), so that
    step :math:`k` of the :math:`R` ranks together trains on the nodes one process would train on
    at step :math:`k` with that permutation. The graph's CPU tensors are memory-mapped from one
    file per machine (:func:`~pyg_ham.train.machine.share_memory`).

    The graph and the features are where :mod:`pyg_ham.train.placement` puts them (the device,
    pinned host memory or disk): the sampler runs where the graph is, and every batch is moved
    to :attr:`device` one step ahead (:class:`~pyg_ham.sampling.Prefetcher`).

    A task served from its on-disk layout (:attr:`~pyg_ham.datasets.NodeTask.stores`, e.g.
    ogbn-papers100M or ``on_disk``) is sampled from that :obj:`(FeatureStore, GraphStore)` pair on
    the CPU, where its memory-mapped CSC is (already shared by the page cache), every batch's
    features gathered from the mapped file and moved to :attr:`device`."""

    def __init__(self, task: NodeTask, cfg: ExperimentConfig, spec: RunSpec, device: torch.device) -> None:
        from pyg_ham.sampling import neighbor_loader
        from pyg_ham.train import distributed, machine

        world, rank = distributed.world_size(), distributed.rank()
        if world > 1 and task.stores is None:
            machine.share_memory(task.data)
        super().__init__(task, cfg, spec, device)
        from torch.utils.data.distributed import DistributedSampler

        #: what is sampled: the graph, or the on-disk layout's (FeatureStore, GraphStore) pair
        self.graph = task.stores if task.stores is not None else self.data
        from pyg_ham.sampling.layout import graph_device

        sample_device = graph_device(self.graph)  # the sampler runs where the graph is (the CPU for a layout)
        self.generator = torch.Generator(device=sample_device).manual_seed(self.seed + rank)
        # one process is the case R = 1 (the same permutation, all of it)
        self.epoch_sampler = DistributedSampler(range(self.split["train"].numel()), num_replicas=world,
                                                rank=rank, shuffle=True, seed=self.seed)
        self.loader = neighbor_loader(self.graph, self.fanout, batch_size=cfg.batch_size // world,
                                      input_nodes=self.split["train"], sampler=self.epoch_sampler,
                                      generator=self.generator, force="pyg_ham" if task.stores is not None else "auto")
        self.epochs_started = EpochCounter(self.epoch_sampler)

    @property
    def fanout(self) -> List[int]:
        return list(self.cfg.fanout) if self.cfg.fanout is not None else [DEFAULT_FANOUT] * self.cfg.layers

    def steps_per_epoch(self) -> int:
        return math.ceil(len(self.epoch_sampler) / (self.cfg.batch_size // self.epoch_sampler.num_replicas))

    def train_batches(self) -> Iterable[Any]:
        from pyg_ham.train.common import batches_ahead

        self.epochs_started.next()
        return batches_ahead(self.loader, self.device, self.cfg)

    def record(self) -> Dict[str, Any]:
        from pyg_ham.train.common import prefetches

        return {**super().record(), "prefetch": prefetches(self.loader, self.cfg)}

    def _forward(self, model: torch.nn.Module, batch: Any) -> Tensor:
        if self.cfg.jk in (None, "last"):  # trim each layer to the hops it still reaches
            return model(batch.x, batch.edge_index, num_sampled_nodes_per_hop=batch.num_sampled_nodes,
                         num_sampled_edges_per_hop=batch.num_sampled_edges)
        return model(batch.x, batch.edge_index)  # PyG's trimming keeps no per-layer output for JK

    def batch_loss(self, model: torch.nn.Module, batch: Any) -> Tuple[Tensor, int]:
        batch = batch.to(self.device)
        out = self._forward(model, batch)
        size = batch.batch_size
        seeds = batch.n_id[:size]
        labels = batch.y[:size] if isinstance(batch.get("y"), Tensor) else None  # its own: no lookup on the host
        return self.task.loss(out[:size], seeds, target=labels), size

    def predict(self, model: torch.nn.Module) -> Dict[str, Tuple[Tensor, Any]]:
        r"""In one process, the full-graph forward (or layer-wise inference) on every node. In
        :math:`R` processes, layer-wise inference (``eval_mode="layerwise"``) is split: per
        layer every rank computes its contiguous share of the nodes with PyG's
        ``BasicGNN.inference_per_layer`` over their one-hop neighbourhoods, into one buffer the
        ranks of its machine share (memory-mapped on the host,
        :func:`~pyg_ham.train.machine.shared_empty`; other machines' rows broadcast into it in
        bounded pieces), which the next layer reads. The full-graph forward is not split (an
        exact split needs the model's layers): rank 0 alone computes it, as PyG's
        ``examples/multi_gpu`` do.
        Either way rank 0 alone scores, so the evaluator sees every prediction once, and the
        engine broadcasts its scores."""
        from pyg_ham.train import distributed

        if self.cfg.eval_mode == "sampled":
            return self._sampled_predict(model) if distributed.is_main() else {}
        layerwise = self.cfg.eval_mode == "layerwise" and hasattr(model, "inference_per_layer")
        if distributed.world_size() > 1 and layerwise:
            out = self._split_layerwise_inference(model)
            return {k: (out, self.split[k]) for k in self.eval_splits} if distributed.is_main() else {}
        if not distributed.is_main():
            return {}
        return super().predict(model)

    @property
    def eval_fanout(self) -> List[int]:
        return list(self.cfg.eval_fanout) if self.cfg.eval_fanout is not None else self.fanout

    @property
    def evaluation(self) -> str:
        if self.cfg.eval_mode == "sampled":
            return (f"sampled: fanout {','.join(map(str, self.eval_fanout))}, "
                    f"{self.cfg.batch_size} scored nodes per batch")
        return super().evaluation

    def _sampled_predict(self, model: torch.nn.Module) -> Dict[str, Tuple[Tensor, Any]]:
        # The scored nodes only, split after split, each batch's seeds' outputs in seed order.
        from pyg_ham.sampling import neighbor_loader

        splits = self.eval_splits
        idx = torch.cat([self.split[k] for k in splits])
        gen = torch.Generator(device=self.generator.device).manual_seed(self.seed + EVAL_SEED_OFFSET)
        loader = neighbor_loader(self.graph, self.eval_fanout, batch_size=self.cfg.batch_size, input_nodes=idx,
                                 generator=gen, force="pyg_ham")
        out = torch.cat([self._forward(model, batch.to(self.device))[:batch.batch_size] for batch in loader])
        pieces = out.split([self.split[k].numel() for k in splits])
        return {k: (pred, self.split[k]) for k, pred in zip(splits, pieces)}

    def _split_layerwise_inference(self, model: Any) -> Tensor:
        # Rank r computes the rows of its contiguous share of the nodes, layer by layer, into one
        # buffer per layer that its machine's ranks share (pyg_ham.train.machine): no rank holds
        # N x hidden of its own, and the next layer reads every row from that buffer.
        from pyg_ham.sampling import neighbor_loader
        from pyg_ham.train import distributed, machine

        n, world = self.data.num_nodes, distributed.world_size()
        if n < world:
            raise ConfigError(f"layer-wise evaluation splits the {n} nodes over {world} processes: fewer nodes "
                              f"than processes; evaluate in fewer processes or --eval-mode full")
        shares = torch.arange(n).tensor_split(world)
        ranges = [(int(share[0]), int(share[-1]) + 1) for share in shares]
        loader = neighbor_loader(self.data, [-1], batch_size=self.cfg.batch_size,
                                 input_nodes=shares[distributed.rank()])
        x_all = self.data.x
        for layer in range(model.num_layers):
            rows = None
            for batch in loader:
                out = model.inference_per_layer(layer, x_all[batch.n_id.to(x_all.device)].to(self.device),
                                                batch.edge_index.to(self.device), batch.batch_size)
                if rows is None:  # every rank has a batch (n >= world): all allocate together
                    rows = machine.shared_empty((n, out.size(-1)), out.dtype)
                rows[batch.n_id[:batch.batch_size].cpu()] = out.cpu()
            x_all = machine.complete_rows(rows, ranges, self.device)  # other machines' rows; a barrier
        return x_all

    def stateful(self) -> Dict[str, Any]:
        return {"sampling_generator": GeneratorState(self.generator), "epoch_sampler": self.epochs_started}


class EpochCounter:
    r"""The epoch of a :class:`~torch.utils.data.distributed.DistributedSampler` (its permutation's
    seed is ``seed + epoch``), advanced once per epoch and checkpointed."""

    def __init__(self, sampler: Any) -> None:
        self.sampler = sampler
        self.epoch = -1

    def next(self) -> None:
        self.epoch += 1
        self.sampler.set_epoch(self.epoch)

    def state_dict(self) -> Dict[str, int]:
        return {"epoch": self.epoch}

    def load_state_dict(self, state: Dict[str, int]) -> None:
        self.epoch = int(state["epoch"])
        self.sampler.set_epoch(self.epoch)
