"""The trainer's ``fused`` option: the base built with fused=True and HAM's step in its pass."""
import pytest

from pyg_ham.errors import ConfigError
from pyg_ham.train.config import ExperimentConfig
from pyg_ham.train.runner import run_experiment


def small(**kw):
    base = dict(dataset="synthetic", dataset_options={"num_nodes": 300}, epochs=12, hidden=16, quiet=True,
                optimizer="adamw", lr=0.01)
    return ExperimentConfig(**{**base, **kw})


def test_default_takes_the_one_pass_and_records_it_and_trains_as_two_passes_do(monkeypatch):
    from pyg_ham.optim import fused_base

    tiny = run_experiment(small(epochs=1))["runs"][0]  # below the one pass's size threshold
    assert tiny["optimizer_step"]["fused"] is True
    assert "fewer than ONE_PASS_MIN_NUMEL" in tiny["optimizer_step"]["ham_pass"]
    monkeypatch.setattr(fused_base, "ONE_PASS_MIN_NUMEL", 0)  # as a model of 4M+ weights would
    one = run_experiment(small())["runs"][0]
    two = run_experiment(small(fused=False))["runs"][0]
    assert one["optimizer_step"] == {"fused": True, "ham_pass": "one"}
    assert two["optimizer_step"]["fused"] is False
    assert two["optimizer_step"]["ham_pass"] == "separate (AdamW was not built with fused=True)"
    losses = [[r["loss"] for r in run["history"]] for run in (one, two)]
    assert losses[0] == pytest.approx(losses[1], rel=1e-3)  # the same training, to rounding
    assert losses[0][-1] < losses[0][0]


def test_a_base_without_a_fused_kernel_says_why_and_no_ham_records_no_pass(monkeypatch):
    from pyg_ham.optim import fused_base

    monkeypatch.setattr(fused_base, "ONE_PASS_MIN_NUMEL", 0)
    rms = run_experiment(small(optimizer="rmsprop", epochs=2))["runs"][0]
    assert rms["optimizer_step"] == {"fused": False,
                                     "ham_pass": "separate (RMSprop is not torch.optim.AdamW, Adam or SGD)"}
    plain = run_experiment(small(ham=False, epochs=2))["runs"][0]
    assert plain["optimizer_step"] == {"fused": True}


def test_fused_must_be_a_boolean_or_null():
    with pytest.raises(ConfigError, match="fused must be true, false or null"):
        small(fused="yes").validate()
