r"""Node tasks served from an on-disk layout (:mod:`pyg_ham.datasets.ondisk`).

* :func:`layout_folder`: where a dataset's layout lives (beside its raw files,
  or in the staging cache for a read-only data root; generated datasets in
  the cache).
* :func:`layout_task`: a :class:`~pyg_ham.datasets.NodeTask` over an opened
  layout (:attr:`~pyg_ham.datasets.NodeTask.stores` set, :obj:`data` holding
  the memory-mapped labels only).
* :func:`to_on_disk`: any loaded node task written into its layout (once) and
  served from it (``pyg-ham train --on-disk``).
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Dict

import numpy as np
from torch_geometric.data import Data

from pyg_ham.datasets.ondisk import LayoutWriter, OnDiskLayout, ensure_layout, fingerprint
from pyg_ham.datasets.paths import cache_root, is_writable, staging_dir
from pyg_ham.datasets.splits import Split
from pyg_ham.datasets.tasks import NodeTask
from pyg_ham.errors import ConfigError

if TYPE_CHECKING:
    from pyg_ham.datasets.info import DatasetInfo

__all__ = ["layout_folder", "layout_task", "to_on_disk"]

#: Rows written at once when a layout is written from memory.
CHUNK_ROWS = 1 << 16


def layout_folder(info: "DatasetInfo", root: Path, options: Dict[str, Any]) -> Path:
    r"""The layout folder of dataset :obj:`info` with :obj:`options` under the data root
    :obj:`root`: ``<dataset folder>/ondisk-<hash of the options>``, in the staging cache
    when the dataset folder is read-only, ``<cache>/ondisk/<name>-<hash>`` for generated data."""
    tag = hashlib.sha1(json.dumps(options, sort_keys=True, default=str).encode()).hexdigest()[:10]
    if not info.group:
        return cache_root() / "ondisk" / f"{info.name}-{tag}"
    where = info.path(root)
    if not is_writable(where):
        where = info.path(staging_dir(root))
    return where / f"ondisk-{tag}"


def layout_task(layout: OnDiskLayout, base: NodeTask) -> NodeTask:
    r""":obj:`base` (name, metric, splits, evaluator, ...) with its graph served from
    :obj:`layout`: :attr:`~NodeTask.stores` the layout's pair, :obj:`data` its labels."""
    data = Data(y=layout.array("y"), num_nodes=layout.num_nodes)
    return dataclasses.replace(base, data=data, stores=layout.stores(),
                               num_features=int(layout.array("x").size(1)))


def layout_split(layout: OnDiskLayout) -> Callable[[int], Split]:
    r"""The one split stored in :obj:`layout` (arrays ``split_train``, ``split_valid``,
    ``split_test``), copied into memory for every run."""
    def split(run: int) -> Split:
        return {k: layout.array(f"split_{k}").clone() for k in ("train", "valid", "test")}
    return split


def _write_from_memory(data: Data, writer: LayoutWriter) -> None:
    n = int(data.num_nodes)
    edge_index = data.edge_index.cpu().numpy()
    x, y = data.x.cpu(), data.y.cpu()
    writer.csc(n, lambda: ((edge_index[0, i:i + CHUNK_ROWS * 16], edge_index[1, i:i + CHUNK_ROWS * 16])
                           for i in range(0, edge_index.shape[1], CHUNK_ROWS * 16)))
    writer.rows("x", n, tuple(x.shape[1:]), np.float32, (x[i:i + CHUNK_ROWS].numpy()
                                                          for i in range(0, n, CHUNK_ROWS)))
    writer.rows("y", n, tuple(y.shape[1:]), y.numpy().dtype, [y.numpy()])


def to_on_disk(task: NodeTask, info: "DatasetInfo", root: Path, options: Dict[str, Any]) -> NodeTask:
    r"""The node task :obj:`task` served from its on-disk layout, written from the loaded
    graph the first time (its edges as they are, its features as :obj:`float32`); the
    splits and the evaluator stay the task's own.

    Args:
        task (NodeTask): The loaded task.
        info (DatasetInfo): Its registry entry.
        root (Path): The data root.
        options (dict): The dataset options it was loaded with (part of the layout's key).
    """
    if task.stores is not None:
        return task
    data = task.data
    if getattr(data, "x", None) is None or getattr(data, "edge_index", None) is None:
        raise ConfigError(f"{task.name}: an on-disk layout needs node features x and an edge_index")
    folder = layout_folder(info, root, options)
    raw = info.path(root) / info.raw if info.group else None
    files = sorted(p for p in raw.rglob("*") if p.is_file()) if raw is not None and raw.is_dir() else []
    source = {"dataset": info.name, "options": options, "files": fingerprint(files),
              "graph": [int(data.num_nodes), int(data.edge_index.size(1)), list(data.x.shape)]}
    ensure_layout(folder, json.loads(json.dumps(source, default=str)), lambda w: _write_from_memory(data, w))
    out = layout_task(OnDiskLayout(folder), task)
    out.description = f"{task.description}; served from the on-disk layout {folder}"
    return out
