"""The task protocol: kinds registered by name, one runner for all of them, no adapter in the core."""
import ast
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

from pyg_ham.errors import ConfigError
from pyg_ham.train import TASK_KINDS, TrainingTask, register_task_kind, task_kind
from pyg_ham.train.config import ExperimentConfig
from pyg_ham.train.runner import train_run

PACKAGE = Path(__file__).resolve().parents[2] / "pyg_ham"


def test_every_kind_is_registered_and_unknown_ones_are_refused():
    from pyg_ham.datasets import load_dataset

    load_dataset("digits")  # loading the registry loads the adapters (entry points)
    assert {"node", "graph", "vision"} <= set(TASK_KINDS)
    with pytest.raises(ConfigError, match="no trainer is registered for task kind 'edge'"):
        task_kind(SimpleNamespace(kind="edge", name="x"))
    with pytest.raises(TypeError, match="needs a TrainingTask subclass"):
        register_task_kind("bad")(object)


def test_a_new_kind_trains_through_the_one_runner():
    """A kind supplies model, batches, loss and predictions; fit does the loop, the step, the record."""

    @register_task_kind("test-mean")
    class MeanTask(TrainingTask):
        default_model = "linear"

        def build_model(self):
            return torch.nn.Linear(1, 1, bias=False)

        def train_batches(self):
            return [torch.ones(4, 1)] * 3

        def batch_loss(self, model, batch):
            return (model(batch) - 2.0).pow(2).mean(), len(batch)

        def predict(self, model):
            w = float(model.weight)
            return {k: (torch.tensor(w), None) for k in self.eval_splits}

        def score(self, pred, target):
            return -abs(float(pred) - 2.0)

    task = SimpleNamespace(kind="test-mean", name="mean", higher_is_better=True)
    cfg = ExperimentConfig(optimizer="sgd", momentum=0.0, lr=0.1, ham=False, epochs=20, quiet=True)
    result = train_run(task, cfg, {"key": "run0", "seed": 0, "fields": {"run": 0}}, torch.device("cpu"))
    assert len(result.history) == 20 and result.extra["key"] == "run0" and result.extra["run"] == 0
    assert abs(result.valid) < 1e-3  # w -> 2: 60 steps of w += 0.4 (2 - w)
    assert result.extra["num_params"] == 1


_CORE = ("train", "optim", "datasets", "models", "sampling")
_ADAPTERS = ("pyg_ham.vision", "pyg_ham.llm")


@pytest.mark.parametrize("package", _CORE)
def test_the_core_imports_no_adapter(package):
    offenders = []
    for path in (PACKAGE / package).rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
            offenders += [f"{path.name}: {n}" for n in names if n.startswith(_ADAPTERS)]
    assert not offenders
