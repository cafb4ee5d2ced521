"""Sparse training end to end: exact zeros, target sparsity, masked optimizer state, with
every base optimizer, with and without HAM."""
import math

import pytest
import torch

from pyg_ham.sparse import SPARSIFIERS, build_sparsifier, erk_densities

SHORT = dict(gmp=dict(start=0.1, end=0.5, interval=3), acdc=dict(warmup=0.1, phase=0.1, final=0.3),
             rigl=dict(interval=4, end=0.75))


def _state_tensors(opt, p):
    return [v for v in opt.state.get(p, {}).values() if isinstance(v, torch.Tensor) and v.shape == p.shape]


@pytest.mark.parametrize("ham", [False, True], ids=["plain", "ham"])
@pytest.mark.parametrize("kind", ["sgd", "adam", "adamw"])
@pytest.mark.parametrize("method", SPARSIFIERS)
def test_pruned_weights_stay_exactly_zero(method, kind, ham, make_mlp, make_optimizer, train):
    model = make_mlp()
    opt = make_optimizer(model, kind, ham=ham)
    sp = build_sparsifier(method, model, opt, 0.8, 40, **SHORT.get(method, {}))
    checked = []

    def check(step):
        for name, p in sp.params.items():
            pruned = ~sp.masks[name]
            assert torch.isfinite(p).all()
            assert (p[pruned] == 0).all(), (name, step)
            for state in _state_tensors(opt, p):  # momentum / Adam moments of pruned weights
                assert (state[pruned] == 0).all(), (name, step)
        checked.append(step)

    train(model, opt, sp, 40, callback=check)
    assert checked == list(range(1, 41))
    rep = sp.report()
    assert rep["target"] == 0.8 and rep["current"] == pytest.approx(0.8) and rep["step"] == 40
    assert rep["overall"] == pytest.approx(0.8, abs=0.01)
    # unmasked tensors (biases) keep training and are not reported
    assert set(rep["layers"]) == {"layers.0.weight", "layers.1.weight", "layers.2.weight"}


@pytest.mark.parametrize("method", ["random", "magnitude", "gmp", "acdc"])
def test_uniform_sparsity_per_layer_within_one_weight(method, make_mlp, make_optimizer, train):
    model = make_mlp()
    opt = make_optimizer(model, "sgd")
    sp = build_sparsifier(method, model, opt, 0.7, 30, **SHORT.get(method, {}))
    train(model, opt, sp, 30)
    for name, p in sp.params.items():
        assert abs(int((p == 0).sum()) - 0.7 * p.numel()) <= 1, name
        assert abs(sp.report()["layers"][name] - 0.7) <= 1 / p.numel()


@pytest.mark.parametrize("method", ["erk", "rigl"])
def test_erk_layer_densities_by_hand(method, make_mlp, make_optimizer, train):
    model = make_mlp(sizes=(12, 32, 24, 3))
    opt = make_optimizer(model, "adam")
    sp = build_sparsifier(method, model, opt, 0.75, 20, **SHORT.get(method, {}))
    # weights (32, 12), (24, 32), (3, 24); ratios (sum / product) and eps solved by hand
    shapes = {"layers.0.weight": (32, 12), "layers.1.weight": (24, 32), "layers.2.weight": (3, 24)}
    ratio = {n: sum(s) / math.prod(s) for n, s in shapes.items()}
    total = sum(math.prod(s) for s in shapes.values())  # 384 + 768 + 72 = 1224
    eps = 0.25 * total / sum(ratio[n] * math.prod(s) for n, s in shapes.items())
    expected = {n: eps * ratio[n] for n in shapes}
    assert max(expected.values()) < 1  # no dense layer at this sparsity
    assert erk_densities(shapes, 0.75) == pytest.approx(expected)
    train(model, opt, sp, 20)
    for name, p in sp.params.items():
        kept = int((p != 0).sum())
        assert abs(kept - expected[name] * p.numel()) <= 1, name
        assert int(sp.masks[name].sum()) == kept
    assert sp.report()["overall"] == pytest.approx(0.75, abs=3 / total)


def test_random_masks_depend_on_seed_only(make_mlp):
    a = build_sparsifier("random", make_mlp(0), None, 0.5, 10, seed=1)
    b = build_sparsifier("random", make_mlp(5), None, 0.5, 10, seed=1)
    c = build_sparsifier("random", make_mlp(0), None, 0.5, 10, seed=2)
    assert all(torch.equal(a.masks[n], b.masks[n]) for n in a.masks)
    assert not all(torch.equal(a.masks[n], c.masks[n]) for n in a.masks)


def test_magnitude_pruning_removes_smallest_weights(make_mlp):
    model = make_mlp()
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    sp = build_sparsifier("magnitude", model, None, 0.6, 10)
    for name, p in sp.params.items():
        w = before[name].abs().flatten()
        order = torch.argsort(w)  # ascending: the first 60% go
        k = round(0.6 * w.numel())
        expected = torch.ones_like(w, dtype=torch.bool)
        expected[order[:k]] = False
        assert torch.equal(sp.masks[name].flatten(), expected)
        assert torch.equal(p.detach().flatten(), torch.where(expected, before[name].flatten(), 0.0))
    assert torch.equal(model.layers[0].bias, before["layers.0.bias"])  # biases untouched


def test_global_magnitude_pruning(make_mlp):
    model = make_mlp()
    allw = torch.cat([p.detach().abs().flatten() for n, p in model.named_parameters() if p.ndim >= 2])
    threshold = allw.sort().values[round(0.6 * allw.numel())]
    sp = build_sparsifier("magnitude", model, None, 0.6, 10, distribution="global")
    assert sp.report()["overall"] == pytest.approx(0.6, abs=1 / allw.numel())
    for p in sp.params.values():
        assert (p.abs()[p != 0] >= threshold).all()


def test_select_override_masks_only_selected(make_mlp, make_optimizer, train):
    model = make_mlp()
    opt = make_optimizer(model, "adam", ham=True)
    sp = build_sparsifier("random", model, opt, 0.5, 10, select="layers.1.*")
    assert set(sp.masks) == {"layers.1.weight", "layers.1.bias"}
    train(model, opt, sp, 10)
    assert int((model.layers[1].bias == 0).sum()) == 12
    assert int((model.layers[0].weight == 0).sum()) == 0


def test_gmp_schedule_monotone_nested_and_reaches_target(make_mlp, make_optimizer, train):
    model = make_mlp()
    opt = make_optimizer(model, "adamw", ham=True)
    T, t0, t1, dt = 60, 6, 36, 5  # start=0.1, end=0.6
    sp = build_sparsifier("gmp", model, opt, 0.9, T, start=0.1, end=0.6, interval=dt)
    assert (sp.start_step, sp.end_step, sp.interval) == (t0, t1, dt)
    history = []

    def record(step):
        history.append((step, sp.report()["overall"], {n: m.clone() for n, m in sp.masks.items()}))

    train(model, opt, sp, T, callback=record)
    n = sum(p.numel() for p in sp.params.values())
    prev_masks = None
    for step, overall, masks in history:
        # the last pruning step at or before ``step`` sets the sparsity (written out by hand)
        last = max([t for t in range(t0, min(step, t1) + 1) if (t - t0) % dt == 0 or t == t1], default=None)
        s = 0.0 if last is None else 0.9 + (0.0 - 0.9) * (1 - (last - t0) / (t1 - t0)) ** 3
        assert overall == pytest.approx(s, abs=3 / n), step
        if prev_masks is not None:  # pruned weights are never regrown
            assert all((masks[k] <= prev_masks[k]).all() for k in masks)
        prev_masks = masks
    overall = [o for _, o, _ in history]
    assert all(b >= a - 1e-12 for a, b in zip(overall, overall[1:]))
    assert overall[-1] == pytest.approx(0.9, abs=3 / n)


def test_acdc_alternates_dense_and_compressed_phases(make_mlp, make_optimizer, train):
    model = make_mlp()
    opt = make_optimizer(model, "sgd", ham=True)
    T = 100  # warm-up 10, phases of 10, final compressed from 70
    sp = build_sparsifier("acdc", model, opt, 0.8, T, warmup=0.1, phase=0.1, final=0.3)
    expected = "D" * 10 + "C" * 10 + "D" * 10 + "C" * 10 + "D" * 10 + "C" * 10 + "D" * 10 + "C" * 30
    phases, sparsity, masks = ["C" if sp.compressed else "D"], [sp.report()["overall"]], [dict(sp.masks)]

    def record(step):
        phases.append("C" if sp.compressed else "D")
        sparsity.append(sp.report()["overall"])
        masks.append(dict(sp.masks))

    train(model, opt, sp, T, callback=record)
    assert "".join(phases[:T]) == expected
    n = sum(p.numel() for p in sp.params.values())
    for t, phase in enumerate(phases[:T]):
        if phase == "C":
            assert sparsity[t] == pytest.approx(0.8, abs=3 / n), t
            assert all(int(m.sum()) == round(0.2 * m.numel()) for m in masks[t].values())
        else:
            assert all(m.all() for m in masks[t].values()), t  # no mask at all
            assert sp.current_sparsity in (0.0, 0.8)
    # decompressed phases really train the pruned weights again
    assert sparsity[29] < 0.05 and sparsity[49] < 0.05
    # each compression prunes the dense model afresh: the masks of successive C phases differ
    assert any(not torch.equal(masks[15][k], masks[35][k]) for k in masks[15])


def test_acdc_without_warmup_prunes_at_init(make_mlp):
    sp = build_sparsifier("acdc", make_mlp(), None, 0.5, 20, warmup=0.0)
    assert sp.compressed and sp.report()["overall"] == pytest.approx(0.5, abs=0.01)


def test_erk_dense_layer_is_left_unmasked(make_mlp, make_optimizer, train):
    # At 50%: ratios 44/384, 56/768, 27/72; eps = 612 / (44 + 56 + 27) makes the last layer's
    # density 27/72 * 612/127 = 1.8 > 1, so it is dense and eps = (612 - 72) / (44 + 56).
    model = make_mlp(sizes=(12, 32, 24, 3))
    opt = make_optimizer(model, "sgd", ham=True)
    sp = build_sparsifier("erk", model, opt, 0.5, 10)
    eps = (612 - 72) / 100
    assert int(sp.masks["layers.0.weight"].sum()) == round(eps * 44)
    assert int(sp.masks["layers.1.weight"].sum()) == round(eps * 56)
    assert sp.masks["layers.2.weight"].all()
    assert [p for p, _ in sp._masked] == [model.layers[0].weight, model.layers[1].weight]
    train(model, opt, sp, 10)
    assert int((model.layers[2].weight == 0).sum()) == 0
