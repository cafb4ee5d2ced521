"""The default fused path's per-tensor dispatch, measured side by side in one process.

HAM's step on the 25M transformer-like set (``optimizer_step.transformer_25m``), one thread,
interleaved medians of 15 rounds:

* every tensor through the compiled kernel (``FUSED_TENSOR_MIN_NUMEL = 0``, as before),
* the default (tensors under ``FUSED_TENSOR_MIN_NUMEL`` share one foreach call),
* foreach alone.

    python benchmarks/fused_dispatch.py
"""
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
from optimizer_step import transformer_25m  # noqa: E402

from pyg_ham.optim import functional as F  # noqa: E402

MODES = {"per-tensor fused (before)": (0, None), "hybrid default (after)": (1 << 20, None),
         "foreach": (1 << 20, "foreach")}


def step(ws, gs, mode: str) -> float:
    F.FUSED_TENSOR_MIN_NUMEL, implementation = MODES[mode]
    start = time.perf_counter()
    F.hyperbolic_step_(ws, gs, 1e-3, 200.0, 1e-3, max_exponent=5.0, implementation=implementation)
    return time.perf_counter() - start


def main() -> None:
    torch.set_num_threads(1)
    ws = [p.detach().clone() for p in transformer_25m() if p.ndim >= 2]
    gs = [torch.randn_like(w) * 1e-3 for w in ws]
    print(f"{len(ws)} tensors, {sum(w.numel() for w in ws):,} elements, sizes {sorted({w.numel() for w in ws})}")
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
