r"""ogbn-papers100M from OGB's raw binary files, through the on-disk layout.

OGB ships ogbn-papers100M (111M nodes, 1.6B edges, 128-dim features) as
``raw/data.npz`` (``edge_index`` :obj:`[2, E]`, ``node_feat`` :obj:`[N, F]`,
``node_year``, ``num_nodes_list``, ``num_edges_list``), ``raw/node-label.npz``
(``node_label`` :obj:`[N, 1]`, NaN for the 98.6% unlabelled nodes) and the time
split ``split/time/{train,valid,test}.csv.gz``. OGB's in-memory loader needs
all of it in memory (its ``edge_index`` alone is 25.6 GB as int64); here the
arrays are streamed once into the dataset's on-disk layout
(:mod:`pyg_ham.datasets.ondisk`: memory-mapped CSC, features and labels, the
split) and every later load maps it. Protocol: OGB's time split and
``Evaluator("ogbn-papers100M")`` (accuracy); unlabelled nodes have label
:obj:`-1`; the graph is made undirected (:obj:`undirected=True`, as OGB
leaderboard entries and PyG's :func:`~torch_geometric.utils.to_undirected`
treat the citation graph) unless :obj:`undirected=False`.
"""
from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Iterator

import numpy as np

from pyg_ham.datasets._compat import import_ogb
from pyg_ham.datasets.metrics import HIGHER_IS_BETTER
from pyg_ham.datasets.node import ogbn_eval_fn
from pyg_ham.datasets.npz_stream import NpzReader
from pyg_ham.datasets.ondisk import LayoutWriter, OnDiskLayout, ensure_layout, fingerprint
from pyg_ham.datasets.ondisk_task import layout_folder, layout_split, layout_task
from pyg_ham.datasets.tasks import NodeTask
from pyg_ham.errors import DatasetError

if TYPE_CHECKING:
    import pandas as pd

    from pyg_ham.datasets.info import DatasetInfo

__all__ = ["ogbn_from_raw", "SPLITS"]

SPLITS = ("train", "valid", "test")
#: Edges per chunk and feature rows per chunk while streaming.
EDGE_CHUNK = 1 << 22
ROW_CHUNK = 1 << 16


def _files(where: Path) -> list:
    return ([where / "raw" / "data.npz", where / "raw" / "node-label.npz"]
            + [where / "split" / "time" / f"{k}.csv.gz" for k in SPLITS])


def _num_nodes(npz: NpzReader, where: Path) -> int:
    counts = npz.member("num_nodes_list").read().reshape(-1)
    if counts.size != 1:
        raise DatasetError(f"{where} holds {counts.size} graphs; a node dataset has one")
    return int(counts[0])


def _labels(member_rows: Iterator[np.ndarray]) -> Iterator[np.ndarray]:
    for block in member_rows:
        block = block.reshape(block.shape[0], -1)[:, 0].astype(np.float64)
        yield np.where(np.isnan(block), -1, block).astype(np.int64)


def _read_split(path: Path, num_nodes: int) -> np.ndarray:
    import pandas as pd

    idx = pd.read_csv(path, compression="gzip", header=None).values.T[0].astype(np.int64)
    if idx.size and (idx.min() < 0 or idx.max() >= num_nodes):
        raise DatasetError(f"{path} holds node {int(idx.max())} but the graph has {num_nodes} nodes")
    return idx


def _build(where: Path, undirected: bool, writer: LayoutWriter) -> None:
    with NpzReader(where / "raw" / "data.npz") as npz:
        n = _num_nodes(npz, where)
        edges = npz.member("edge_index")
        writer.csc(n, lambda: edges.iter_columns(EDGE_CHUNK), undirected=undirected)
        feat = npz.member("node_feat")
        if feat.shape[0] != n or len(feat.shape) != 2:
            raise DatasetError(f"{where / 'raw' / 'data.npz'}: node_feat has shape {feat.shape}, expected [{n}, F]")
        writer.rows("x", n, feat.shape[1:], np.float32, feat.iter_rows(ROW_CHUNK))
    with NpzReader(where / "raw" / "node-label.npz") as npz:
        label = npz.member("node_label")
        if label.shape[0] != n:
            raise DatasetError(f"{where / 'raw' / 'node-label.npz'}: {label.shape[0]} labels for {n} nodes")
        writer.rows("y", n, (), np.int64, _labels(label.iter_rows(ROW_CHUNK)))
    for k in SPLITS:
        writer.array(f"split_{k}", _read_split(where / "split" / "time" / f"{k}.csv.gz", n))


def _ogb_master() -> "pd.DataFrame":
    # OGB's table of node datasets (classes, metric), as its dataset classes read it.
    import os

    import pandas as pd

    folder = os.path.dirname(import_ogb("ogb.nodeproppred").__file__)
    return pd.read_csv(os.path.join(folder, "master.csv"), index_col=0, keep_default_na=False)


def ogbn_from_raw(info: "DatasetInfo", root: Path, download: bool, undirected: bool = True) -> NodeTask:
    r"""The node task of an OGB dataset stored in OGB's raw binary layout
    (ogbn-papers100M), served from its on-disk layout (built on first use)."""
    where = info.path(root)
    files = _files(where)
    missing = [str(p.relative_to(where)) for p in files if not p.is_file()]
    if missing:
        raise DatasetError(f"{info.name}: no {', '.join(missing)} under {where}; put OGB's release "
                           f"(its raw/ and split/ folders) there or pass --root pointing to a data root that has it")
    options = {"undirected": bool(undirected)}
    folder = layout_folder(info, root, options)
    ensure_layout(folder, {"files": fingerprint(files), "options": options},
                  lambda w: _build(where, bool(undirected), w))
    layout = OnDiskLayout(folder)
    master = _ogb_master()
    if info.name not in master:
        raise DatasetError(f"{info.name} is not in OGB's table of node datasets")
    metric = str(master[info.name]["eval metric"])
    notes = ["OGB's time split and Evaluator", "unlabelled nodes have y = -1",
             "edges made undirected (to_undirected)" if undirected else "edges as OGB gives them (directed)",
             f"served from the on-disk layout {folder}"]
    base = NodeTask(name=info.name, data=None, num_features=0,  # type: ignore[arg-type]  # set by layout_task
                    num_classes=int(master[info.name]["num classes"]), metric=metric,
                    higher_is_better=HIGHER_IS_BETTER[metric], num_splits=1, description="; ".join(notes),
                    split_fn=layout_split(layout), eval_fn=ogbn_eval_fn(info.name, metric))
    return layout_task(layout, base)
