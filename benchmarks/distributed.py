"""Parallel training benchmarks: run-level parallelism (``--jobs``) and torchrun DDP.

``--what jobs`` (issue 19): the wall time of ``pyg-ham compare -d Cora --runs 10`` (two variants,
adam and adam+ham: 20 independent runs) with ``--jobs 1`` and with ``--jobs 2``, each a fresh
``pyg-ham`` process (start-up, data loading and the workers' start included, as a user
sees it), measured side by side in one invocation, alternating the two settings when
``--repeats`` > 1. The per-run results of the two are checked to be identical. The machine's
load average is printed before and after (on a shared machine the ratio is what to read).

``--in-process`` measures the same comparison through the Python API in one process instead,
after starting the worker pool's fork server once, so that only training is timed (``--jobs 2``'s
one-off start-up, a few seconds, is printed on its own line); the two settings alternate over
``--repeats`` rounds, so a change of the machine's load hits both.

``--what ddp`` (issue 18): torchrun DDP; see issue 18 (not measured here).

Examples::

    OMP_NUM_THREADS=1 python benchmarks/distributed.py --what jobs            # Cora, 10 seeds, 200 epochs
    OMP_NUM_THREADS=1 python benchmarks/distributed.py --what jobs --in-process --repeats 2
    python benchmarks/distributed.py --what jobs --epochs 20 --runs 2         # seconds
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Dict, List

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
DATA = Path(os.environ.get("PYG_HAM_TEST_DATA") or ROOT.parent / "shared" / "data")


def _compare(jobs: int, out: Path, args: argparse.Namespace) -> float:
    cmd = [sys.executable, "-c", "from pyg_ham.cli import main; main()", "compare", "-d", "Cora",
           "--root", str(args.root), "--runs", str(args.runs),
           "--epochs", str(args.epochs), "--jobs", str(jobs), "--out", str(out), "--quiet",
           "--fresh", "adam", "adam+ham"]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    if proc.returncode:
        sys.exit(f"{' '.join(cmd)} failed:\n{proc.stderr}")
    return time.perf_counter() - t0


def _runs(out: Path) -> Dict[str, List[tuple]]:
    docs = {p.stem: json.loads(p.read_text()) for p in out.glob("adam*.json")}
    return {k: [(r["key"], r["test"], [h["loss"] for h in r["history"]]) for r in d["runs"]] for k, d in docs.items()}


def _compare_in_process(jobs: int, out: Path, args: argparse.Namespace) -> float:
    from pyg_ham.compare.compare import compare
    from pyg_ham.train.config import ExperimentConfig

    cfg = ExperimentConfig.from_recipe("Cora", root=str(args.root), runs=args.runs, epochs=args.epochs, jobs=jobs,
                                       quiet=True)
    t0 = time.perf_counter()
    compare(cfg, ["adam", "adam+ham"], out, log=lambda m: None, fresh=True)
    return time.perf_counter() - t0


def _start_pool_once() -> float:
    """Start the fork server (what the first ``--jobs`` pool of a process pays) and time it."""
    from concurrent.futures import ProcessPoolExecutor

    from pyg_ham.train.jobs import _context

    t0 = time.perf_counter()
    with ProcessPoolExecutor(2, mp_context=_context()) as pool:
        pool.submit(os.getpid).result()
    return time.perf_counter() - t0


def bench_jobs(args: argparse.Namespace) -> None:
    import torch

    threads = os.environ.get("OMP_NUM_THREADS", f"torch default ({torch.get_num_threads()})")
    print(f"compare -d Cora adam adam+ham --runs {args.runs} --epochs {args.epochs}: {2 * args.runs} runs; "
          f"{os.cpu_count()} cores, intra-op thread budget {threads}; load average before "
          f"{' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    times: Dict[int, List[float]] = {1: [], 2: []}
    run = _compare_in_process if args.in_process else _compare
    if args.in_process:
        print(f"  worker pool start-up (fork server, once per process): {_start_pool_once():.1f} s", flush=True)
    with tempfile.TemporaryDirectory(prefix="pyg_ham_jobs_") as tmp:
        for _ in range(args.repeats):
            for jobs in (1, 2):
                times[jobs].append(run(jobs, Path(tmp) / f"j{jobs}", args))
                print(f"  --jobs {jobs}: {times[jobs][-1]:.1f} s", flush=True)
        same = _runs(Path(tmp) / "j1") == _runs(Path(tmp) / "j2")
    best = {j: min(t) for j, t in times.items()}
    mode = "in one process, pool start-up excluded" if args.in_process else "fresh pyg-ham process each"
    print(f"| jobs | wall s (best of {args.repeats}; {mode}) | speed-up |\n|---|---|---|")
    for jobs in (1, 2):
        print(f"| {jobs} | {best[jobs]:.1f} | {best[1] / best[jobs]:.2f}x |")
    print(f"per-run results identical: {same}; load average after "
          f"{' '.join(f'{x:.2f}' for x in os.getloadavg())}")


def bench_ddp(args: argparse.Namespace) -> None:
    print("torchrun DDP: see issue 18 (not measured in this file yet)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--what", choices=["jobs", "ddp"], default="jobs")
    parser.add_argument("--root", type=Path, default=DATA, help="data root holding Planetoid/Cora")
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--epochs", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--in-process", action="store_true",
                        help="time compare() in this process, the worker pool's start-up apart")
    args = parser.parse_args()
    {"jobs": bench_jobs, "ddp": bench_ddp}[args.what](args)


if __name__ == "__main__":
    main()
