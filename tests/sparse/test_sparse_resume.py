"""Resume: a sparsifier state dict loaded into a fresh sparsifier, model and optimizer restores
the masks and continues bit for bit like the uninterrupted run."""
import copy
import io

import pytest
import torch

from pyg_ham.errors import ConfigError
from pyg_ham.sparse import SPARSIFIERS, build_sparsifier

OPTIONS = dict(gmp=dict(start=0.1, end=0.7, interval=4), acdc=dict(warmup=0.1, phase=0.1, final=0.2),
               rigl=dict(interval=4, end=0.8))
T, CUT = 30, 13  # cut inside a GMP ramp, inside an AC/DC phase, just after a RiGL update


@pytest.mark.parametrize("kind,ham", [("adam", True), ("sgd", False)])
@pytest.mark.parametrize("method", SPARSIFIERS)
def test_resume_continues_identically(method, kind, ham, make_mlp, make_optimizer, train):
    model = make_mlp(0)
    opt = make_optimizer(model, kind, ham=ham)
    sp = build_sparsifier(method, model, opt, 0.75, T, seed=3, **OPTIONS.get(method, {}))
    train(model, opt, sp, CUT)
    buffer = io.BytesIO()  # through torch.save / torch.load(weights_only=True), as a checkpoint goes
    torch.save({"model": model.state_dict(), "opt": opt.state_dict(), "sp": sp.state_dict()}, buffer)
    train(model, opt, sp, T - CUT, start=CUT)

    buffer.seek(0)
    ckpt = torch.load(buffer, weights_only=True)
    model2 = make_mlp(7)  # another init and another seed: everything must come from the checkpoint
    opt2 = make_optimizer(model2, kind, ham=ham)
    sp2 = build_sparsifier(method, model2, opt2, 0.75, T, seed=11, **OPTIONS.get(method, {}))
    model2.load_state_dict(ckpt["model"])
    opt2.load_state_dict(ckpt["opt"])
    sp2.load_state_dict(ckpt["sp"])
    assert sp2.step_count == CUT
    assert all(torch.equal(sp2.masks[n], ckpt["sp"]["masks"][n]) for n in sp2.masks)
    train(model2, opt2, sp2, T - CUT, start=CUT)

    for (n, p), (_, q) in zip(model.named_parameters(), model2.named_parameters()):
        assert torch.equal(p, q), n
    assert all(torch.equal(sp.masks[n], sp2.masks[n]) for n in sp.masks)
    assert sp.report() == sp2.report()


def test_state_dict_is_a_snapshot(make_mlp, make_optimizer, train):
    model = make_mlp()
    opt = make_optimizer(model, "adam")
    sp = build_sparsifier("rigl", model, opt, 0.5, 20, interval=2)
    sd = sp.state_dict()
    saved = copy.deepcopy(sd)
    train(model, opt, sp, 6)
    assert sd["step"] == 0
    assert all(torch.equal(sd["masks"][n], saved["masks"][n]) for n in sd["masks"])


def test_load_state_dict_rejects_mismatches(make_mlp):
    sd = build_sparsifier("random", make_mlp(), None, 0.5, 10).state_dict()
    with pytest.raises(ConfigError, match="name"):
        build_sparsifier("erk", make_mlp(), None, 0.5, 10).load_state_dict(sd)
    with pytest.raises(ConfigError, match="sparsity"):
        build_sparsifier("random", make_mlp(), None, 0.6, 10).load_state_dict(sd)
    with pytest.raises(ConfigError, match="total_steps"):
        build_sparsifier("random", make_mlp(), None, 0.5, 11).load_state_dict(sd)
    with pytest.raises(ConfigError, match="masks"):
        build_sparsifier("random", make_mlp(), None, 0.5, 10, select="layers.0.*").load_state_dict(sd)


def test_load_state_dict_masks_weights_of_a_dense_model(make_mlp):
    sd = build_sparsifier("random", make_mlp(), None, 0.5, 10).state_dict()
    model = make_mlp(3)
    sp = build_sparsifier("random", model, None, 0.5, 10, seed=9)
    with torch.no_grad():
        for p in model.parameters():
            p.fill_(1.0)  # e.g. loaded from a dense checkpoint after the sparsifier was built
    sp.load_state_dict(sd)
    for n, p in sp.params.items():
        assert torch.equal(p != 0, sd["masks"][n])
