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


def _by_hand(ws, gs, lr, alpha, beta, bound):
    """max |lr alpha sign(w) g| and the share of |e| >= bound, in float64."""
    top, hits, total = 0.0, 0, 0
    for w, g in zip(ws, gs):
        geometric = lr * alpha * torch.sign(w.double()) * g.double()
        e = -(geometric + lr * beta)
        top = max(top, geometric.abs().max().item())
        hits += int((e.abs() >= bound).sum())
        total += w.numel()
    return top, hits / total


@pytest.mark.parametrize("implementation", ["for-loop", "foreach", "fused"])
def test_each_path_gathers_the_same_diagnostics_and_leaves_the_weights_as_without(implementation):
    from pyg_ham.optim import ExponentStats, hyperbolic_step_

    gen = torch.Generator().manual_seed(0)
    shapes = [(40, 30), (7,), (3, 5, 2), (1000,)]
    ws = [torch.randn(s, generator=gen) for s in shapes]
    ws[0][0] = 0.0  # a zero weight: its (huge) gradient moves nothing and counts for no step
    gs = [torch.randn(s, generator=gen) * 0.05 for s in shapes]
    gs[0][0, 0] = 1e4
    top, fraction = _by_hand(ws, gs, 0.1, 200.0, 1e-3, 1.0)
    assert 0.05 < fraction < 0.95  # some at the clamp, some not
    plain, tracked = [w.clone() for w in ws], [w.clone() for w in ws]
    stats = ExponentStats()
    hyperbolic_step_(plain, gs, 0.1, 200.0, 1e-3, max_exponent=1.0, implementation=implementation)
    hyperbolic_step_(tracked, gs, 0.1, 200.0, 1e-3, max_exponent=1.0, implementation=implementation, stats=stats,
                     chunk_numel=256)  # several foreach chunks
    for a, b in zip(plain, tracked):
        assert torch.equal(a, b)  # the diagnostics only read
    got = stats.read()
    assert got["max_step"] == pytest.approx(top, rel=1e-6)
    assert got["clamp_fraction"] == pytest.approx(fraction, abs=1e-9)


@pytest.mark.parametrize("implementation", ["for-loop", "foreach", "fused"])
def test_a_step_gradscaler_skips_adds_nothing_and_no_nan(implementation):
    from pyg_ham.optim import ExponentStats, hyperbolic_step_

    w, g = torch.tensor([[1.0, -2.0], [0.5, 0.0]]), torch.tensor([[4.0, 1.0], [-30.0, 2.0]])
    stats = ExponentStats()
    hyperbolic_step_([w], [g], 0.1, 2.0, 0.5, max_exponent=1.0, implementation=implementation, stats=stats)
    first = stats.read(reset=False)
    inf = torch.full((2, 2), float("inf"))  # what a skipped fp16 step's gradients hold
    before = w.clone()
    hyperbolic_step_([w], [inf], 0.1, 2.0, 0.5, max_exponent=1.0, found_inf=torch.ones(()),
                     implementation=implementation, stats=stats)
    assert torch.equal(w, before)
    assert stats.read() == first  # nothing added, no NaN
    assert first["max_step"] == pytest.approx(6.0) and first["clamp_fraction"] == pytest.approx(0.25)


def test_every_k_th_step_is_observed_and_the_first_after_each_read():
    w, g = two_weights()
    opt = HAM(torch.optim.SGD([w], lr=0.1), alpha=2.0, beta=0.0)
    stats = track_exponents(opt, every=3)
    scale = [1.0, 10.0, 100.0, 1000.0, 1e4]  # the step observed shows in max_step
    seen = []
    for epoch in range(2):
        for k in range(5):
            w.grad = g * scale[k]
            opt.step()
            if epoch == 0 and k == 1:
                seen.append(stats.read())  # a read restarts the count
        seen.append(stats.read())
    # epoch 0: step 0, read; step 2 (the first after the read; 3 and 4 are its 2nd and 3rd); read
    # epoch 1: steps 0 and 3 -> the larger of the two
    assert [s["max_step"] for s in seen] == pytest.approx([0.1 * 2 * 30 * x for x in (1.0, 100.0, 1000.0)])
    assert track_exponents(opt) is stats and stats.every == 1
    with pytest.raises(ValueError, match="every"):
        track_exponents(opt, every=0)


def test_fit_samples_the_first_step_of_every_epoch_and_one_in_k(monkeypatch):
    """Mini-batch training: the trainer observes steps 0, k, 2k, ... of each epoch, so every epoch
    has its diagnostics while most steps run without their cost."""
    from pyg_ham.optim.stats import ExponentStats
    from pyg_ham.train import engine
    from pyg_ham.train.config import ExperimentConfig
    from pyg_ham.train.runner import run_experiment

    monkeypatch.setattr(engine, "EXPONENT_SAMPLE_EVERY", 4)
    taken = []
    real = ExponentStats.sampling
    monkeypatch.setattr(ExponentStats, "sampling", lambda self: (taken.append(real(self)), taken[-1])[1])
    cfg = ExperimentConfig(dataset="synthetic", dataset_options={"num_nodes": 300}, epochs=3, hidden=8, quiet=True,
                           model="sage", batch_size=30, fanout=[3, 3], eval_every=3)
    doc = run_experiment(cfg)
    history = doc["runs"][0]["history"]
    steps = len(taken) // 3
    assert steps >= 6 and len(taken) == 3 * steps  # the same number of steps every epoch
    assert taken == ([k % 4 == 0 for k in range(steps)]) * 3
    assert all("clamp_fraction" in h and h["max_step"] > 0 for h in history)
