"""``distributed.check_config`` asks the dataset's task kind, found in the registry, for its rules."""
import pytest

from pyg_ham.config import ExperimentConfig
from pyg_ham.datasets import info
from pyg_ham.datasets.info import DatasetInfo
from pyg_ham.errors import ConfigError
from pyg_ham.train import distributed, kinds  # noqa: F401 - registers the built-in kinds
from pyg_ham.train.graph import DEFAULT_GRAPH_BATCH_SIZE
from pyg_ham.train.task import TASK_KINDS
from pyg_ham.train.task import TrainingTask as Base


class Picky(Base):
    calls: list = []

    @classmethod
    def check_processes(cls, cfg, processes):
        cls.calls.append((cfg.dataset, processes))
        raise ConfigError("picky refuses")

    def build_model(self): ...
    def train_batches(self): ...
    def batch_loss(self, model, batch): ...
    def predict(self, model): ...


def test_check_config_finds_the_kind_rules_through_the_registry(monkeypatch):
    monkeypatch.setitem(TASK_KINDS, "picky", Picky)
    monkeypatch.setitem(info._REGISTRY, "picky-data", DatasetInfo("picky-data", "picky", "acc", lambda *a, **k: None))
    monkeypatch.setattr(Picky, "calls", [])
    cfg = ExperimentConfig(dataset="picky-data", batch_size=4, device="cpu")
    with pytest.raises(ConfigError, match="picky refuses"):
        distributed.check_config(cfg, 2)
    assert Picky.calls == [("picky-data", 2)]
    distributed.check_config(cfg, 1)  # one process: no kind is asked
    assert Picky.calls == [("picky-data", 2)]
    monkeypatch.delitem(TASK_KINDS, "picky")  # an unregistered kind has no rules of its own
    distributed.check_config(cfg, 2)


def test_the_kinds_rules_and_the_global_batch():
    with pytest.raises(ConfigError, match="full-batch node training in 2 processes"):
        distributed.check_config(ExperimentConfig(dataset="Cora", device="cpu"), 2)
    with pytest.raises(ConfigError, match="heterogeneous node training runs in one process only"):
        distributed.check_config(ExperimentConfig(dataset="synthetic-mag", batch_size=4, device="cpu"), 2)
    assert DEFAULT_GRAPH_BATCH_SIZE % 3  # graph kind: its default batch of 32 does not split over 3
    with pytest.raises(ConfigError, match=f"batch_size {DEFAULT_GRAPH_BATCH_SIZE} is the global batch .* 3 processes"):
        distributed.check_config(ExperimentConfig(dataset="MUTAG", device="cpu"), 3)
    with pytest.raises(ConfigError, match="batch_size 6 is the global batch and must split evenly over 4"):
        distributed.check_config(ExperimentConfig(dataset="Cora", batch_size=6, device="cpu"), 4)
    distributed.check_config(ExperimentConfig(dataset="MUTAG", device="cpu"), 2)
    distributed.check_config(ExperimentConfig(dataset="Cora", batch_size=8, device="cpu"), 4)
