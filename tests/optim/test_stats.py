"""HAM's exponent diagnostics: by hand, off unless asked for, masked on a skipped step."""
import pytest
import torch

from pyg_ham.optim import HAM, attach_ham, track_exponents


def two_weights():
    w = torch.nn.Parameter(torch.tensor([[1.0, -2.0], [0.5, 0.0]]))
    g = torch.tensor([[4.0, 1.0], [-30.0, 2.0]])
    return w, g


def test_clamp_fraction_and_max_step_by_hand():
    w, g = two_weights()
    opt = HAM(torch.optim.SGD([w], lr=0.1), alpha=2.0, beta=0.5, max_exponent=1.0)
    stats = track_exponents(opt)
    w.grad = g
    w_after_base = (w.detach() - 0.1 * g)  # SGD first; HAM's exponent uses the weights after it
    opt.step()
    # e = -lr (alpha sign(w) g + beta) on w = [[0.6, -2.1], [3.5, -0.2]]: |e| = 0.85, 0.15, 5.95, 0.35
    e = 0.1 * (2.0 * torch.sign(w_after_base) * g + 0.5)
    assert e.abs().flatten().tolist() == pytest.approx([0.85, 0.15, 5.95, 0.35])
    got = stats.read()
    assert got["clamp_fraction"] == pytest.approx(0.25)  # one of four at the clamp of 1
    assert got["max_step"] == pytest.approx(0.1 * 2.0 * 30.0)
    assert stats.read() == {}  # read resets


def test_nothing_is_tracked_unless_asked():
    w, g = two_weights()
    plain = torch.optim.SGD([w], lr=0.1)
    assert track_exponents(plain) is None  # no HAM: nothing to track
    opt = HAM(torch.optim.SGD([w], lr=0.1), alpha=2.0, beta=0.0)
    from pyg_ham.optim.ham import _RECORD

    assert opt.base.__dict__[_RECORD].stats is None  # a bare HAM computes no diagnostics
    attached = attach_ham(torch.optim.SGD([torch.nn.Parameter(torch.ones(2, 2))], lr=0.1))
    assert attached is not None


def test_a_skipped_step_does_not_count():
    w, g = two_weights()
    opt = HAM(torch.optim.SGD([w], lr=0.1), alpha=2.0, beta=0.5, max_exponent=1.0)
    stats = track_exponents(opt)
    w.grad = g
    opt.base.found_inf = torch.ones(())  # as GradScaler sets it for a fused base
    try:
        from pyg_ham.optim.ham import apply_hyperbolic_step

        apply_hyperbolic_step(opt.param_groups, opt.defaults, torch.ones(()), None, stats)
    finally:
        del opt.base.found_inf
    got = stats.read()
    assert got["clamp_fraction"] == 0.0 and got["max_step"] == 0.0


def test_fit_records_them_per_epoch():
    from pyg_ham.train.config import ExperimentConfig
    from pyg_ham.train.runner import run_experiment

    doc = run_experiment(ExperimentConfig(dataset="synthetic", dataset_options={"num_nodes": 200}, epochs=3,
                                          hidden=8, quiet=True))
    for record in doc["runs"][0]["history"]:
        assert 0.0 <= record["clamp_fraction"] <= 1.0 and record["max_step"] > 0
    base = run_experiment(ExperimentConfig(dataset="synthetic", dataset_options={"num_nodes": 200}, epochs=2,
                                           hidden=8, quiet=True, ham=False))
    assert "clamp_fraction" not in base["runs"][0]["history"][0]
