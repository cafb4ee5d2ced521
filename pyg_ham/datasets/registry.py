"""The dataset registry: known names, :func:`load_dataset` and :func:`list_datasets`."""
from __future__ import annotations

import difflib
import inspect
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Union

from pyg_ham.datasets import graph, node
from pyg_ham.datasets._locate import dataset_dir
from pyg_ham.datasets.paths import PathLike, data_root, has_files, staging_dir
from pyg_ham.datasets.tasks import GraphTask, NodeTask
from pyg_ham.errors import ConfigError, DatasetError


@dataclass(frozen=True)
class DatasetInfo:
    r"""A registry entry.

    Attributes:
        name (str): Canonical name.
        task (str): ``"node"`` or ``"graph"``.
        metric (str): The evaluation metric.
        group (str): Loader folder under the data root (``""``: generated locally).
        folder (str): Dataset folder inside :obj:`group`.
        raw (str): Raw-file folder inside the dataset folder.
        builder (callable): ``builder(name, root, download, **options)``.
    """

    name: str
    task: str
    metric: str
    group: str
    folder: str
    builder: Callable[..., Union[NodeTask, GraphTask]]
    raw: str = "raw"

    def path(self, root: Path) -> Path:
        return dataset_dir(root, self.group, self.folder)

    def options(self) -> Dict[str, Any]:
        params = list(inspect.signature(self.builder).parameters.values())[3:]
        return {p.name: p.default for p in params}


def _entries() -> List[DatasetInfo]:
    out = [
        *(DatasetInfo(n, "node", "acc", "Planetoid", n, node.planetoid)
          for n in ("Cora", "CiteSeer", "PubMed")),
        *(DatasetInfo(n, "node", "acc", "WebKB", n.lower(), node.webkb)
          for n in ("Cornell", "Texas", "Wisconsin")),
        DatasetInfo("Actor", "node", "acc", "Actor", "", node.actor),
        *(DatasetInfo(n, "node", "rocauc" if n in node.HETEROPHILOUS_BINARY else "acc",
                      "HeterophilousGraphDataset", n.lower().replace("-", "_"), node.heterophilous)
          for n in ("Roman-empire", "Amazon-ratings", "Minesweeper", "Tolokers", "Questions")),
        *(DatasetInfo(n, "node", "rocauc" if n == "genius" else "acc", "LINKX", n, node.linkx)
          for n in node.LINKX_NAMES),
        *(DatasetInfo(n, "node", "acc", "Airports", n.lower(), node.airports)
          for n in ("USA", "Brazil", "Europe")),
        *(DatasetInfo(n, "node", m, "ogb", n.replace("-", "_"), node.ogbn)
          for n, m in (("ogbn-arxiv", "acc"), ("ogbn-products", "acc"),
                       ("ogbn-proteins", "rocauc"), ("ogbn-papers100M", "acc"))),
        DatasetInfo("synthetic", "node", "acc", "", "", node.synthetic),
        *(DatasetInfo(n, "graph", "acc", "TUDataset", n, graph.tu) for n in graph.TU_NAMES),
        *(DatasetInfo(n, "graph", graph.ogbg_meta()[n]["eval metric"], "ogb", n.replace("-", "_"),
                      graph.ogbg) for n in graph.ogbg_names()),
    ]
    return out


_REGISTRY: Dict[str, DatasetInfo] = {}


def registry() -> Dict[str, DatasetInfo]:
    r"""All known datasets, keyed by lower-case name."""
    if not _REGISTRY:
        _REGISTRY.update({e.name.lower(): e for e in _entries()})
    return _REGISTRY


def get_info(name: str) -> DatasetInfo:
    r"""The registry entry of :obj:`name` (case-insensitive); raises a
    :class:`DatasetError` listing the known names for unknown ones."""
    reg = registry()
    key = str(name).strip().lower()
    if key in reg:
        return reg[key]
    names = [e.name for e in reg.values()]
    close = difflib.get_close_matches(key, list(reg), n=3, cutoff=0.6)
    hint = f" (did you mean {', '.join(reg[c].name for c in close)}?)" if close else ""
    raise DatasetError(f"unknown dataset {name!r}{hint}; known datasets: {', '.join(names)} "
                       f"(images, through the vision adapter: digits, mnist, cifar10, cifar100)")


_TRUE, _FALSE = ("true", "1", "yes", "on"), ("false", "0", "no", "off")


def _coerce(name: str, key: str, value: Any, default: Any) -> Any:
    """Checks / converts an option value to the type of its default."""
    if isinstance(default, bool):
        if isinstance(value, str) and value.strip().lower() in _TRUE + _FALSE:
            return value.strip().lower() in _TRUE
        if not isinstance(value, bool):
            raise ConfigError(f"{name}: option {key}={value!r} is invalid; use true or false")
        return value
    if isinstance(default, int):
        try:
            number = float(value)
        except (TypeError, ValueError):
            number = float("nan")
        if isinstance(value, bool) or not number.is_integer():
            raise ConfigError(f"{name}: option {key}={value!r} is invalid; use an integer")
        return int(number)
    if isinstance(default, float):
        try:
            return float(value)
        except (TypeError, ValueError):
            raise ConfigError(f"{name}: option {key}={value!r} is invalid; use a number") from None
    if isinstance(default, str) and not isinstance(value, str):
        raise ConfigError(f"{name}: option {key}={value!r} is invalid; use a string")
    return value


def load_dataset(name: str, root: Optional[PathLike] = None, download: bool = True,
                 **options: Any) -> Union[NodeTask, GraphTask]:
    r"""Loads a dataset by name and returns its task object.

    Node datasets return a :class:`NodeTask`, graph datasets a :class:`GraphTask`.
    Data is looked for under :func:`data_root` (``root``, ``$PYG_HAM_DATA`` or
    ``~/.cache/pyg_ham/data``) in the layout of ``shared/data``
    (``Planetoid/Cora/raw``, ``ogb/ogbn_arxiv/raw``, ...); read-only roots are staged
    into :func:`~pyg_ham.datasets.paths.cache_root`.

    Args:
        name (str): Dataset name, case-insensitive (see :func:`list_datasets`).
        root (str or Path, optional): Data root. (default: :obj:`None`)
        download (bool, optional): Whether missing data may be downloaded (also
            disabled by ``PYG_HAM_OFFLINE=1``). (default: :obj:`True`)
        **options: Dataset options (e.g. ``split="geom-gcn"`` for Planetoid,
            ``homophily=0.2`` for ``synthetic``); :obj:`None` values mean "default".
            Unknown options raise a :class:`ConfigError` listing the valid ones.
    """
    info = get_info(name)
    allowed = info.options()
    given = {k: v for k, v in options.items() if v is not None}
    unknown = sorted(set(given) - set(allowed))
    if unknown:
        valid = ", ".join(f"{k}={v!r}" for k, v in allowed.items()) or "none"
        raise ConfigError(f"{info.name}: unknown option(s) {', '.join(unknown)}; valid options: {valid}")
    given = {k: _coerce(info.name, k, v, allowed[k]) for k, v in given.items()}
    return info.builder(info.name, data_root(root), bool(download), **given)


def list_datasets(root: Optional[PathLike] = None) -> List[Dict[str, Any]]:
    r"""All known datasets with their availability under a data root.

    Returns:
        One dict per dataset: ``name``, ``task`` (``"node"`` / ``"graph"``),
        ``metric``, ``present`` (raw files found under the root, or in the staging
        cache of a read-only root; always :obj:`True` for generated datasets) and
        ``path`` (the dataset folder under the root; ``""`` for generated ones).
    """
    base = data_root(root)
    rows = []
    for info in registry().values():
        if not info.group:
            rows.append({"name": info.name, "task": info.task, "metric": info.metric,
                         "present": True, "path": ""})
            continue
        where = info.path(base)
        present = has_files(where / info.raw) or has_files(info.path(staging_dir(base)) / info.raw)
        if info.group == "ogb" and not present:
            alt = where.with_name(where.name + "_pyg")
            present = has_files(alt / info.raw)
        rows.append({"name": info.name, "task": info.task, "metric": info.metric,
                     "present": bool(present), "path": str(where)})
    return rows
