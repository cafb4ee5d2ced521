"""HAM's step size and stepped sequence per base (pyg_ham.optim.rules), and the bases by name.

Each covered base: HAM at alpha > 0 equals the base step followed by ``hyperbolic_step_`` with
the base's eta (written out by hand here), on the raw gradient, over several steps.
"""

import pytest
import torch

from pyg_ham.errors import ConfigError
from pyg_ham.optim import build_optimizer, hyperbolic_step_, optimizer_class

po = pytest.importorskip("pytorch_optimizer")

ALPHA, BETA = 30.0, 1e-3


def _model():
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(6, 8), torch.nn.Tanh(), torch.nn.Linear(8, 3))


def _batches(n=4):
    gen = torch.Generator().manual_seed(3)
    return [(torch.randn(16, 6, generator=gen), torch.randint(0, 3, (16,), generator=gen)) for _ in range(n)]


def _backward(model, x, y):
    model.zero_grad(set_to_none=True)
    torch.nn.functional.cross_entropy(model(x), y).backward()


def _lr_eta(opt, group):
    return group["lr"]


def _distance_eta(opt, group):  # Prodigy / D-Adaptation: the d the coming step uses, times lr
    return group["d"] * group["lr"]


def _schedule_free_eta(opt, group):
    step, warmup = group.get("step", 0) + 1, group["warmup_steps"]
    return group["lr"] * (step / warmup if step < warmup else 1.0)


CASES = {
    "lion": ({"lr": 1e-3}, _lr_eta),
    "adan": ({"lr": 1e-2}, _lr_eta),
    "soap": ({"lr": 1e-2, "precondition_frequency": 2}, _lr_eta),
    "prodigy": ({"lr": 1.0, "d0": 1e-3}, _distance_eta),
    "dadaptadam": ({"lr": 1.0, "d0": 1e-3}, _distance_eta),
    "schedulefree_adamw": ({"lr": 1e-2, "warmup_steps": 3}, _schedule_free_eta),
}


@pytest.mark.parametrize("name", list(CASES))
def test_ham_equals_base_step_then_hyperbolic_step_with_the_bases_eta(name):
    options, eta_of = CASES[name]
    mine, ref = _model(), _model()
    opt = build_optimizer(mine, name, ham=True, alpha=ALPHA, beta=BETA, **options)
    base = build_optimizer(ref, name, ham=False, **options)
    schedule_free = name.startswith("schedulefree")
    etas = []
    for x, y in _batches():
        _backward(mine, x, y)
        opt.step()
        _backward(ref, x, y)
        raw = {p: p.grad.clone() for p in ref.parameters()}  # some bases overwrite p.grad in their step
        group_eta = {id(g): eta_of(base, g) for g in base.param_groups}
        base.step()
        for g in base.param_groups:
            if not g["ham"]:
                continue
            eta = group_eta[id(g)]
            etas.append(float(eta))
            if schedule_free:  # HAM steps z; y moves by (1 - beta1) * dz, x stays
                keep = 1.0 - g["betas"][0]
                with torch.no_grad():
                    for p in g["params"]:
                        z = base.state[p]["z"]
                        p.sub_(keep * z)
                        hyperbolic_step_([z], [raw[p]], eta, ALPHA, BETA, max_exponent=5.0)
                        p.add_(keep * z)
            else:
                hyperbolic_step_(list(g["params"]), [raw[p] for p in g["params"]], eta, ALPHA, BETA,
                                 max_exponent=5.0)
    for a, b in zip(mine.parameters(), ref.parameters()):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-7)
    assert not torch.allclose(mine[0].weight, _model()[0].weight)
    if eta_of is _distance_eta:  # eta is d * lr, not lr = 1 (alpha * 1 would saturate the clamp)
        assert all(e < 0.1 for e in etas), etas
    if schedule_free:  # the warm-up is part of eta
        assert etas[0] == pytest.approx(options["lr"] / 3)
    # HAM acted: without it the weights differ
    plain = _model()
    plain_opt = build_optimizer(plain, name, ham=False, **options)
    for x, y in _batches():
        _backward(plain, x, y)
        plain_opt.step()
    assert not torch.allclose(plain[0].weight, mine[0].weight, atol=1e-6)


def test_schedule_free_eval_weights_keep_the_base_step_average():
    """HAM leaves x (what eval() puts in the parameters) as the base step made it at that step."""
    model = _model()
    opt = build_optimizer(model, "schedulefree_adamw", lr=1e-2, ham=True, alpha=ALPHA)
    (x, y), = _batches(1)
    _backward(model, x, y)
    opt.step()
    sf = opt.base
    before_ham = {}
    for p in model.parameters():  # x = (y - (1 - beta1) z) / beta1, read after the whole step
        before_ham[p] = (p - 0.1 * sf.state[p]["z"]) / 0.9
    opt.eval()
    for p in model.parameters():
        torch.testing.assert_close(p.detach(), before_ham[p].detach(), rtol=1e-5, atol=1e-6)
    opt.train()


def test_names_torch_first_prefix_reaches_pytorch_optimizer():
    assert optimizer_class("adafactor") is torch.optim.Adafactor
    assert optimizer_class("pytorch_optimizer:adafactor") is po.AdaFactor
    assert optimizer_class("torch:adam") is torch.optim.Adam
    assert optimizer_class("lion") is po.Lion
    assert optimizer_class("schedulefree_adamw") is po.ScheduleFreeAdamW
    assert optimizer_class("Prodigy") is po.Prodigy
    with pytest.raises(ConfigError, match=r"unknown optimizer 'nosuch'; looked in torch.optim \(.*adamw.*\) and "
                                          r"pytorch_optimizer \(\d+ names"):
        optimizer_class("nosuch")
    with pytest.raises(ConfigError, match=r"unknown optimizer 'torch:lion'; looked in torch.optim \([^)]*\)$"):
        optimizer_class("torch:lion")
    with pytest.raises(ConfigError, match="unknown optimizer source 'keras'"):
        optimizer_class("keras:adam")


def test_unknown_name_without_pytorch_optimizer_says_how_to_install(monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "pytorch_optimizer", None)  # import fails
    with pytest.raises(ConfigError, match=r"pytorch_optimizer \(not installed: pip install 'pyg-ham\[optim\]'\)"):
        optimizer_class("lion")


def test_config_and_variants_take_pytorch_optimizer_names():
    from pyg_ham.compare.variants import parse_variant
    from pyg_ham.train.config import ExperimentConfig

    assert ExperimentConfig(optimizer="schedulefree_adamw").optimizer == "schedulefree_adamw"
    v = parse_variant("pytorch_optimizer:adafactor+sam+ham:lr=0.1,rho=0.2")
    assert (v.optimizer, v.sam, v.ham, v.overrides) == ("pytorch_optimizer:adafactor", True, True,
                                                        {"lr": 0.1, "rho": 0.2})
    assert parse_variant(v.label) == v
    with pytest.raises(ConfigError, match="unknown optimizer"):
        ExperimentConfig(optimizer="nosuch")


def test_attach_ham_uses_the_same_rule_as_the_wrapper():
    from pyg_ham.optim import HAM, attach_ham

    attached, wrapped = _model(), _model()
    a = po.Prodigy(attached.parameters(), lr=1.0, d0=1e-3)
    attach_ham(a, alpha=ALPHA)
    w = HAM(po.Prodigy(wrapped.parameters(), lr=1.0, d0=1e-3), alpha=ALPHA)
    for x, y in _batches(3):
        for model, opt in ((attached, a), (wrapped, w)):
            _backward(model, x, y)
            opt.step()
    for p, q in zip(attached.parameters(), wrapped.parameters()):
        assert torch.equal(p, q)
