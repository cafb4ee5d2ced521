r"""The dataset registry: every dataset registered once, with everything known about it.

An entry (:class:`DatasetInfo`) holds a dataset's name, task kind, metric, where its files
live under a data root, its family and the family's default **recipe** (the settings
``pyg-ham train -d NAME`` starts from, see :mod:`pyg_ham.datasets.recipes`), and the function
that loads it. :func:`load_dataset` and :func:`list_datasets` read nothing else.

Datasets of your own join with :func:`register_dataset`:

.. code-block:: python

    from pyg_ham.datasets import register_dataset

    @register_dataset("my-graph", task="node", metric="acc")
    def my_graph(root, **options):   # node: a Data with y and train/val/test masks
        ...                          # graph: (dataset, {"train", "valid", "test"} index tensors)
                                     #        or a dataset alone (stratified folds)

after which ``run_experiment(ExperimentConfig(dataset="my-graph", ...))``, ``compare`` and
``sweep`` work on it.
"""
from __future__ import annotations

import difflib
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Tuple

from pyg_ham.config import set_recipe_lookup
from pyg_ham.datasets.info import _REGISTRY, DatasetInfo, add_dataset
from pyg_ham.datasets.paths import PathLike, data_root
from pyg_ham.errors import ConfigError, DatasetError
from pyg_ham.validation import coerce_option

__all__ = ["DatasetInfo", "register_dataset", "add_dataset", "registry", "get_info", "load_dataset",
           "list_datasets", "recipe_of"]




def register_dataset(name: str, *, task: str, metric: str = "acc", family: str = "custom",
                     recipe: Optional[str] = None, description: str = "") -> Callable[[Callable], Callable]:
    r"""Register a dataset of your own under :obj:`name` (a decorator).

    The function is called as ``fn(root, **options)`` with the data root and the dataset
    options (``-o key=value`` on the command line; its keyword parameters with defaults) and
    returns, for ``task="node"``, a :class:`~torch_geometric.data.Data` with ``x``, ``y``,
    ``edge_index`` and boolean ``train_mask``/``val_mask``/``test_mask`` (``[N]``, or ``[N, S]``
    for :math:`S` fixed splits); for ``task="graph"``, ``(dataset, {"train", "valid", "test"})``
    with graph index tensors (an official split), or the dataset alone (stratified folds);
    a :class:`~pyg_ham.datasets.NodeTask` or :class:`~pyg_ham.datasets.GraphTask` is used as is.

    Args:
        name (str): The dataset's name (case-insensitive when looked up).
        task (str): ``"node"`` or ``"graph"``.
        metric (str): ``"acc"``, ``"rocauc"`` (binary), ``"rmse"`` or ``"mae"`` (graph
            regression). (default: :obj:`"acc"`)
        family (str): A family name for listings. (default: :obj:`"custom"`)
        recipe (str, optional): A registered recipe to start from (e.g. ``"planetoid-gcn"``).
        description (str): How the data and splits were made (kept in the result JSON).
    """
    from pyg_ham.datasets import custom

    if task not in ("node", "graph"):
        raise ConfigError(f"register_dataset({name!r}): task must be 'node' or 'graph', got {task!r}")
    custom.check_metric(name, task, metric)
    if recipe is not None:
        from pyg_ham.datasets.recipes import get_recipe

        get_recipe(recipe)

    def decorator(fn: Callable) -> Callable:
        def build(info: DatasetInfo, root: Path, download: bool, **options: Any) -> Any:
            return custom.to_task(info, fn(root, **options), description)

        add_dataset(DatasetInfo(name, task, metric, build, family=family, recipe=recipe, options_from=fn))
        return fn

    return decorator


_ADAPTERS_LOADED = False


def _load_adapters() -> None:
    """Import the modules of the ``pyg_ham.adapters`` entry points (adapters register their datasets)."""
    global _ADAPTERS_LOADED
    if _ADAPTERS_LOADED:
        return
    _ADAPTERS_LOADED = True
    from importlib.metadata import entry_points

    for entry in entry_points(group="pyg_ham.adapters"):
        try:
            entry.load()
        except ImportError:  # an adapter whose optional dependencies are missing
            continue


def registry() -> Dict[str, DatasetInfo]:
    r"""All known datasets, keyed by lower-case name: the built-in ones and those of the installed
    adapters (``pyg_ham.adapters`` entry points), registered on first use."""
    from pyg_ham.datasets import builtin  # noqa: F401 - registers the built-in datasets

    _load_adapters()
    return _REGISTRY


def get_info(name: str) -> DatasetInfo:
    r"""The registry entry of :obj:`name` (case-insensitive); raises a
    :class:`DatasetError` listing the known names for unknown ones."""
    reg = registry()
    key = str(name).strip().lower()
    if key in reg:
        return reg[key]
    close = difflib.get_close_matches(key, list(reg), n=3, cutoff=0.6)
    hint = f" (did you mean {', '.join(reg[c].name for c in close)}?)" if close else ""
    raise DatasetError(f"unknown dataset {name!r}{hint}; known datasets: {', '.join(e.name for e in reg.values())}")


def load_dataset(name: str, root: Optional[PathLike] = None, download: bool = True, *, on_disk: bool = False,
                 **options: Any) -> Any:
    r"""Loads a dataset by name and returns its task object.

    Node datasets return a :class:`NodeTask`, graph datasets a :class:`GraphTask` (adapters
    their own, e.g. the vision adapter's ``VisionTask``). Data is looked for under
    :func:`data_root` (``root``, ``$PYG_HAM_DATA`` or ``~/.cache/pyg_ham/data``) in the layout
    of ``shared/data`` (``Planetoid/Cora/raw``, ``ogb/ogbn_arxiv/raw``, ...); read-only roots
    are staged into :func:`~pyg_ham.datasets.paths.cache_root`.

    Args:
        name (str): Dataset name, case-insensitive (see :func:`list_datasets`).
        root (str or Path, optional): Data root. (default: :obj:`None`)
        download (bool, optional): Whether missing data may be downloaded (also
            disabled by ``PYG_HAM_OFFLINE=1``). (default: :obj:`True`)
        on_disk (bool, optional): Node datasets: serve the graph from its on-disk layout
            (memory-mapped CSC and features, written once; see
            :mod:`pyg_ham.datasets.ondisk`); ogbn-papers100M always is. (default: :obj:`False`)
        **options: Dataset options (e.g. ``split="geom-gcn"`` for Planetoid,
            ``homophily=0.2`` for ``synthetic``); :obj:`None` values mean "default".
            Unknown options raise a :class:`ConfigError` listing the valid ones.
    """
    info = get_info(name)
    if on_disk and info.task != "node":
        raise ConfigError(f"{info.name}: on_disk is for node datasets; {info.name} is a {info.task} dataset")
    allowed = info.options()
    given = {k: v for k, v in options.items() if v is not None}
    unknown = sorted(set(given) - set(allowed))
    if unknown:
        valid = ", ".join(f"{k}={v!r}" for k, v in allowed.items()) or "none"
        raise ConfigError(f"{info.name}: unknown option(s) {', '.join(unknown)}; valid options: {valid}")
    given = {k: coerce_option(info.name, k, v, allowed[k]) for k, v in given.items()}
    task = info.builder(info, data_root(root), bool(download), **given)
    if on_disk:
        from pyg_ham.datasets.ondisk_task import to_on_disk

        task = to_on_disk(task, info, data_root(root), given)
    return task


def list_datasets(root: Optional[PathLike] = None) -> List[Dict[str, Any]]:
    r"""All known datasets with their availability under a data root.

    Returns:
        One dict per dataset: ``name``, ``task`` (``"node"``, ``"graph"``, ``"vision"``),
        ``metric``, ``family``, ``recipe``, ``present`` (raw files found under the root, or in
        the staging cache of a read-only root; always :obj:`True` for generated datasets) and
        ``path`` (the dataset folder under the root; ``""`` for generated ones).
    """
    base = data_root(root)
    return [{"name": info.name, "task": info.task, "metric": info.metric, "family": info.family,
             "recipe": info.recipe, "present": bool(info.present(base)),
             "path": str(info.path(base)) if info.group else ""}
            for info in registry().values()]


def recipe_of(dataset: str) -> Optional[Tuple[str, Dict[str, Any]]]:
    r"""The name and settings of :obj:`dataset`'s default recipe, ``None`` if it has none (what
    :meth:`~pyg_ham.config.ExperimentConfig.from_recipe` starts from)."""
    from pyg_ham.datasets.recipes import get_recipe

    recipe = get_info(dataset).recipe
    return None if recipe is None else (recipe, get_recipe(recipe)["settings"])


set_recipe_lookup(recipe_of)
