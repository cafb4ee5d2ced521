r"""Training an image classifier with (or without) HAM on the shared epoch engine.

:class:`ImageClassificationTask` is the ``"vision"`` task kind: it supplies the model, the
image batches, their loss and the predictions; the shared engine (:func:`~pyg_ham.train.fit`)
does the rest (the optimizer from :func:`~pyg_ham.train.common.make_optimizer`, so the same HAM
core and param-group rule; seeding, best-validation selection, history with HAM's weight
diagnostics, progress bar, checkpoints and resume). Registering the kind is what lets
:func:`~pyg_ham.train.runner.run_experiment` train image datasets.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Dict, Iterable, Optional, Tuple, Union

import torch
from torch import Tensor, nn
from torch.utils.data import BatchSampler, DataLoader, Dataset, RandomSampler, SequentialSampler, TensorDataset

from pyg_ham.results import RunResult
from pyg_ham.train import distributed
from pyg_ham.train.config import ExperimentConfig, resolve_device
from pyg_ham.train.task import RunSpec, TrainingTask, register_task_kind
from pyg_ham.vision.data import ImageTensorDataset, VisionTask
from pyg_ham.vision.models import build_vision_model

__all__ = ["VISION_DEFAULTS", "DEFAULT_VISION_BATCH_SIZE", "vision_config", "build_model_for", "make_loader",
           "ImageClassificationTask", "train_vision_run", "fit_classifier"]

DEFAULT_VISION_BATCH_SIZE = 64
#: The defaults of ``pyg-ham vision`` and :func:`fit_classifier` (where they differ from
#: :class:`~pyg_ham.train.config.ExperimentConfig`'s graph-oriented ones).
VISION_DEFAULTS: Dict[str, Any] = {"dataset": "digits", "model": "cnn", "optimizer": "adam", "lr": 1e-3,
                                   "epochs": 30, "batch_size": DEFAULT_VISION_BATCH_SIZE, "hidden": 32,
                                   "dropout": 0.0}

ModelSpec = Union[None, nn.Module, Callable[[], nn.Module]]


def vision_config(**overrides: Any) -> ExperimentConfig:
    """An :class:`~pyg_ham.train.config.ExperimentConfig` with :data:`VISION_DEFAULTS` and :obj:`overrides`."""
    return ExperimentConfig().replace(**{**VISION_DEFAULTS, **overrides})


def build_model_for(task: VisionTask, cfg: ExperimentConfig) -> nn.Module:
    """The model named by ``cfg.model`` (default ``cnn``) for :obj:`task`, with ``cfg.hidden``,
    ``cfg.dropout`` and ``cfg.layers``."""
    return build_vision_model(cfg.model or "cnn", task.in_channels, task.num_classes, task.image_size,
                              hidden=cfg.hidden, dropout=cfg.dropout, layers=cfg.layers)


def _batch_indexable(dataset: Dataset) -> bool:
    return isinstance(dataset, (ImageTensorDataset, TensorDataset))


def make_loader(dataset: Dataset, batch_size: int, shuffle: bool = False, num_workers: int = 0,
                sampler: Optional[Any] = None) -> DataLoader:
    r"""A loader of ``(images, labels)`` batches.

    In-memory datasets (:class:`~pyg_ham.vision.ImageTensorDataset`, ``TensorDataset``) are
    indexed a whole batch at a time (no per-item collation); any other dataset goes through
    a standard :class:`~torch.utils.data.DataLoader`. Shuffling draws from the global torch
    RNG, which :func:`~pyg_ham.train.engine.fit` seeds and checkpoints, so a resumed run
    sees the same batches; a :obj:`sampler` (e.g. a ``DistributedSampler``) replaces the shuffle.
    """
    if sampler is not None and not _batch_indexable(dataset):
        return DataLoader(dataset, batch_size=batch_size, sampler=sampler, num_workers=num_workers)
    if _batch_indexable(dataset):
        if sampler is None:
            sampler = RandomSampler(dataset) if shuffle else SequentialSampler(dataset)
        return DataLoader(dataset, sampler=BatchSampler(sampler, batch_size, drop_last=False), batch_size=None,
                          num_workers=num_workers)
    return DataLoader(dataset, batch_size=batch_size, shuffle=shuffle, num_workers=num_workers)


def _resolve_model(model: ModelSpec, task: VisionTask, cfg: ExperimentConfig) -> nn.Module:
    if model is None:
        return build_model_for(task, cfg)
    if isinstance(model, nn.Module):
        return model
    if callable(model):
        built = model()
        if not isinstance(built, nn.Module):
            raise TypeError(f"the model factory must return an nn.Module, got {type(built).__name__}")
        return built
    raise TypeError(f"model must be None, an nn.Module or a callable returning one, got {type(model).__name__}")


@register_task_kind("vision")
class ImageClassificationTask(TrainingTask):
    r"""One run of an image classifier: mini-batches of ``cfg.batch_size`` (default 64) shuffled
    training images (with the task's ``train_transform`` applied on the device); accuracy on
    valid and test (and train, without augmentation, if ``cfg.eval_train``).

    Args:
        model (nn.Module or callable, optional): train this model instead of ``cfg.model`` (a
            factory is called after seeding, so each run gets its own initialisation).
    """

    default_model = "cnn"

    def __init__(self, task: VisionTask, cfg: ExperimentConfig, spec: RunSpec, device: torch.device, *,
                 model: ModelSpec = None) -> None:
        super().__init__(task, cfg, spec, device)
        self.model_spec = model
        batch_size = cfg.batch_size or DEFAULT_VISION_BATCH_SIZE
        self.epochs_started = None
        world = distributed.world_size()
        if world == 1:
            self.train_loader = make_loader(task.train, batch_size, shuffle=True)
            self.eval_loaders = {k: make_loader(getattr(task, k), max(batch_size, 256)) for k in self.eval_splits}
            return
        # torchrun: each rank every R-th image of the same epoch permutation, batch_size / R per step;
        # each rank evaluates every R-th image, the predictions gathered
        distributed.check_global_batch(batch_size, world)
        from torch.utils.data import Subset
        from torch.utils.data.distributed import DistributedSampler

        from pyg_ham.train.node import EpochCounter

        rank = distributed.rank()
        sampler = DistributedSampler(task.train, num_replicas=world, rank=rank, shuffle=True, seed=self.seed)
        self.epochs_started = EpochCounter(sampler)
        self.train_loader = make_loader(task.train, batch_size // world, sampler=sampler)
        self.eval_loaders = {k: make_loader(Subset(getattr(task, k), range(rank, len(getattr(task, k)), world)),
                                            max(batch_size, 256)) for k in self.eval_splits}

    def build_model(self) -> nn.Module:
        return _resolve_model(self.model_spec, self.task, self.cfg)

    def steps_per_epoch(self) -> int:
        return len(self.train_loader)

    def train_batches(self) -> Iterable[Any]:
        if self.epochs_started is not None:
            self.epochs_started.next()
        return self.train_loader

    def stateful(self) -> Dict[str, Any]:
        return {} if self.epochs_started is None else {"epoch_sampler": self.epochs_started}

    def prepare_batch(self, batch: Any) -> Tuple[Tensor, Tensor]:
        r"""The batch on the device, augmented once (SAM's two passes see the same images)."""
        x, y = batch
        x, y = x.to(self.device, non_blocking=True), y.to(self.device, non_blocking=True)
        if self.task.train_transform is not None:
            x = self.task.train_transform(x)
        return x, y

    def batch_loss(self, model: nn.Module, batch: Any) -> Tuple[Tensor, int]:
        x, y = batch
        return self.task.loss(model(x), y), y.numel()

    def predict(self, model: nn.Module) -> Dict[str, Tuple[Tensor, Any]]:
        out = {}
        for key, loader in self.eval_loaders.items():
            preds, targets = [], []
            for x, y in loader:
                preds.append(model(x.to(self.device, non_blocking=True)))
                targets.append(y.to(self.device, non_blocking=True))
            out[key] = (distributed.all_gather_cat(torch.cat(preds)), distributed.all_gather_cat(torch.cat(targets)))
        return out


def train_vision_run(task: VisionTask, cfg: ExperimentConfig, run: int, device: torch.device, *,
                     checkpoint: Optional[Path] = None, resume: bool = False, model: ModelSpec = None) -> RunResult:
    r"""Train and evaluate one run (seed ``cfg.seed + run``) of an image classifier
    (:class:`ImageClassificationTask` through :func:`~pyg_ham.train.runner.train_run`).

    Args:
        task (VisionTask): the data.
        cfg (ExperimentConfig): model (``cfg.model`` or ``"cnn"``, ``hidden``, ``dropout``,
            ``layers``), optimizer and HAM settings, epochs, schedule, sparsity...
        run (int): the run index (seed ``cfg.seed + run``).
        device (torch.device): where to train.
        checkpoint (Path, optional): per-epoch checkpoint file.
        resume (bool): continue from :obj:`checkpoint` if it exists. (default: :obj:`False`)
        model (nn.Module or callable, optional): train this model instead of ``cfg.model``
            (a factory is called after seeding, so each run gets its own initialisation).
    """
    from pyg_ham.train.runner import train_run

    spec = {"key": f"run{run}", "seed": cfg.seed + run, "fields": {"run": run}}
    return train_run(task, cfg, spec, device, checkpoint=checkpoint, resume=resume, model=model)


def fit_classifier(model: Union[nn.Module, Callable[[], nn.Module]], train: Dataset, valid: Dataset, test: Dataset,
                   cfg: Optional[ExperimentConfig] = None, *, num_classes: int, name: str = "custom",
                   checkpoint: Optional[Union[str, Path]] = None, resume: bool = False,
                   train_transform: Optional[Callable[[Tensor], Tensor]] = None, **overrides: Any) -> RunResult:
    r"""Train any ``nn.Module`` on any datasets of ``(image, label)`` pairs with HAM: one run.

    .. code-block:: python

        from pyg_ham.vision import fit_classifier

        result = fit_classifier(my_net, train_ds, valid_ds, test_ds, num_classes=10,
                                epochs=20, lr=1e-3, ham=True)
        result.test, result.history[-1]["near_zero"]

    Args:
        model (nn.Module or callable): the model, or a factory called after seeding.
        train, valid, test (Dataset): ``(image [C, H, W], label)`` pairs.
        cfg (ExperimentConfig, optional): the settings (default: :func:`vision_config`).
        num_classes (int): number of classes.
        name (str): the task's name (progress bar). (default: :obj:`"custom"`)
        checkpoint (str or Path, optional): per-epoch checkpoint file.
        resume (bool): continue from :obj:`checkpoint`. (default: :obj:`False`)
        train_transform (callable, optional): batch augmentation applied on the device.
        **overrides: config fields to override (``epochs=5``, ``ham=False``, ``device="cpu"``...).
    """
    cfg = (cfg or vision_config()).replace(**overrides).validate()
    task = VisionTask.from_datasets(name, train, valid, test, num_classes, train_transform=train_transform)
    device = resolve_device(cfg.device)
    return train_vision_run(task, cfg, 0, device, checkpoint=Path(checkpoint) if checkpoint else None,
                            resume=resume, model=model)
