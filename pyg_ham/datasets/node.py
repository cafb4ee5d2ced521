r"""Node-classification datasets: loaders that turn PyG / OGB datasets into
:class:`~pyg_ham.datasets.tasks.NodeTask` objects.

Protocols (documented per dataset in :attr:`NodeTask.description`):

* **ogbn-\***: OGB's official split (``get_idx_split()``) and ``Evaluator``.
  ogbn-arxiv is made undirected (``to_undirected``) as in OGB's examples;
  ogbn-proteins gets node features as the mean of its incident edges' 8 features
  (as OGB's example does) and is evaluated by ROC-AUC over 112 binary tasks;
  ogbn-papers100M is read from OGB's raw binary files into its on-disk layout
  (:mod:`pyg_ham.datasets.ogbn_raw`; unlabelled nodes get label ``-1``).
* **Planetoid** (Cora, CiteSeer, PubMed): ``split="public"`` (20 per class / 500 /
  1000), ``"full"`` or ``"geom-gcn"`` (10 fixed 60/20/20 splits).
* **WebKB, Actor, heterophilous graphs**: the 10 fixed splits shipped with the data.
  Minesweeper, Tolokers and Questions are binary and scored by ROC-AUC with a single
  output logit and BCE loss, as in Platonov et al. (ICLR 2023).
* **LINKX Facebook100 sets** (reed98, amherst41, ...): gender labels with ``-1`` for
  unknown; random 50/25/25 splits of the *labelled* nodes, split :math:`r` seeded by
  ``(split_seed, r)``, 5 splits (LINKX protocol).  penn94 uses LINKX's 5 published
  splits.  genius: random 50/25/25 splits, ROC-AUC.
* **Airports** (USA, Brazil, Europe): random 60/20/20 splits (ratios configurable),
  split :math:`r` seeded by ``(split_seed, r)``, 10 splits.
* **synthetic**: see :mod:`pyg_ham.datasets.synthetic`.
"""
from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Dict

import torch
from torch import Tensor
from torch_geometric.data import Data

from pyg_ham.datasets._compat import import_ogb
from pyg_ham.datasets._locate import load_folder
from pyg_ham.datasets.metrics import HIGHER_IS_BETTER, accuracy, binary_rocauc, ogb_eval
from pyg_ham.datasets.splits import check_ratios, mask_split, num_mask_splits, per_class_split, random_split, split_seed
from pyg_ham.datasets.synthetic import csbm
from pyg_ham.datasets.tasks import NodeTask

if TYPE_CHECKING:
    from pyg_ham.datasets.info import DatasetInfo
from pyg_ham.errors import ConfigError

Builder = Callable[..., NodeTask]


def _task(name: str, data: Data, metric: str, num_classes: int, split_fn: Callable,
          num_splits: int, description: str, eval_fn: Callable = None,
          loss_fn: str = "cross_entropy") -> NodeTask:
    if eval_fn is None:
        eval_fn = accuracy if metric == "acc" else binary_rocauc
    return NodeTask(
        name=name, data=data, num_features=int(data.num_features), num_classes=int(num_classes),
        metric=metric, higher_is_better=HIGHER_IS_BETTER[metric], num_splits=int(num_splits),
        loss_fn=loss_fn, description=description, split_fn=split_fn, eval_fn=eval_fn)


def _mask_task(name: str, data: Data, metric: str, description: str) -> NodeTask:
    masks = (data.train_mask, data.val_mask, data.test_mask)
    binary = metric == "rocauc"
    num_classes = 1 if binary else int(data.y.max()) + 1
    return _task(name, data, metric, num_classes, lambda run: mask_split(*masks, run),
                 num_mask_splits(data.train_mask), description,
                 loss_fn="bce" if binary else "cross_entropy")


def _single(ds: Any) -> Data:
    data = ds[0]
    data.y = data.y.view(-1) if data.y.dim() == 2 and data.y.size(1) == 1 else data.y
    return data


def planetoid(info: DatasetInfo, root: Path, download: bool, split: str = "public") -> NodeTask:
    from torch_geometric.datasets import Planetoid

    name = info.name

    if split not in ("public", "full", "geom-gcn"):
        raise ConfigError(f"{name}: split={split!r} is invalid; use 'public', 'full' or 'geom-gcn'")
    sub = "geom-gcn/" if split == "geom-gcn" else ""
    ds = load_folder(name, root, info.group, info.folder, lambda r: Planetoid(r, name, split=split),
                     raw_sub=f"{sub}raw", write_sub=sub.rstrip("/"), download=download)
    return _mask_task(name, _single(ds), info.metric, f"Planetoid {split} split")


def webkb(info: DatasetInfo, root: Path, download: bool) -> NodeTask:
    from torch_geometric.datasets import WebKB

    ds = load_folder(info.name, root, info.group, info.folder, lambda r: WebKB(r, info.name), download=download)
    return _mask_task(info.name, _single(ds), info.metric, "10 fixed geom-gcn 60/20/20 splits")


def actor(info: DatasetInfo, root: Path, download: bool) -> NodeTask:
    from torch_geometric.datasets import Actor

    ds = load_folder(info.name, root, info.group, info.folder, lambda r: Actor(r), download=download)
    return _mask_task(info.name, _single(ds), info.metric, "10 fixed geom-gcn 60/20/20 splits")


def heterophilous(info: DatasetInfo, root: Path, download: bool) -> NodeTask:
    from torch_geometric.datasets import HeterophilousGraphDataset

    ds = load_folder(info.name, root, info.group, info.folder,
                     lambda r: HeterophilousGraphDataset(r, info.name), download=download)
    return _mask_task(info.name, _single(ds), info.metric, "10 fixed 50/25/25 splits (Platonov et al.)")


def _random_task(name: str, data: Data, metric: str, num_splits: int, seed: int,
                 train_ratio: float, valid_ratio: float, labelled: Tensor, what: str) -> NodeTask:
    if int(num_splits) < 1:
        raise ConfigError(f"{name}: num_splits={num_splits} is invalid; use >= 1")
    check_ratios(train_ratio, valid_ratio, name)
    n = data.num_nodes

    def split_fn(run: int) -> Dict[str, Tensor]:
        return random_split(n, train_ratio, valid_ratio, split_seed(seed, run), candidates=labelled)

    binary = metric == "rocauc"
    num_classes = 1 if binary else int(data.y.max()) + 1
    test = 1 - train_ratio - valid_ratio
    desc = (f"{num_splits} random {train_ratio:g}/{valid_ratio:g}/{test:g} splits of {what}, "
            f"split r seeded by (split_seed={seed}, r)")
    return _task(name, data, metric, num_classes, split_fn, num_splits, desc,
                 loss_fn="bce" if binary else "cross_entropy")


LINKX_NAMES = ("penn94", "reed98", "amherst41", "cornell5", "johnshopkins55", "genius")


def linkx(info: DatasetInfo, root: Path, download: bool, split_seed: int = 0, train_ratio: float = 0.5,
          valid_ratio: float = 0.25, num_splits: int = 5) -> NodeTask:
    from torch_geometric.datasets import LINKXDataset

    name, metric = info.name, info.metric
    ds = load_folder(name, root, info.group, info.folder, lambda r: LINKXDataset(r, name),
                     download=download)
    data = _single(ds)
    data.x = data.x.float()
    if "train_mask" in data:  # penn94: LINKX's published splits
        task = _mask_task(name, data, metric, "LINKX's 5 published 50/25/25 splits")
        return task
    labelled = (data.y >= 0).nonzero().view(-1)
    return _random_task(name, data, metric, num_splits, split_seed, train_ratio, valid_ratio,
                        labelled, "the labelled nodes (label -1 = unknown)")


def airports(info: DatasetInfo, root: Path, download: bool, split_seed: int = 0, train_ratio: float = 0.6,
             valid_ratio: float = 0.2, num_splits: int = 10) -> NodeTask:
    from torch_geometric.datasets import Airports

    name = info.name
    ds = load_folder(name, root, info.group, info.folder, lambda r: Airports(r, name),
                     download=download)
    data = _single(ds)
    return _random_task(name, data, info.metric, num_splits, split_seed, train_ratio, valid_ratio,
                        torch.arange(data.num_nodes), "all nodes")


def ogbn_eval_fn(name: str, metric: str) -> Callable[[Tensor, Tensor], float]:
    r"""Scores predictions with OGB's ``Evaluator(name)``: ROC-AUC over the task columns, or
    accuracy of the arg-max (1-D predicted labels also work)."""
    evaluator = import_ogb("ogb.nodeproppred").Evaluator(name)

    if metric == "rocauc":
        def eval_fn(pred: Tensor, y: Tensor) -> float:
            return ogb_eval(evaluator, metric, y.view(y.size(0), -1), pred.view(y.size(0), -1))
    else:
        def eval_fn(pred: Tensor, y: Tensor) -> float:
            labels = pred.argmax(dim=-1) if pred.dim() == 2 else pred.view(-1)
            return ogb_eval(evaluator, metric, y.view(-1, 1), labels.view(-1, 1))
    return eval_fn


def ogbn(info: DatasetInfo, root: Path, download: bool, undirected: bool = True) -> NodeTask:
    nodeprop = import_ogb("ogb.nodeproppred")
    name = info.name
    ds = load_folder(name, root, info.group, info.path(root).name,
                     lambda r: nodeprop.PygNodePropPredDataset(name=name, root=r), download=download)
    split_idx = {k: v.view(-1).long() for k, v in ds.get_idx_split().items()}
    metric = ds.eval_metric
    data = ds[0]
    notes = ["official OGB split"]
    if name == "ogbn-proteins":
        from torch_geometric.utils import scatter

        data.x = scatter(data.edge_attr, data.edge_index[1], 0, dim_size=data.num_nodes, reduce="mean")
        notes.append("node features = mean of incident edge features")
    elif data.y.dim() == 2 and data.y.size(1) == 1:
        y = data.y.view(-1)
        if y.is_floating_point():  # NaN = unlabelled
            y = torch.nan_to_num(y, nan=-1.0)
            notes.append("unlabelled nodes have y = -1")
        data.y = y.long()
    if name == "ogbn-arxiv" and undirected:
        from torch_geometric.utils import to_undirected

        data.edge_index = to_undirected(data.edge_index, num_nodes=data.num_nodes)
        notes.append("edges made undirected (to_undirected), as in OGB's examples")
    num_classes = int(ds.num_tasks) if metric == "rocauc" else int(ds.num_classes)
    eval_fn = ogbn_eval_fn(name, metric)
    return _task(name, data, metric, num_classes, lambda run: {k: v.clone() for k, v in split_idx.items()}, 1,
                 "; ".join(notes),
                 eval_fn=eval_fn, loss_fn="bce" if metric == "rocauc" else "cross_entropy")


def synthetic(info: DatasetInfo, root: Path, download: bool, num_nodes: int = 2000, num_classes: int = 5,
              num_features: int = 32, avg_degree: float = 10.0, homophily: float = 0.8,
              feature_signal: float = 1.0, seed: int = 0, split: str = "random",
              train_ratio: float = 0.6, valid_ratio: float = 0.2, train_per_class: int = 20,
              num_splits: int = 10) -> NodeTask:
    name = info.name
    data = csbm(num_nodes, num_classes, num_features, avg_degree, homophily, feature_signal, seed)
    desc = (f"CSBM N={num_nodes} C={num_classes} d={num_features} avg_degree={avg_degree} "
            f"homophily={homophily} feature_signal={feature_signal} seed={seed}")
    if split == "random":
        task = _random_task(name, data, "acc", num_splits, seed, train_ratio, valid_ratio,
                            torch.arange(data.num_nodes), "all nodes")
    elif split == "per_class":
        if int(num_splits) < 1:
            raise ConfigError(f"{name}: num_splits={num_splits} is invalid; use >= 1")
        per_class_split(data.y, int(train_per_class), 0)  # validates train_per_class
        task = _task(name, data, "acc", int(num_classes),
                     lambda run: per_class_split(data.y, int(train_per_class), split_seed(seed, run)),
                     num_splits, f"{num_splits} random splits with {train_per_class} training "
                     f"nodes per class, the rest halved into valid/test")
    else:
        raise ConfigError(f"{name}: split={split!r} is invalid; use 'random' or 'per_class'")
    task.description = f"{desc}; {task.description}"
    task.num_classes = int(num_classes)
    return task
