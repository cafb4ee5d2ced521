"""The default fused path's per-tensor dispatch: every tensor compiled-called (FUSED_TENSOR_MIN_NUMEL = 0)
against small tensors sent to one foreach call (the default), against foreach alone; HAM's step on the
25M transformer-like set, interleaved medians of 15 rounds in one process, one thread.

    python benchmarks/fused_dispatch.py
"""
import statistics
import sys
import time

import torch

sys.path.insert(0, "benchmarks")
from optimizer_step import transformer_25m  # noqa: E402

from pyg_ham.optim import functional as F  # noqa: E402

torch.set_num_threads(1)
ps = [p for p in transformer_25m() if p.ndim >= 2]
ws = [p.detach().clone() for p in ps]; gs = [torch.randn_like(w) * 1e-3 for w in ws]
print(len(ws), "tensors", sum(w.numel() for w in ws), "elements", sorted({w.numel() for w in ws}))
def run(mode):
    if mode == "per-tensor fused (before)": F.FUSED_TENSOR_MIN_NUMEL = 0; impl = None
    elif mode == "hybrid default (after)": F.FUSED_TENSOR_MIN_NUMEL = 1 << 20; impl = None
    else: impl = "foreach"
    t = time.perf_counter(); F.hyperbolic_step_(ws, gs, 1e-3, 200.0, 1e-3, max_exponent=5.0, implementation=impl); return time.perf_counter() - t
modes = ["per-tensor fused (before)", "hybrid default (after)", "foreach"]
for m in modes: run(m); run(m)  # warm up / compile
times = {m: [] for m in modes}
for _ in range(15):
    for m in modes: times[m].append(run(m))
base = statistics.median(times["foreach"])
for m in modes: print(f"{m:28s} {1e3*statistics.median(times[m]):7.2f} ms  ({statistics.median(times[m])/base:.2f}x foreach)")
