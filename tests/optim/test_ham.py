"""HAM wrapper: one step against hand-written formulas, and torch.optim conventions."""
import subprocess
import sys
import textwrap

import pytest
import torch

from pyg_ham import HAM, attach_ham, build_optimizer
from pyg_ham.optim import ham_param_groups


@pytest.fixture(autouse=True)
def default_float64():
    """Exact comparisons in float64 here; the default dtype is restored for other modules."""
    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    yield
    torch.set_default_dtype(previous)


def hyp(w, g, lr, alpha, beta, bound=5.0):
    """The hyperbolic half-step, written out independently of pyg_ham (exponent clamped to
    ±bound, the default clamp; bound=None: the paper's unclamped update)."""
    e = -lr * (alpha * torch.sign(w) * g + beta)
    return w * torch.exp(e if bound is None else e.clamp(-bound, bound))


def make_params(seed=0):
    gen = torch.Generator().manual_seed(seed)
    W = torch.randn(4, 3, generator=gen)
    b = torch.randn(3, generator=gen)
    gW = torch.randn(4, 3, generator=gen)
    gb = torch.randn(3, generator=gen)
    return W, b, gW, gb


def one_step(opt_factory, alpha, beta, W, b, gW, gb):
    pW, pb = torch.nn.Parameter(W.clone()), torch.nn.Parameter(b.clone())
    opt = HAM(opt_factory([pW, pb]), alpha=alpha, beta=beta)
    pW.grad, pb.grad = gW.clone(), gb.clone()
    opt.step()
    return pW.detach(), pb.detach()


@pytest.mark.parametrize("alpha,beta", [(200.0, 1e-3), (10.0, 0.1)])
def test_sgd_momentum_one_step_matches_formula(alpha, beta):
    W, b, gW, gb = make_params()
    lr, wd = 0.05, 0.01
    newW, newb = one_step(lambda p: torch.optim.SGD(p, lr=lr, momentum=0.9, weight_decay=wd), alpha, beta, W, b, gW, gb)
    # first SGD step: buf = g + wd*w; w' = w - lr*buf
    W1 = W - lr * (gW + wd * W)
    b1 = b - lr * (gb + wd * b)
    torch.testing.assert_close(newW, hyp(W1, gW, lr, alpha, beta), rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(newb, b1, rtol=1e-12, atol=1e-12)  # 1-D: no hyperbolic step


def test_default_clamp_and_unclamped_update():
    W, b, gW, gb = make_params(2)
    gW = 10 * gW  # lr * alpha * |g| well above 5 for most entries
    clamped, _ = one_step(lambda p: torch.optim.SGD(p, lr=0.05), 200.0, 0.0, W, b, gW, gb)
    assert (0.05 * 200.0 * (gW).abs() > 5).float().mean() > 0.5
    torch.testing.assert_close(clamped, hyp(W - 0.05 * gW, gW, 0.05, 200.0, 0.0, bound=5.0), rtol=1e-12, atol=0)
    pW = torch.nn.Parameter(W.clone())
    opt = HAM(torch.optim.SGD([pW], lr=0.05), alpha=200.0, beta=0.0, max_exponent=None)
    pW.grad = gW.clone()
    opt.step()
    torch.testing.assert_close(pW.detach(), hyp(W - 0.05 * gW, gW, 0.05, 200.0, 0.0, bound=None), rtol=1e-12, atol=0)


@pytest.mark.parametrize("decoupled", [False, True])
def test_adam_and_adamw_one_step_match_formula(decoupled):
    W, b, gW, gb = make_params(1)
    lr, wd, b1_, b2_, eps = 1e-2, 0.1, 0.9, 0.999, 1e-8
    alpha, beta = 50.0, 1e-2
    cls = torch.optim.AdamW if decoupled else torch.optim.Adam
    newW, _ = one_step(lambda p: cls(p, lr=lr, weight_decay=wd, betas=(b1_, b2_), eps=eps), alpha, beta, W, b, gW, gb)
    g = gW if decoupled else gW + wd * W
    w = W * (1 - lr * wd) if decoupled else W
    m, v = (1 - b1_) * g, (1 - b2_) * g * g
    mhat, vhat = m / (1 - b1_), v / (1 - b2_)
    W1 = w - lr * mhat / (vhat.sqrt() + eps)
    # the hyperbolic step uses the raw gradient gW, not Adam's direction nor g + wd*W
    torch.testing.assert_close(newW, hyp(W1, gW, lr, alpha, beta), rtol=1e-11, atol=1e-12)


@pytest.mark.parametrize("name,kwargs", [("sgd", {"momentum": 0.9, "nesterov": True}), ("adam", {}), ("adamw", {}),
                                         ("rmsprop", {})])
def test_alpha_beta_zero_is_the_base_bit_for_bit(name, kwargs):
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(5, 7), torch.nn.ReLU(), torch.nn.Linear(7, 2))
    twin = torch.nn.Sequential(torch.nn.Linear(5, 7), torch.nn.ReLU(), torch.nn.Linear(7, 2))
    twin.load_state_dict(model.state_dict())
    ham = build_optimizer(model, name, lr=0.01, weight_decay=0.01, alpha=0.0, beta=0.0, **kwargs)
    base = build_optimizer(twin, name, lr=0.01, weight_decay=0.01, ham=False, **kwargs)
    x = torch.randn(32, 5)
    for _ in range(5):
        for m, opt in ((model, ham), (twin, base)):
            opt.zero_grad()
            m(x).pow(2).mean().backward()
            opt.step()
    for p, q in zip(model.parameters(), twin.parameters()):
        assert torch.equal(p, q)


def test_only_selected_tensors_get_the_hyperbolic_step():
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(5, 7), torch.nn.LayerNorm(7), torch.nn.Linear(7, 2))
    twin = torch.nn.Sequential(torch.nn.Linear(5, 7), torch.nn.LayerNorm(7), torch.nn.Linear(7, 2))
    twin.load_state_dict(model.state_dict())
    x = torch.randn(16, 5)
    for m in (model, twin):
        m(x).pow(2).mean().backward()
    build_optimizer(model, "sgd", lr=0.1, alpha=10.0, beta=0.1).step()
    build_optimizer(twin, "sgd", lr=0.1, ham=False).step()
    changed = {n for (n, p), q in zip(model.named_parameters(), twin.parameters()) if not torch.equal(p, q)}
    assert changed == {"0.weight", "2.weight"}


def test_selection_overrides_by_pattern_and_predicate():
    model = torch.nn.Sequential(torch.nn.Embedding(10, 4), torch.nn.Linear(4, 4), torch.nn.LayerNorm(4))
    groups = ham_param_groups(model, 0.1, exclude="0.*")
    ham = {n for g in groups if g["ham"] for n in g["param_names"]}
    assert ham == {"1.weight"}
    groups = ham_param_groups(model, 0.1, select=lambda n, p: n.startswith("2."))
    assert {n for g in groups if g["ham"] for n in g["param_names"]} == {"2.weight", "2.bias"}
    decayed = {n for g in groups if g["weight_decay"] > 0 for n in g["param_names"]}
    assert decayed == {"0.weight", "1.weight"}


def test_auto_mode_on_plain_base_selects_matrices_and_explicit_true_selects_all():
    W, b, gW, gb = make_params()
    pW, pb = torch.nn.Parameter(W.clone()), torch.nn.Parameter(b.clone())
    groups = [{"params": [pW]}, {"params": [pb], "ham": True, "ham_alpha": 5.0, "ham_beta": 0.0}]
    opt = HAM(torch.optim.SGD(groups, lr=0.1),
              alpha=1.0, beta=0.0)
    pW.grad, pb.grad = gW, gb
    opt.step()
    torch.testing.assert_close(pW.detach(), hyp(W - 0.1 * gW, gW, 0.1, 1.0, 0.0))
    torch.testing.assert_close(pb.detach(), hyp(b - 0.1 * gb, gb, 0.1, 5.0, 0.0))  # per-group alpha


def test_shares_groups_state_and_defaults_with_base():
    p = torch.nn.Parameter(torch.randn(3, 3))
    base = torch.optim.Adam([p], lr=0.1)
    opt = HAM(base)
    assert opt.param_groups is base.param_groups and opt.state is base.state and opt.defaults is base.defaults
    q = torch.nn.Parameter(torch.randn(2, 2))
    opt.add_param_group({"params": [q], "ham_alpha": 3.0})
    assert base.param_groups[1]["ham_alpha"] == 3.0 and base.param_groups[1]["ham_beta"] == 1e-3
    opt.load_state_dict(opt.state_dict())
    assert opt.param_groups is base.param_groups


def test_step_closure_returns_loss_and_zero_grad():
    p = torch.nn.Parameter(torch.ones(2, 2))
    opt = build_optimizer([p], "sgd", lr=0.1)

    def closure():
        opt.zero_grad()
        loss = (p ** 2).sum()
        loss.backward()
        return loss

    assert opt.step(closure).item() == pytest.approx(4.0)
    opt.zero_grad(set_to_none=True)
    assert p.grad is None
    p.grad = torch.ones_like(p)
    opt.zero_grad(set_to_none=False)
    assert torch.equal(p.grad, torch.zeros_like(p))


def test_maximize_flips_the_hyperbolic_gradient_too():
    W, b, gW, gb = make_params()
    pW = torch.nn.Parameter(W.clone())
    opt = HAM(torch.optim.SGD([pW], lr=0.1, maximize=True), alpha=2.0, beta=0.0)
    pW.grad = gW.clone()
    opt.step()
    torch.testing.assert_close(pW.detach(), hyp(W + 0.1 * gW, -gW, 0.1, 2.0, 0.0))


@pytest.mark.parametrize("make_scheduler", [
    lambda o: torch.optim.lr_scheduler.StepLR(o, step_size=1, gamma=0.5),
    lambda o: torch.optim.lr_scheduler.ReduceLROnPlateau(o, factor=0.5, patience=0),
])
def test_schedulers_change_the_lr_of_both_half_steps(make_scheduler):
    W, b, gW, gb = make_params()
    pW = torch.nn.Parameter(W.clone())
    opt = HAM(torch.optim.SGD([pW], lr=0.2), alpha=3.0, beta=0.1)
    sched = make_scheduler(opt)
    plateau = isinstance(sched, torch.optim.lr_scheduler.ReduceLROnPlateau)
    if plateau:
        sched.step(0.0)  # the best value; every later (worse) value halves the lr
    expected = W.clone()
    for lr in (0.2, 0.1, 0.05):
        pW.grad = gW.clone()
        opt.step()
        expected = hyp(expected - lr * gW, gW, lr, 3.0, 0.1)
        sched.step(1.0) if plateau else sched.step()
    torch.testing.assert_close(pW.detach(), expected)


def test_attach_ham_hook_equals_wrapper_and_can_be_removed():
    W, b, gW, gb = make_params()
    p1, p2 = torch.nn.Parameter(W.clone()), torch.nn.Parameter(W.clone())
    wrapped = HAM(torch.optim.Adam([p1], lr=0.01), alpha=20.0, beta=0.01)
    hooked = torch.optim.Adam([p2], lr=0.01)
    handle = attach_ham(hooked, alpha=20.0, beta=0.01)
    for _ in range(3):
        p1.grad, p2.grad = gW.clone(), gW.clone()
        wrapped.step()
        hooked.step()
    assert torch.equal(p1, p2)
    handle.remove()
    plain = torch.nn.Parameter(p2.detach().clone())
    ref = torch.optim.Adam([plain], lr=0.01)
    ref.load_state_dict(hooked.state_dict())
    p2.grad, plain.grad = gW.clone(), gW.clone()
    hooked.step()
    ref.step()
    torch.testing.assert_close(p2, plain, rtol=1e-13, atol=1e-14)  # plain Adam again


def test_state_dict_roundtrip_in_fresh_process(tmp_path):
    """Train 3 steps, save; a fresh process with a fresh wrapper continues identically."""
    script = textwrap.dedent("""
        import sys, torch
        from pyg_ham import build_optimizer
        torch.manual_seed(0)
        model = torch.nn.Sequential(torch.nn.Linear(6, 8), torch.nn.Tanh(), torch.nn.Linear(8, 3))
        opt = build_optimizer(model, "adamw", lr=0.01, weight_decay=0.1, alpha=30.0, beta=0.01)
        sched = torch.optim.lr_scheduler.ExponentialLR(opt, 0.9)
        x = torch.randn(20, 6, generator=torch.Generator().manual_seed(1))
        def train(k):
            for _ in range(k):
                opt.zero_grad(); model(x).pow(2).mean().backward(); opt.step(); sched.step()
        path, mode = sys.argv[1], sys.argv[2]
        if mode == "save":
            train(3)
            opt.param_groups[0]["ham_alpha"] = 7.0  # a per-group knob changed at run time is saved
            state = {"model": model.state_dict(), "opt": opt.state_dict(), "sched": sched.state_dict()}
            torch.save(state, path + "/ckpt.pt")
            train(4)
        else:
            ck = torch.load(path + "/ckpt.pt")
            model.load_state_dict(ck["model"]); opt.load_state_dict(ck["opt"]); sched.load_state_dict(ck["sched"])
            assert opt.param_groups[0]["ham_alpha"] == 7.0 and opt.param_groups is opt.base.param_groups
            train(4)
        torch.save(model.state_dict(), path + "/" + mode + ".pt")
    """)
    (tmp_path / "s.py").write_text(script)
    for mode in ("save", "load"):
        subprocess.run([sys.executable, str(tmp_path / "s.py"), str(tmp_path), mode], check=True)
    a, b = torch.load(tmp_path / "save.pt"), torch.load(tmp_path / "load.pt")
    assert all(torch.equal(a[k], b[k]) for k in a)


@pytest.mark.parametrize("fused", [False, True])
def test_grad_scaler_uses_unscaled_grads_and_skips_inf_steps(fused):
    torch.set_default_dtype(torch.float32)  # the fixture restores the default afterwards
    W = torch.randn(4, 3)
    W[0, 0] = 0.0  # a pruned weight (zero gradient: Adam leaves it) must stay zero, never NaN
    g = torch.randn(4, 3)
    g[0, 0] = 0.0
    p_ref, p_amp = torch.nn.Parameter(W.clone()), torch.nn.Parameter(W.clone())
    ref = HAM(torch.optim.Adam([p_ref], lr=0.01), alpha=20.0, beta=0.01)
    amp = HAM(torch.optim.Adam([p_amp], lr=0.01, fused=fused), alpha=20.0, beta=0.01)
    scaler = torch.amp.GradScaler("cpu", init_scale=2.0 ** 10)
    # a normal step: same result as without scaling
    p_ref.grad = g.clone()
    ref.step()
    scaler.scale((p_amp * g).sum()).backward()
    scaler.step(amp)
    scaler.update()
    torch.testing.assert_close(p_amp.detach(), p_ref.detach(), rtol=1e-5, atol=1e-6)
    # an inf step: both half-steps are skipped, zeros stay zero, nothing turns NaN
    before = p_amp.detach().clone()
    amp.zero_grad()
    scaler.scale((p_amp * float("inf")).sum()).backward()
    scaler.step(amp)
    scaler.update()
    assert torch.equal(p_amp.detach(), before)
    assert p_amp[0, 0].item() == 0.0 and torch.isfinite(p_amp).all()
    assert scaler.get_scale() == 2.0 ** 9


def test_torch_compile_matches_eager_and_does_not_recompile_per_scheduler_step():
    torch._dynamo.reset()
    torch.set_default_dtype(torch.float32)  # the fixture restores the default afterwards
    torch.manual_seed(0)
    models = [torch.nn.Sequential(torch.nn.Linear(6, 8), torch.nn.Tanh(), torch.nn.Linear(8, 3)) for _ in range(2)]
    models[1].load_state_dict(models[0].state_dict())
    opts = [build_optimizer(m, "adamw", lr=torch.tensor(0.01), weight_decay=0.01, alpha=30.0, beta=0.01)
            for m in models]
    scheds = [torch.optim.lr_scheduler.ExponentialLR(o, 0.9) for o in opts]
    x = torch.randn(20, 6)

    def train_step(model, opt):
        opt.zero_grad()
        loss = model(x).pow(2).mean()
        loss.backward()
        opt.step()
        return loss

    compiled = torch.compile(train_step, backend="aot_eager")
    counter = torch._dynamo.utils.counters
    counter.clear()
    for _ in range(4):
        train_step(models[0], opts[0])
        compiled(models[1], opts[1])
        for s in scheds:
            s.step()
    for p, q in zip(models[0].parameters(), models[1].parameters()):
        torch.testing.assert_close(p, q, rtol=1e-5, atol=1e-6)
    # compiled once (plus graph breaks), not once per learning-rate value
    assert counter["stats"]["unique_graphs"] <= 4


@pytest.mark.parametrize("kwargs,match", [
    ({"alpha": float("nan")}, "alpha"), ({"alpha": -1.0}, "alpha"), ({"beta": -1e-3}, "beta"),
    ({"beta": float("inf")}, "beta"), ({"ham": "yes"}, "ham"), ({"max_exponent": 0}, "max_exponent"),
    ({"implementation": "cuda"}, "implementation"),
])
def test_bad_ham_arguments_are_named(kwargs, match):
    p = torch.nn.Parameter(torch.randn(2, 2))
    with pytest.raises(ValueError, match=match):
        HAM(torch.optim.SGD([p], lr=0.1), **kwargs)


def test_base_must_be_an_optimizer():
    with pytest.raises(TypeError, match="torch.optim.Optimizer"):
        HAM([torch.nn.Parameter(torch.randn(2, 2))])


# --- HAM that would step nothing says so, instead of being the base optimizer silently ---------

def _vector(n=4):
    return torch.nn.Parameter(torch.randn(n))


@pytest.mark.parametrize("wrap", ["HAM", "attach_ham"])
def test_ham_that_selects_no_tensor_is_one_error_line_and_changes_nothing(wrap):
    from pyg_ham.errors import ConfigError

    base = torch.optim.SGD([_vector(), _vector(2)], lr=0.1)  # biases only: ham="auto" picks none
    before = [dict(g) for g in base.param_groups]
    with pytest.raises(ConfigError) as info:
        (HAM if wrap == "HAM" else attach_ham)(base)
    assert str(info.value) == (f"{wrap}: HAM is on but selects no tensor (2 parameter(s) with ndim < 2 in ham='auto' "
                               f"groups (it steps tensors with ndim >= 2: weight matrices)); give the optimizer the "
                               f"weight matrices, select them (ham=True in their param group), or leave HAM off")
    assert base.param_groups == before and "ham" not in base.defaults  # nothing was written
    # every group with ham=False (a selector that matched nothing) is the same silent no-op
    groups = [{"params": [torch.nn.Parameter(torch.randn(3, 3))], "ham": False}, {"params": [_vector()]}]
    with pytest.raises(ConfigError, match=r"selects no tensor \(1 parameter\(s\) with ndim < 2 in ham='auto' "
                                          r"groups .*; 1 parameter\(s\) in groups with ham=False\)"):
        HAM(torch.optim.SGD(groups, lr=0.1))


def test_ham_that_is_off_on_purpose_or_selects_something_is_accepted():
    HAM(torch.optim.SGD([_vector()], lr=0.1), ham=True)  # every tensor, biases too
    HAM(torch.optim.SGD([_vector()], lr=0.1), ham=False)  # off, as asked
    HAM(torch.optim.SGD([_vector()], lr=0.1), alpha=0.0, beta=0.0)  # exactly the base, as asked
    HAM(torch.optim.SGD([{"params": [_vector()]}, {"params": [torch.nn.Parameter(torch.randn(2, 3))]}], lr=0.1))


def test_fsdp1_use_orig_params_views_are_refused_by_name():
    """FSDP1 with use_orig_params=True marks the original parameters (``_fsdp_flattened``) whose
    data it makes 1-D views of the rank's shard (tests/optim/test_fsdp.py checks real FSDP1)."""
    from pyg_ham.errors import ConfigError

    view = torch.nn.Parameter(torch.randn(12))  # a 3x4 weight's shard, as FSDP1 hands it out
    view._fsdp_flattened = True
    for wrap in (HAM, attach_ham):
        with pytest.raises(ConfigError, match=r"param group 0 holds FSDP1 \(FullyShardedDataParallel\) parameters "
                                              r"with use_orig_params=True.*fully_shard"):
            wrap(torch.optim.SGD([view, torch.nn.Parameter(torch.randn(3, 3))], lr=0.1))
