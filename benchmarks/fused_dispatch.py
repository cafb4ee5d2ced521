"""The fused path's calls of the compiled kernel, measured side by side in one process.

HAM's step on the 25M transformer-like set (``optimizer_step.transformer_25m``: 48 weight
matrices of 262,144 and 1,048,576 elements), interleaved medians of 15 rounds:

* the fused path as shipped: :data:`~pyg_ham.optim.functional.FUSED_ARITY` tensors per call,
* the fused path with one tensor per call (each call costs dispatch and a parallel region),
* the foreach path.

    python benchmarks/fused_dispatch.py [THREADS]
"""
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
from optimizer_step import transformer_25m  # noqa: E402

from pyg_ham.optim import functional as F  # noqa: E402

SHIPPED_ARITY = F.FUSED_ARITY
MODES = {f"fused, {SHIPPED_ARITY} tensors per call": (SHIPPED_ARITY, "fused"),
         "fused, 1 tensor per call": (1, "fused"), "foreach": (SHIPPED_ARITY, "foreach")}


def step(ws, gs, mode: str) -> float:
    F.FUSED_ARITY, implementation = MODES[mode]
    start = time.perf_counter()
    F.hyperbolic_step_(ws, gs, 1e-3, 200.0, 1e-3, max_exponent=5.0, implementation=implementation)
    return time.perf_counter() - start


def main() -> None:
    torch.set_num_threads(int(sys.argv[1]) if len(sys.argv) > 1 else 1)
    ws = [p.detach().clone() for p in transformer_25m() if p.ndim >= 2]
    gs = [torch.randn_like(w) * 1e-3 for w in ws]
    print(f"{torch.get_num_threads()} threads, {len(ws)} tensors, {sum(w.numel() for w in ws):,} elements, "
          f"sizes {sorted({w.numel() for w in ws})}")
    for mode in MODES:  # warm-up and compilation
        step(ws, gs, mode), step(ws, gs, mode)
    times = {mode: [] for mode in MODES}
    for _ in range(15):
        for mode in MODES:
            times[mode].append(step(ws, gs, mode))
    base = statistics.median(times["foreach"])
    for mode, ts in times.items():
        median = statistics.median(ts)
        print(f"{mode:28s} {1e3 * median:8.2f} ms  ({median / base:.2f}x foreach)")


if __name__ == "__main__":
    main()
