"""SAM and ASAM (pytorch-optimizer's SAM) around any base, with and without HAM, in fit's step.

The step is checked against a hand-written reference: perturb by rho * T^2 g / ||T g||, take the
gradient at the perturbed point, restore the weights, run the base step (and HAM) with it.
"""
import copy

import pytest
import torch

from pyg_ham.optim import build_optimizer, hyperbolic_step_
from pyg_ham.optim.sam import innermost, takes_closure
from pyg_ham.train.common import frozen_running_stats, training_step

pytest.importorskip("pytorch_optimizer")


def _model(seed=0, bn=False):
    torch.manual_seed(seed)
    layers = [torch.nn.Linear(5, 7)] + ([torch.nn.BatchNorm1d(7)] if bn else []) + [torch.nn.Tanh(),
                                                                                    torch.nn.Linear(7, 3)]
    return torch.nn.Sequential(*layers)


def _data(seed=1):
    gen = torch.Generator().manual_seed(seed)
    return torch.randn(12, 5, generator=gen), torch.randint(0, 3, (12,), generator=gen)


def _loss(model, x, y):
    return torch.nn.functional.cross_entropy(model(x), y)


def _grads(model, x, y):
    model.zero_grad(set_to_none=True)
    _loss(model, x, y).backward()
    return [p.grad.detach().clone() for p in model.parameters()]


def _reference_steps(model, base, x, y, steps, rho, adaptive, ham_alpha=None, lr=None):
    """Hand-written SAM: e = rho T^2 g / ||T g||, g2 at w + e, restore w, base step with g2,
    then (ham_alpha) HAM's step on the weight matrices with the same g2."""
    params = list(model.parameters())
    for _ in range(steps):
        g1 = _grads(model, x, y)
        with torch.no_grad():
            scaled = [(p.abs() * g if adaptive else g) for p, g in zip(params, g1)]
            norm = torch.sqrt(sum((s * s).sum() for s in scaled)) + 1e-12
            e = [rho * ((p * p) if adaptive else 1.0) * g / norm for p, g in zip(params, g1)]
            saved = [p.clone() for p in params]
            for p, d in zip(params, e):
                p.add_(d)
        g2 = _grads(model, x, y)  # the gradient at the perturbed point
        with torch.no_grad():
            for p, w in zip(params, saved):
                p.copy_(w)
        for p, g in zip(params, g2):
            p.grad = g.clone()
        base.step()
        if ham_alpha is not None:
            weights = [p for p in params if p.ndim >= 2]
            hyperbolic_step_(weights, [p.grad for p in weights], lr, ham_alpha, 1e-3)
    return params


@pytest.mark.parametrize("name, options", [("sgd", {"momentum": 0.9}), ("adam", {}), ("lion", {})])
@pytest.mark.parametrize("adaptive", [False, True])
@pytest.mark.parametrize("ham", [False, True])
def test_sam_step_equals_the_hand_written_reference(name, options, adaptive, ham):
    x, y = _data()
    lr, rho = 0.05, 0.3
    mine = _model()
    ref = copy.deepcopy(mine)
    opt = build_optimizer(mine, name, lr=lr, ham=ham, alpha=20.0, sam=True, rho=rho, adaptive=adaptive, **options)
    assert takes_closure(opt)
    base = build_optimizer(ref, name, lr=lr, ham=False, **options)
    for _ in range(3):
        training_step(lambda: (_loss(mine, x, y), 12), mine, opt)
    expected = _reference_steps(ref, base, x, y, 3, rho, adaptive, ham_alpha=20.0 if ham else None, lr=lr)
    for a, b in zip(mine.parameters(), expected):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)
    # the perturbation mattered: plain steps of the base end elsewhere
    plain = _model()
    plain_opt = build_optimizer(plain, name, lr=lr, ham=ham, alpha=20.0, **options)
    for _ in range(3):
        training_step(lambda: (_loss(plain, x, y), 12), plain, plain_opt)
    assert not torch.allclose(next(plain.parameters()), next(mine.parameters()), atol=1e-5)


def test_ham_after_sam_uses_the_gradient_at_the_perturbed_point():
    """HAM(SAM(base)): after the step p.grad is the second pass's gradient, the one HAM used."""
    x, y = _data()
    model = _model()
    opt = build_optimizer(model, "sgd", lr=0.1, alpha=50.0, sam=True, rho=0.5)
    seen = []
    opt.base.base_optimizer.register_step_pre_hook(
        lambda o, a, k: seen.append([p.grad.clone() for p in model.parameters()]))
    start = [p.detach().clone() for p in model.parameters()]
    training_step(lambda: (_loss(model, x, y), 12), model, opt)
    at_w = copy.deepcopy(model)
    with torch.no_grad():
        for p, w in zip(at_w.parameters(), start):
            p.copy_(w)
    first = _grads(at_w, x, y)
    assert not torch.allclose(seen[0][0], first[0])  # not the gradient at w
    for p, g in zip(model.parameters(), seen[0]):
        assert torch.equal(p.grad, g)  # HAM (a post-hook) saw the base step's gradient


@pytest.mark.parametrize("momentum", [0.1, None])
def test_batch_norm_statistics_are_updated_once_per_sam_step(momentum):
    x, y = _data()
    model = _model(bn=True)
    model[1].momentum = momentum
    once = copy.deepcopy(model)
    once.train()
    once(x)  # one forward at the starting weights: what the running statistics should see
    opt = build_optimizer(model, "adam", lr=0.01, ham=False, sam=True, rho=0.5)
    training_step(lambda: (_loss(model, x, y), 12), model, opt)
    bn, ref = model[1], once[1]
    assert torch.equal(bn.running_mean, ref.running_mean) and torch.equal(bn.running_var, ref.running_var)
    assert int(bn.num_batches_tracked) == int(ref.num_batches_tracked) == 1
    assert bn.momentum == momentum  # restored


def test_frozen_running_stats_still_normalises_by_the_batch():
    x, _ = _data()
    model = _model(bn=True)
    model.train()
    expected = model(x)
    with frozen_running_stats(model):
        out = model(x)
    torch.testing.assert_close(out, expected)  # batch statistics in the forward, as in training


def test_rigl_under_sam_ranks_the_second_pass_gradient():
    """RigL's dense gradient is the one at the perturbed point (the pruned first gradient sets the
    perturbation, so it stays in the sparse subspace)."""
    from pyg_ham.sparse import build_sparsifier

    x, y = _data()
    model = _model()
    opt = build_optimizer(model, "sgd", lr=0.1, ham=False, sam=True, rho=0.5)
    sp = build_sparsifier("rigl", model, opt, 0.5, 10, seed=0, interval=1)
    recorded = {}
    real = sp._update

    def spy(step):
        recorded.update({n: g.clone() for n, g in sp._dense_grads.items()})
        real(step)

    sp._update = spy
    ref = copy.deepcopy(model)
    masks = {n: m.clone() for n, m in sp.masks.items()}
    training_step(lambda: (_loss(model, x, y), 12), model, opt, sp)
    names = dict(ref.named_parameters())
    g1 = dict(zip(names, _grads(ref, x, y)))
    for n, m in masks.items():
        g1[n] = g1[n] * m
    norm = torch.sqrt(sum((g * g).sum() for g in g1.values()))
    with torch.no_grad():
        for n, p in names.items():
            p.add_(0.5 * g1[n] / norm)
    g2 = dict(zip(names, _grads(ref, x, y)))
    assert recorded.keys() == masks.keys()
    for n in masks:
        torch.testing.assert_close(recorded[n], g2[n])
        assert not torch.allclose(recorded[n], g1[n])


def test_sam_options_are_checked_and_need_a_closure():
    from pyg_ham.errors import ConfigError

    model = _model()
    with pytest.raises(ConfigError, match="rho must be > 0"):
        build_optimizer(model, "adam", sam=True, rho=0.0)
    opt = build_optimizer(model, "adam", sam=True)
    assert type(innermost(opt)) is torch.optim.Adam
    assert not takes_closure(build_optimizer(model, "adam"))


def test_sam_without_pytorch_optimizer_is_refused_by_the_config(monkeypatch):
    import sys

    from pyg_ham.errors import ConfigError
    from pyg_ham.train.config import ExperimentConfig

    monkeypatch.setitem(sys.modules, "pytorch_optimizer", None)
    with pytest.raises(ConfigError, match=r"SAM needs the pytorch-optimizer package: pip install 'pyg-ham\[optim\]'"):
        ExperimentConfig(sam=True)
    assert not ExperimentConfig().sam


def test_summary_line_names_sam():
    from pyg_ham.train.runner import summary_line

    doc = {"dataset": "Cora", "model": "gcn", "metric": "acc", "runs": [],
           "config": {"optimizer": "adam", "sam": True, "rho": 0.1, "adaptive": True, "ham": True, "alpha": 200.0,
                      "beta": 1e-3},
           "summary": {"test_mean": 0.8, "test_std": 0.01, "valid_mean": 0.79, "valid_std": 0.01, "runs": 1}}
    assert "adam+SAM(rho=0.1, adaptive)+HAM(alpha=200, beta=0.001)" in summary_line(doc)
