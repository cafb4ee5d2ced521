"""The one pass of a fused base and HAM (pyg_ham.optim.fused_base) against two passes.

References: torch's own fused base step followed by HAM's separate step from identical state
(float32: |diff| <= 1e-6 |ref| + 1e-7 max|ref| for the weights and every state tensor, one step and
20 steps); for float16/bfloat16 a float64 reference of "base step, then HAM step" written out here
from the formulas (the one pass is within 1 ULP of the storage dtype of it, every step of 20, from
identical state each step; torch's own fused low-precision base steps are not: its fused SGD
rounds ``lr * grad`` in float16).
"""
import copy
import math
import warnings

import pytest
import torch

from pyg_ham.optim import HAM, attach_ham, fused_base, track_exponents
from pyg_ham.optim import functional as F
from pyg_ham.optim.fused_base import one_pass_refusal

ALPHA, BETA, BOUND = 200.0, 1e-3, 5.0


@pytest.fixture(autouse=True)
def one_pass_for_small_tensors(monkeypatch):
    """The one pass on these small test tensors (by default it starts at ONE_PASS_MIN_NUMEL)."""
    monkeypatch.setattr(fused_base, "ONE_PASS_MIN_NUMEL", 0)

# Options that change the compiled pass (one signature each) in the fast suite; the single options
# one at a time in the slow one.
FAST = [
    ("AdamW", {}),
    ("AdamW", {"weight_decay": 0.05, "amsgrad": True, "maximize": True}),
    ("AdamW", {"weight_decay": 0.05, "lr": "tensor"}),
    ("Adam", {"weight_decay": 0.05}),
    ("Adam", {"amsgrad": True, "maximize": True, "weight_decay": 0.05}),
    ("SGD", {}),
    ("SGD", {"momentum": 0.9, "nesterov": True, "weight_decay": 0.01, "maximize": True}),
    ("SGD", {"momentum": 0.9, "dampening": 0.3, "lr": "tensor"}),
]
SINGLE = [
    ("AdamW", {"weight_decay": 0.05}), ("AdamW", {"amsgrad": True}), ("AdamW", {"maximize": True}),
    ("Adam", {}), ("Adam", {"amsgrad": True}), ("Adam", {"maximize": True}),
    ("Adam", {"decoupled_weight_decay": True, "weight_decay": 0.05}), ("Adam", {"lr": "tensor"}),
    ("SGD", {"weight_decay": 0.01}), ("SGD", {"maximize": True}), ("SGD", {"lr": "tensor"}),
    ("SGD", {"momentum": 0.9}), ("SGD", {"momentum": 0.9, "nesterov": True}),
    ("SGD", {"momentum": 0.9, "dampening": 0.3}), ("SGD", {"momentum": 0.9, "maximize": True}),
]


def groups(dtype=torch.float32, seed=0):
    """Two matrices HAM selects and a bias it does not (ham='auto'), and a matrix in a ham=False group."""
    g = torch.Generator().manual_seed(seed)
    shapes = [(37, 19), (5, 3, 3), (19,)]
    first = [torch.nn.Parameter((torch.randn(s, generator=g) * 0.5).to(dtype)) for s in shapes]
    other = [torch.nn.Parameter((torch.randn(7, 4, generator=g) * 0.5).to(dtype))]
    return [{"params": first}, {"params": other, "ham": False}]


def build(name, kw, params, implementation=None):
    kw = dict(kw)
    lr = kw.pop("lr", 1e-3)
    lr = torch.tensor(1e-3) if lr == "tensor" else lr
    base = getattr(torch.optim, name)(params, lr=lr, fused=True, **kw)
    return HAM(base, alpha=ALPHA, beta=BETA, max_exponent=BOUND, implementation=implementation)


def params_of(opt):
    return [p for g in opt.param_groups for p in g["params"]]


def give_grads(opts, step, dtype=torch.float32):
    g = torch.Generator().manual_seed(1000 + step)
    for tensors in zip(*(params_of(o) for o in opts)):
        grad = torch.randn(tensors[0].shape, generator=g).to(dtype)
        for p in tensors:
            p.grad = grad.clone()


def assert_close(actual, ref, scale, what):
    """|diff| <= 1e-6 |ref| + 1e-7 max|w| (w: the reference weight), elementwise."""
    actual, ref = actual.double(), ref.double()
    tol = 1e-6 * ref.abs() + 1e-7 * scale
    assert bool(((actual - ref).abs() <= tol).all()), f"{what}: max |diff| {(actual - ref).abs().max():.3g}"


def assert_same_state(one, two):
    for p, q in zip(params_of(one), params_of(two)):
        scale = q.detach().abs().max().double()
        assert_close(p.detach(), q.detach(), scale, "weight")
        assert one.state[p].keys() == two.state[q].keys()
        for key, value in one.state[p].items():
            assert value.dtype == two.state[q][key].dtype and value.device == two.state[q][key].device
            assert_close(value, two.state[q][key], scale, key)


def compiled_passes():
    return {key[0] for key in F._kernels.kernels}


@pytest.mark.parametrize("steps", [1, 20])
@pytest.mark.parametrize("name,kw", FAST)
def test_one_pass_equals_base_then_ham(name, kw, steps):
    one = build(name, kw, groups())
    two = build(name, kw, groups(), implementation="foreach")  # torch's fused base step, then HAM's
    assert one.two_pass_reason is None
    assert two.two_pass_reason == "implementation='foreach' asks for the separate step"
    for step in range(steps):
        give_grads([one, two], step)
        one.step()
        two.step()
    assert_same_state(one, two)
    assert ("_adam_pass" if name != "SGD" else "_sgd_pass") in compiled_passes()
    moved = params_of(one)[0].detach() - groups()[0]["params"][0].detach()
    assert moved.abs().max() > 1e-4  # it stepped at all


@pytest.mark.slow
@pytest.mark.parametrize("name,kw", SINGLE)
def test_each_single_option_equals_base_then_ham(name, kw):
    test_one_pass_equals_base_then_ham(name, kw, 20)


@pytest.mark.parametrize("name,kw", [("AdamW", {"weight_decay": 0.05}), ("SGD", {"momentum": 0.9})])
def test_alpha_beta_zero_is_the_base_exactly(name, kw):
    one = build(name, kw, groups())
    for g in one.param_groups:
        g["ham_alpha"] = g["ham_beta"] = 0.0
    kw = {k: v for k, v in kw.items()}
    plain = getattr(torch.optim, name)(groups(), lr=1e-3, fused=True, **kw)
    for step in range(5):
        give_grads([one, plain], step)
        one.step()
        plain.step()
    for p, q in zip(params_of(one), params_of(plain)):
        assert torch.equal(p, q)
        for key, value in one.state[p].items():
            assert torch.equal(value, plain.state[q][key])


# --- float16 / bfloat16: within 1 ULP of a float64 "base step, then HAM step" ---------------

def reference_step(name, kw, w, g, state, lr):
    """The base step and HAM's step of one tensor in float64 (state updated in place, float64)."""
    maximize = kw.get("maximize", False)
    d = -g if maximize else g.clone()
    wd = kw.get("weight_decay", 0.0)
    if name == "SGD":
        d = d + wd * w
        mu = kw.get("momentum", 0.0)
        if mu:
            buf = state.get("momentum_buffer")
            buf = d.clone() if buf is None else mu * buf + (1 - kw.get("dampening", 0.0)) * d
            state["momentum_buffer"] = buf
            d = d + mu * buf if kw.get("nesterov", False) else buf
        u = w - lr * d
    else:
        t = state["step"] = state.get("step", 0) + 1
        if name == "AdamW" or kw.get("decoupled_weight_decay", False):
            w = w * (1 - lr * wd)
        else:
            d = d + wd * w
        b1, b2, eps = 0.9, 0.999, 1e-8
        m = state["exp_avg"] = b1 * state.get("exp_avg", torch.zeros_like(w)) + (1 - b1) * d
        v = state["exp_avg_sq"] = b2 * state.get("exp_avg_sq", torch.zeros_like(w)) + (1 - b2) * d * d
        if kw.get("amsgrad", False):
            v = state["max_exp_avg_sq"] = torch.maximum(state.get("max_exp_avg_sq", torch.zeros_like(w)), v)
        u = w - lr / (1 - b1 ** t) * m / (v.sqrt() / math.sqrt(1 - b2 ** t) + eps)
    alpha = -ALPHA if maximize else ALPHA
    e = (-lr * (alpha * torch.sign(u) * g + BETA)).clamp(-BOUND, BOUND)
    return u * torch.exp(e)


def ulp(ref, dtype):
    """The spacing of :obj:`dtype` at |ref| (float64); for values that cancel to nearly zero
    (below 1e-6 max|ref|: the pass computes in float32, a float64 reference does not) at that floor."""
    info = torch.finfo(dtype)
    bits = {torch.float16: 10, torch.bfloat16: 7}[dtype]
    _, exponent = torch.frexp(ref.abs().clamp_min(max(info.tiny, 1e-6 * ref.abs().max().item())))
    return torch.pow(2.0, (exponent - 1 - bits).double())


LOW_PRECISION = [(dtype, name, kw, marks) for dtype in (torch.float16, torch.bfloat16)
                 for name, kw in (("AdamW", {"weight_decay": 0.05}), ("SGD", {"momentum": 0.9}))
                 for marks in [() if (dtype, name) in ((torch.float16, "AdamW"), (torch.bfloat16, "SGD"))
                               else (pytest.mark.slow,)]]


@pytest.mark.parametrize("dtype,name,kw", [pytest.param(d, n, k, marks=m) for d, n, k, m in LOW_PRECISION])
def test_low_precision_within_one_ulp_of_a_float64_reference(dtype, name, kw):
    opt = build(name, kw, [{"params": [torch.nn.Parameter((torch.randn(40, 30) * 0.5).to(dtype))]}])
    (p,) = params_of(opt)
    worst = 0.0
    for step in range(20):
        give_grads([opt], step, dtype)
        w64 = p.detach().double()
        state64 = {k: (v.double() if v.dim() else int(v)) for k, v in opt.state[p].items()}
        ref = reference_step(name, kw, w64, p.grad.double(), state64, 1e-3)
        opt.step()
        assert opt._hook.refusal is None
        for actual, expected in [(p.detach(), ref)] + [(opt.state[p][k], state64[k]) for k in state64
                                                         if isinstance(state64[k], torch.Tensor)]:
            off = ((actual.double() - expected).abs() / ulp(expected, dtype)).max().item()
            worst = max(worst, off)
    assert worst <= 1.0, f"{worst:.2f} ULP"


# --- GradScaler, state dicts, hooks, attach_ham, refusals -------------------------------------

@pytest.mark.parametrize("name,kw", [("AdamW", {"weight_decay": 0.05}), ("SGD", {"momentum": 0.9})])
def test_grad_scaler_unscales_and_skips_like_the_two_passes(name, kw):
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(6, 8), torch.nn.Tanh(), torch.nn.Linear(8, 2))
    twin = copy.deepcopy(model)
    opts = [build(name, kw, m.parameters(), impl) for m, impl in ((model, None), (twin, "foreach"))]
    scalers = [torch.amp.GradScaler("cpu", init_scale=1024.0) for _ in opts]
    x = torch.randn(16, 6)
    for step in range(6):
        for m, opt, scaler in zip((model, twin), opts, scalers):
            opt.zero_grad()
            scaler.scale(m(x).pow(2).mean()).backward()
            if step == 3:  # an inf gradient: GradScaler skips the step
                next(m.parameters()).grad[0, 0] = math.inf
            before = [p.detach().clone() for p in m.parameters()]
            state = copy.deepcopy(opt.state_dict()["state"])
            scaler.step(opt)
            scaler.update()
            if step == 3:
                assert all(torch.equal(a, p) for a, p in zip(before, m.parameters()))
                assert_nested_equal(state, opt.state_dict()["state"])
        assert opts[0]._hook.refusal is None
    assert_same_state(*opts)
    assert scalers[0].get_scale() == scalers[1].get_scale() < 1024.0


def assert_nested_equal(a, b):
    assert a.keys() == b.keys()
    for k in a:
        for key in a[k]:
            assert torch.equal(a[k][key], b[k][key]), key


def test_state_is_torchs_own_both_ways():
    """A plain fused AdamW loads the one pass's state and the one pass loads a plain AdamW's."""
    one, two = build("AdamW", {}, groups()), build("AdamW", {}, groups(), implementation="foreach")
    for step in range(3):
        give_grads([one, two], step)
        one.step()
        two.step()
    plain = torch.optim.AdamW(groups(), lr=1e-3, fused=True)
    with torch.no_grad():
        for p, q in zip(params_of(plain), params_of(one)):
            p.copy_(q)
    plain.load_state_dict(copy.deepcopy(one.state_dict()))  # (torch shares same-device tensors)
    fresh = build("AdamW", {}, groups())
    with torch.no_grad():
        for p, q in zip(params_of(fresh), params_of(two)):
            p.copy_(q)
    fresh.load_state_dict(copy.deepcopy(two.base.state_dict()))
    reference = HAM(plain, implementation="foreach")
    for step in range(3, 6):
        give_grads([fresh, reference, one, two], step)
        for opt in (fresh, reference, one, two):
            opt.step()
    assert_same_state(fresh, two)
    assert_same_state(one, reference)


def test_a_post_hook_registered_before_ham_sees_the_weights_between_the_steps():
    params = groups()
    base = torch.optim.AdamW(params, lr=1e-3, fused=True)
    seen = []
    base.register_step_post_hook(lambda opt, *_: seen.append(opt.param_groups[0]["params"][0].detach().clone()))
    opt = HAM(base, alpha=ALPHA, beta=BETA)
    reason = opt.two_pass_reason
    assert reason is not None and "post-hook" in reason
    plain = torch.optim.AdamW(groups(), lr=1e-3, fused=True)
    give_grads([opt, plain], 0)
    opt.step()
    plain.step()
    assert torch.equal(seen[0], plain.param_groups[0]["params"][0])  # the base step alone
    assert not torch.equal(seen[0], params[0]["params"][0])  # HAM stepped after the hook


def test_refusals_say_why_in_one_line():
    assert "fused=True" in one_pass_refusal(torch.optim.AdamW(groups(), lr=1e-3), None)
    assert "not torch.optim" in one_pass_refusal(torch.optim.RMSprop(groups(), lr=1e-3), None)

    class MyAdamW(torch.optim.AdamW):
        pass

    assert "MyAdamW" in one_pass_refusal(MyAdamW(groups(), lr=1e-3, fused=True), None)
    assert "for-loop" in one_pass_refusal(torch.optim.SGD(groups(), lr=1e-3, fused=True), "for-loop")
    tensor_betas = torch.optim.Adam(groups(), lr=1e-3, fused=True, betas=(torch.tensor(0.9), torch.tensor(0.99)))
    assert "tensor hyper-parameter" in one_pass_refusal(tensor_betas, None)


def test_tensors_the_pass_cannot_take_get_two_passes_in_the_same_step():
    """A non-contiguous weight goes through torch's base step and HAM's separate step."""
    def make(implementation):
        torch.manual_seed(0)
        odd = torch.nn.Parameter(torch.randn(19, 37).t())  # non-contiguous
        plain = torch.nn.Parameter(torch.randn(37, 19))
        return build("AdamW", {}, [{"params": [odd, plain]}], implementation)

    one, two = make(None), make("foreach")
    assert not params_of(one)[0].is_contiguous()
    for step in range(4):
        give_grads([one, two], step)
        one.step()
        two.step()
    assert_same_state(one, two)


def test_attach_ham_takes_the_one_pass_with_a_scheduler_built_before_and_detaches():
    ref = build("AdamW", {}, groups(), implementation="foreach")
    opt = torch.optim.AdamW(groups(), lr=1e-3, fused=True)
    scheds = [torch.optim.lr_scheduler.StepLR(o, 2, gamma=0.5) for o in (opt, ref)]
    handle = attach_ham(opt, alpha=ALPHA, beta=BETA, max_exponent=BOUND)
    record = opt.__dict__["_pyg_ham_hook"]
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no "lr_scheduler.step() before optimizer.step()"
        for step in range(5):
            give_grads([opt, ref], step)
            opt.step()
            ref.step()
            for s in scheds:
                s.step()
    assert record.refusal is None
    assert_same_state(opt, ref)
    copied = copy.deepcopy(opt)  # still HAM attached, still one pass
    assert copied.__dict__["_pyg_ham_hook"].attached
    handle.remove()
    assert "step" not in opt.__dict__ or not hasattr(opt.step, "__func__")
    plain = torch.optim.AdamW(groups(), lr=1e-3, fused=True)
    plain.load_state_dict(copy.deepcopy(opt.state_dict()))
    with torch.no_grad():
        for p, q in zip(params_of(plain), params_of(opt)):
            p.copy_(q)
    give_grads([opt, plain], 9)
    opt.step()
    plain.step()
    for p, q in zip(params_of(opt), params_of(plain)):
        assert torch.equal(p, q)  # detached: the base step alone


def test_diagnostics_in_the_one_pass_equal_the_separate_steps():
    one, two = build("AdamW", {}, groups()), build("AdamW", {}, groups(), implementation="foreach")
    stats = [track_exponents(o) for o in (one, two)]
    for step in range(3):
        give_grads([one, two], step)
        one.step()
        two.step()
    a, b = (s.read() for s in stats)
    assert a.keys() == b.keys() == {"max_step", "clamp_fraction"}
    assert a["max_step"] == pytest.approx(b["max_step"], rel=1e-5)
    assert a["clamp_fraction"] == pytest.approx(b["clamp_fraction"], abs=1e-6)
    assert_same_state(one, two)


def test_the_one_pass_starts_at_its_size_threshold(monkeypatch):
    """Below ONE_PASS_MIN_NUMEL selected elements two passes (the separate step costs less there)."""
    monkeypatch.setattr(fused_base, "ONE_PASS_MIN_NUMEL", 2048 * 2048)
    small = build("AdamW", {}, groups())
    assert "fewer than ONE_PASS_MIN_NUMEL" in small.two_pass_reason
    big = build("AdamW", {}, [{"params": [torch.nn.Parameter(torch.randn(2048, 2048) * 0.02)]}])
    assert big.two_pass_reason is None
    reference = build("AdamW", {}, [{"params": [torch.nn.Parameter(params_of(big)[0].detach().clone())]}],
                      implementation="foreach")
    give_grads([big, reference], 0)
    big.step()
    reference.step()
    assert big._hook.refusal is None
    assert_same_state(big, reference)
