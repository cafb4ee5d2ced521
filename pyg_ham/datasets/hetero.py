r"""Heterogeneous node classification: ogbn-mag through OGB's own loader and an
ogbn-mag-shaped synthetic graph generated locally (no download).

Both return a :class:`HeteroNodeTask` whose :obj:`data` is a
:class:`~torch_geometric.data.HeteroData` graph with the node types
``paper``, ``author``, ``institution`` and ``field_of_study`` and the four
relations of ogbn-mag:

* ``(author, affiliated_with, institution)``, ``(author, writes, paper)``,
  ``(paper, cites, paper)``, ``(paper, has_topic, field_of_study)``;
* with :obj:`undirected=True` (the default, as in PyG's ogbn-mag examples)
  :class:`~torch_geometric.transforms.ToUndirected` adds the reverse
  relations ``rev_*`` and makes ``cites`` symmetric, so that every node type
  receives messages;
* only papers have features (:obj:`x`), labels (:obj:`y`, one of
  :obj:`num_classes` venues), :obj:`year` and the boolean masks
  :obj:`train_mask` / :obj:`valid_mask` / :obj:`test_mask` of the time split
  (train: papers before 2018, valid: 2018, test: 2019); the other node types
  only have :obj:`num_nodes` (models give them learnable embeddings, see
  :mod:`pyg_ham.models.hetero`).

Example::

    from pyg_ham.datasets.hetero import ogbn_mag, synthetic_mag

    task = synthetic_mag(scale=0.01, seed=0)           # no download
    task = ogbn_mag("../shared/data")                  # <root>/ogb/ogbn_mag/raw/...
    split = task.split()                               # paper indices
    acc = task.evaluate(logits, split["test"])         # OGB's Evaluator for ogbn-mag
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, ClassVar, Dict, Optional, Tuple, Union

import torch
from torch import Tensor
from torch_geometric.data import HeteroData

from pyg_ham.datasets.metrics import accuracy, loss_function
from pyg_ham.errors import ConfigError

EvalFn = Callable[[Tensor, Tensor], float]

#: The node types of ogbn-mag, with their sizes in OGB's release.
MAG_NUM_NODES: Dict[str, int] = {
    "paper": 736_389, "author": 1_134_649, "institution": 8_740, "field_of_study": 59_965,
}
#: The four relations of ogbn-mag, with their edge counts in OGB's release.
MAG_NUM_EDGES: Dict[Tuple[str, str, str], int] = {
    ("author", "affiliated_with", "institution"): 1_043_998,
    ("author", "writes", "paper"): 7_145_660,
    ("paper", "cites", "paper"): 5_416_271,
    ("paper", "has_topic", "field_of_study"): 7_505_078,
}
MAG_NUM_CLASSES, MAG_NUM_FEATURES = 349, 128
TARGET = "paper"


@dataclass
class HeteroNodeTask:
    r"""A node-classification task on one node type of a heterogeneous graph.

    Attributes:
        name (str): ``"ogbn-mag"`` or ``"synthetic-mag"``.
        data (HeteroData): The graph (see :mod:`pyg_ham.datasets.hetero`).
        target_type (str): The node type that is classified (``"paper"``).
        num_features (int): Feature dimension of the target type.
        num_classes (int): Number of classes.
        metric (str): ``"acc"``.
        split_idx (Dict[str, Tensor]): Target-type node indices under
            ``"train"``, ``"valid"``, ``"test"``.
        description (str): How split, features and edges were made.
        eval_fn (callable): :obj:`(pred, y) -> float` (OGB's Evaluator for
            ogbn-mag).
    """

    #: The task kind whose trainer runs it (:mod:`pyg_ham.train.hetero`).
    kind: ClassVar[str] = "hetero-node"

    name: str
    data: HeteroData
    target_type: str
    num_features: int
    num_classes: int
    metric: str = "acc"
    higher_is_better: bool = True
    num_splits: int = 1
    loss_fn: str = "cross_entropy"
    description: str = ""
    split_idx: Dict[str, Tensor] = field(default_factory=dict, repr=False)
    eval_fn: EvalFn = field(default=accuracy, repr=False, compare=False)

    @property
    def num_nodes(self) -> int:
        r"""Number of nodes of the target type."""
        return int(self.data[self.target_type].num_nodes)

    @property
    def featureless_types(self) -> list:
        r"""Node types without features (they need learnable embeddings)."""
        return [t for t in self.data.node_types if "x" not in self.data[t]]

    def split(self, run: int = 0) -> Dict[str, Tensor]:
        r"""The official split (the same for every :obj:`run`): target-type
        indices under ``"train"``, ``"valid"``, ``"test"``."""
        if int(run) < 0:
            raise ConfigError(f"{self.name}: run={run} is invalid; use a run index >= 0")
        return {k: v.clone() for k, v in self.split_idx.items()}

    def _select(self, out: Tensor, idx: Tensor) -> Tensor:
        if out.size(0) == idx.numel():
            return out
        if out.size(0) == self.num_nodes:
            return out[idx.to(out.device)]
        raise ValueError(f"{self.name}: predictions have {out.size(0)} rows; expected {idx.numel()} "
                         f"(one per index) or {self.num_nodes} (one per {self.target_type} node)")

    def evaluate(self, pred: Tensor, idx: Any) -> float:
        r"""Evaluates :obj:`pred` (logits or labels, for the target nodes
        :obj:`idx` or for all target nodes) with :attr:`eval_fn`."""
        idx = _as_index(idx)
        pred = self._select(pred.detach(), idx).cpu()
        return self.eval_fn(pred, self.data[self.target_type].y[idx.cpu()])

    def loss(self, out: Tensor, idx: Any, target: Optional[Tensor] = None) -> Tensor:
        r"""Cross-entropy of :obj:`out` (as in :meth:`evaluate`) against the labels
        :obj:`target` (a mini-batch's own), or those of :obj:`idx` (see
        :meth:`~pyg_ham.datasets.NodeTask.loss`)."""
        idx = _as_index(idx)
        out = self._select(out, idx)
        if target is None:
            y = self.data[self.target_type].y
            target = y[idx.to(y.device)]
        return loss_function(self.loss_fn)(out, target.to(out.device))


def _as_index(idx: Any) -> Tensor:
    idx = torch.as_tensor(idx)
    return idx.nonzero().view(-1) if idx.dtype == torch.bool else idx.view(-1).long()


def _finish(name: str, data: HeteroData, split_idx: Dict[str, Tensor], num_classes: int,
            undirected: bool, notes: list, eval_fn: EvalFn) -> HeteroNodeTask:
    paper = data[TARGET]
    for key in ("train", "valid", "test"):
        mask = torch.zeros(paper.num_nodes, dtype=torch.bool)
        mask[split_idx[key]] = True
        paper[f"{key}_mask"] = mask
    if undirected:
        from torch_geometric.transforms import ToUndirected

        data = ToUndirected()(data)
        notes.append("reverse relations rev_* added and cites made symmetric (ToUndirected)")
    return HeteroNodeTask(name=name, data=data, target_type=TARGET, num_features=int(paper.x.size(1)),
                          num_classes=int(num_classes), description="; ".join(notes),
                          split_idx=split_idx, eval_fn=eval_fn)


def _zipf_draw(n: int, m: int, exponent: float, gen: torch.Generator) -> Tensor:
    # m draws from {0..n-1} with P(i) ~ (rank(i) + 1)^-exponent, hubs at random ids (inverse CDF).
    cdf = torch.arange(1, n + 1, dtype=torch.float64).pow_(-exponent).cumsum_(0)
    cdf /= cdf[-1].clone()
    rank = torch.searchsorted(cdf, torch.rand(m, generator=gen, dtype=torch.float64)).clamp_(max=n - 1)
    return torch.randperm(n, generator=gen).index_select(0, rank)


def _relation(n_src: int, n_dst: int, m: int, skewed: str, gen: torch.Generator,
              no_self_loops: bool = False) -> Tensor:
    # About m distinct edges; the `skewed` side ("src" or "dst") has power-law degrees.
    draw = int(m * 1.1) + 16
    src = _zipf_draw(n_src, draw, 0.9, gen) if skewed == "src" else torch.randint(0, n_src, (draw,), generator=gen)
    dst = _zipf_draw(n_dst, draw, 0.9, gen) if skewed == "dst" else torch.randint(0, n_dst, (draw,), generator=gen)
    if no_self_loops:
        keep = src != dst
        src, dst = src[keep], dst[keep]
    key = torch.unique(src * n_dst + dst)
    key = key.index_select(0, torch.randperm(key.numel(), generator=gen)[:m])
    return torch.stack([key // n_dst, key % n_dst])


def synthetic_mag(
    scale: float = 1.0,
    num_classes: int = MAG_NUM_CLASSES,
    num_features: int = MAG_NUM_FEATURES,
    feature_signal: float = 1.0,
    seed: int = 0,
    undirected: bool = True,
    num_nodes: Optional[Dict[str, int]] = None,
    num_edges: Optional[Dict[Tuple[str, str, str], int]] = None,
) -> HeteroNodeTask:
    r"""Generates an ogbn-mag-shaped heterogeneous graph (no download).

    Node and edge counts are ogbn-mag's times :obj:`scale` (at least one node
    per type): 1.94M nodes and 21.1M edges at :obj:`scale=1`. Every relation
    draws about its number of distinct edges with one power-law side
    (:math:`P(i) \propto (r_i + 1)^{-0.9}` over a random ranking :math:`r`):
    authors for ``writes``, the cited paper for ``cites``, the field for
    ``has_topic``, the institution for ``affiliated_with``. Papers get balanced
    labels :math:`y`, Gaussian-mixture features
    :math:`\mathbf{x}_i = s\,\boldsymbol{\mu}_{y_i} + \boldsymbol{\varepsilon}_i`
    (:math:`\boldsymbol{\varepsilon}_i \sim \mathcal{N}(\mathbf{0}, \mathbf{I})`,
    unit-norm class means, :math:`s` = :obj:`feature_signal`) and a year in
    2010-2019 (time split: train before 2018, valid 2018, test 2019).

    Args:
        scale (float, optional): Size relative to ogbn-mag. (default: :obj:`1.0`)
        num_classes (int, optional): Number of venues. (default: :obj:`349`)
        num_features (int, optional): Paper feature dimension.
            (default: :obj:`128`)
        feature_signal (float, optional): Class-mean scale :math:`s`.
            (default: :obj:`1.0`)
        seed (int, optional): Random seed. (default: :obj:`0`)
        undirected (bool, optional): Add reverse relations
            (:class:`~torch_geometric.transforms.ToUndirected`).
            (default: :obj:`True`)
        num_nodes (Dict[str, int], optional): Override node counts.
        num_edges (Dict[Tuple[str, str, str], int], optional): Override edge
            counts.
    """
    if not float(scale) > 0:
        raise ConfigError(f"synthetic-mag: scale={scale} is invalid; use a value > 0 (1 = ogbn-mag's size)")
    if int(num_classes) < 2 or int(num_features) < 1:
        raise ConfigError(f"synthetic-mag: num_classes={num_classes}, num_features={num_features} are "
                          f"invalid; use num_classes >= 2 and num_features >= 1")
    sizes = {t: max(1, int(round(n * scale))) for t, n in MAG_NUM_NODES.items()}
    sizes.update({t: int(n) for t, n in (num_nodes or {}).items()})
    if sizes[TARGET] < 10:
        raise ConfigError(f"synthetic-mag: {sizes[TARGET]} papers are too few for a split; raise scale")
    edges = {et: int(round(m * scale)) for et, m in MAG_NUM_EDGES.items()}
    edges.update({tuple(et): int(m) for et, m in (num_edges or {}).items()})
    gen = torch.Generator().manual_seed(int(seed))
    data = HeteroData()
    n, c, d = sizes[TARGET], int(num_classes), int(num_features)
    y = (torch.arange(n) % c).index_select(0, torch.randperm(n, generator=gen))
    means = torch.randn(c, d, generator=gen)
    means /= means.norm(dim=1, keepdim=True)
    x = torch.randn(n, d, generator=gen).add_(means.index_select(0, y), alpha=float(feature_signal))
    year = torch.randint(2010, 2020, (n,), generator=gen)
    data[TARGET].x, data[TARGET].y, data[TARGET].year = x, y, year
    for t in ("author", "institution", "field_of_study"):
        data[t].num_nodes = sizes[t]
    skew = {"affiliated_with": "dst", "writes": "src", "cites": "dst", "has_topic": "dst"}
    for et, m in edges.items():
        s, rel, t = et
        data[et].edge_index = _relation(sizes[s], sizes[t], m, skew.get(rel, "dst"), gen,
                                        no_self_loops=s == t)
    split_idx = {"train": (year < 2018).nonzero().view(-1), "valid": (year == 2018).nonzero().view(-1),
                 "test": (year == 2019).nonzero().view(-1)}
    notes = [f"synthetic ogbn-mag-shaped graph, scale={scale} ({sum(sizes.values())} nodes, "
             f"{sum(e.size(1) for e in data.edge_index_dict.values())} edges), C={c} d={d} "
             f"feature_signal={feature_signal} seed={seed}",
             "time split on papers (train < 2018, valid 2018, test 2019)"]
    return _finish("synthetic-mag", data, split_idx, c, undirected, notes, accuracy)


def ogbn_mag(root: Union[str, Path], download: bool = False, undirected: bool = True) -> HeteroNodeTask:
    r"""Loads ogbn-mag through OGB's :class:`PygNodePropPredDataset` (read from
    :obj:`<root>/ogb/ogbn_mag`, staged to the cache if read-only, no prompts),
    with OGB's official time split on papers and
    :class:`ogb.nodeproppred.Evaluator` ``("ogbn-mag")``.

    OGB returns a :class:`~torch_geometric.data.Data` holding dicts
    (:obj:`x_dict`, :obj:`edge_index_dict`, :obj:`y_dict`, ...); it is turned
    into a :class:`~torch_geometric.data.HeteroData` graph of the shape
    described in :mod:`pyg_ham.datasets.hetero` (papers keep :obj:`year`,
    edges keep nothing else: ogbn-mag's :obj:`edge_reltype` is constant per
    relation).

    Args:
        root (str or Path): The data root.
        download (bool, optional): Allow OGB to download when the raw files
            are missing (never in tests). (default: :obj:`False`)
        undirected (bool, optional): Add reverse relations
            (:class:`~torch_geometric.transforms.ToUndirected`).
            (default: :obj:`True`)
    """
    from pyg_ham.datasets._compat import import_ogb
    from pyg_ham.datasets._locate import load_folder
    from pyg_ham.datasets.metrics import ogb_eval

    name = "ogbn-mag"
    root = Path(root)
    nodeprop = import_ogb("ogb.nodeproppred")
    folder = "ogbn_mag_pyg" if (root / "ogb" / "ogbn_mag_pyg").exists() else "ogbn_mag"
    ds = load_folder(name, root, "ogb", folder,
                     lambda r: nodeprop.PygNodePropPredDataset(name=name, root=r), download=download)
    raw_split = ds.get_idx_split()
    split_idx = {k: torch.as_tensor(v[TARGET]).view(-1).long() for k, v in raw_split.items()}
    g = ds[0]
    data = HeteroData()
    for t, num in g.num_nodes_dict.items():
        data[t].num_nodes = int(num)
    for t, x in g.x_dict.items():
        data[t].x = x
    for t, y in g.y_dict.items():
        data[t].y = y.view(-1).long()
    for t, year in (g.get("node_year") or {}).items():
        data[t].year = year.view(-1)
    for et, ei in g.edge_index_dict.items():
        data[tuple(et)].edge_index = ei
    evaluator = nodeprop.Evaluator(name)

    def eval_fn(pred: Tensor, y: Tensor) -> float:
        labels = pred.argmax(dim=-1) if pred.dim() == 2 else pred.view(-1)
        return ogb_eval(evaluator, "acc", y.view(-1, 1), labels.view(-1, 1))

    notes = ["official OGB time split on papers", "OGB Evaluator('ogbn-mag')"]
    return _finish(name, data, split_idx, int(ds.num_classes), undirected, notes, eval_fn)


# Registry builders (``builder(info, root, download, **options)``, see pyg_ham.datasets.builtin).
def mag_dataset(info: Any, root: Path, download: bool, undirected: bool = True) -> HeteroNodeTask:
    r"""``load_dataset("ogbn-mag", root, undirected=...)``: :func:`ogbn_mag`."""
    return ogbn_mag(root, download=download, undirected=undirected)


#: Default size of the registered ``synthetic-mag`` (1473 papers, 3879 nodes, 41k edges).
SYNTHETIC_MAG_SCALE = 0.002


def synthetic_mag_dataset(info: Any, root: Path, download: bool, scale: float = SYNTHETIC_MAG_SCALE,
                          num_classes: int = 8, num_features: int = MAG_NUM_FEATURES, feature_signal: float = 2.0,
                          seed: int = 0, undirected: bool = True) -> HeteroNodeTask:
    r"""``load_dataset("synthetic-mag", scale=..., ...)``: :func:`synthetic_mag`, by default small
    (:obj:`scale=0.002`) and learnable (8 classes, :obj:`feature_signal=2`); ``-o scale=1
    -o num_classes=349`` is ogbn-mag's size and label count."""
    return synthetic_mag(scale=scale, num_classes=num_classes, num_features=num_features,
                         feature_signal=feature_signal, seed=seed, undirected=undirected)
