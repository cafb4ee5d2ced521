"""Training loops: the shared epoch engine, node-level and graph-level trainers, the runner."""
from pyg_ham.train.diagnostics import WeightDiagnostics, selected_weights
from pyg_ham.train.engine import SCHEDULERS, best_epoch, build_scheduler, fit, is_better, seed_everything

__all__ = ["WeightDiagnostics", "selected_weights", "fit", "best_epoch", "is_better", "seed_everything",
           "build_scheduler", "SCHEDULERS"]
