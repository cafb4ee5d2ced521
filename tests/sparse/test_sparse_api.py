"""The public interface: names, options, one-line ConfigErrors, a PyG GNN, GPU placement."""
import pytest
import torch

from pyg_ham.errors import ConfigError
from pyg_ham.optim import build_optimizer
from pyg_ham.sparse import SPARSIFIER_OPTIONS, SPARSIFIERS, Sparsifier, build_sparsifier
from pyg_ham.sparse.schedules import is_gmp_step


def test_names_and_classes(make_mlp):
    assert SPARSIFIERS == ("random", "erk", "magnitude", "gmp", "acdc", "rigl")
    for name in SPARSIFIERS:
        sp = build_sparsifier(name.upper(), make_mlp(), None, 0.5, 10)
        assert isinstance(sp, Sparsifier) and sp.name == name
        assert set(sp.masks) == set(sp.params) and all(m.dtype == torch.bool for m in sp.masks.values())
    assert SPARSIFIER_OPTIONS["gmp"]["start"] == 0.1 and SPARSIFIER_OPTIONS["rigl"]["distribution"] == "erk"


@pytest.mark.parametrize("kwargs,match", [
    (dict(name="prune"), "unknown sparsifier 'prune'; choose one of: random, erk"),
    (dict(sparsity=1.0), r"sparsity must be a finite number >= 0 and < 1, got 1.0"),
    (dict(sparsity=-0.1), "sparsity"),
    (dict(sparsity="0.5"), "sparsity"),
    (dict(sparsity=True), "sparsity"),
    (dict(total_steps=0), "total_steps must be an integer >= 1"),
    (dict(total_steps=2.5), "total_steps"),
    (dict(seed=-1), "seed"),
    (dict(name="rigl", drop=0.3), "unknown option 'drop' for sparsifier 'rigl'; allowed: drop_fraction"),
    (dict(name="random", interval=3), "unknown option 'interval'"),
    (dict(name="rigl", distribution="global"), "distribution must be one of uniform, erk"),
    (dict(name="magnitude", distribution="lamp"), "distribution must be one of uniform, erk, global"),
    (dict(name="gmp", start=0.8, end=0.5), "end must be >= start"),
    (dict(name="gmp", initial_sparsity=0.6), "initial_sparsity must be <= sparsity"),
    (dict(name="gmp", interval=0), "interval must be an integer >= 1 or None"),
    (dict(name="acdc", warmup=0.6, final=0.5), "warmup \\+ final must be <= 1"),
    (dict(name="acdc", phase=0.0), "phase"),
    (dict(name="rigl", drop_fraction=1.5), "drop_fraction"),
    (dict(name="rigl", end=2.0), "end"),
])
def test_bad_options_raise_one_line_config_error(kwargs, match, make_mlp):
    args = dict(name="random", sparsity=0.5, total_steps=10)
    args.update(kwargs)
    with pytest.raises(ConfigError, match=match) as info:
        build_sparsifier(args.pop("name"), make_mlp(), None, args.pop("sparsity"), args.pop("total_steps"), **args)
    assert isinstance(info.value, ValueError) and "\n" not in str(info.value)


def test_zero_sparsity_is_dense_and_free(make_mlp, make_optimizer, train):
    model = make_mlp()
    opt = make_optimizer(model, "adam")
    sp = build_sparsifier("rigl", model, opt, 0.0, 10, interval=2)
    assert all(m.all() for m in sp.masks.values()) and sp._masked == []
    train(model, opt, sp, 10)
    assert sp.report()["overall"] == 0.0


def test_mask_state_every_step(make_mlp, make_optimizer, train):
    model = make_mlp()
    opt = make_optimizer(model, "sgd", ham=True)
    sp = build_sparsifier("random", model, opt, 0.6, 10, mask_state_every_step=True)
    train(model, opt, sp, 3)
    for p in sp.params.values():  # poke the state: the next after_step masks it again
        opt.state[p]["momentum_buffer"].fill_(1.0)
    train(model, opt, sp, 1, start=3)
    for n, p in sp.params.items():
        assert (opt.state[p]["momentum_buffer"][~sp.masks[n]] == 0).all()
        assert (p[~sp.masks[n]] == 0).all()


def test_ham_gcn_sparse_training_no_nan():
    pytest.importorskip("torch_geometric")
    from torch_geometric.nn import GCN

    torch.manual_seed(0)
    num_nodes = 60
    x = torch.randn(num_nodes, 16)
    edge_index = torch.randint(0, num_nodes, (2, 300))
    y = torch.randint(0, 4, (num_nodes,))
    model = GCN(16, 32, num_layers=2, out_channels=4)
    opt = build_optimizer(model, "adamw", lr=0.05, weight_decay=5e-4, ham=True, alpha=200.0, beta=1e-2)
    sp = build_sparsifier("rigl", model, opt, 0.9, 40, interval=5)
    assert set(sp.masks) == {"convs.0.lin.weight", "convs.1.lin.weight"}
    losses = []
    for _ in range(40):
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(model(x, edge_index), y)
        loss.backward()
        sp.before_step()
        opt.step()
        sp.after_step()
        losses.append(loss.item())
    assert all(torch.isfinite(p).all() for p in model.parameters())
    for n, p in sp.params.items():
        assert (p[~sp.masks[n]] == 0).all()
    assert sp.report()["overall"] == pytest.approx(0.9, abs=0.01)
    assert losses[-1] < losses[0]


def _mask_update_due(sp, step):
    """Whether ``after_step`` changes the masks when the step counter reaches ``step``."""
    if sp.name == "gmp":
        return is_gmp_step(step, sp.start_step, sp.end_step, sp.interval)
    if sp.name == "rigl":
        return sp.is_update_step(step)
    return sp.is_compressed(step) != sp.is_compressed(step - 1)  # acdc


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("method,options", [("gmp", dict(interval=10)), ("rigl", dict(interval=10)), ("acdc", {})])
def test_cuda_masks_on_device_and_no_host_sync_between_updates(method, options, make_mlp, make_optimizer):
    model = make_mlp(device="cuda")
    opt = make_optimizer(model, "adam", ham=True)
    sp = build_sparsifier(method, model, opt, 0.8, 60, **options)
    assert all(m.device.type == "cuda" for m in sp.masks.values())
    x, y = torch.randn(32, 12, device="cuda"), torch.randn(32, 3, device="cuda")
    quiet_steps = 0
    for step in range(60):
        opt.zero_grad()
        torch.nn.functional.mse_loss(model(x), y).backward()
        quiet = not _mask_update_due(sp, step + 1)
        quiet_steps += quiet
        if quiet:  # the hooks must not synchronise the device with the host
            torch.cuda.set_sync_debug_mode("error")
        try:
            sp.before_step()
        finally:
            torch.cuda.set_sync_debug_mode("default")
        opt.step()
        if quiet:
            torch.cuda.set_sync_debug_mode("error")
        try:
            sp.after_step()
        finally:
            torch.cuda.set_sync_debug_mode("default")
    assert quiet_steps > 30
    for n, p in sp.params.items():
        assert (p[~sp.masks[n]] == 0).all()
    assert sp.report()["overall"] == pytest.approx(0.8, abs=0.01)
