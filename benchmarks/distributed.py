"""Training beyond one process: measurements side by side in one run (ratios; the machine may be loaded).

Sections (``--what``, comma-separated; one function per measurement):

* ``ddp`` (issue #18, :func:`measure_ddp`): mini-batch node training (GraphSAGE 2 x 64, fanout
  10,10, global batch 1024 seeds, pyg_ham.sampling) on a synthetic graph of ogbn-arxiv's size
  (169,343 nodes, 128 features, 40 classes, average degree 13.7) in 1 and in 2 processes
  (``torchrun``, gloo, one thread each): training seeds per second (epochs after the first) and
  the proportional set size (PSS, ``psutil``'s ``memory_full_info().pss``) of every rank while it
  trains, less its PSS after importing torch, PyG and pyg_ham (what each process costs anyway).
  The graph is memory-mapped from one file per machine in several processes, so the second rank
  should add well under the graph's size.
* ``jobs`` (issue #19, :func:`measure_jobs`): the wall time of ``pyg-ham compare -d Cora --runs 10``
  (adam and adam+ham: 20 independent runs) with ``--jobs 1`` and ``--jobs 2``, each a fresh
  ``pyg-ham`` process (start-up and data loading included), or with ``--in-process`` through the
  Python API in one process after starting the worker pool once; the two settings alternate over
  ``--repeats`` rounds and the per-run results of the two are checked to be identical.

    python benchmarks/distributed.py --what ddp
    python benchmarks/distributed.py --what ddp --num-nodes 50000 --epochs 2
    OMP_NUM_THREADS=1 python benchmarks/distributed.py --what jobs --in-process --repeats 2
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any, Callable, Dict, List

REPO = Path(__file__).resolve().parents[1]
ROOT = REPO
sys.path.insert(0, str(ROOT))
DATA = Path(os.environ.get("PYG_HAM_TEST_DATA") or ROOT.parent / "shared" / "data")


# ----------------------------------------------------------------------------- ddp (issue #18)
def _pss() -> int:
    import psutil

    return int(psutil.Process().memory_full_info().pss)


def ddp_worker(args: argparse.Namespace) -> None:
    """One rank (run by torchrun): train, sample this process's PSS, rank 0 prints one JSON line."""
    import torch

    torch.set_num_threads(1)
    import torch_geometric  # noqa: F401 - counted in the baseline

    from pyg_ham.train import distributed, machine
    from pyg_ham.train.config import ExperimentConfig
    from pyg_ham.train.runner import load_task, run_experiment
    from pyg_ham.train.task import task_kind

    base = _pss()
    cfg = ExperimentConfig(dataset="synthetic", model="sage", hidden=64, layers=2, norm=None, dropout=0.0,
                           batch_size=args.batch_size, fanout=[10, 10], epochs=args.epochs, eval_every=args.epochs,
                           eval_train=False, quiet=True, device="cpu",
                           dataset_options={"num_nodes": args.num_nodes, "num_features": 128, "num_classes": 40,
                                            "avg_degree": 13.7})
    samples: List[int] = []
    done = threading.Event()

    def sample() -> None:
        while not done.wait(0.25):
            samples.append(_pss())

    with distributed.session(torch.device("cpu")):
        task = load_task(cfg)
        # the graph's share: the task built (graph memory-mapped in several processes, sampler's CSC),
        # every graph page touched, garbage released
        run = task_kind(task).create(task, cfg, {"key": "run0", "seed": 0, "fields": {"run": 0}},
                                     torch.device("cpu"))
        for value in task.data.to_dict().values():
            if torch.is_tensor(value):
                float(value.sum())
        del run
        machine.release_memory()
        graph_pss = _pss()
        thread = threading.Thread(target=sample, daemon=True)
        thread.start()
        doc = run_experiment(cfg, task=task)
        done.set()
        thread.join()
        graph = sum(v.numel() * v.element_size() for v in task.data.to_dict().values() if torch.is_tensor(v))
        history = doc["runs"][0]["history"]
        times = [h["time"] for h in history[1:]] or [history[0]["time"]]
        mine = {"base": base, "graph": graph_pss, "training": samples[-1] if samples else _pss(), "graph_bytes": graph,
                "epoch_time": sorted(times)[len(times) // 2], "train_seeds": int(task.split(0)["train"].numel())}
        ranks = distributed.gather_objects(mine)
    if distributed.is_main():
        print("RESULT " + json.dumps(ranks), flush=True)


def _launch_ddp(nproc: int, args: argparse.Namespace) -> List[Dict[str, Any]]:
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", str(nproc),
           __file__, "--worker", "--num-nodes", str(args.num_nodes), "--epochs", str(args.epochs),
           "--batch-size", str(args.batch_size)]
    env = {**os.environ, "OMP_NUM_THREADS": "1",
           "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
    lines = [line for line in out.stdout.splitlines() if line.startswith("RESULT ")]
    if out.returncode or not lines:
        raise SystemExit(f"{nproc} process(es) failed:\n{out.stderr[-3000:]}")
    return json.loads(lines[-1][len("RESULT "):])


def measure_ddp(args: argparse.Namespace) -> List[str]:
    """Throughput and PSS of 1 vs 2 processes, alternated ``--repeats`` times (medians)."""
    runs: Dict[int, List[List[Dict[str, Any]]]] = {1: [], 2: []}
    for _ in range(args.repeats):
        for nproc in (1, 2):
            runs[nproc].append(_launch_ddp(nproc, args))

    def median(values: List[float]) -> float:
        values = sorted(values)
        return values[len(values) // 2]

    mb = 2 ** 20
    seeds = runs[1][0][0]["train_seeds"]
    graph = runs[1][0][0]["graph_bytes"]
    speed = {n: median([seeds / r[0]["epoch_time"] for r in runs[n]]) for n in runs}
    extra = {n: median([sum(rank["training"] - rank["base"] for rank in r) for r in runs[n]]) for n in runs}
    held = {n: median([sum(rank["graph"] - rank["base"] for rank in r) for r in runs[n]]) for n in runs}
    second = held[2] - held[1]
    return [
        f"mini-batch node training, {args.num_nodes:,} nodes, graph {graph / mb:.0f} MB, batch {args.batch_size}, "
        f"one thread per process, median of {args.repeats}",
        "PSS over each rank's baseline, summed over ranks: with the graph loaded (and the sampler's CSC), "
        "and its last sample while the run ran (training or full-graph evaluation: noisy)",
        f"{'processes':>9}  {'seeds/s':>9}  {'speed-up':>8}  {'graph PSS (MB)':>14}  {'last PSS sample (MB)':>17}",
        f"{1:>9}  {speed[1]:>9.0f}  {1.0:>8.2f}  {held[1] / mb:>14.0f}  {extra[1] / mb:>17.0f}",
        f"{2:>9}  {speed[2]:>9.0f}  {speed[2] / speed[1]:>8.2f}  {held[2] / mb:>14.0f}  {extra[2] / mb:>17.0f}",
        f"the second rank adds {second / mb:.0f} MB for the graph = {second / graph:.2f}x its size "
        f"(per-rank baseline {median([r[0]['base'] for r in runs[1]]) / mb:.0f} MB not counted)",
    ]


# ----------------------------------------------------------------------------- jobs (issue #19)
def _compare(jobs: int, out: Path, args: argparse.Namespace) -> float:
    cmd = [sys.executable, "-c", "from pyg_ham.cli import main; main()", "compare", "-d", "Cora",
           "--root", str(args.root), "--runs", str(args.runs),
           "--epochs", str(args.jobs_epochs), "--jobs", str(jobs), "--out", str(out), "--quiet",
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

    cfg = ExperimentConfig.from_recipe("Cora", root=str(args.root), runs=args.runs, epochs=args.jobs_epochs, jobs=jobs,
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


def measure_jobs(args: argparse.Namespace) -> List[str]:
    import torch

    threads = os.environ.get("OMP_NUM_THREADS", f"torch default ({torch.get_num_threads()})")
    print(f"compare -d Cora adam adam+ham --runs {args.runs} --epochs {args.jobs_epochs}: {2 * args.runs} runs; "
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
    return []


# ----------------------------------------------------------------------------- command line
MEASUREMENTS: Dict[str, Callable[[argparse.Namespace], List[str]]] = {"ddp": measure_ddp, "jobs": measure_jobs}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--what", default="ddp", help=f"comma-separated: {', '.join(MEASUREMENTS)} (default: ddp)")
    parser.add_argument("--num-nodes", type=int, default=169_343, help="ddp: nodes of the synthetic graph")
    parser.add_argument("--epochs", type=int, default=3, help="ddp: epochs per measurement (the first is warm-up)")
    parser.add_argument("--batch-size", type=int, default=1024, help="ddp: global batch of seed nodes")
    parser.add_argument("--repeats", type=int, default=1, help="measurements of each setting, alternated")
    parser.add_argument("--root", type=Path, default=DATA, help="jobs: data root holding Planetoid/Cora")
    parser.add_argument("--runs", type=int, default=10, help="jobs: seeds per variant")
    parser.add_argument("--jobs-epochs", type=int, default=200, help="jobs: epochs per run")
    parser.add_argument("--in-process", action="store_true",
                        help="jobs: time compare() in this process, the worker pool's start-up apart")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        return ddp_worker(args)
    what = [w.strip() for w in args.what.split(",") if w.strip()]
    unknown = [w for w in what if w not in MEASUREMENTS]
    if unknown:
        parser.error(f"unknown --what {', '.join(unknown)}; choose from {', '.join(MEASUREMENTS)}")
    t0 = time.perf_counter()
    for name in what:
        print(f"== {name}")
        for line in MEASUREMENTS[name](args):
            print(line)
    print(f"({time.perf_counter() - t0:.0f} s; os.cpu_count() = {os.cpu_count()}, load average "
          f"{os.getloadavg()[0]:.1f})")


if __name__ == "__main__":
    main()
