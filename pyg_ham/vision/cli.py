"""``pyg-ham vision``: the ``train`` command with image-classification defaults."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Optional, Set

import click

from pyg_ham.errors import ConfigError
from pyg_ham.train.cli import config_from_cli, experiment_options, run_and_report

__all__ = ["vision"]


def _config_keys(config_path: Optional[str]) -> Set[str]:
    """The keys a YAML config sets (errors are left to ``load_config``, which reports them)."""
    if not config_path:
        return set()
    try:
        import yaml

        values = yaml.safe_load(Path(config_path).read_text())
    except Exception:  # noqa: BLE001 - load_config raises the one-line error
        return set()
    return set(values) if isinstance(values, dict) else set()


@click.command()
@experiment_options
@click.option("--out", type=click.Path(dir_okay=False), help="Write the result JSON here (after every run).")
@click.option("--checkpoint-dir", type=click.Path(file_okay=False), help="Per-epoch checkpoints (default: OUT.ckpt/).")
@click.option("--resume", is_flag=True, default=None, help="Skip finished runs and continue an interrupted one.")
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
    from pyg_ham.vision.trainer import VISION_DEFAULTS

    in_file = _config_keys(config_path)
    for key, value in VISION_DEFAULTS.items():
        if flags.get(key) is None and key not in in_file:
            flags[key] = value
    cfg = config_from_cli(config_path, **flags)
    if not is_vision_dataset(cfg.dataset):
        raise ConfigError(f"'pyg-ham vision' trains image classifiers; {cfg.dataset!r} is not one "
                          f"(choose {', '.join(VISION_DATASETS)}); use 'pyg-ham train' for graph datasets")
    run_and_report(cfg)
