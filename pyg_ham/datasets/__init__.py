"""Dataset registry for node classification (``NodeTask``) and graph
classification / regression (``GraphTask``).

.. code-block:: python

    from pyg_ham.datasets import load_dataset, list_datasets

    task = load_dataset("Cora", root="../shared/data")   # NodeTask
    split = task.split(run=0)                            # train / valid / test indices
    acc = task.evaluate(logits, split["test"])

    task = load_dataset("MUTAG", root="../shared/data")  # GraphTask
    folds = task.folds(num_folds=10, seed=0)             # Errica et al. protocol

See :mod:`pyg_ham.datasets.node` and :mod:`pyg_ham.datasets.graph` for the split and
feature protocols of every dataset family.
"""
from pyg_ham.datasets._compat import import_ogb
from pyg_ham.datasets.paths import cache_root, data_root
from pyg_ham.datasets.recipes import RECIPES, get_recipe, register_recipe
from pyg_ham.datasets.registry import DatasetInfo, get_info, list_datasets, load_dataset, register_dataset
from pyg_ham.datasets.splits import stratified_folds
from pyg_ham.datasets.synthetic import csbm
from pyg_ham.datasets.tasks import GraphTask, NodeTask, describe

__all__ = [
    "load_dataset", "list_datasets", "data_root", "cache_root", "NodeTask", "GraphTask",
    "stratified_folds", "csbm", "describe", "get_info", "DatasetInfo", "import_ogb", "register_dataset",
    "RECIPES", "register_recipe", "get_recipe",
]
