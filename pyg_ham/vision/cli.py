"""``pyg-ham vision``: the ``train`` command with image-classification defaults."""
from __future__ import annotations

from typing import Any, Optional

import click

from pyg_ham.errors import ConfigError
from pyg_ham.train.cli import config_file_keys, config_from_cli, experiment_options, run_and_report

__all__ = ["vision"]

#: Flags of the shared option set that only graph models read.
GRAPH_ONLY_FLAGS = ("heads", "pool", "jk", "fanout", "virtual_node", "eval_mode", "protocol", "folds", "repeats",
                    "ham_embeddings", "eval_fanout", "on_disk")


@click.command()
@experiment_options
@click.option("--out", type=click.Path(dir_okay=False), help="Write the result JSON here (after every run).")
@click.option("--checkpoint-dir", type=click.Path(file_okay=False), help="Per-epoch checkpoints (default: OUT.ckpt/).")
@click.option("--resume", is_flag=True, default=None, help="Skip finished runs and continue an interrupted one.")
@click.option("--overwrite", is_flag=True, default=None, help="Replace the finished runs already in --out.")
def vision(config_path: Optional[str], **flags: Any) -> None:
    """Train an image classifier with (or without) HAM; report test accuracy at best validation.

    Defaults: --dataset digits --model cnn --optimizer adam --lr 1e-3 --epochs 30
    --batch-size 64 --hidden 32 --dropout 0 (flags and --config override them).
    Datasets: digits (offline), mnist, cifar10, cifar100 (torchvision). Models: cnn, mlp,
    torchvision models such as resnet18. --layers: conv blocks (cnn) or hidden layers (mlp).

    \b
    Examples:
      pyg-ham vision                                  # digits CNN, HAM on
      pyg-ham vision --no-ham --runs 5 --out base.json
      pyg-ham vision -d cifar10 -m resnet18 --root data --epochs 100 --scheduler cosine
    """
    from pyg_ham.vision.data import VISION_DATASETS, is_vision_dataset

    graph_only = [f"--{k.replace('_', '-')}" for k in GRAPH_ONLY_FLAGS if flags.get(k) is not None]
    if graph_only:
        raise ConfigError(f"{', '.join(graph_only)} only apply to graph models and have no effect on image "
                          f"classifiers; drop them (or use 'pyg-ham train' on a graph dataset)")

    if flags.get("dataset") is None and "dataset" not in config_file_keys(config_path):
        flags["dataset"] = "digits"  # config_from_cli fills the other vision defaults
    cfg = config_from_cli(config_path, **flags)
    if not is_vision_dataset(cfg.dataset):
        raise ConfigError(f"'pyg-ham vision' trains image classifiers; {cfg.dataset!r} is not one "
                          f"(choose {', '.join(VISION_DATASETS)}); use 'pyg-ham train' for graph datasets")
    run_and_report(cfg)


def _vision_help() -> None:
    """The shared flags' help says what ``vision``'s defaults are (digits, cnn, lr 1e-3...)."""
    from pyg_ham.vision.trainer import VISION_DEFAULTS

    texts = {"dataset": f"Image dataset: digits (offline), mnist, cifar10, cifar100; default: "
                        f"{VISION_DEFAULTS['dataset']}.",
             "model": f"cnn, mlp or a torchvision model such as resnet18; default: {VISION_DEFAULTS['model']}.",
             "lr": f"Learning rate (default {VISION_DEFAULTS['lr']:g}).",
             "epochs": f"Training epochs (default {VISION_DEFAULTS['epochs']}).",
             "hidden": f"Hidden channels (default {VISION_DEFAULTS['hidden']}).",
             "layers": "Conv blocks (cnn) or hidden layers (mlp)."}
    for param in vision.params:
        if param.name in texts and isinstance(param, click.Option):
            param.help = texts[param.name]


_vision_help()
