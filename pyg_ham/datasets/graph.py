"""Graph-level datasets: loaders that turn TU and OGB datasets into
:class:`~pyg_ham.datasets.tasks.GraphTask` objects.

* **TU datasets** (``TUDataset``): evaluated by stratified 10-fold cross-validation
  (:meth:`GraphTask.folds`, Errica et al. 2020) with accuracy.  Continuous node
  attributes are used where the dataset has them (``use_node_attr=True``, e.g.
  PROTEINS, ENZYMES), concatenated with the one-hot node labels.  One-hot edge
  labels are kept as :obj:`edge_attr` (PyG's default, e.g. MUTAG: 4 bond types),
  continuous edge attributes are dropped unless ``use_edge_attr=True``.  Datasets without node
  features (IMDB-*, COLLAB, REDDIT-*) get one-hot
  node degrees (``OneHotDegree``) with the maximum degree found in the data, capped
  at ``degree_cap`` (default 512: only the REDDIT sets exceed it; larger degrees share
  the last slot).
* **OGB datasets** (``ogbg-*``): the official scaffold / species split and OGB's
  ``Evaluator``.  ``ogbg-mol*`` node / edge features are integer categories for
  OGB's ``AtomEncoder`` / ``BondEncoder``; ogbg-ppa gets a constant node feature
  (as OGB's example embeds a zero index).
"""
from __future__ import annotations

import csv
import importlib.util
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Dict, List

import torch
from torch import Tensor
from torch_geometric.data import Data
from torch_geometric.transforms import OneHotDegree
from torch_geometric.utils import degree, one_hot

from pyg_ham.datasets._compat import import_ogb
from pyg_ham.datasets._locate import load_folder
from pyg_ham.datasets.metrics import HIGHER_IS_BETTER, accuracy, ogb_eval
from pyg_ham.datasets.tasks import GraphTask
from pyg_ham.errors import ConfigError, DatasetError

if TYPE_CHECKING:
    from pyg_ham.datasets.info import DatasetInfo

TU_NAMES = (
    "MUTAG", "PTC_MR", "PTC_FM", "PTC_FR", "PTC_MM", "NCI1", "NCI109", "PROTEINS", "PROTEINS_full",
    "ENZYMES", "DD", "IMDB-BINARY", "IMDB-MULTI", "COLLAB", "REDDIT-BINARY", "REDDIT-MULTI-5K",
    "REDDIT-MULTI-12K", "AIDS", "Mutagenicity", "FRANKENSTEIN", "BZR", "COX2", "DHFR",
)


class CappedOneHotDegree(OneHotDegree):
    r"""``OneHotDegree`` whose degrees above :obj:`max_degree` share the last slot:
    :math:`\mathbf{x}_i = \mathrm{onehot}(\min(\deg(i), D))`, :math:`D+1` dims."""

    def forward(self, data: Data) -> Data:
        idx = data.edge_index[1 if self.in_degree else 0]
        deg = degree(idx, data.num_nodes, dtype=torch.long).clamp(max=self.max_degree)
        deg = one_hot(deg, num_classes=self.max_degree + 1)
        x = data.x
        if x is not None and self.cat:
            x = x.view(-1, 1) if x.dim() == 1 else x
            data.x = torch.cat([x, deg.to(x.dtype)], dim=-1)
        else:
            data.x = deg
        return data


def max_degree(dataset) -> int:
    r"""The largest (out-)degree over all graphs of an in-memory dataset."""
    data, slices = dataset._data, dataset.slices
    counts = slices["edge_index"][1:] - slices["edge_index"][:-1]
    if data.edge_index.numel() == 0:
        return 0
    graph = torch.repeat_interleave(torch.arange(counts.numel()), counts)
    key = graph * (int(data.edge_index.max()) + 1) + data.edge_index[0]
    return int(torch.unique(key, return_counts=True)[1].max())


def tu(info: "DatasetInfo", root: Path, download: bool, use_node_attr: bool = True,
       use_edge_attr: bool = False, cleaned: bool = False, degree_cap: int = 512) -> GraphTask:
    from torch_geometric.datasets import TUDataset

    sfx = "_cleaned" if cleaned else ""
    name = info.name
    ds = load_folder(name, root, info.group, info.folder,
                     lambda r: TUDataset(r, name, use_node_attr=bool(use_node_attr),
                                         use_edge_attr=bool(use_edge_attr), cleaned=bool(cleaned)),
                     raw_sub=f"raw{sfx}", download=download)
    notes = ["stratified 10-fold CV (Errica et al. 2020)"]
    if ds.num_node_features == 0:
        if int(degree_cap) < 1:
            raise ConfigError(f"{name}: degree_cap={degree_cap} is invalid; use >= 1")
        found = max_degree(ds)
        cap = min(found, int(degree_cap))
        ds.transform = CappedOneHotDegree(cap)
        notes.append(f"one-hot degree features (max degree {found}"
                     + (f", capped at {cap})" if cap < found else ")"))
    num_features = int(ds.num_node_features) if ds.transform is None else int(ds[0].num_node_features)
    edge_dim = int(ds.num_edge_features) or None
    return GraphTask(
        name=name, dataset=ds, num_features=num_features, num_classes=int(ds.num_classes),
        metric="acc", higher_is_better=True, task_type="multiclass", is_ogb_mol=False,
        edge_dim=edge_dim, default_protocol="cv", loss_fn="cross_entropy",
        description="; ".join(notes), eval_fn=accuracy)


@lru_cache(maxsize=None)
def ogbg_meta() -> Dict[str, Dict[str, str]]:
    r"""OGB's graph-dataset table (``ogb/graphproppred/master.csv``) read without
    importing ``ogb``: name -> {column -> value}."""
    spec = importlib.util.find_spec("ogb")
    if spec is None or not spec.submodule_search_locations:
        return {}
    path = Path(list(spec.submodule_search_locations)[0]) / "graphproppred" / "master.csv"
    if not path.exists():
        return {}
    with open(path, newline="") as f:
        rows = list(csv.reader(f))
    names = rows[0][1:]
    return {n: {row[0]: row[i + 1] for row in rows[1:]} for i, n in enumerate(names)}


def ogbg_names() -> List[str]:
    r"""The supported ``ogbg-*`` datasets (all of OGB's except ogbg-code2, which
    is sequence prediction)."""
    return [n for n, m in ogbg_meta().items() if m.get("eval metric") != "F1"]


def _add_constant_x(data: Data) -> Data:
    data.x = torch.ones(data.num_nodes, 1)
    return data


def ogbg(info: "DatasetInfo", root: Path, download: bool) -> GraphTask:
    graphprop = import_ogb("ogb.graphproppred")
    name = info.name
    meta = ogbg_meta()[name]
    if meta.get("eval metric") == "F1":
        raise DatasetError(f"{name}: sequence prediction is not supported; choose another ogbg-* dataset")
    ds = load_folder(name, root, info.group, info.path(root).name,
                     lambda r: graphprop.PygGraphPropPredDataset(name=name, root=r), download=download)
    split_idx = {k: torch.as_tensor(v).view(-1).long() for k, v in ds.get_idx_split().items()}
    evaluator = graphprop.Evaluator(name)
    metric = ds.eval_metric
    task_type = {"binary classification": "binary", "regression": "regression",
                 "multiclass classification": "multiclass"}[ds.task_type]
    is_mol = meta.get("data type") == "mol"
    notes = [f"official OGB {meta.get('split', '')} split"]
    if ds.num_node_features == 0:
        ds.transform = _add_constant_x
        notes.append("constant node feature 1 (no node features)")
    num_tasks = int(ds.num_tasks)

    if task_type == "multiclass":
        num_classes, loss_fn = int(ds.num_classes), "cross_entropy"

        def eval_fn(pred: Tensor, target: Tensor) -> float:
            labels = pred.argmax(dim=-1) if pred.dim() == 2 else pred.view(-1)
            return ogb_eval(evaluator, metric, target.view(-1, 1), labels.view(-1, 1))
    else:
        num_classes, loss_fn = num_tasks, ("bce" if task_type == "binary" else "mse")

        def eval_fn(pred: Tensor, target: Tensor) -> float:
            n = target.size(0)
            return ogb_eval(evaluator, metric, target.view(n, num_tasks), pred.view(n, num_tasks))

    num_features = int(ds.num_node_features) if ds.transform is None else 1
    edge_dim = int(ds.num_edge_features) or None
    return GraphTask(
        name=name, dataset=ds, num_features=num_features, num_classes=num_classes, metric=metric,
        higher_is_better=HIGHER_IS_BETTER[metric], task_type=task_type, is_ogb_mol=is_mol,
        edge_dim=edge_dim, default_protocol="official", loss_fn=loss_fn,
        description="; ".join(notes), eval_fn=eval_fn, split_idx=split_idx)
