"""A node task whose worker process dies (``SIGKILL``, as the OOM killer sends it) in chosen runs.

``DyingNodeTask.wrap(task, deaths={"run1": 1}, marks=folder)`` is :obj:`task` (same graph, split,
metric) whose run ``run1`` kills its own process in the third training step of its first attempt;
``{"run1": 2}`` kills the retry too. Each death leaves a file in :obj:`marks` first, so a later
attempt knows how many deaths have happened. Unpickling the task in a ``--jobs`` worker imports
this module, which registers the ``dying-node`` kind there.
"""
import dataclasses
import functools
import os
import signal
from pathlib import Path
from typing import ClassVar, Dict

from pyg_ham.datasets.tasks import NodeTask
from pyg_ham.train.node import FullBatchNodeTask
from pyg_ham.train.task import register_task_kind

STEP = 3  # the training step (of an attempt) at which it dies: checkpoints of epochs 1, 2 exist


@dataclasses.dataclass
class DyingNodeTask(NodeTask):
    kind: ClassVar[str] = "dying-node"
    deaths: Dict[str, int] = dataclasses.field(default_factory=dict)
    marks: str = ""

    @classmethod
    def wrap(cls, task: NodeTask, deaths: Dict[str, int], marks: Path) -> "DyingNodeTask":
        values = {f.name: getattr(task, f.name) for f in dataclasses.fields(task)}
        # the splits as data (the synthetic task's split function is a local one, not picklable)
        values["split_fn"] = functools.partial(_pick, [task.split(r) for r in range(task.num_splits)])
        return cls(**values, deaths=deaths, marks=str(marks))


def _pick(splits, index):
    return splits[index]


@register_task_kind("dying-node")
class DyingRun(FullBatchNodeTask):
    @classmethod
    def create(cls, task, cfg, spec, device, **options):
        return cls(task, cfg, spec, device)

    def __init__(self, task, cfg, spec, device):
        super().__init__(task, cfg, spec, device)
        self.steps = 0

    def batch_loss(self, model, batch):
        self.steps += 1
        key = self.spec["key"]
        if self.steps == STEP and self.task.deaths.get(key, 0) > 0:
            died = sorted(Path(self.task.marks).glob(f"{key}.*"))
            if len(died) < self.task.deaths[key]:
                (Path(self.task.marks) / f"{key}.{len(died)}").write_text(str(os.getpid()))
                os.kill(os.getpid(), signal.SIGKILL)
        return super().batch_loss(model, batch)
