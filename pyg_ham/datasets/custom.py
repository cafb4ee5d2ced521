r"""Turning what a :func:`~pyg_ham.datasets.register_dataset` function returns into a task."""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

import torch
from torch_geometric.data import Data

from pyg_ham.datasets.metrics import HIGHER_IS_BETTER, accuracy
from pyg_ham.datasets.tasks import GraphTask, NodeTask
from pyg_ham.errors import ConfigError

if TYPE_CHECKING:
    from pyg_ham.datasets.info import DatasetInfo

__all__ = ["check_metric", "to_task"]

_NODE_METRICS = ("acc", "rocauc")
#: graph metric -> (task type, loss)
_GRAPH_METRICS = {"acc": ("multiclass", "cross_entropy"), "rocauc": ("binary", "bce"),
                  "rmse": ("regression", "mse"), "mae": ("regression", "mse")}


def check_metric(name: str, task: str, metric: str) -> None:
    """Refuse a metric the task kind cannot score."""
    allowed = _NODE_METRICS if task == "node" else tuple(_GRAPH_METRICS)
    if metric not in allowed:
        raise ConfigError(f"register_dataset({name!r}): metric must be one of {', '.join(allowed)} "
                          f"for {task} tasks, got {metric!r}")


def _graph_eval(metric: str) -> Any:
    if metric == "acc":
        return accuracy

    def score(pred: torch.Tensor, target: torch.Tensor) -> float:
        if metric == "rocauc":
            from pyg_ham.datasets.metrics import binary_rocauc

            return binary_rocauc(pred, target)
        err = pred.view(target.shape).float() - target.float()
        return float(err.pow(2).mean().sqrt()) if metric == "rmse" else float(err.abs().mean())

    return score


def to_task(info: "DatasetInfo", value: Any, description: str = "") -> Any:
    r"""The task for what :obj:`info`'s function returned (see :func:`register_dataset`)."""
    if isinstance(value, (NodeTask, GraphTask)):
        return value
    if info.task == "node":
        from pyg_ham.datasets.node import _mask_task

        if not isinstance(value, Data) or not all(k in value for k in ("y", "train_mask", "val_mask", "test_mask")):
            raise ConfigError(f"{info.name}: a node dataset function must return a Data with y, train_mask, "
                              f"val_mask and test_mask (or a NodeTask), got {type(value).__name__}")
        return _mask_task(info.name, value, info.metric, description or "registered dataset; its own masks")
    split = None
    dataset = value
    if isinstance(value, tuple):
        if len(value) != 2 or not isinstance(value[1], dict) or set(value[1]) != {"train", "valid", "test"}:
            raise ConfigError(f"{info.name}: a graph dataset function must return a dataset, or (dataset, "
                              f"{{'train', 'valid', 'test'}} index tensors), or a GraphTask")
        dataset, split = value[0], {k: torch.as_tensor(v).view(-1).long() for k, v in value[1].items()}
    task_type, loss_fn = _GRAPH_METRICS[info.metric]
    y = dataset._data.y if hasattr(dataset, "_data") else torch.cat([d.y for d in dataset])
    num_classes = int(y.max()) + 1 if task_type == "multiclass" else int(y.view(len(dataset), -1).size(1))
    edge_dim = int(getattr(dataset, "num_edge_features", 0)) or None
    return GraphTask(name=info.name, dataset=dataset, num_features=int(dataset.num_node_features),
                     num_classes=num_classes, metric=info.metric, higher_is_better=HIGHER_IS_BETTER[info.metric],
                     task_type=task_type, edge_dim=edge_dim, default_protocol="official" if split else "cv",
                     loss_fn=loss_fn, description=description or "registered dataset",
                     eval_fn=_graph_eval(info.metric), split_idx=split)
