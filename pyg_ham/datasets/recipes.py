r"""Default recipes: the settings a dataset family trains with when no ``--config`` is given.

``pyg-ham train -d Cora`` starts from the recipe registered for Cora's family (Planetoid:
Kipf & Welling's GCN), then applies a ``--config`` file's settings, then the flags. Each
recipe mirrors a file in ``configs/`` (checked by the tests), so the recipe and the file a
user can copy say the same thing.
"""
from __future__ import annotations

from typing import Any, Dict

from pyg_ham.errors import ConfigError
from pyg_ham.optim.ham import HAM_DEFAULTS

__all__ = ["RECIPES", "register_recipe", "get_recipe"]

_HAM = {"ham": True, "alpha": HAM_DEFAULTS["ham_alpha"], "beta": HAM_DEFAULTS["ham_beta"]}

#: Recipe name -> ``{"description", "settings"}`` (settings are ExperimentConfig fields).
RECIPES: Dict[str, Dict[str, Any]] = {
    "planetoid-gcn": {
        "description": "Kipf & Welling's GCN (configs/planetoid-gcn.yaml)",
        "settings": {"model": "gcn", "hidden": 16, "layers": 2, "dropout": 0.5, "norm": None, "optimizer": "adam",
                     "lr": 0.01, "weight_decay": 0.0005, "epochs": 200, "runs": 10, **_HAM}},
    "heterophilous-sage": {
        "description": "GraphSAGE, 2 x 64, Adam 0.01, 200 epochs, 10 splits (as in results/)",
        "settings": {"model": "sage", "hidden": 64, "layers": 2, "dropout": 0.5, "norm": None, "optimizer": "adam",
                     "lr": 0.01, "epochs": 200, "runs": 10, **_HAM}},
    "webkb-sage": {
        "description": "GraphSAGE, 2 x 64, Adam 0.01, 200 epochs, the 10 geom-gcn splits, HAM alpha 20 "
                       "(configs/webkb-sage.yaml)",
        "settings": {"model": "sage", "hidden": 64, "layers": 2, "dropout": 0.5, "norm": None, "optimizer": "adam",
                     "lr": 0.01, "epochs": 200, "runs": 10, **_HAM, "alpha": 20.0}},  # at 200 the tiny graphs spike
    "tu-gin": {
        "description": "GIN of Errica et al.'s protocol (configs/tu-gin.yaml)",
        "settings": {"model": "gin", "hidden": 64, "layers": 3, "dropout": 0.5, "norm": "batch_norm", "pool": "sum",
                     "optimizer": "adam", "lr": 0.01, "batch_size": 32, "epochs": 100, "folds": 10, "protocol": "cv",
                     **_HAM, "alpha": 20.0}},  # at 200 (eta*alpha = 2) the sum-pooled GIN spikes
    "ogbg-mol-gin": {
        "description": "OGB's molecule GIN (configs/ogbg-molhiv-gin.yaml)",
        "settings": {"model": "gin", "hidden": 300, "layers": 5, "dropout": 0.5, "norm": "batch_norm", "pool": "mean",
                     "virtual_node": False, "optimizer": "adam", "lr": 0.001, "batch_size": 32, "epochs": 100,
                     "runs": 10, **_HAM}},
    "ogbg-mol-gin-regression": {
        "description": "OGB's molecule GIN for the regression sets, HAM alpha 20 "
                       "(configs/ogbg-mol-regression-gin.yaml)",
        "settings": {"model": "gin", "hidden": 300, "layers": 5, "dropout": 0.5, "norm": "batch_norm", "pool": "mean",
                     "virtual_node": False, "optimizer": "adam", "lr": 0.001, "batch_size": 32, "epochs": 100,
                     "runs": 10, **_HAM, "alpha": 20.0}},  # MSE gradients on raw targets: at 200 the loss explodes
    "linkx-sage": {
        "description": "GraphSAGE, 2 x 64, Adam 0.01, 200 epochs, LINKX's 5 splits (configs/linkx-sage.yaml)",
        "settings": {"model": "sage", "hidden": 64, "layers": 2, "dropout": 0.5, "norm": None, "optimizer": "adam",
                     "lr": 0.01, "epochs": 200, "runs": 5, **_HAM}},
    "airports-sage": {
        "description": "GraphSAGE, 2 x 64, Adam 0.01, 200 epochs, 10 random 60/20/20 splits "
                       "(configs/airports-sage.yaml)",
        "settings": {"model": "sage", "hidden": 64, "layers": 2, "dropout": 0.5, "norm": None, "optimizer": "adam",
                     "lr": 0.01, "epochs": 200, "runs": 10, **_HAM}},
    "ogbn-arxiv-sage": {
        "description": "OGB's full-batch GraphSAGE (configs/ogbn-arxiv-sage.yaml)",
        "settings": {"model": "sage", "hidden": 256, "layers": 3, "dropout": 0.5, "norm": "batch_norm",
                     "optimizer": "adam", "lr": 0.01, "epochs": 500, "runs": 10, **_HAM}},
    "ogbn-products-sage": {
        "description": "OGB's mini-batch GraphSAGE (configs/ogbn-products-sage.yaml)",
        "settings": {"model": "sage", "hidden": 256, "layers": 3, "dropout": 0.5, "norm": None, "optimizer": "adam",
                     "lr": 0.003, "batch_size": 1024, "fanout": [15, 10, 5], "eval_mode": "layerwise", "epochs": 20,
                     "runs": 10, **_HAM}},
    "ogbn-papers100m-sage": {
        "description": "mini-batch GraphSAGE on ogbn-papers100M from its on-disk layout: 2 x 256, fanout 30,30, "
                       "1024 seeds per batch, Adam 0.01 with weight decay 5e-4 as PyG's "
                       "examples/multi_gpu/papers100m_gcn.py, sampled evaluation (configs/ogbn-papers100m-sage.yaml)",
        "settings": {"model": "sage", "hidden": 256, "layers": 2, "dropout": 0.5, "norm": None, "optimizer": "adam",
                     "lr": 0.01, "weight_decay": 0.0005, "batch_size": 1024, "fanout": [30, 30],
                     "eval_mode": "sampled", "eval_train": False, "epochs": 20, "runs": 10, **_HAM}},
    "ogbn-mag-sage": {
        "description": "mini-batch heterogeneous GraphSAGE via to_hetero, fanout 25,20 (configs/ogbn-mag-sage.yaml; "
                       "HAM settings untested on the real ogbn-mag)",
        "settings": {"model": "sage", "hidden": 64, "layers": 2, "dropout": 0.5, "norm": None, "optimizer": "adam",
                     "lr": 0.01, "batch_size": 1024, "fanout": [25, 20], "epochs": 10, "runs": 1, **_HAM}},
}


def register_recipe(name: str, settings: Dict[str, Any], description: str = "") -> None:
    r"""Register (or replace) a recipe: ExperimentConfig settings under :obj:`name`."""
    from pyg_ham.config import ExperimentConfig

    ExperimentConfig.from_dict(dict(settings), source=f"recipe {name!r}")  # validates the keys
    RECIPES[name] = {"description": description, "settings": dict(settings)}


def get_recipe(name: str) -> Dict[str, Any]:
    r"""The recipe :obj:`name` (``{"description", "settings"}``)."""
    if name not in RECIPES:
        raise ConfigError(f"unknown recipe {name!r}; known recipes: {', '.join(sorted(RECIPES))}")
    return RECIPES[name]
