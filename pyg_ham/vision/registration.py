r"""Registers the vision adapter with the core: its image datasets (task kind ``"vision"``),
their default recipe (:data:`~pyg_ham.vision.trainer.VISION_DEFAULTS`) and the trainer of the
kind (:class:`~pyg_ham.vision.trainer.ImageClassificationTask`, registered on import).

The core finds this module through the ``pyg_ham.adapters`` entry point (``setup.py``); it
imports no adapter itself.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from pyg_ham.datasets import register_recipe
from pyg_ham.datasets.info import DatasetInfo, add_dataset
from pyg_ham.vision.data import _OPTIONS, TORCHVISION_DATASETS, VISION_DATASETS, load_vision_task
from pyg_ham.vision.trainer import VISION_DEFAULTS

VISION_RECIPE = "vision-cnn"


def _build(info: DatasetInfo, root: Path, download: bool, **options: Any) -> Any:
    return load_vision_task(info.name, root, **options)


register_recipe(VISION_RECIPE, {k: v for k, v in VISION_DEFAULTS.items() if k != "dataset"},
                "the vision adapter's CNN defaults (VISION_DEFAULTS)")
for _name in VISION_DATASETS:
    _folder = TORCHVISION_DATASETS.get(_name, {}).get("folder", "")
    add_dataset(DatasetInfo(_name, "vision", "acc", _build, group=_folder, raw="", family="vision",
                            recipe=VISION_RECIPE, options_from=_OPTIONS[_name]))
