"""The two task objects returned by :func:`pyg_ham.datasets.load_dataset`."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, ClassVar, Dict, List, Optional, Tuple

import torch
from torch import Tensor
from torch_geometric.data import Data

from pyg_ham.datasets.metrics import loss_function
from pyg_ham.datasets.splits import Split, stratified_folds
from pyg_ham.errors import ConfigError

EvalFn = Callable[[Tensor, Tensor], float]


def _as_index(idx: Any, num_nodes: int) -> Tensor:
    idx = torch.as_tensor(idx)
    if idx.dtype == torch.bool:
        return idx.nonzero().view(-1)
    return idx.view(-1).long()


@dataclass
class NodeTask:
    r"""A node-classification task on one graph.

    Attributes:
        name (str): Canonical dataset name (e.g. ``"Cora"``, ``"ogbn-arxiv"``).
        data (Data): The graph: :obj:`x` (float features), :obj:`y` (1-D long labels
            for single-label tasks, :obj:`[N, T]` for multi-task ones such as
            ogbn-proteins; ``-1`` marks unlabelled nodes), :obj:`edge_index` and
            :obj:`edge_attr` if any.
        num_features (int): Input feature dimension.
        num_classes (int): Model output dimension (classes; 1 for a single binary
            target scored by ROC-AUC; the number of tasks for multi-task targets).
        metric (str): ``"acc"`` or ``"rocauc"``.
        higher_is_better (bool): Whether larger metric values are better.
        num_splits (int): Number of distinct splits; :meth:`split` uses split
            ``run % num_splits`` (1 for one official split, 10 for the geom-gcn /
            WebKB / Actor / heterophilous splits, the protocol's run count for
            datasets with seeded random splits).
        loss_fn (str): ``"cross_entropy"`` (logits :obj:`[n, C]`, long labels) or
            ``"bce"`` (binary cross-entropy with logits, unlabelled entries
            ignored); :meth:`loss` applies it.
        description (str): How the split and features were made.
        stores (Tuple[FeatureStore, GraphStore], optional): The graph served from its on-disk
            layout (:mod:`pyg_ham.datasets.ondisk`): :obj:`data` then holds only :obj:`y` and
            the node count, and the task trains mini-batch from these stores.
    """

    #: The task kind whose trainer runs it (:func:`pyg_ham.train.task.register_task_kind`).
    kind: ClassVar[str] = "node"

    name: str
    data: Data
    num_features: int
    num_classes: int
    metric: str
    higher_is_better: bool = True
    num_splits: int = 1
    loss_fn: str = "cross_entropy"
    description: str = ""
    split_fn: Callable[[int], Split] = field(default=None, repr=False, compare=False)  # type: ignore[assignment]
    eval_fn: EvalFn = field(default=None, repr=False, compare=False)  # type: ignore[assignment]
    stores: Optional[Tuple[Any, Any]] = field(default=None, repr=False, compare=False)

    @property
    def num_nodes(self) -> int:
        return int(self.data.num_nodes)

    def split(self, run: int = 0) -> Split:
        r"""The split of run :obj:`run`: a dict of LongTensor node indices under
        ``"train"``, ``"valid"`` and ``"test"`` (split ``run % num_splits``)."""
        if int(run) < 0:
            raise ConfigError(f"{self.name}: run={run} is invalid; use a run index >= 0")
        return self.split_fn(int(run) % self.num_splits)

    def _select(self, out: Tensor, idx: Tensor) -> Tensor:
        if out.size(0) == idx.numel():
            return out
        if out.size(0) == self.num_nodes:
            return out[idx.to(out.device)]
        raise ValueError(
            f"{self.name}: predictions have {out.size(0)} rows; expected {idx.numel()} "
            f"(one per index) or {self.num_nodes} (one per node)")

    def evaluate(self, pred: Tensor, idx: Any) -> float:
        r"""Evaluates predictions on the nodes :obj:`idx` with :attr:`metric`.

        Args:
            pred (Tensor): Model outputs (logits or scores) either for exactly the
                nodes :obj:`idx` (:obj:`[len(idx), C]`) or for all nodes
                (:obj:`[N, C]`, rows :obj:`idx` are used); for accuracy a 1-D
                tensor of predicted labels also works.
            idx (Tensor): Node indices (LongTensor) or a boolean mask.
        """
        idx = _as_index(idx, self.num_nodes)
        pred = self._select(pred.detach(), idx).cpu()
        return self.eval_fn(pred, self.data.y[idx.cpu()])

    def loss(self, out: Tensor, idx: Any, target: Optional[Tensor] = None) -> Tensor:
        r"""The training loss :attr:`loss_fn` of outputs :obj:`out` (for the nodes
        :obj:`idx` or for all nodes, as in :meth:`evaluate`) against their labels:
        :obj:`target` when given (a mini-batch's own :obj:`y`, gathered and moved with its
        features), else looked up in :obj:`data.y` (labels on the host are indexed there, which
        on a GPU waits for :obj:`idx` to come back: mini-batches pass :obj:`target`)."""
        idx = _as_index(idx, self.num_nodes)
        out = self._select(out, idx)
        if target is None:
            target = self.data.y[idx.to(self.data.y.device)]
        target = target.to(out.device)
        if self.loss_fn == "bce" and target.dim() == 1:
            out = out.view(-1)
        return loss_function(self.loss_fn)(out, target)


@dataclass
class GraphTask:
    r"""A graph-level prediction task (classification or regression).

    Attributes:
        name (str): Canonical dataset name (e.g. ``"MUTAG"``, ``"ogbg-molhiv"``).
        dataset: The PyG dataset (transforms such as degree features applied).
        num_features (int): Node feature dimension (for OGB molecules the number of
            categorical atom features; embed them with OGB's ``AtomEncoder``).
        num_classes (int): Model output dimension: classes (multiclass), tasks
            (binary multi-task), targets (regression).
        metric (str): ``"acc"``, ``"rocauc"``, ``"ap"`` or ``"rmse"``.
        higher_is_better (bool): Whether larger metric values are better.
        task_type (str): ``"multiclass"`` (cross-entropy, long labels),
            ``"binary"`` (multi-label BCE; NaN marks missing labels) or
            ``"regression"`` (MSE, NaN-masked).
        is_ogb_mol (bool): Molecules with OGB's integer atom / bond features.
        edge_dim (int, optional): Edge feature dimension, :obj:`None` if none.
        default_protocol (str): ``"cv"`` (TU: :meth:`folds`) or ``"official"``
            (OGB: :meth:`official_split`).
        loss_fn (str): ``"cross_entropy"``, ``"bce"`` or ``"mse"``; see :meth:`loss`.
        description (str): How features and splits were made.
    """

    #: The task kind whose trainer runs it (:func:`pyg_ham.train.task.register_task_kind`).
    kind: ClassVar[str] = "graph"

    name: str
    dataset: Any
    num_features: int
    num_classes: int
    metric: str
    higher_is_better: bool
    task_type: str
    is_ogb_mol: bool = False
    edge_dim: Optional[int] = None
    default_protocol: str = "cv"
    loss_fn: str = "cross_entropy"
    description: str = ""
    eval_fn: EvalFn = field(default=None, repr=False, compare=False)  # type: ignore[assignment]
    split_idx: Optional[Split] = field(default=None, repr=False, compare=False)

    def __len__(self) -> int:
        return len(self.dataset)

    @property
    def labels(self) -> Tensor:
        r"""The graph labels of the whole dataset (one row per graph)."""
        y = self.dataset._data.y
        return y.view(len(self.dataset), -1).squeeze(-1) if y.numel() else y

    def evaluate(self, pred: Tensor, target: Tensor) -> float:
        r"""Evaluates predictions with :attr:`metric`.

        Args:
            pred (Tensor): Model outputs for a set of graphs: logits :obj:`[n, C]`
                (multiclass; 1-D predicted labels also work), scores :obj:`[n, T]`
                (binary), values :obj:`[n, T]` (regression).
            target (Tensor): The graphs' :obj:`y` (as batched by the DataLoader).
        """
        return self.eval_fn(pred.detach().cpu(), target.detach().cpu())

    def loss(self, out: Tensor, target: Tensor) -> Tensor:
        r"""The training loss :attr:`loss_fn` (NaN targets are ignored for
        ``"bce"`` / ``"mse"``)."""
        return loss_function(self.loss_fn)(out, target)

    def official_split(self) -> Split:
        r"""The official split (OGB: scaffold / species split) as LongTensor graph
        indices under ``"train"``, ``"valid"``, ``"test"``."""
        if self.split_idx is None:
            raise ConfigError(
                f"{self.name} has no official split; use folds() (stratified cross-validation)")
        return {k: v.clone() for k, v in self.split_idx.items()}

    def folds(self, num_folds: int = 10, seed: int = 0, valid_fraction: float = 0.1) -> List[Split]:
        r"""Stratified :math:`K`-fold cross-validation splits with an inner
        stratified validation hold-out (Errica et al., ICLR 2020); see
        :func:`~pyg_ham.datasets.stratified_folds`.

        Args:
            num_folds (int, optional): Number of folds. (default: :obj:`10`)
            seed (int, optional): Seed. (default: :obj:`0`)
            valid_fraction (float, optional): Validation share of each training
                part. (default: :obj:`0.1`)
        """
        if self.task_type != "multiclass":
            raise ConfigError(
                f"{self.name}: stratified folds need one class label per graph; this is a "
                f"{self.task_type} task, use official_split()")
        return stratified_folds(self.labels, num_folds, seed, valid_fraction)

    def splits(self, num_folds: int = 10, seed: int = 0, valid_fraction: float = 0.1) -> List[Split]:
        r"""The splits of :attr:`default_protocol`: :meth:`folds` for ``"cv"``,
        ``[official_split()]`` for ``"official"``."""
        if self.default_protocol == "official":
            return [self.official_split()]
        return self.folds(num_folds, seed, valid_fraction)


def describe(task: Any) -> Dict[str, Any]:
    r"""A JSON-friendly summary of a task (for logs and result files)."""
    keys = ["name", "num_features", "num_classes", "metric", "higher_is_better", "loss_fn"]
    extra = ["num_splits"] if isinstance(task, NodeTask) else [
        "task_type", "is_ogb_mol", "edge_dim", "default_protocol"]
    out = {k: getattr(task, k) for k in keys + extra}
    out["task"] = "node" if isinstance(task, NodeTask) else "graph"
    out["description"] = task.description
    return out
