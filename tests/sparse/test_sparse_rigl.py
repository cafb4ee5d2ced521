"""RiGL: constant count while the mask moves, drop by |w| and regrow by |dense grad| (checked
against an independent computation), regrown weights start from zero weight and moments."""
import math

import pytest
import torch

from pyg_ham.sparse import build_sparsifier


def test_rigl_count_constant_while_mask_changes(make_mlp, make_optimizer, train):
    model = make_mlp()
    opt = make_optimizer(model, "adam", ham=True)
    sp = build_sparsifier("rigl", model, opt, 0.8, 40, interval=5, end=0.75)
    counts0 = {n: int(m.sum()) for n, m in sp.masks.items()}
    first = {n: m.clone() for n, m in sp.masks.items()}
    changes = []
    prev = {n: m.clone() for n, m in sp.masks.items()}

    def check(step):
        for n, m in sp.masks.items():
            assert int(m.sum()) == counts0[n]
            assert int((sp.params[n] != 0).sum()) <= counts0[n]
        if any(not torch.equal(prev[n], sp.masks[n]) for n in prev):
            changes.append(step)
        for n, m in sp.masks.items():
            prev[n] = m.clone()

    train(model, opt, sp, 40, callback=check)
    assert changes and set(changes) <= {5, 10, 15, 20, 25}  # update steps, all before T_end = 30
    assert any(not torch.equal(first[n], sp.masks[n]) for n in first)


def test_rigl_drop_and_grow_match_independent_computation():
    torch.manual_seed(0)
    lin = torch.nn.Linear(5, 6, bias=False)
    with torch.no_grad():  # distinct magnitudes, no ties
        lin.weight.copy_((torch.randperm(30).float() + 1).view(6, 5) / 30 * torch.sign(torch.randn(6, 5)))
    G = (torch.randperm(30).float() + 1).view(6, 5)  # the dense gradient: d/dW (W * G).sum() = G
    model = torch.nn.Module()
    model.lin = lin
    opt = torch.optim.SGD(model.parameters(), lr=0.0)
    T = 10
    sp = build_sparsifier("rigl", model, opt, 0.5, T, interval=1, end=1.0, drop_fraction=0.4,
                          distribution="uniform")
    old = sp.masks["lin.weight"].clone()
    w = lin.weight.detach().clone()
    assert int(old.sum()) == 15

    (lin.weight * G).sum().backward()
    sp.before_step()
    assert (lin.weight.grad[~old] == 0).all()  # pruned gradients zeroed after recording
    opt.step()
    sp.after_step()

    k = math.floor(0.2 * (1 + math.cos(math.pi * 1 / T)) * 15)  # = 5
    active = [i for i in range(30) if old.view(-1)[i]]
    keep = sorted(active, key=lambda i: -abs(w.view(-1)[i].item()))[:15 - k]
    candidates = [i for i in range(30) if i not in keep]
    grow = sorted(candidates, key=lambda i: -G.view(-1)[i].item())[:k]
    expected = torch.zeros(30, dtype=torch.bool)
    expected[keep + grow] = True
    new = sp.masks["lin.weight"].view(-1)
    assert torch.equal(new, expected)
    assert int(new.sum()) == 15
    dropped = old.view(-1) & ~new
    grown = new & ~old.view(-1)
    assert int(dropped.sum()) == int(grown.sum()) > 0
    assert (lin.weight.view(-1)[~new] == 0).all() and (lin.weight.view(-1)[grown] == 0).all()


def test_rigl_regrown_weights_start_from_zero_weight_and_moments(make_mlp, make_optimizer, train):
    model = make_mlp()
    opt = make_optimizer(model, "adam")
    sp = build_sparsifier("rigl", model, opt, 0.7, 20, interval=4, end=1.0)
    seen = []

    def check(step):
        if step == 8:
            grown = {n: sp.masks[n] & ~before[n] for n in before}
            for n, p in sp.params.items():
                g = grown[n]
                seen.append(int(g.sum()))
                assert (p[g] == 0).all()
                st = opt.state[p]
                assert (st["exp_avg"][g] == 0).all() and (st["exp_avg_sq"][g] == 0).all()
        before.update({n: m.clone() for n, m in sp.masks.items()})

    before = {n: m.clone() for n, m in sp.masks.items()}
    train(model, opt, sp, 8, callback=check)
    assert sum(seen) > 0
    # and they train from there
    grown_w = [(sp.params[n], sp.masks[n]) for n in sp.masks]
    train(model, opt, sp, 2, start=8)
    assert all(torch.isfinite(p).all() for p, _ in grown_w)


def test_rigl_requires_before_step(make_mlp, make_optimizer):
    model = make_mlp()
    opt = make_optimizer(model, "sgd")
    sp = build_sparsifier("rigl", model, opt, 0.5, 10, interval=1)
    model(torch.randn(4, 12)).sum().backward()
    opt.step()
    with pytest.raises(RuntimeError, match="before_step"):
        sp.after_step()
