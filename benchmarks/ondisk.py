"""Training from the on-disk layout: peak anonymous memory, steps/s and sampled edges/s.

Two measurements (issue 31), each phase in a fresh process that samples its own
``/proc/self/status`` every 10 ms for the peak ``RssAnon`` (memory the process owns; unlike
``VmHWM`` it does not count the memory-mapped pages of the layout, which the kernel can drop and
re-read):

* ``small``: a synthetic graph in OGB's raw binary layout (``raw/data.npz`` with
  ``edge_index``/``node_feat``..., ``raw/node-label.npz`` with NaN for unlabelled nodes,
  ``split/time/*.csv.gz``; the fake of ``tests/datasets/fake_papers100m.py``, written in
  streamed chunks, stored members), by default 2M nodes, 10M edges, 256 float32 features
  (2 GB), 2% of the nodes labelled (1.6% train, 0.2% valid, 0.2% test, as ogbn-papers100M's
  1.4% labelled). Phases: ``build`` (its on-disk layout, the real ogbn-papers100M path),
  ``train`` (``pyg-ham train -d ogbn-papers100M`` one epoch from the layout: GraphSAGE
  ``--hidden 32 --layers 2 --fanout 5,5 --batch-size 1024 --eval-mode sampled``), ``sample``
  (the loader alone over the training nodes: edges/s, batches/s, features gathered), and the
  same two in memory (``train-mem``, ``sample-mem``: the layout's arrays copied into a ``Data``),
  and ``ranks`` (issue 32: ``torchrun --nproc-per-node 2`` training from the layout, each rank's
  peak ``RssAnon`` and their sum, beside one process with the same settings; both with every
  neighbour (fanout -1,-1), no dropout and SGD, so that the two must give the same losses and
  scores).
* ``large``: a graph whose features exceed this machine's memory, written straight into an
  on-disk layout (streamed: random features, a uniform random graph made undirected), by
  default 32 GiB of features (33.5M nodes x 256 float32, 5 edges per node), 512,000 training
  nodes so that one epoch is 500 steps of the same settings; phases ``train`` and ``sample``
  (its first 100 batches).

The generated files are deleted at the end unless ``--keep``.

Examples::

    nice -n 10 python benchmarks/ondisk.py small --work /work/ondisk-bench
    nice -n 10 python benchmarks/ondisk.py large --work /work/ondisk-bench --gib 32
    python benchmarks/ondisk.py small --work /tmp/b --nodes 200000 --edges 1000000   # quick
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any, Dict

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # this checkout's pyg_ham


# ------------------------------------------------------------------ memory monitor
class PeakRss:
    """Samples /proc/self/status every 10 ms: the peak RssAnon (and, for comparison, VmHWM)."""

    def __init__(self) -> None:
        self.peak_anon = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    @staticmethod
    def read() -> Dict[str, int]:
        out = {}
        with open("/proc/self/status") as f:
            for line in f:
                key, _, value = line.partition(":")
                if key in ("RssAnon", "RssFile", "VmHWM"):
                    out[key] = int(value.split()[0]) * 1024
        return out

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak_anon = max(self.peak_anon, self.read()["RssAnon"])
            self._stop.wait(0.01)

    def __enter__(self) -> "PeakRss":
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._stop.set()
        self._thread.join()
        self.peak_anon = max(self.peak_anon, self.read()["RssAnon"])


# ------------------------------------------------------------------ data
def generate_small(root: Path, nodes: int, edges: int, dims: int, labelled: float) -> None:
    sys.path.insert(0, str(REPO / "tests" / "datasets"))
    from fake_papers100m import write_fake_papers100m

    write_fake_papers100m(root / "ogb" / "ogbn_papers100M", num_nodes=nodes, num_edges=edges, num_features=dims,
                          labelled=labelled, num_classes=172, compressed=False, chunk=1 << 15)


def large_folder(work: Path) -> Path:
    return work / "large-layout"


def generate_large(work: Path, nodes: int, degree: int, dims: int, train: int, holdout: int) -> None:
    from pyg_ham.datasets.ondisk import ensure_layout

    m = nodes * degree
    edge_chunk, row_chunk = 1 << 23, 1 << 15

    def edges():
        for i, start in enumerate(range(0, m, edge_chunk)):
            rng = np.random.default_rng([7, i])
            k = min(edge_chunk, m - start)
            yield rng.integers(0, nodes, k), rng.integers(0, nodes, k)

    def features():
        for i, start in enumerate(range(0, nodes, row_chunk)):
            rng = np.random.default_rng([11, i])
            yield rng.random((min(row_chunk, nodes - start), dims), dtype=np.float32)

    def build(w):
        w.csc(nodes, edges, undirected=True)
        w.rows("x", nodes, (dims,), np.float32, features())
        rng = np.random.default_rng(3)
        ids = rng.choice(nodes, train + 2 * holdout, replace=False)
        y = np.full(nodes, -1, dtype=np.int64)
        y[ids] = rng.integers(0, 172, ids.size)
        w.rows("y", nodes, (), np.int64, [y])
        w.array("split_train", np.sort(ids[:train]))
        w.array("split_valid", np.sort(ids[train:train + holdout]))
        w.array("split_test", np.sort(ids[train + holdout:]))

    ensure_layout(large_folder(work), {"nodes": nodes, "degree": degree, "dims": dims, "train": train}, build)


# ------------------------------------------------------------------ phases (one process each)
#: large: batches of the loader-only phase (its features are mostly read from disk: minutes per 100)
LARGE_SAMPLE_BATCHES = 100
SETTINGS = dict(model="sage", hidden=32, layers=2, fanout=[5, 5], batch_size=1024, eval_mode="sampled", epochs=1,
                runs=1, device="cpu", quiet=True)


#: ranks: the settings of ``train`` with every neighbour (no sampling, so that 2 ranks train
#: exactly what one process does, up to the order of sums), no dropout, and SGD (Adam's first
#: steps, ~lr * sign(g), turn the rounding of near-zero gradient entries into whole steps)
EQUAL = dict(SETTINGS, fanout=[-1, -1], dropout=0.0, optimizer="sgd", lr=0.05)


def _small_task(work: Path):
    from pyg_ham.datasets import load_dataset

    return load_dataset("ogbn-papers100M", root=work / "data")


def _large_task(work: Path):
    from pyg_ham.datasets.metrics import accuracy
    from pyg_ham.datasets.ondisk import OnDiskLayout
    from pyg_ham.datasets.ondisk_task import layout_split, layout_task
    from pyg_ham.datasets.tasks import NodeTask

    layout = OnDiskLayout(large_folder(work))
    base = NodeTask(name="synthetic-large", data=None, num_features=0, num_classes=172, metric="acc",  # type: ignore[arg-type]
                    split_fn=layout_split(layout), eval_fn=accuracy)
    return layout_task(layout, base)


def _in_memory(task):
    import torch
    from torch_geometric.data import Data

    fs, gs = task.stores
    x = fs.get_tensor(group_name=None, attr_name="x", index=None).clone()
    col = torch.repeat_interleave(torch.arange(gs.num_nodes), gs.colptr[1:] - gs.colptr[:-1])
    data = Data(x=x, edge_index=torch.stack([gs.row.long(), col]), y=task.data.y.clone(), num_nodes=gs.num_nodes)
    return dataclasses.replace(task, data=data, stores=None)


def phase(name: str, which: str, work: Path) -> Dict[str, Any]:
    import torch

    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1")))
    with PeakRss() as mon:
        t0 = time.perf_counter()
        if name == "build":
            task = _small_task(work)
            return {"phase": name, "seconds": time.perf_counter() - t0, "peak_rss_anon": mon.peak_anon,
                    "num_nodes": task.num_nodes, "num_edges": int(task.stores[1].row.numel())}
        task = _small_task(work) if which == "small" else _large_task(work)
        if name.endswith("-mem"):
            task = _in_memory(task)
        train_idx = task.split(0)["train"]
        steps = math.ceil(train_idx.numel() / SETTINGS["batch_size"])
        if name in ("train-one", "train-ranks"):  # (train-ranks: one rank of torchrun; run_experiment joins the group)
            from pyg_ham.train.config import ExperimentConfig
            from pyg_ham.train.runner import run_experiment

            cfg = ExperimentConfig.from_recipe("ogbn-papers100M", root=str(work / "data"), **EQUAL)
            doc = run_experiment(cfg, log=lambda s: None, task=task)
            run = doc["runs"][0] if doc and doc.get("runs") else {}
            return {"phase": name, "rank": int(os.environ.get("RANK", "0")), "peak_rss_anon": mon.peak_anon,
                    "losses": [h["loss"] for h in run.get("history", [])], "valid": run.get("valid"),
                    "test": run.get("test"), "seconds": time.perf_counter() - t0,
                    "world_size": doc.get("provenance", {}).get("world_size") if doc else None}
        if name.startswith("train"):
            from pyg_ham.train.config import ExperimentConfig
            from pyg_ham.train.runner import run_experiment

            cfg = (ExperimentConfig.from_recipe("ogbn-papers100M", root=str(work / "data"), **SETTINGS)
                   if which == "small" else ExperimentConfig(dataset="synthetic", norm=None, eval_train=False,
                                                             **SETTINGS))
            doc = run_experiment(cfg, log=lambda s: None, task=task)
            epoch = doc["runs"][0]["history"][0]
            return {"phase": name, "steps": steps, "train_seconds": epoch["time"],
                    "steps_per_s": steps / epoch["time"], "total_seconds": time.perf_counter() - t0,
                    "loss": epoch["loss"], "valid": epoch.get("valid"), "peak_rss_anon": mon.peak_anon,
                    "evaluation": doc["runs"][0].get("evaluation")}
        from pyg_ham.sampling import TorchNeighborLoader

        graph = task.stores if task.stores is not None else task.data
        loader = TorchNeighborLoader(graph, SETTINGS["fanout"], input_nodes=train_idx, batch_size=1024, shuffle=True,
                                     seed=0)
        t1, edges, batches = time.perf_counter(), 0, 0
        for batch in loader:
            edges += int(batch.edge_index.size(1))
            batches += 1
            if which == "large" and batches == LARGE_SAMPLE_BATCHES:
                break
        dt = time.perf_counter() - t1
        return {"phase": name, "batches": batches, "seconds": dt, "edges_per_s": edges / dt,
                "batches_per_s": batches / dt, "edges_per_batch": edges / batches, "peak_rss_anon": mon.peak_anon}


def run_phase(name: str, which: str, work: Path, env: Dict[str, str]) -> Dict[str, Any]:
    cmd = [sys.executable, __file__, "_phase", name, which, "--work", str(work)]
    out = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if out.returncode != 0:
        raise SystemExit(f"phase {name} failed:\n{out.stderr}")
    result = json.loads(out.stdout.strip().splitlines()[-1])
    print(json.dumps(result), flush=True)
    return result


def run_ranks(work: Path, env: Dict[str, str]) -> Dict[str, Any]:
    """``train-ranks`` under ``torchrun --nproc-per-node 2`` beside ``train-one`` in one process:
    each rank's peak RssAnon, their sum, and whether the two give the same losses and scores."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2", "--master-addr", "127.0.0.1",
           "--master-port", str(port), __file__, "_phase", "train-ranks", "small", "--work", str(work)]
    out = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if out.returncode != 0:
        raise SystemExit(f"phase train-ranks failed:\n{out.stderr[-5000:]}")
    ranks = sorted((json.loads(line) for line in out.stdout.splitlines() if line.startswith("{")),
                   key=lambda r: r["rank"])
    one = run_phase("train-one", "small", work, env)
    main = ranks[0]
    same_losses = len(main["losses"]) == len(one["losses"]) and all(
        abs(a - b) <= 1e-4 * abs(b) + 1e-6 for a, b in zip(main["losses"], one["losses"]))
    result = {"phase": "ranks", "world_size": main["world_size"], "peak_rss_anon": [r["peak_rss_anon"] for r in ranks],
              "sum_peak_rss_anon": sum(r["peak_rss_anon"] for r in ranks), "one_process_peak": one["peak_rss_anon"],
              "losses": main["losses"], "one_process_losses": one["losses"], "same_losses": same_losses,
              "valid": [main["valid"], one["valid"]], "test": [main["test"], one["test"]],
              "same_scores": all(abs(a - b) <= 1e-6 for a, b in ((main["valid"], one["valid"]),
                                                                  (main["test"], one["test"])))}
    print(json.dumps(result), flush=True)
    return result


def machine() -> str:
    cpu = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name")), "?")
    mem = next(int(line.split()[1]) for line in open("/proc/meminfo") if line.startswith("MemTotal"))
    return f"{os.cpu_count()} cores ({cpu}), {mem / 2**20:.1f} GiB RAM, load average {os.getloadavg()[0]:.2f}"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("which", choices=["small", "large", "_phase"])
    p.add_argument("args", nargs="*")
    p.add_argument("--work", type=Path, required=True, help="folder for the generated data (deleted after)")
    p.add_argument("--nodes", type=int, default=2_000_000)
    p.add_argument("--edges", type=int, default=10_000_000)
    p.add_argument("--dims", type=int, default=256)
    p.add_argument("--labelled", type=float, default=0.02, help="small: labelled share (80/10/10 train/valid/test)")
    p.add_argument("--gib", type=float, default=32.0, help="large: GiB of float32 features")
    p.add_argument("--steps", type=int, default=500, help="large: training steps (one epoch)")
    p.add_argument("--keep", action="store_true", help="keep the generated files")
    p.add_argument("--phases", nargs="*", default=None)
    a = p.parse_args()
    if a.which == "_phase":
        print(json.dumps(phase(a.args[0], a.args[1], a.work)))
        return
    env = {**os.environ, "PYTHONPATH": str(REPO), "PYG_HAM_CACHE": str(a.work / "cache"), "PYG_HAM_OFFLINE": "1"}
    a.work.mkdir(parents=True, exist_ok=True)
    free = shutil.disk_usage(a.work).free / 2**30
    print(f"# machine: {machine()}; free disk at {a.work}: {free:.1f} GiB", flush=True)
    try:
        t0 = time.perf_counter()
        if a.which == "small":
            if not (a.work / "data").exists():
                generate_small(a.work / "data", a.nodes, a.edges, a.dims, a.labelled)
            print(json.dumps({"phase": "generate", "seconds": time.perf_counter() - t0}), flush=True)
            for name in a.phases or ["build", "train", "sample", "train-mem", "sample-mem", "ranks"]:
                if name == "ranks":
                    run_ranks(a.work, env)
                else:
                    run_phase(name, "small", a.work, env)
        else:
            nodes = int(a.gib * 2**30 / (a.dims * 4))
            generate_large(a.work, nodes, 5, a.dims, a.steps * 1024, 10_240)
            print(json.dumps({"phase": "generate", "nodes": nodes, "seconds": time.perf_counter() - t0}), flush=True)
            for name in a.phases or ["train", "sample"]:
                run_phase(name, "large", a.work, env)
    finally:
        if not a.keep:  # also after a failure: the generated files are large
            shutil.rmtree(a.work, ignore_errors=True)


if __name__ == "__main__":
    main()
