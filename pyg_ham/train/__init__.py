"""Training: the task protocol, the one epoch engine (:func:`fit`), the node and graph task kinds, the runner."""
from pyg_ham.train.diagnostics import WeightDiagnostics, selected_weights
from pyg_ham.train.engine import SCHEDULERS, best_epoch, build_scheduler, fit, is_better, seed_everything
from pyg_ham.train.task import TASK_KINDS, GeneratorState, RunSpec, TrainingTask, register_task_kind, task_kind

__all__ = ["WeightDiagnostics", "selected_weights", "fit", "best_epoch", "is_better", "seed_everything",
           "build_scheduler", "SCHEDULERS", "TrainingTask", "RunSpec", "GeneratorState", "register_task_kind",
           "task_kind", "TASK_KINDS"]
