"""The machinery of the hyperbolic step: compilation, chunking, found_inf per device, low precision."""
import re

import pytest
import torch

from pyg_ham.optim import functional as F
from pyg_ham.optim import hyperbolic_step_


def reference(w, g, lr, alpha, beta, bound=None):
    """The step in float64, rounded once to the weight's dtype."""
    w64, g64 = w.double(), g.double()
    e = -lr * (alpha * torch.sign(w64) * g64 + beta)
    if bound is not None:
        e = e.clamp(-bound, bound)
    return (w64 * torch.exp(e)).to(w.dtype)


@pytest.mark.filterwarnings("error::RuntimeWarning")
def test_fused_path_stays_compiled_over_many_shapes_and_list_lengths():
    gen = torch.Generator().manual_seed(0)
    counters = torch._dynamo.utils.counters
    graphs_before = counters["stats"]["unique_graphs"]
    shapes = [(k + 2,) if k % 3 == 0 else (k + 2, 3) if k % 3 == 1 else (2, k + 1, 2) for k in range(24)]
    # equal sizes first (compiled with one shared size they would be guarded equal), then all kinds
    calls = [[(7, 3)] * 4] + [[shapes[(2 * step + j) % len(shapes)] for j in range(length)]
                              for step, length in enumerate([1, 2, 3, 4, 5, 1, 9, 3, 17, 5, 3, 2])]
    for picked in calls:
        ws = [torch.randn(s, generator=gen) for s in picked]
        gs = [torch.randn(s, generator=gen) for s in picked]
        expected = [reference(w, g, 0.01, 20.0, 0.1, 3.0) for w, g in zip(ws, gs)]
        hyperbolic_step_(ws, gs, 0.01, 20.0, 0.1, max_exponent=3.0, implementation="fused")
        for w, e in zip(ws, expected):
            torch.testing.assert_close(w, e, rtol=2e-6, atol=1e-7)
    # views at odd storage offsets (as shards of a flat buffer) take the same graph
    buf, gbuf = torch.randn(400, generator=gen), torch.randn(400, generator=gen)
    for offset in (1, 3, 17):
        w, g = buf[offset:offset + 60].view(6, 10), gbuf[offset:offset + 60].view(6, 10)
        expected = reference(w, g, 0.01, 20.0, 0.1, 3.0)
        hyperbolic_step_([w], [g], 0.01, 20.0, 0.1, max_exponent=3.0, implementation="fused")
        torch.testing.assert_close(w, expected, rtol=2e-6, atol=1e-7)
    assert not F._fused_unavailable
    # one dynamic-shape graph for float32 on CPU serves every shape and list length
    assert counters["stats"]["unique_graphs"] - graphs_before <= 2


def _fake_compile(monkeypatch, kernel_factory):
    """Replace torch.compile (and forget compiled kernels) so the fused path gets our kernel."""
    monkeypatch.setattr(F, "_compiled_kernels", {}, raising=False)
    monkeypatch.setattr(F, "_fused_unavailable", False)
    monkeypatch.setattr(torch, "compile", lambda fn, **kwargs: kernel_factory(fn))


def test_an_error_while_the_fused_step_runs_propagates_and_steps_nothing_twice(monkeypatch):
    def factory(fn):
        def kernel(*args):
            fn(*args)  # the step is applied ...
            raise RuntimeError("device fault")  # ... and then the kernel fails at run time
        return kernel

    _fake_compile(monkeypatch, factory)
    w, g = torch.randn(6, 5, dtype=torch.float64), torch.randn(6, 5, dtype=torch.float64)
    once = reference(w, g, 0.01, 30.0, 0.1)
    with pytest.raises(RuntimeError, match="device fault"):
        hyperbolic_step_([w], [g], 0.01, 30.0, 0.1, implementation="fused")
    torch.testing.assert_close(w, once, rtol=1e-12, atol=0)  # once, not once more by a fallback


def test_a_compilation_failure_midway_falls_back_for_the_rest_only(monkeypatch):
    import torch._dynamo.exc

    calls = []

    def factory(fn):
        def kernel(*args):
            calls.append(1)
            if len(calls) > 1:  # e.g. a recompilation that fails, before anything runs
                raise torch._dynamo.exc.Unsupported("cannot compile this one")
            fn(*args)
        return kernel

    _fake_compile(monkeypatch, factory)
    gen = torch.Generator().manual_seed(1)
    shapes = [(4, 3), (5, 2), (7,)]  # one call's worth of tensors, then three for a call that fails
    ws = [torch.randn(shapes[i % 3], generator=gen, dtype=torch.float64) for i in range(F.FUSED_ARITY + 3)]
    gs = [torch.randn(w.shape, generator=gen, dtype=torch.float64) for w in ws]
    expected = [reference(w, g, 0.02, 10.0, 0.1) for w, g in zip(ws, gs)]
    with pytest.warns(RuntimeWarning, match="unavailable"):
        hyperbolic_step_(ws, gs, 0.02, 10.0, 0.1, implementation="fused")
    for w, e in zip(ws, expected):
        torch.testing.assert_close(w, e, rtol=1e-12, atol=0)
    assert F._default_implementation([torch.empty(F.FUSED_MIN_NUMEL)]) == "foreach"


def test_inside_torch_compile_the_step_is_one_fused_expression_without_scratch():
    from torch._inductor.utils import run_and_get_code

    torch._dynamo.reset()
    gen = torch.Generator().manual_seed(2)
    ws = [torch.randn(s, generator=gen) for s in [(64, 32), (300,), (8, 8)]]
    gs = [torch.randn(w.shape, generator=gen) for w in ws]
    expected = [reference(w, g, 0.01, 50.0, 0.1, 5.0) for w, g in zip(ws, gs)]

    def step(ws, gs):
        hyperbolic_step_(ws, gs, 0.01, 50.0, 0.1, max_exponent=5.0, found_inf=torch.zeros(()))

    _, codes = run_and_get_code(torch.compile(step, backend="inductor", fullgraph=True), ws, gs)
    code = "\n".join(codes)
    assert "_foreach" not in code  # no fallback to eager foreach kernels
    assert not re.search(r"= empty_strided\w*\(", code)  # no scratch or temporary buffer: written in place
    for w, e in zip(ws, expected):
        torch.testing.assert_close(w, e, rtol=2e-6, atol=1e-7)


def test_foreach_chunk_plan_chunks_on_cpu_only():
    n = 100_000_000
    # CUDA (and any non-CPU device): one chunk, whole tensors, one launch per foreach op
    assert F.foreach_chunk_plan("cuda", [n, 10, 3]) == [[(0, 0, n), (1, 0, 10), (2, 0, 3)]]
    assert F.foreach_chunk_plan("cuda", []) == []
    # CPU: chunks of at most 2**18 elements covering every element once, in order
    plan = F.foreach_chunk_plan("cpu", [n])
    assert len(plan) == -(-n // 2 ** 18) == 382
    assert all(sum(b - a for _, a, b in chunk) <= 2 ** 18 for chunk in plan)
    flat = [r for chunk in plan for r in chunk]
    assert flat[0] == (0, 0, 2 ** 18) and flat[-1] == (0, 381 * 2 ** 18, n)
    assert all(x[2] == y[1] for x, y in zip(flat, flat[1:]))
    # small tensors are batched, a large one is split, a non-splittable one stays whole
    assert F.foreach_chunk_plan("cpu", [3, 4, 10, 2], chunk_numel=8, splittable=[True, True, True, True]) == [
        [(0, 0, 3), (1, 0, 4)], [(2, 0, 8)], [(2, 8, 10), (3, 0, 2)]]
    assert F.foreach_chunk_plan("cpu", [3, 10], chunk_numel=8, splittable=[True, False]) == [
        [(0, 0, 3)], [(1, 0, 10)]]
    with pytest.raises(ValueError, match="chunk_numel"):
        F.foreach_chunk_plan("cpu", [3], chunk_numel=0)


def test_found_inf_per_device_copies_the_flag_once_per_device():
    flag = torch.tensor(1.0)
    meta = torch.device("meta")
    devices = [torch.device("cpu"), meta, torch.device("cpu"), meta, meta]
    out = F.found_inf_per_device(flag, devices)
    assert set(out) == {torch.device("cpu"), meta}
    assert out[torch.device("cpu")] is flag  # its own device: no copy
    assert out[meta].device == meta and out[meta].shape == ()
    assert F.found_inf_per_device(None, devices) == {}


@pytest.mark.parametrize("implementation", ["for-loop", "foreach"])
def test_found_inf_on_another_device_masks_every_device(implementation):
    # parameters on two devices (CPU and meta, the only two a CPU machine has); the flag on CPU
    w, g = torch.randn(4, 3), torch.randn(4, 3)
    wm, gm = torch.empty(4, 3, device="meta"), torch.empty(4, 3, device="meta")
    before = w.clone()
    hyperbolic_step_([w, wm], [g, gm], 0.1, 10.0, 0.1, found_inf=torch.tensor(1.0), implementation=implementation)
    assert torch.equal(w, before) and wm.device.type == "meta"
    hyperbolic_step_([wm, w], [gm, g], 0.1, 10.0, 0.1, found_inf=torch.tensor(0.0), implementation=implementation)
    torch.testing.assert_close(w, reference(before, g, 0.1, 10.0, 0.1))


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
@pytest.mark.parametrize("implementation", ["for-loop", "foreach", "fused"])
@pytest.mark.parametrize("bound", [None, 5.0])
def test_low_precision_computes_in_float32_and_rounds_once(dtype, implementation, bound):
    # alpha * g = 80000 overflows float16; the right factor is exp(-0.08) = 0.923
    w = torch.tensor([[1.0, -0.5], [0.25, 2.0]], dtype=dtype)
    g = torch.tensor([[400.0, -400.0], [100.0, 1.0]], dtype=dtype)
    expected = reference(w, g, 1e-6, 200.0, 1e-3, bound)
    hyperbolic_step_([w], [g], 1e-6, 200.0, 1e-3, max_exponent=bound, implementation=implementation)
    assert abs(expected[0, 0].item() - 0.923) < 2e-3
    # within one rounding of the float64 result
    torch.testing.assert_close(w, expected, rtol=torch.finfo(dtype).eps, atol=0)


@pytest.mark.parametrize("implementation", ["for-loop", "foreach", "fused"])
@pytest.mark.parametrize("lr,alpha", [(1e-7, 200.0), (2e-8, 200.0), (1e-7, 1e5)])
def test_float16_keeps_lr_and_alpha_in_float32(implementation, lr, alpha):
    # float16 stores lr=1e-7 as 1.19e-7 (a 19% larger step), 2e-8 as 0 (no step), 1e5 as inf
    w = torch.full((3, 4), 0.75, dtype=torch.float16)
    g = torch.full((3, 4), 1000.0, dtype=torch.float16)
    expected = reference(w, g, lr, alpha, 0.0)
    assert not torch.equal(expected, w)  # a visible step
    hyperbolic_step_([w], [g], lr, alpha, 0.0, implementation=implementation)
    torch.testing.assert_close(w, expected, rtol=torch.finfo(torch.float16).eps, atol=0)


def test_the_fused_path_steps_fused_arity_tensors_per_call_and_leaves_the_rest_to_foreach(monkeypatch):
    """Every call of the compiled kernel takes exactly FUSED_ARITY tensors (short calls padded
    with zero tensors the step leaves at zero); tensors it cannot take (non-contiguous, under 2
    elements) are stepped by the foreach path; every tensor is stepped exactly once."""
    calls = []

    def factory(fn):
        def kernel(ws, *args):
            calls.append([w.numel() for w in ws if w.data_ptr() not in padding])
            assert len(ws) == F.FUSED_ARITY
            fn(ws, *args)
        return kernel

    _fake_compile(monkeypatch, factory)
    gen = torch.Generator().manual_seed(3)
    sizes = [3 + k for k in range(F.FUSED_ARITY + 2)]
    ws = [torch.randn(n, generator=gen, dtype=torch.float64) for n in sizes]
    one_element, transposed = torch.randn(1, dtype=torch.float64), torch.randn(4, 6, dtype=torch.float64).t()
    ws += [one_element, transposed]
    gs = [torch.randn(w.shape, generator=gen, dtype=torch.float64) for w in ws]
    pads = F._padding_for(torch.device("cpu"), torch.float64, F.FUSED_ARITY)
    padding = {t.data_ptr() for ts in pads for t in ts}
    expected = [reference(w, g, 0.02, 10.0, 0.1, 5.0) for w, g in zip(ws, gs)]
    hyperbolic_step_(ws, gs, 0.02, 10.0, 0.1, max_exponent=5.0, implementation="fused")
    assert calls == [sizes[:F.FUSED_ARITY], sizes[F.FUSED_ARITY:]]  # the 1-element and transposed ones: foreach
    for w, e in zip(ws, expected):
        torch.testing.assert_close(w, e, rtol=1e-12, atol=0)
    assert not any(pad.any() for pad in pads[0])


def test_the_compiled_kernel_stays_parallel_when_first_compiled_on_small_tensors():
    """Inductor decides at compile time, from the first call's sizes, whether a loop runs on
    several threads; the kernel is shared by every later (large) tensor, so each of its loops
    must get a parallel region whatever the first call was."""
    from torch._inductor.utils import run_and_get_code

    torch._dynamo.reset()
    F._compiled_kernels.clear()
    ws = [torch.randn(3 + k, dtype=torch.float64) for k in range(3)]
    gs = [torch.randn_like(w) for w in ws]
    threads = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        _, code = run_and_get_code(F.hyperbolic_step_, ws, gs, 0.01, 10.0, 0.1, implementation="fused")
    finally:
        torch.set_num_threads(threads)
    source = "\n".join(code)
    loops = re.findall(r"for\(int64_t x0=", source)
    assert len(loops) == F.FUSED_ARITY
    assert source.count("#pragma omp for") == len(loops)
