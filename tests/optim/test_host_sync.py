"""HAM's own code makes no host<->device transfer per step, counted on CPU.

On a GPU each of these calls, made from pyg_ham's code, would be a transfer or a sync: building a
tensor from Python data (``torch.tensor``/``as_tensor``/``scalar_tensor``: a host->device copy
when its device is a GPU) and reading a tensor back (``item``, ``float()``, ``int()``, ``bool()``,
``tolist``, ``cpu``, ``numpy``). The counter records each such call whose caller is a file of
the pyg_ham package; the base optimizer's own (torch's) calls are not HAM's and not counted.
``benchmarks/gpu_check.py`` runs the same loop under ``torch.cuda.set_sync_debug_mode("error")``.
"""
import sys
from pathlib import Path

import pytest
import torch

from pyg_ham.optim import HAM, track_exponents

PACKAGE = str(Path(__import__("pyg_ham").__file__).parent)
FACTORIES = ("tensor", "as_tensor", "scalar_tensor")
READS = ("item", "__float__", "__int__", "__bool__", "tolist", "cpu", "numpy")


@pytest.fixture
def transfers(monkeypatch):
    """A list that records (function, pyg_ham file:line) for every transfer-like call from pyg_ham."""
    calls = []

    def counted(name, fn):
        def wrapper(*args, **kwargs):
            caller = sys._getframe(1)
            if caller.f_code.co_filename.startswith(PACKAGE):
                calls.append((name, f"{Path(caller.f_code.co_filename).name}:{caller.f_lineno}"))
            return fn(*args, **kwargs)
        return wrapper

    for name in FACTORIES:
        monkeypatch.setattr(torch, name, counted(name, getattr(torch, name)))
    for name in READS:
        monkeypatch.setattr(torch.Tensor, name, counted(name, getattr(torch.Tensor, name)))
    return calls


def make(implementation, fused_base, lr, stats):
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(16, 32), torch.nn.Tanh(), torch.nn.Linear(32, 4))
    base = torch.optim.AdamW(model.parameters(), lr=lr, **({"fused": True} if fused_base else {"foreach": True}))
    opt = HAM(base, alpha=50.0, beta=1e-3, implementation=implementation)
    if stats:
        track_exponents(opt, every=2)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda step: 1.0 / (1 + step))  # a new lr every step
    return model, opt, sched


def train(model, opt, sched, steps, x):
    for _ in range(steps):
        opt.zero_grad()
        model(x).pow(2).mean().backward()
        opt.step()
        sched.step()


@pytest.mark.parametrize("implementation", ["fused", "foreach", "for-loop", None])
@pytest.mark.parametrize("lr", [0.01, "tensor"])
@pytest.mark.parametrize("stats", [False, True])
def test_no_transfer_in_scheduled_steps_after_warm_up(transfers, implementation, lr, stats):
    lr = torch.tensor(0.01) if lr == "tensor" else lr  # capturable-style lr (a tensor) or a float
    fused_base = implementation == "fused" or isinstance(lr, torch.Tensor)  # torch: tensor lr needs fused/capturable
    model, opt, sched = make(implementation, fused_base=fused_base, lr=lr, stats=stats)
    x = torch.randn(8, 16)
    train(model, opt, sched, 1, x)  # warm-up: compilation, device scalars, accumulators
    transfers.clear()
    train(model, opt, sched, 10, x)
    assert transfers == []
    if stats:  # the one read per epoch is a sync, by design
        opt.base.__dict__["_pyg_ham_hook"].stats.read()
        assert transfers and {name for name, _ in transfers} <= {"cpu", "__float__"}


def test_scheduled_fused_steps_equal_the_foreach_path():
    """The fused path's refilled device scalars carry each step's lr (none stale, none reused)."""
    x = torch.randn(8, 16)
    runs = []
    for implementation in ("fused", "foreach"):
        model, opt, sched = make(implementation, fused_base=False, lr=0.05, stats=False)
        train(model, opt, sched, 6, x)
        runs.append([p.detach().clone() for p in model.parameters()])
    for a, b in zip(*runs):
        torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-7)


def test_the_counter_sees_a_transfer_from_pyg_ham(transfers):
    """The fixture itself: a transfer-like call made from a pyg_ham file is recorded."""
    from pyg_ham.optim import functional as F

    F.found_inf_per_device(torch.ones(()), [torch.device("cpu")])  # no transfer: nothing recorded
    assert transfers == []
    stats = F  # any pyg_ham module's globals: run code "from" functional.py
    code = compile("torch.tensor(1.0).item()", F.__file__, "exec")
    exec(code, {"torch": torch, "F": stats})
    assert [name for name, _ in transfers] == ["tensor", "item"]


@pytest.mark.parametrize("name,kw", [("SGD", {"momentum": 0.9, "nesterov": True}), ("Adam", {"amsgrad": True}),
                                     ("AdamW", {"weight_decay": 0.01})])
def test_no_transfer_in_the_one_pass_under_a_grad_scaler(transfers, monkeypatch, name, kw):
    """The one pass of a fused base and HAM (pyg_ham.optim.fused_base), scheduled lr, GradScaler."""
    from pyg_ham.optim import fused_base

    monkeypatch.setattr(fused_base, "ONE_PASS_MIN_NUMEL", 0)  # on this small model too
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(16, 32), torch.nn.Tanh(), torch.nn.Linear(32, 4))
    opt = HAM(getattr(torch.optim, name)(model.parameters(), lr=0.01, fused=True, **kw), alpha=50.0)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda step: 1.0 / (1 + step))
    scaler = torch.amp.GradScaler("cpu", init_scale=256.0)
    x = torch.randn(8, 16)

    def steps(n):
        for _ in range(n):
            opt.zero_grad()
            scaler.scale(model(x).pow(2).mean()).backward()
            scaler.step(opt)
            scaler.update()
            sched.step()

    steps(2)  # warm-up: compilation (first step and later steps of SGD's momentum), device scalars
    transfers.clear()
    steps(10)
    assert opt.two_pass_reason is None
    assert transfers == []
