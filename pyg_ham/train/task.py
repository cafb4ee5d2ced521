r"""The task protocol: what one training run of a task kind supplies to :func:`~pyg_ham.train.fit`.

:func:`~pyg_ham.train.fit` owns everything every kind of training shares (the epoch loop, the
optimisation step with its sparsifier, the loss accumulated over batches, evaluation,
best-validation selection, early stopping, checkpoints and exact resume, diagnostics). A task
kind supplies only what differs, the way a PyG ``BasicGNN`` subclass supplies ``init_conv``:

* :meth:`TrainingTask.build_model`: the model,
* :meth:`TrainingTask.train_batches`: the training batches of one epoch,
* :meth:`TrainingTask.batch_loss`: the mean loss of one batch and how many examples it averages
  (evaluated twice per step under SAM; random draws belong in :meth:`TrainingTask.prepare_batch`),
* :meth:`TrainingTask.predict`: predictions and targets per evaluation split, scored by the
  dataset's own metric (:meth:`TrainingTask.score`).

Kinds are registered by name (:func:`register_task_kind`); the runner looks up the kind of the
loaded dataset (its ``kind`` attribute: ``"node"``, ``"graph"``, or an adapter's, e.g. ``"image"``).

.. code-block:: python

    from pyg_ham.train import TrainingTask, register_task_kind

    @register_task_kind("my-kind")
    class MyTask(TrainingTask):
        def build_model(self): ...
        def train_batches(self): ...
        def batch_loss(self, model, batch): ...
        def predict(self, model): ...
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, Callable, Dict, Iterable, Tuple, Type, TypeVar

import torch
from torch import Tensor

from pyg_ham.errors import ConfigError

__all__ = ["TrainingTask", "RunSpec", "GeneratorState", "register_task_kind", "task_kind", "TASK_KINDS"]

#: One run of an experiment: its ``key`` (``run0``, ``repeat0_fold3``), ``seed``, the record fields
#: it adds (``run`` or ``repeat``/``fold``) and, for graph tasks, its ``split`` of graph indices.
RunSpec = Dict[str, Any]
#: The registered task kinds, by name.
TASK_KINDS: Dict[str, Type["TrainingTask"]] = {}

T = TypeVar("T", bound=Type["TrainingTask"])


def register_task_kind(name: str) -> Callable[[T], T]:
    r"""Register a :class:`TrainingTask` subclass as the trainer of datasets whose ``kind`` is
    :obj:`name` (its :meth:`~TrainingTask.create` builds each run).

    Args:
        name (str): the kind (``"node"``, ``"graph"``, ``"vision"``, ...).
    """
    def decorator(cls: T) -> T:
        if not (isinstance(cls, type) and issubclass(cls, TrainingTask)):
            raise TypeError(f"register_task_kind({name!r}) needs a TrainingTask subclass, got {cls!r}")
        TASK_KINDS[name] = cls
        return cls

    return decorator


def task_kind(dataset_task: Any) -> Type["TrainingTask"]:
    r"""The registered :class:`TrainingTask` class for :obj:`dataset_task` (by its ``kind``)."""
    kind = getattr(dataset_task, "kind", None)
    if kind not in TASK_KINDS:
        known = ", ".join(sorted(TASK_KINDS)) or "none"
        raise ConfigError(f"no trainer is registered for task kind {kind!r} ({getattr(dataset_task, 'name', '?')}); "
                          f"registered kinds: {known}")
    return TASK_KINDS[kind]


class TrainingTask(ABC):
    r"""One training run of a task kind (see the module docstring).

    Args:
        task: the loaded dataset task (:class:`~pyg_ham.datasets.NodeTask`,
            :class:`~pyg_ham.datasets.GraphTask`, an adapter's task).
        cfg (ExperimentConfig): the experiment's settings.
        spec (dict): the run (``key``, ``seed``, ``fields``, ``split``).
        device (torch.device): where to train.
    """

    #: The model name used when ``cfg.model`` is not set.
    default_model: str = ""

    def __init__(self, task: Any, cfg: Any, spec: RunSpec, device: torch.device) -> None:
        self.task = task
        self.cfg = cfg
        self.spec = spec
        self.device = device

    @classmethod
    def create(cls, task: Any, cfg: Any, spec: RunSpec, device: torch.device, **options: Any) -> "TrainingTask":
        r"""One run of this kind (a kind with variants, e.g. full- and mini-batch, picks one here)."""
        return cls(task, cfg, spec, device, **options)

    @classmethod
    def check_processes(cls, cfg: Any, processes: int) -> None:
        r"""Refuse, with one line, settings this kind cannot train in :obj:`processes` (> 1)
        processes. :func:`~pyg_ham.train.distributed.check_config` finds the kind of the config's
        dataset in the registry and calls this before the dataset loads and before any process
        group starts. (default: every setting trains)"""
        return None

    @property
    def seed(self) -> int:
        return int(self.spec["seed"])

    @property
    def model_name(self) -> str:
        return (self.cfg.model or self.default_model).lower()

    @property
    def eval_splits(self) -> Tuple[str, ...]:
        r"""The splits scored at each evaluation (``train`` only with ``cfg.eval_train``)."""
        return ("train", "valid", "test") if self.cfg.eval_train else ("valid", "test")

    @abstractmethod
    def build_model(self) -> torch.nn.Module:
        r"""The model (on the CPU or already on :attr:`device`)."""

    @abstractmethod
    def train_batches(self) -> Iterable[Any]:
        r"""The training batches of one epoch (the iterable is read once per epoch)."""

    def prepare_batch(self, batch: Any) -> Any:
        r"""What :meth:`batch_loss` receives for a batch of :meth:`train_batches`, computed once per
        step (default: the batch itself). A kind whose batches are random (augmentation) draws
        here, so that an optimizer that evaluates the loss twice per step (SAM) sees one batch."""
        return batch

    @abstractmethod
    def batch_loss(self, model: torch.nn.Module, batch: Any) -> Tuple[Tensor, int]:
        r"""The mean training loss of :obj:`batch` and the number of examples it averages."""

    @abstractmethod
    def predict(self, model: torch.nn.Module) -> Dict[str, Tuple[Tensor, Any]]:
        r"""``{split: (predictions, target)}`` for every split in :attr:`eval_splits`; each pair is
        scored by :meth:`score` (run under ``torch.no_grad()`` with the model in eval mode)."""

    def score(self, pred: Tensor, target: Any) -> float:
        r"""The metric of :obj:`pred` against :obj:`target` (default: the dataset's ``evaluate``)."""
        return float(self.task.evaluate(pred, target))

    def steps_per_epoch(self) -> int:
        r"""Optimisation steps per epoch (sparsifier schedules need the total)."""
        return len(self.train_batches())  # type: ignore[arg-type]

    def stateful(self) -> Dict[str, Any]:
        r"""More objects with ``state_dict``/``load_state_dict`` to checkpoint (sampling generators)."""
        return {}

    def record(self) -> Dict[str, Any]:
        r"""Keys added to the run's record (``run``, ``split``, ``fold``...)."""
        return dict(self.spec.get("fields", {}))

    @property
    def desc(self) -> str:
        r"""The progress bar's label."""
        return f"{self.task.name} {self.spec.get('key', '')}".strip()


class GeneratorState:
    r"""Adapts a ``torch.Generator`` to the ``state_dict`` protocol of checkpoints."""

    def __init__(self, gen: torch.Generator) -> None:
        self.gen = gen

    def state_dict(self) -> Dict[str, Tensor]:
        return {"state": self.gen.get_state()}

    def load_state_dict(self, state: Dict[str, Tensor]) -> None:
        self.gen.set_state(state["state"])
