"""Cost of HAM's hyperbolic step on top of a base optimizer step (interleaved medians).

For three parameter sets — the shapes of OGB's ogbn-arxiv GraphSAGE (218,664 parameters),
six 4096x1024 layers with biases (25.2M, the set of issues 25/26) and a 25M-parameter
transformer-like set of 128 tensors — times one optimizer step of:

* the base alone (AdamW ``foreach=True`` and AdamW ``fused=True``),
* base + HAM on its default path: with the fused base, the *one pass* that does AdamW's update and
  HAM's step together (``pyg_ham.optim.fused_base``); with the foreach base, the separate step
  (compiled from 4M selected elements, else foreach),
* base + HAM's separate step forced onto the foreach and the fused (compiled) paths,
* base + HAM (default) with the trainer's exponent diagnostics on every step, and sampled as
  the trainer samples them (one step in ``EXPONENT_SAMPLE_EVERY``),
* base + a *naive* HAM written in the structure of the authors' reference wrapper (per-tensor
  NaN checks that synchronise, a clone for rollback, a masked write, a per-tensor weight-norm
  clip and a gradient-norm clip after the step) — the peer implementation.

``--limits`` also times what bounds the one pass at the large sets: ``exp`` alone over the
selected elements, and a stream over the bytes the pass moves (a copy of as many bytes).

Variants run interleaved (one step of each, repeated) and the table reports medians and ratios
to the base measured in the same run, so machine noise hits all variants alike.

    python benchmarks/optimizer_step.py            # every set
    python benchmarks/optimizer_step.py --quick    # fewer repetitions

It imports pyg_ham from its own checkout; ``PYTHONPATH=/path/to/other/checkout`` times another
commit with this same script (its first line prints which ``pyg_ham`` ran).
"""
from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable, Dict, List

import torch

ROOT = Path(__file__).resolve().parent.parent
if not os.environ.get("PYTHONPATH"):
    sys.path.insert(0, str(ROOT))  # this checkout, not whichever pyg_ham is installed

import pyg_ham  # noqa: E402
from pyg_ham.models import build_node_model  # noqa: E402
from pyg_ham.optim import HAM, ham_param_groups  # noqa: E402


def provenance() -> str:
    """Which pyg_ham this process imported, and its commit."""
    where = Path(pyg_ham.__file__).resolve().parent.parent
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=where, capture_output=True,
                            text=True).stdout.strip()
    return f"pyg_ham {pyg_ham.__file__} (commit {commit or 'unknown'})"


def graphsage_arxiv() -> List[torch.nn.Parameter]:
    model = build_node_model("sage", 128, 40, hidden_channels=256, num_layers=3, norm="batch_norm")
    return list(model.parameters())


def six_layers_4096x1024() -> List[torch.nn.Parameter]:
    return list(torch.nn.ModuleList([torch.nn.Linear(1024, 4096) for _ in range(6)]).parameters())


def transformer_25m(d: int = 512, layers: int = 8) -> List[torch.nn.Parameter]:
    block = lambda: [torch.nn.Linear(d, d), torch.nn.Linear(d, d), torch.nn.Linear(d, d), torch.nn.Linear(d, d),
                     torch.nn.Linear(d, 4 * d), torch.nn.Linear(4 * d, d), torch.nn.LayerNorm(d), torch.nn.LayerNorm(d)]
    modules = torch.nn.ModuleList([m for _ in range(layers) for m in block()])
    return list(modules.parameters())


SETS = {"graphsage": ("ogbn-arxiv GraphSAGE", graphsage_arxiv), "6x4096x1024": ("6 x 4096x1024", six_layers_4096x1024),
        "transformer": ("25M transformer-like", transformer_25m)}


class NaiveHAM:
    """HAM in the structure of the authors' wrapper (see shared/reference/method.md)."""

    def __init__(self, base: torch.optim.Optimizer, alpha: float = 200.0, beta: float = 1e-3,
                 max_weight_norm: float = 1000.0, max_grad_norm: float = 20.0) -> None:
        self.base, self.alpha, self.beta = base, alpha, beta
        self.max_weight_norm, self.max_grad_norm = max_weight_norm, max_grad_norm

    @torch.no_grad()
    def step(self) -> None:
        self.base.step()
        for group in self.base.param_groups:
            lr = group["lr"]
            for p in group["params"]:
                if p.grad is None or p.ndim < 2:
                    continue
                if torch.isnan(p).any() or torch.isnan(p.grad).any():  # host sync
                    print("NaN before HAM step")
                    continue
                backup = p.clone()
                exponent = torch.clamp(lr * (-self.alpha * torch.sign(p) * p.grad - self.beta), -5, 5)
                mask = p != 0
                p[mask] = p[mask] * torch.exp(exponent[mask])
                if torch.isnan(p).any() or torch.isinf(p).any():  # host sync
                    print("NaN after HAM step, rolling back")
                    p.copy_(backup)
            for p in group["params"]:
                norm = p.norm()
                if norm > self.max_weight_norm:  # host sync
                    p.mul_(self.max_weight_norm / norm)
        params = [p for g in self.base.param_groups for p in g["params"] if p.grad is not None]
        torch.nn.utils.clip_grad_norm_(params, self.max_grad_norm)


def make_variants(params: List[torch.nn.Parameter], fused: bool) -> Dict[str, Callable[[], None]]:
    """Independent copies of the parameters, each with its optimizer; returns name -> step()."""
    def copy() -> List[torch.nn.Parameter]:
        out = []
        for p in params:
            q = torch.nn.Parameter(p.detach().clone())
            q.grad = torch.randn_like(q) * 1e-3
            out.append(q)
        return out

    def base(ps):
        named = [(str(i), p) for i, p in enumerate(ps)]
        kwargs = {"fused": True} if fused else {"foreach": True}
        return torch.optim.AdamW(ham_param_groups(named, 0.01), lr=1e-3, **kwargs)

    default = HAM(base(copy()))
    one_pass = getattr(default, "two_pass_reason", "n/a") is None  # (newer than some commits timed)
    variants = {
        "base": base(copy()).step,
        "base + HAM (default: one pass)" if one_pass else "base + HAM (default)": default.step,
        "base + HAM (foreach)": HAM(base(copy()), implementation="foreach").step,
        "base + HAM (fused, compiled)": HAM(base(copy()), implementation="fused").step,
    }

    try:  # the trainer's diagnostics (sampling is newer than some commits this script may time)
        from pyg_ham.optim import track_exponents
        from pyg_ham.train.engine import EXPONENT_SAMPLE_EVERY

        for label, every in (("every step", 1), (f"1 step in {EXPONENT_SAMPLE_EVERY}", EXPONENT_SAMPLE_EVERY)):
            opt = HAM(base(copy()))
            track_exponents(opt, every=every)
            variants[f"base + HAM (default) + diagnostics, {label}"] = opt.step
    except (ImportError, TypeError):
        pass
    variants["base + naive HAM (authors' structure)"] = NaiveHAM(base(copy())).step
    return variants


def limits(params: List[torch.nn.Parameter]) -> Dict[str, Callable[[], None]]:
    """What bounds a pass over the selected elements: ``exp`` alone, and a copy that moves as many
    bytes as the one pass of fused AdamW + HAM (reads w, g, m, v; writes w, m, v: 28 bytes per
    float32 element) — memory traffic at this machine's copy bandwidth."""
    n = sum(p.numel() for p in params if p.ndim >= 2)
    x, y = torch.randn(n), torch.empty(n)
    src, dst = torch.randn(n * 28 // 8), torch.empty(n * 28 // 8)  # a copy moves 8 bytes per element
    return {"exp alone (selected elements)": lambda: torch.exp(x, out=y),
            "copy of the one pass's 28 bytes/element": lambda: dst.copy_(src)}


def measure(variants: Dict[str, Callable[[], None]], reps: int, warmup: int) -> Dict[str, float]:
    for step in variants.values():
        for _ in range(warmup):
            step()  # the first fused call compiles
    times: Dict[str, List[float]] = {name: [] for name in variants}
    for _ in range(reps):
        for name, step in variants.items():
            t0 = time.perf_counter()
            step()
            times[name].append(time.perf_counter() - t0)
    return {name: statistics.median(ts) for name, ts in times.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="fewer repetitions")
    parser.add_argument("--sets", default=",".join(SETS), help=f"comma-separated: {','.join(SETS)}")
    parser.add_argument("--bases", default="foreach,fused", help="comma-separated: foreach,fused")
    parser.add_argument("--limits", action="store_true", help="also time exp alone and the pass's bytes (big sets)")
    args = parser.parse_args()
    print(provenance())
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, load average {os.getloadavg()[0]:.2f}")
    print("| parameter set | #params | base | variant | median step (ms) | ratio to base |")
    print("|---|---|---|---|---|---|")
    for key in args.sets.split(","):
        label, build = SETS[key]
        params = build()
        numel = sum(p.numel() for p in params)
        big = numel > 5_000_000
        reps = (7 if args.quick else 15) if big else (50 if args.quick else 300)
        for fused in [b == "fused" for b in args.bases.split(",")]:
            variants = make_variants(params, fused)
            if args.limits and big and fused:
                variants.update(limits(params))
            result = measure(variants, reps, warmup=2)
            base_name = "AdamW fused" if fused else "AdamW foreach"
            for name, t in result.items():
                print(f"| {label} | {numel:,} | {base_name} | {name} | {t * 1e3:.3f} | {t / result['base']:.2f} |",
                      flush=True)


if __name__ == "__main__":
    main()
