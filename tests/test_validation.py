"""The one validation module: one message style, ConfigError (a ValueError), nothing changed on failure."""
import math

import pytest

from pyg_ham.errors import ConfigError
from pyg_ham.train.config import ExperimentConfig
from pyg_ham.validation import check_choice, check_int, check_number, coerce_option


@pytest.mark.parametrize("call, message", [
    (lambda: check_number("lr", -1.0, 0, low_open=True), "lr must be a finite number > 0, got -1.0"),
    (lambda: check_number("lr", math.nan, 0), "lr must be a finite number >= 0, got nan"),
    (lambda: check_number("p", 1.0, 0, 1, high_open=True), "p must be a finite number >= 0 and < 1, got 1.0"),
    (lambda: check_number("k", 2.5, 1, integer=True), "k must be an integer >= 1, got 2.5"),
    (lambda: check_number("k", True, 1), "k must be a finite number >= 1, got True"),
    (lambda: check_int("n", 0, allow_none=True), "n must be an integer >= 1 or None, got 0"),
    (lambda: check_choice("norm", "group", ("batch_norm", "none")),
     "norm must be one of batch_norm, none, got 'group'"),
    (lambda: coerce_option("Cora", "num_splits", "2.5", 1), "Cora: option num_splits must be an integer, got '2.5'"),
    (lambda: coerce_option("Cora", "flag", "maybe", True), "Cora: option flag must be true or false, got 'maybe'"),
])
def test_one_message_style(call, message):
    with pytest.raises(ConfigError) as info:
        call()
    assert str(info.value) == message and isinstance(info.value, ValueError)


def test_accepted_values_come_back_converted():
    assert check_number("x", 3, 0) == 3 and check_int("n", 4) == 4 and check_number("x", None, allow_none=True) is None
    assert check_choice("m", "GCN", ("gcn",), lower=True) == "gcn"
    assert coerce_option("d", "k", "7", 1) == 7 and coerce_option("d", "r", "0.5", 0.1) == 0.5
    assert coerce_option("d", "b", "off", True) is False


def test_an_experiment_config_is_checked_when_created_but_its_device_at_run_time():
    with pytest.raises(ConfigError, match="lr must be a finite number > 0, got -1.0"):
        ExperimentConfig(lr=-1.0)
    with pytest.raises(ConfigError, match="folds must be an integer >= 2"):
        ExperimentConfig().replace(folds=1)
    cfg = ExperimentConfig(device="cuda:3")  # loads on a machine without that GPU ...
    with pytest.raises(ConfigError, match="cuda"):
        cfg.validate()  # ... and is refused when it is about to run there


def test_config_sections_cover_every_field_once_and_round_trip_flat():
    from pyg_ham.train.config import SECTIONS

    names = [k for keys in SECTIONS.values() for k in keys]
    assert sorted(names) == sorted(ExperimentConfig.field_names())
    cfg = ExperimentConfig(lr=0.05, alpha=20.0, batch_size=64, fanout=[5, 5])
    assert cfg.sections()["optim"]["lr"] == 0.05 and cfg.sections()["ham"]["alpha"] == 20.0
    assert ExperimentConfig.from_dict(cfg.to_dict()) == cfg
