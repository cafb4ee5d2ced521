"""HAM's half-step now against the same step at an earlier commit, side by side in one process.

Loads ``pyg_ham/optim/functional.py`` as it was at ``--against`` (``git show``) next to the
installed one and times ``hyperbolic_step_`` of both on the parameter sets of
``optimizer_step.py``, interleaved (one round of every variant, then the next), medians. Only
the HAM step is timed, so the base optimizer's run-to-run variation (30-60% between runs on
these shared machines) does not enter the ratio.

    python benchmarks/step_regression.py --against 201ea1d
"""
import argparse
import functools
import importlib.util
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from optimizer_step import SETS  # noqa: E402

from pyg_ham.optim import functional as current  # noqa: E402


def load_at(commit: str):
    """``pyg_ham/optim/functional.py`` at :obj:`commit`, imported as a separate module."""
    source = subprocess.run(["git", "show", f"{commit}:pyg_ham/optim/functional.py"], cwd=HERE.parent,
                            check=True, capture_output=True, text=True).stdout
    path = Path(tempfile.mkdtemp()) / f"functional_{commit}.py"
    path.write_text(source)
    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--against", required=True, help="the earlier commit")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--sets", default=",".join(SETS), help=f"comma-separated: {','.join(SETS)}")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    earlier = load_at(args.against)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; ratio = now / {args.against}")
    print("| parameter set | implementation | now (ms) | at " + args.against + " (ms) | ratio |")
    print("|---|---|---|---|---|")
    for set_key in args.sets.split(","):
        name, build = SETS[set_key]
        reps = 200 if set_key == "graphsage" else 15
        ws = [p.detach().clone() for p in build() if p.ndim >= 2]
        gs = [torch.randn_like(w) * 1e-3 for w in ws]
        variants = {(impl, label): functools.partial(module.hyperbolic_step_, ws, gs, 1e-3, 200.0, 1e-3,
                                                     max_exponent=5.0, implementation=impl)
                    for impl in (None, "foreach", "fused") for label, module in (("now", current), ("then", earlier))}
        for fn in variants.values():  # warm-up and compilation
            fn(), fn()
        times = {key: [] for key in variants}
        for _ in range(reps):
            for key, fn in variants.items():
                start = time.perf_counter()
                fn()
                times[key].append(time.perf_counter() - start)
        for impl in (None, "foreach", "fused"):
            now, then = (1e3 * statistics.median(times[(impl, label)]) for label in ("now", "then"))
            print(f"| {name} | {impl or 'default'} | {now:.3f} | {then:.3f} | {now / then:.2f} |")


if __name__ == "__main__":
    main()
