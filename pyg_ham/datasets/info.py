r"""A dataset registry entry (:class:`DatasetInfo`) and the store that holds them.

:mod:`pyg_ham.datasets.registry` reads the store (after the built-in datasets, which import this
module, registered themselves); keeping the two apart keeps the registrations free of a cycle.
"""
from __future__ import annotations

import inspect
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Dict, Optional, Union

from pyg_ham.datasets._locate import dataset_dir
from pyg_ham.datasets.paths import has_files, staging_dir

__all__ = ["DatasetInfo", "add_dataset"]


@dataclass(frozen=True)
class DatasetInfo:
    r"""A registry entry.

    Attributes:
        name (str): Canonical name.
        task (str): The task kind that trains it: ``"node"``, ``"graph"``, or an adapter's
            (``"vision"``).
        metric (str): The evaluation metric (``"acc"``, ``"rocauc"``, ``"rmse"``, ...).
        builder (callable): ``builder(info, root, download, **options)`` returning the task.
        group (str): Loader folder under the data root (``""``: generated locally).
        folder (str): Dataset folder inside :obj:`group`.
        raw (str): Raw-file folder inside the dataset folder.
        family (str): The family (``"planetoid"``, ``"tu"``, ``"ogbg-mol"``, ...).
        recipe (str, optional): The name of the default recipe (:data:`~pyg_ham.datasets.recipes.RECIPES`).
        options_from (callable or dict, optional): The function whose keyword parameters with
            defaults are the dataset's options, or the options and their defaults.
            (default: :obj:`builder`)
    """

    name: str
    task: str
    metric: str
    builder: Callable[..., Any]
    group: str = ""
    folder: str = ""
    raw: str = "raw"
    family: str = ""
    recipe: Optional[str] = None
    options_from: Union[None, Callable[..., Any], Dict[str, Any]] = None

    def path(self, root: Path) -> Path:
        r"""The dataset folder under :obj:`root`; for OGB a ``<folder>_pyg`` copy when that exists."""
        where = dataset_dir(root, self.group, self.folder)
        if self.group == "ogb" and not where.exists() and where.with_name(where.name + "_pyg").exists():
            return where.with_name(where.name + "_pyg")
        return where

    def options(self) -> Dict[str, Any]:
        r"""The dataset's options and their defaults."""
        if isinstance(self.options_from, dict):
            return dict(self.options_from)
        fn = self.options_from or self.builder
        params = list(inspect.signature(fn).parameters.values())
        return {p.name: p.default for p in params
                if p.kind is p.KEYWORD_ONLY or (p.kind is p.POSITIONAL_OR_KEYWORD and p.default is not p.empty)}

    def present(self, root: Path) -> bool:
        r"""Whether the raw files are under :obj:`root` (or its staging cache); generated data always is."""
        if not self.group:
            return True
        return has_files(self.path(root) / self.raw) or has_files(self.path(staging_dir(root)) / self.raw)


_REGISTRY: Dict[str, DatasetInfo] = {}


def add_dataset(info: DatasetInfo) -> DatasetInfo:
    r"""Register :obj:`info` (a later entry of the same name replaces an earlier one)."""
    _REGISTRY[info.name.lower()] = info
    return info
