"""The functional hyperbolic step: its paths agree with a written-out formula and each other."""
import pytest
import torch

from pyg_ham.optim import functional as F
from pyg_ham.optim import hyperbolic_step_


def formula(w, g, lr, alpha, beta, bound=None):
    e = -lr * (alpha * torch.sign(w) * g + beta)
    if bound is not None:
        e = e.clamp(-bound, bound)
    return w * torch.exp(e)


def tensors(seed=0, dtype=torch.float64, zeros=True):
    gen = torch.Generator().manual_seed(seed)
    shapes = [(7, 5), (300, 3), (2, 3, 4), (1,), (50, 50)]
    ws = [torch.randn(s, generator=gen, dtype=dtype) for s in shapes]
    if zeros:
        ws[0][0] = 0.0
        ws[4][::3] = 0.0
    gs = [torch.randn(s, generator=gen, dtype=dtype) for s in shapes]
    return ws, gs


@pytest.mark.parametrize("implementation", ["for-loop", "foreach"])
@pytest.mark.parametrize("lr", [0.01, torch.tensor(0.01, dtype=torch.float64)])
@pytest.mark.parametrize("bound", [None, 0.5])
def test_paths_match_formula(implementation, lr, bound):
    ws, gs = tensors()
    expected = [formula(w, g, float(lr), 30.0, 0.2, bound) for w, g in zip(ws, gs)]
    # a tiny chunk size exercises splitting one tensor into flat views and batching small ones
    hyperbolic_step_(ws, gs, lr, 30.0, 0.2, max_exponent=bound, implementation=implementation, chunk_numel=64)
    for w, e in zip(ws, expected):
        torch.testing.assert_close(w, e, rtol=1e-13, atol=0)


def test_foreach_equals_for_loop_with_default_chunks_and_mixed_dtypes():
    ws, gs = tensors(1)
    ws[1], gs[1] = ws[1].float(), gs[1].float()
    other = [w.clone() for w in ws]
    hyperbolic_step_(ws, gs, 0.003, 200.0, 1e-3, implementation="foreach")
    hyperbolic_step_(other, gs, 0.003, 200.0, 1e-3, implementation="for-loop")
    for a, b in zip(ws, other):
        assert a.dtype == b.dtype
        torch.testing.assert_close(a, b, rtol=1e-6 if a.dtype == torch.float32 else 1e-13, atol=0)


@pytest.mark.parametrize("implementation", ["for-loop", "foreach"])
def test_signs_never_flip_and_zeros_stay_zero(implementation):
    ws, gs = tensors(2)
    gs = [g * 1e3 for g in gs]  # violent gradients
    before = [w.clone() for w in ws]
    for _ in range(20):
        hyperbolic_step_(ws, gs, 0.05, 200.0, 0.5, max_exponent=5.0, implementation=implementation)
    for w, b in zip(ws, before):
        assert torch.equal(torch.sign(w), torch.sign(b))
        assert torch.equal(w[b == 0], b[b == 0])


@pytest.mark.parametrize("implementation", ["for-loop", "foreach"])
def test_found_inf_masks_the_step_without_nan(implementation):
    ws, gs = tensors(3, dtype=torch.float32)
    gs[0][0, 0] = float("inf")  # at a zero weight: 0 * inf would be NaN
    gs[2].fill_(float("nan"))
    before = [w.clone() for w in ws]
    hyperbolic_step_(ws, gs, 0.1, 10.0, 0.1, found_inf=torch.tensor(1.0), implementation=implementation)
    assert all(torch.equal(w, b) for w, b in zip(ws, before))
    ws2, gs2 = tensors(3, dtype=torch.float32)
    expected = [formula(w, g, 0.1, 10.0, 0.1) for w, g in zip(ws2, gs2)]
    hyperbolic_step_(ws2, gs2, 0.1, 10.0, 0.1, found_inf=torch.tensor(0.0), implementation=implementation)
    for w, e in zip(ws2, expected):
        torch.testing.assert_close(w, e)


def test_zero_alpha_and_beta_leave_weights_untouched():
    ws, gs = tensors(4)
    before = [w.clone() for w in ws]
    hyperbolic_step_(ws, gs, 0.1, 0.0, 0.0)
    assert all(torch.equal(w, b) for w, b in zip(ws, before))


def test_fused_compiled_path_matches_formula_and_masks_inf():
    """One compilation (C++ via inductor) covers the fused path; it falls back if unavailable."""
    ws, gs = tensors(5, dtype=torch.float32)
    expected = [formula(w, g, 0.02, 50.0, 0.01, 3.0) for w, g in zip(ws, gs)]
    hyperbolic_step_(ws, gs, torch.tensor(0.02), 50.0, 0.01, max_exponent=3.0, implementation="fused")
    for w, e in zip(ws, expected):
        torch.testing.assert_close(w, e, rtol=1e-5, atol=1e-7)
    before = [w.clone() for w in ws]
    gs[0][0, 0] = float("inf")
    hyperbolic_step_(ws, gs, torch.tensor(0.05), 50.0, 0.01, max_exponent=3.0, found_inf=torch.tensor(1.0),
                     implementation="fused")
    assert all(torch.equal(w, b) for w, b in zip(ws, before))


def test_fused_falls_back_cleanly_when_compilation_fails(monkeypatch):
    from torch._inductor.exc import InvalidCxxCompiler

    def broken(*args, **kwargs):
        raise InvalidCxxCompiler()  # what inductor raises without a C++ compiler

    monkeypatch.setattr(F, "_kernels", F._FusedKernels())
    monkeypatch.setattr(torch, "compile", lambda fn, **kwargs: broken)
    ws, gs = tensors(6)
    expected = [formula(w, g, 0.01, 5.0, 0.1) for w, g in zip(ws, gs)]
    with pytest.warns(RuntimeWarning, match="fused"):
        hyperbolic_step_(ws, gs, 0.01, 5.0, 0.1, implementation="fused")
    for w, e in zip(ws, expected):
        torch.testing.assert_close(w, e)
    assert F._kernels.unavailable and F._default_implementation(ws) == "foreach"


def test_default_implementation_by_size(monkeypatch):
    small = [torch.empty(10, 10)]
    big = [torch.empty(F.FUSED_MIN_NUMEL)]
    assert F._default_implementation(small) == "foreach"
    assert F._default_implementation(big) == "fused"


def test_bad_arguments():
    w, g = [torch.randn(2, 2)], [torch.randn(2, 2)]
    with pytest.raises(ValueError, match="implementation"):
        hyperbolic_step_(w, g, 0.1, 1.0, 0.0, implementation="triton")
    with pytest.raises(ValueError, match="grads"):
        hyperbolic_step_(w, [], 0.1, 1.0, 0.0)
    with pytest.raises(ValueError, match="chunk_numel"):
        hyperbolic_step_(w, g, 0.1, 1.0, 0.0, chunk_numel=0)
