"""torch.optim contracts for HAM, attach_ham and build_optimizer over one table of bases.

Modelled on torch's ``OptimizerInfo`` table (torch/testing/_internal/common_optimizers.py):
every contract test runs over the same list of (base optimizer, options) cases and over the
three ways of getting HAM. Expectations are independent of pyg_ham: the base optimizer's
own step on a twin, followed by the hyperbolic step written out by hand.
"""
import copy
import math
import pickle

import pytest
import torch
from torch.optim.optimizer import register_optimizer_step_post_hook, register_optimizer_step_pre_hook

from pyg_ham import HAM, attach_ham, build_optimizer
from pyg_ham.errors import ConfigError
from pyg_ham.optim import OPTIMIZER_NAMES, ham_param_groups, optimizer_class

#: (name in OPTIMIZER_NAMES, base options); options go to the base as group options.
CASES = [
    ("sgd", {}),
    ("sgd", {"momentum": 0.9, "nesterov": True, "weight_decay": 0.1}),
    ("sgd", {"momentum": 0.5, "maximize": True, "foreach": False}),
    ("adam", {}),
    ("adam", {"amsgrad": True, "weight_decay": 0.1, "foreach": True}),
    ("adamw", {"fused": True}),
    ("adadelta", {"lr": 0.5}),
    ("adafactor", {}),
    ("adagrad", {"lr_decay": 0.01}),
    ("adamax", {"weight_decay": 0.1}),
    ("asgd", {"t0": 1}),
    ("nadam", {"decoupled_weight_decay": True, "weight_decay": 0.1}),
    ("radam", {}),
    ("rmsprop", {"alpha": 0.9, "centered": True, "momentum": 0.5}),  # alpha: RMSprop's own
    ("rprop", {}),
]
IDS = [f"{n}{'-' + '-'.join(o) if o else ''}" for n, o in CASES]
WAYS = ["HAM", "attach_ham", "build_optimizer"]
ALPHA, BETA, LR = 20.0, 0.01, 0.01


@pytest.fixture(autouse=True)
def default_float64():
    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    yield
    torch.set_default_dtype(previous)


def make(way, name, options, params, alpha=ALPHA, beta=BETA):
    """An optimizer with HAM over ``params`` (one group carrying ``options``)."""
    group = {"params": params, **options}
    if way == "build_optimizer":
        return build_optimizer([group], name, lr=options.get("lr", LR), alpha=alpha, beta=beta)
    base = optimizer_class(name)([group], lr=options.get("lr", LR))
    if way == "HAM":
        return HAM(base, alpha=alpha, beta=beta)
    attach_ham(base, alpha=alpha, beta=beta)
    return base


def plain(name, options, params, way=None):
    """The same base without HAM (for build_optimizer: its own ham=False, whose weight_decay default is 0)."""
    if way == "build_optimizer":
        return build_optimizer([{"params": params, **options}], name, lr=options.get("lr", LR), ham=False)
    return optimizer_class(name)([{"params": params, **options}], lr=options.get("lr", LR))


def hyp_(w, g, lr, alpha, beta, maximize=False):
    """The hyperbolic half-step, in place, written out independently (exponent clamped to ±5)."""
    g = -g if maximize else g
    with torch.no_grad():
        w.mul_(torch.exp((-lr * (alpha * torch.sign(w) * g + beta)).clamp(-5.0, 5.0)))


def tensors(seed=0, steps=3):
    gen = torch.Generator().manual_seed(seed)
    W, b = torch.randn(4, 3, generator=gen), torch.randn(3, generator=gen)
    grads = [(torch.randn(4, 3, generator=gen), torch.randn(3, generator=gen)) for _ in range(steps)]
    return W, b, grads


def test_the_table_covers_exactly_the_cli_names():
    assert set(OPTIMIZER_NAMES) == {name for name, _ in CASES}


@pytest.mark.parametrize("way", WAYS)
@pytest.mark.parametrize("name,options", CASES, ids=IDS)
def test_step_is_the_base_step_then_the_hyperbolic_step(way, name, options):
    W, b, grads = tensors()
    pW, pb = torch.nn.Parameter(W.clone()), torch.nn.Parameter(b.clone())
    qW, qb = torch.nn.Parameter(W.clone()), torch.nn.Parameter(b.clone())
    opt, ref = make(way, name, options, [pW, pb]), plain(name, options, [qW, qb], way)
    for gW, gb in grads:
        pW.grad, pb.grad, qW.grad, qb.grad = gW.clone(), gb.clone(), gW.clone(), gb.clone()
        opt.step()
        ref.step()
        hyp_(qW, gW, options.get("lr", LR), ALPHA, BETA, options.get("maximize", False))  # ndim >= 2 only
    torch.testing.assert_close(pW, qW, rtol=1e-12, atol=1e-13)
    torch.testing.assert_close(pb, qb, rtol=1e-12, atol=1e-13)


@pytest.mark.parametrize("way", WAYS)
@pytest.mark.parametrize("name,options", CASES, ids=IDS)
def test_global_and_own_step_hooks_fire_once_per_step(way, name, options):
    W, b, grads = tensors(steps=1)
    pW = torch.nn.Parameter(W.clone())
    opt = make(way, name, options, [pW])
    calls, seen, given = [], [], []

    def hook(name):
        def record(o, *args):
            calls.append(name)
            given.append(o)
            if name == "post":
                seen.append(pW.detach().clone())
        return record

    handles = [register_optimizer_step_pre_hook(hook("global pre")),
               register_optimizer_step_post_hook(hook("global post")),
               opt.register_step_pre_hook(hook("pre")), opt.register_step_post_hook(hook("post"))]
    try:
        pW.grad = grads[0][0]
        opt.step()
    finally:
        for h in handles:
            h.remove()
    assert calls == ["global pre", "pre", "post", "global post"]  # torch's order, each once
    assert all(o is opt for o in given)  # torch's contract: the optimizer the hook was registered on
    assert torch.equal(seen[0], pW.detach())  # a post-hook registered after HAM sees the final weights
    opt.step()  # removed hooks stay removed
    assert len(calls) == 4


@pytest.mark.parametrize("way", WAYS)
@pytest.mark.parametrize("name,options", CASES, ids=IDS)
def test_state_dict_and_load_state_dict_hooks_run(way, name, options):
    W, b, grads = tensors(steps=1)
    pW = torch.nn.Parameter(W.clone())
    opt = make(way, name, options, [pW])
    pW.grad = grads[0][0]
    opt.step()
    calls, given = [], []
    opt.register_state_dict_pre_hook(lambda o: (calls.append("sd pre"), given.append(o)))
    opt.register_state_dict_post_hook(lambda o, sd: (given.append(o), {**sd, "extra": 1})[1])
    opt.register_load_state_dict_pre_hook(lambda o, sd: (calls.append("load pre"), given.append(o)) and None)
    opt.register_load_state_dict_post_hook(lambda o: (calls.append("load post"), given.append(o)))
    sd = opt.state_dict()
    assert sd["extra"] == 1 and calls == ["sd pre"]
    opt.load_state_dict(sd)
    assert calls == ["sd pre", "load pre", "load post"]
    assert len(given) == 4 and all(o is opt for o in given)


@pytest.mark.parametrize("way", WAYS)
@pytest.mark.parametrize("name,options", CASES, ids=IDS)
def test_copies_keep_ham(way, name, options):
    W, b, grads = tensors()
    pW = torch.nn.Parameter(W.clone())
    opt = make(way, name, options, [pW])
    pW.grad = grads[0][0].clone()
    opt.step()
    copies = [copy.deepcopy(opt), pickle.loads(pickle.dumps(opt))]
    copies.append(copy.deepcopy(copies[0]))
    qW = torch.nn.Parameter(pW.detach().clone())
    ref = plain(name, options, [qW], way)
    ref.load_state_dict(copy.deepcopy(opt.state_dict()))  # the same state, without HAM
    for gW, _ in grads[1:]:
        for o in [opt] + copies:
            o.param_groups[0]["params"][0].grad = gW.clone()
            o.step()
        qW.grad = gW.clone()
        ref.step()
        hyp_(qW, gW, options.get("lr", LR), ALPHA, BETA, options.get("maximize", False))
    for o in [opt] + copies:
        torch.testing.assert_close(o.param_groups[0]["params"][0], qW, rtol=1e-12, atol=1e-13)


@pytest.mark.parametrize("way", WAYS)
@pytest.mark.parametrize("key,value", [("ham_alpha", -1.0), ("ham_beta", float("nan")), ("ham", "yes"),
                                       ("ham_max_exponent", 0.0), ("ham_alpah", 1.0)])
def test_loaded_knobs_are_validated_before_anything_changes(way, key, value):
    pW = torch.nn.Parameter(torch.randn(3, 3))
    opt = make(way, "adam", {}, [pW])
    pW.grad = torch.randn(3, 3)
    opt.step()
    sd = copy.deepcopy(opt.state_dict())
    sd["param_groups"][0][key] = value
    sd["param_groups"][0]["lr"] = 123.0
    before = copy.deepcopy(opt.state_dict())
    with pytest.raises(ValueError, match=key) as info:
        opt.load_state_dict(sd)
    assert "\n" not in str(info.value)
    after = opt.state_dict()
    assert after["param_groups"] == before["param_groups"]
    assert torch.equal(after["state"][0]["exp_avg"], before["state"][0]["exp_avg"])


def test_state_dict_of_a_plain_base_loads_into_ham_with_its_defaults():
    pW = torch.nn.Parameter(torch.randn(3, 3))
    sd = torch.optim.SGD([pW], lr=0.1).state_dict()
    opt = HAM(torch.optim.SGD([pW], lr=0.1), alpha=7.0)
    opt.load_state_dict(sd)
    assert opt.param_groups[0]["ham_alpha"] == 7.0 and opt.param_groups[0]["ham"] == "auto"


# ---------------------------------------------------------------- refuse before anything changes
def embedding_grads(sparse, seed=0):
    torch.manual_seed(seed)
    emb = torch.nn.Embedding(10, 3, sparse=sparse)
    emb(torch.tensor([1, 2, 2, 7])).pow(2).sum().backward()
    return emb


@pytest.mark.parametrize("way", ["HAM", "attach_ham"])
def test_sparse_gradients_are_refused_before_the_base_step(way):
    emb = embedding_grads(sparse=True)
    dense = torch.nn.Parameter(torch.randn(3, 3))
    dense.grad = torch.randn(3, 3)
    base = torch.optim.Adagrad([{"params": [dense]}, {"params": [emb.weight]}], lr=0.1)
    opt = HAM(base, alpha=5.0) if way == "HAM" else (attach_ham(base, alpha=5.0), base)[1]
    before = [dense.detach().clone(), emb.weight.detach().clone()]
    state_before = copy.deepcopy(base.state_dict()["state"])
    with pytest.raises(ValueError, match="sparse") as info:
        opt.step()
    assert "\n" not in str(info.value) and "ham=False" in str(info.value)
    assert torch.equal(dense, before[0]) and torch.equal(emb.weight, before[1])  # no group stepped
    after = base.state_dict()["state"]
    assert all(torch.equal(after[k]["sum"], state_before[k]["sum"]) for k in state_before)


@pytest.mark.parametrize("way", ["HAM", "attach_ham", "build_optimizer"])
@pytest.mark.parametrize("name", ["sparseadam", "adagrad"])
def test_alpha_beta_zero_with_sparse_gradients_is_the_base_exactly(way, name):
    emb, twin = embedding_grads(sparse=True), embedding_grads(sparse=True)
    opt = make(way, name, {"lr": 0.1}, [emb.weight], alpha=0.0, beta=0.0)
    ref = plain(name, {"lr": 0.1}, [twin.weight])
    for _ in range(2):
        opt.step()
        ref.step()
    assert torch.equal(emb.weight, twin.weight) and not torch.equal(emb.weight, embedding_grads(True).weight)


def test_sparse_parameters_in_a_ham_false_group_train_with_the_base():
    emb, twin = embedding_grads(sparse=True), embedding_grads(sparse=True)
    W, Wt = torch.nn.Parameter(torch.ones(2, 2)), torch.nn.Parameter(torch.ones(2, 2))
    W.grad, Wt.grad = torch.full((2, 2), 0.5), torch.full((2, 2), 0.5)
    opt = HAM(torch.optim.Adagrad([{"params": [W]}, {"params": [emb.weight], "ham": False}], lr=0.1), alpha=3.0,
              beta=0.0)
    ref = torch.optim.Adagrad([{"params": [Wt]}, {"params": [twin.weight]}], lr=0.1)
    opt.step()
    ref.step()
    assert torch.equal(emb.weight, twin.weight)
    hyp_(Wt, torch.full((2, 2), 0.5), 0.1, 3.0, 0.0)
    torch.testing.assert_close(W, Wt)


COMPLEX_CASES = [(n, o) for n, o in CASES if n != "adafactor" and not o.get("fused")]  # torch: no complex there


@pytest.mark.parametrize("way", WAYS)
@pytest.mark.parametrize("name,options", COMPLEX_CASES, ids=[f"{n}-{'-'.join(o)}" for n, o in COMPLEX_CASES])
def test_complex_parameters_step_like_their_real_view(way, name, options):
    gen = torch.Generator().manual_seed(3)
    Z = torch.randn(4, 3, dtype=torch.complex128, generator=gen)
    grads = [torch.randn(4, 3, dtype=torch.complex128, generator=gen) for _ in range(3)]
    pz, pr = torch.nn.Parameter(Z.clone()), torch.nn.Parameter(torch.view_as_real(Z).clone())
    opt_z, opt_r = make(way, name, options, [pz]), make(way, name, options, [pr])
    for g in grads:
        pz.grad, pr.grad = g.clone(), torch.view_as_real(g).clone()
        opt_z.step()
        opt_r.step()
    torch.testing.assert_close(torch.view_as_real(pz.detach()), pr.detach(), rtol=1e-12, atol=1e-13)
    assert not torch.equal(pz.detach(), Z)


@pytest.mark.parametrize("way", ["HAM", "attach_ham", "build_optimizer"])
def test_differentiable_and_lbfgs_bases_are_refused_at_construction(way):
    p = torch.nn.Parameter(torch.randn(2, 2))
    for name, options, match in (("sgd", {"differentiable": True}, "differentiable"), ("lbfgs", {}, "LBFGS")):
        if way == "build_optimizer":
            with pytest.raises(ConfigError, match=match):
                build_optimizer([p], name, lr=0.1, **options)
            continue
        base = optimizer_class(name)([p], lr=0.1, **options)
        groups_before = copy.deepcopy(base.state_dict()["param_groups"])
        with pytest.raises(ValueError, match=match) as info:
            HAM(base) if way == "HAM" else attach_ham(base)
        assert "\n" not in str(info.value)
        assert base.state_dict()["param_groups"] == groups_before  # nothing written


# ---------------------------------------------------------------- attach_ham idempotent, new settings win
def sgd_param(W):
    p = torch.nn.Parameter(W.clone())
    return p, torch.optim.SGD([p], lr=0.1)


def expected_sgd(W, g, alpha, beta):
    w = W - 0.1 * g
    hyp_(w, g, 0.1, alpha, beta)
    return w


def test_attach_twice_steps_once_and_new_settings_win():
    W, _, grads = tensors(steps=1)
    g = grads[0][0]
    p, opt = sgd_param(W)
    first = attach_ham(opt, alpha=20.0, beta=0.0)
    attach_ham(opt, alpha=5.0)
    p.grad = g.clone()
    opt.step()
    torch.testing.assert_close(p.detach(), expected_sgd(W, g, 5.0, 0.0))  # once, with the new alpha
    first.remove()  # the older handle detaches the single hook too
    W1 = p.detach().clone()
    opt.step()
    torch.testing.assert_close(p.detach(), W1 - 0.1 * g)


def test_reattach_after_remove_uses_the_new_alpha_and_default_arguments_keep_old_ones():
    W, _, grads = tensors(steps=1)
    g = grads[0][0]
    p, opt = sgd_param(W)
    attach_ham(opt, alpha=20.0, beta=0.0).remove()
    attach_ham(opt, alpha=5.0)
    attach_ham(opt)  # nothing given: keeps alpha=5, beta=0
    p.grad = g.clone()
    opt.step()
    torch.testing.assert_close(p.detach(), expected_sgd(W, g, 5.0, 0.0))


def test_ham_on_a_base_with_ham_keys_uses_the_given_values_and_steps_once():
    W, _, grads = tensors(steps=1)
    g = grads[0][0]
    p, base = sgd_param(W)
    HAM(base, alpha=20.0, beta=0.0)
    attach_ham(base, beta=0.0)
    opt = HAM(base, alpha=5.0)
    p.grad = g.clone()
    opt.step()
    torch.testing.assert_close(p.detach(), expected_sgd(W, g, 5.0, 0.0))


@pytest.mark.parametrize("way", ["HAM", "attach_ham"])
def test_values_a_user_put_in_a_group_win_over_arguments(way):
    W, _, grads = tensors(steps=1)
    g = grads[0][0]
    p, q = torch.nn.Parameter(W.clone()), torch.nn.Parameter(W.clone())
    base = torch.optim.SGD([{"params": [p], "ham_alpha": 3.0}, {"params": [q]}], lr=0.1)
    attach_ham(base, alpha=20.0, beta=0.0)  # an earlier HAM: defaults alpha=20
    HAM(base, alpha=5.0) if way == "HAM" else attach_ham(base, alpha=5.0)
    assert [grp["ham_alpha"] for grp in base.param_groups] == [3.0, 5.0]
    p.grad, q.grad = g.clone(), g.clone()
    base.step()
    torch.testing.assert_close(p.detach(), expected_sgd(W, g, 3.0, 0.0))
    torch.testing.assert_close(q.detach(), expected_sgd(W, g, 5.0, 0.0))


def test_post_hooks_registered_before_attach_see_the_weights_before_the_hyperbolic_step():
    W, _, grads = tensors(steps=1)
    g = grads[0][0]
    p, opt = sgd_param(W)
    seen = []
    opt.register_step_post_hook(lambda *a: seen.append(p.detach().clone()))
    attach_ham(opt, alpha=5.0, beta=0.0)
    p.grad = g.clone()
    opt.step()
    torch.testing.assert_close(seen[0], W - 0.1 * g)
    torch.testing.assert_close(p.detach(), expected_sgd(W, g, 5.0, 0.0))


# ---------------------------------------------------------------- one name per knob
def test_group_alpha_is_refused_for_a_base_without_that_option():
    model = torch.nn.Linear(3, 2)
    with pytest.raises(ValueError, match="ham_alpha") as info:
        HAM(torch.optim.SGD(ham_param_groups(model, alpha=20.0), lr=0.1))
    assert "\n" not in str(info.value)
    with pytest.raises(ConfigError, match="ham_beta"):
        build_optimizer(ham_param_groups(model, beta=0.5), "adam")
    with pytest.raises(ConfigError, match="ham_alpha"):
        build_optimizer(ham_param_groups(model, alpha=20.0), "adamw", ham=False)
    base = torch.optim.SGD(model.parameters(), lr=0.1)
    with pytest.raises(ValueError, match="ham_alpha"):
        attach_ham(base)
        base.add_param_group({"params": [torch.nn.Parameter(torch.ones(1))], "alpha": 2.0})
        base.step()


def test_ham_alpha_in_groups_is_hams_and_rmsprop_alpha_is_rmsprops():
    W, _, grads = tensors(steps=1)
    g = grads[0][0]
    p, q = torch.nn.Parameter(W.clone()), torch.nn.Parameter(W.clone())
    opt = build_optimizer(ham_param_groups([("w", p)], ham_alpha=4.0, alpha=0.5), "rmsprop", lr=0.01, beta=0.0)
    ref = torch.optim.RMSprop([q], lr=0.01, alpha=0.5)
    p.grad, q.grad = g.clone(), g.clone()
    opt.step()
    ref.step()
    hyp_(q, g, 0.01, 4.0, 0.0)
    torch.testing.assert_close(p, q, rtol=1e-12, atol=1e-13)
    assert math.isfinite(float(p.detach().sum()))


def test_a_predicate_returning_ints_gives_boolean_ham_flags():
    model = torch.nn.Sequential(torch.nn.Linear(3, 3), torch.nn.Linear(3, 2))
    groups = ham_param_groups(model, select=lambda n, p: int(n.startswith("0.")), decay=lambda n, p: 0)
    assert sorted(g["ham"] for g in groups) == [False, True]
    opt = build_optimizer(groups, "sgd", lr=0.1, alpha=3.0, beta=0.0)  # ham=0 is not an accepted mode
    x = torch.randn(4, 3)
    model(x).sum().backward()
    w1 = model[1].weight.detach().clone()
    opt.step()
    torch.testing.assert_close(model[1].weight.detach(), w1 - 0.1 * model[1].weight.grad)  # no HAM there


def test_hooks_follow_torch_s_own_hook_tests_on_a_ham_wrapper():
    """torch's test_optim.py hook cases (pre-hook returning new arguments, pre/post order with
    global hooks, removal) against HAM, and a hook on the base still receiving the base."""
    p = torch.nn.Parameter(torch.ones(2, 2))
    base = torch.optim.SGD([p], lr=0.1)
    opt = HAM(base, alpha=1.0, beta=0.0)
    order, got = [], []

    def pre_hook(o, args, kwargs):
        order.append(1)
        return args, kwargs  # torch allows a pre-hook to hand back (args, kwargs)

    handles = [register_optimizer_step_pre_hook(lambda *a: order.append(0)), opt.register_step_pre_hook(pre_hook),
               opt.register_step_post_hook(lambda *a: order.append(3)),
               register_optimizer_step_post_hook(lambda *a: order.append(4)),
               base.register_step_post_hook(lambda o, *a: (order.append(2), got.append(o)))]
    try:
        p.grad = torch.ones(2, 2)
        assert opt.step(lambda: 7.0) == 7.0  # the closure's loss comes back through the hooks
        assert order == [0, 1, 2, 3, 4] and got == [base]
        for h in handles[:2]:
            h.remove()
        opt.step()
        assert order == [0, 1, 2, 3, 4, 2, 3, 4]
    finally:
        for h in handles:
            h.remove()


def test_base_step_relies_on_torch_s_hook_registries():
    """HAM runs the base's unwrapped step and its own hook registries (private torch names): pin them."""
    from torch.optim.optimizer import Optimizer

    base = torch.optim.SGD([torch.nn.Parameter(torch.ones(2))], lr=0.1)
    assert hasattr(type(base).step, "__wrapped__") and getattr(type(base).step, "hooked", False)
    assert isinstance(base._optimizer_step_pre_hooks, dict) and isinstance(base._optimizer_step_post_hooks, dict)
    assert callable(Optimizer.profile_hook_step) and callable(base._optimizer_step_code)
