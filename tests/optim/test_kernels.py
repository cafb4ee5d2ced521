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
def test_every_signature_compiles_once_and_those_beyond_the_cache_take_foreach(monkeypatch):
    """A signature (the sizes of one call's tensors) is compiled once with static shapes from its
    own code object: a changing lr, another signature or a repeat never recompiles it (no recompile
    limit to hit), and signatures beyond FUSED_CACHE_SIZE are stepped, correctly, by foreach."""
    monkeypatch.setattr(F, "_kernels", F._FusedKernels())
    monkeypatch.setattr(F, "FUSED_CACHE_SIZE", 3)
    gen = torch.Generator().manual_seed(0)
    counters = torch._dynamo.utils.counters
    graphs_before, recompiles_before = counters["stats"]["unique_graphs"], counters["recompiles"].copy()
    foreach_calls = []
    real_foreach = F._foreach_step_
    monkeypatch.setattr(F, "_foreach_step_", lambda ws, *a: (foreach_calls.append(len(ws)), real_foreach(ws, *a)))
    # equal sizes, a one-element tensor, 3-D, then signatures beyond the cache
    signatures = [[(7, 3)] * 4, [(1,), (5, 2)], [(2, 3, 4)], [(9,)], [(4, 4), (3,)]]
    for repeat in range(2):
        for k, picked in enumerate(signatures):
            lr = 0.01 * (1 + k + 5 * repeat)  # a new learning rate at every call
            ws = [torch.randn(s, generator=gen) for s in picked]
            gs = [torch.randn(s, generator=gen) for s in picked]
            expected = [reference(w, g, lr, 20.0, 0.1, 3.0) for w, g in zip(ws, gs)]
            hyperbolic_step_(ws, gs, lr, 20.0, 0.1, max_exponent=3.0, implementation="fused")
            for w, e in zip(ws, expected):
                torch.testing.assert_close(w, e, rtol=2e-6, atol=1e-7)
    assert not F._kernels.unavailable
    assert len(F._kernels.kernels) == 3
    assert counters["stats"]["unique_graphs"] - graphs_before == 3  # each compiled once, whatever the lr
    assert counters["recompiles"] == recompiles_before
    assert foreach_calls == [1, 2, 1, 2]  # the 4th and 5th signatures, on both rounds


def test_views_at_odd_storage_offsets_share_their_signature_s_kernel(monkeypatch):
    monkeypatch.setattr(F, "_kernels", F._FusedKernels())
    gen = torch.Generator().manual_seed(4)
    counters = torch._dynamo.utils.counters
    graphs_before = counters["stats"]["unique_graphs"]
    buf, gbuf = torch.randn(400, generator=gen), torch.randn(400, generator=gen)
    for offset in (0, 1, 3, 17):  # as shards of a flat buffer
        w, g = buf[offset:offset + 60].view(6, 10), gbuf[offset:offset + 60].view(6, 10)
        expected = reference(w, g, 0.01, 20.0, 0.1, 3.0)
        hyperbolic_step_([w], [g], 0.01, 20.0, 0.1, max_exponent=3.0, implementation="fused")
        torch.testing.assert_close(w, expected, rtol=2e-6, atol=1e-7)
    assert counters["stats"]["unique_graphs"] - graphs_before == 1


def _fake_compile(monkeypatch, kernel_factory):
    """Replace torch.compile (and forget compiled kernels) so the fused path gets our kernel."""
    monkeypatch.setattr(F, "_kernels", F._FusedKernels())
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
    ws = [torch.randn(shapes[i % 3], generator=gen, dtype=torch.float64) for i in range(F.FUSED_GROUP_SIZE + 3)]
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


def test_foreach_chunk_plan_bounds_every_chunk_on_every_device():
    n = 100_000_000
    # CUDA (and any non-CPU device): few large chunks, whole tensors where they fit
    assert F.foreach_chunk_plan("cuda", [1000, 10, 3]) == [[(0, 0, 1000), (1, 0, 10), (2, 0, 3)]]
    assert F.foreach_chunk_plan("cuda", []) == []
    big = 1 << 26
    assert F.foreach_chunk_plan("cuda", [n, 10, 3]) == [[(0, 0, big)], [(0, big, n), (1, 0, 10), (2, 0, 3)]]
    # the scratch buffer (the largest chunk) is at most max(2**26, the largest tensor), whatever the list
    for numels, splittable in [([n, n, 5], None), ([3 * big, 7], [False, True]), ([big // 3] * 10, None),
                               ([big + 1, big + 1], [False, False])]:
        for device in ("cuda", "cpu"):
            plan = F.foreach_chunk_plan(device, numels, splittable=splittable)
            flat = [r for chunk in plan for r in chunk]
            assert sum(b - a for _, a, b in flat) == sum(numels)
            limit = max(big if device == "cuda" else 2 ** 18, max(numels))
            assert max(sum(b - a for _, a, b in chunk) for chunk in plan) <= limit
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


def test_the_fused_path_steps_up_to_fused_group_size_tensors_per_call_and_leaves_the_rest_to_foreach(monkeypatch):
    """Each call of a compiled kernel takes up to FUSED_GROUP_SIZE tensors, in order; non-contiguous
    tensors are stepped by the foreach path; every tensor is stepped exactly once."""
    calls = []

    def factory(fn):
        def kernel(ws, *args):
            calls.append([w.numel() for w in ws])
            fn(ws, *args)
        return kernel

    _fake_compile(monkeypatch, factory)
    gen = torch.Generator().manual_seed(3)
    sizes = [1] + [3 + k for k in range(F.FUSED_GROUP_SIZE + 1)]
    ws = [torch.randn(n, generator=gen, dtype=torch.float64) for n in sizes]
    transposed = torch.randn(4, 6, dtype=torch.float64).t()
    ws.insert(5, transposed)
    gs = [torch.randn(w.shape, generator=gen, dtype=torch.float64) for w in ws]
    expected = [reference(w, g, 0.02, 10.0, 0.1, 5.0) for w, g in zip(ws, gs)]
    hyperbolic_step_(ws, gs, 0.02, 10.0, 0.1, max_exponent=5.0, implementation="fused")
    assert calls == [sizes[:F.FUSED_GROUP_SIZE], sizes[F.FUSED_GROUP_SIZE:]]  # the transposed one: foreach
    for w, e in zip(ws, expected):
        torch.testing.assert_close(w, e, rtol=1e-12, atol=0)


def test_a_large_signature_gets_parallel_loops_after_a_small_one_was_compiled_first(monkeypatch):
    """Inductor decides at compile time, from the sizes, whether a loop runs on several threads;
    a signature compiled first on small tensors is never reused for large ones, whose own kernel
    gets parallel loops."""
    from torch._inductor.utils import run_and_get_code

    monkeypatch.setattr(F, "_kernels", F._FusedKernels())
    small = [torch.randn(3 + k, dtype=torch.float64) for k in range(3)]
    large = [torch.randn(1 << 16, dtype=torch.float64) for _ in range(3)]
    threads = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        F.hyperbolic_step_(small, [torch.randn_like(w) for w in small], 0.01, 10.0, 0.1, implementation="fused")
        _, code = run_and_get_code(F.hyperbolic_step_, large, [torch.randn_like(w) for w in large], 0.01, 10.0, 0.1,
                                   implementation="fused")
    finally:
        torch.set_num_threads(threads)
    source = "\n".join(code)
    loops = re.findall(r"for\(int64_t x0=", source)
    assert loops and "65536L" in source  # static sizes (equal ones may share one loop)
    assert source.count("#pragma omp for") == len(loops)
