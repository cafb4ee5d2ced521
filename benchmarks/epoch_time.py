"""Training time with and without HAM, interleaved in one process (ratios, medians).

Settings:

* ``minibatch``: GraphSAGE 3 x 256 with neighbour sampling (fanout 15,10,5, 1024 seeds per batch,
  pyg_ham.sampling) on a synthetic graph of ogbn-arxiv's size (169,343 nodes, 128 features,
  40 classes, ~2.3M directed edges); times ``--batches`` training steps per measurement.
* ``fullbatch``: GCN 2 x 16 on Cora (full-batch epochs; needs ``--root``).
* ``graph``: GIN 5 x 300 (OGB recipe) on an OGB molecule dataset (``--graph-dataset``, default
  ogbg-molhiv; needs ``--root``); times ``--batches`` steps of batch 32, reports graphs/s.

For each setting the base (Adam) and Adam + HAM (alpha=200, beta=1e-3) models are trained in
alternation from the same initial weights: one measurement of each, repeated ``--repeats`` times;
the table gives medians and the HAM/base ratio.

    python benchmarks/epoch_time.py --root ../shared/data
    python benchmarks/epoch_time.py --settings minibatch --batches 20 --repeats 5
"""
from __future__ import annotations

import argparse
import copy
import statistics
import time
from typing import Callable, Dict, List, Tuple

import torch

from pyg_ham.datasets import load_dataset
from pyg_ham.models import build_graph_model, build_node_model
from pyg_ham.optim import build_optimizer


def _forever(loader):
    """Batches without end (``itertools.cycle`` would keep every batch in memory)."""
    while True:
        yield from loader


def _pair(model: torch.nn.Module) -> List[Tuple[str, torch.nn.Module, torch.optim.Optimizer]]:
    twin = copy.deepcopy(model)
    return [("Adam", model, build_optimizer(model, "adam", lr=1e-3, ham=False)),
            ("Adam + HAM", twin, build_optimizer(twin, "adam", lr=1e-3, ham=True))]


def minibatch_setting(args) -> Tuple[Dict[str, Callable[[], int]], str]:
    from pyg_ham.sampling import neighbor_loader

    task = load_dataset("synthetic", num_nodes=169_343, num_classes=40, num_features=128, avg_degree=13.8)
    data, train_idx = task.data, task.split(0)["train"]
    torch.manual_seed(0)
    model = build_node_model("sage", 128, 40, hidden_channels=256, num_layers=3, norm="batch_norm")
    steps = {}
    for name, m, opt in _pair(model):
        loader = neighbor_loader(data, [15, 10, 5], batch_size=1024, input_nodes=train_idx, shuffle=True, seed=0)
        batches = _forever(loader)

        def run(m=m, opt=opt, batches=batches) -> int:
            m.train()
            for _ in range(args.batches):
                batch = next(batches)
                out = m(batch.x, batch.edge_index, num_sampled_nodes_per_hop=batch.num_sampled_nodes,
                        num_sampled_edges_per_hop=batch.num_sampled_edges)[:batch.batch_size]
                loss = torch.nn.functional.cross_entropy(out, batch.y[:batch.batch_size])
                opt.zero_grad()
                loss.backward()
                opt.step()
            return args.batches * 1024

        steps[name] = run
    return steps, f"GraphSAGE 3x256 mini-batch, arxiv-size synthetic graph, {args.batches} batches of 1024"


def fullbatch_setting(args) -> Tuple[Dict[str, Callable[[], int]], str]:
    task = load_dataset("Cora", args.root)
    data, train_idx = task.data, task.split(0)["train"]
    torch.manual_seed(0)
    model = build_node_model("gcn", task.num_features, task.num_classes, hidden_channels=16, num_layers=2,
                             norm=None, cached=True)
    steps = {}
    for name, m, opt in _pair(model):
        def run(m=m, opt=opt) -> int:
            m.train()
            for _ in range(args.epochs):
                loss = task.loss(m(data.x, data.edge_index), train_idx)
                opt.zero_grad()
                loss.backward()
                opt.step()
            return args.epochs

        steps[name] = run
    return steps, f"GCN 2x16 full-batch on Cora, {args.epochs} epochs"


def graph_setting(args) -> Tuple[Dict[str, Callable[[], int]], str]:
    from torch_geometric.loader import DataLoader

    task = load_dataset(args.graph_dataset, args.root)
    train = task.dataset[task.official_split()["train"]]
    torch.manual_seed(0)
    model = build_graph_model("gin", task.num_features, task.num_classes, hidden_channels=300, num_layers=5,
                              ogb_mol=task.is_ogb_mol, edge_dim=None if task.is_ogb_mol else task.edge_dim)
    steps = {}
    for name, m, opt in _pair(model):
        batches = _forever(DataLoader(train, batch_size=32, shuffle=True))

        def run(m=m, opt=opt, batches=batches) -> int:
            m.train()
            graphs = 0
            for _ in range(args.batches):
                batch = next(batches)
                loss = task.loss(m(batch), batch.y)
                opt.zero_grad()
                loss.backward()
                opt.step()
                graphs += batch.num_graphs
            return graphs

        steps[name] = run
    return steps, f"GIN 5x300 on {args.graph_dataset}, {args.batches} batches of 32 graphs"


def measure(steps: Dict[str, Callable[[], int]], repeats: int) -> Dict[str, Tuple[float, float]]:
    for run in steps.values():
        run()  # warm-up (allocations, caches, lazy state)
    times: Dict[str, List[float]] = {k: [] for k in steps}
    units: Dict[str, int] = {}
    for _ in range(repeats):
        for name, run in steps.items():
            t0 = time.perf_counter()
            units[name] = run()
            times[name].append(time.perf_counter() - t0)
    return {k: (statistics.median(v), units[k] / statistics.median(v)) for k, v in times.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--settings", default="minibatch,fullbatch,graph")
    parser.add_argument("--root", default=None, help="data root (Cora, OGB molecules)")
    parser.add_argument("--graph-dataset", default="ogbg-molhiv")
    parser.add_argument("--batches", type=int, default=20)
    parser.add_argument("--epochs", type=int, default=50)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    builders = {"minibatch": minibatch_setting, "fullbatch": fullbatch_setting, "graph": graph_setting}
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads")
    print("| setting | optimizer | median time (s) | throughput | HAM / base |")
    print("|---|---|---|---|---|")
    for key in args.settings.split(","):
        steps, label = builders[key](args)
        result = measure(steps, args.repeats)
        base = result["Adam"][0]
        unit = {"minibatch": "seed nodes/s", "fullbatch": "epochs/s", "graph": "graphs/s"}[key]
        for name, (t, rate) in result.items():
            print(f"| {label} | {name} | {t:.3f} | {rate:,.1f} {unit} | {t / base:.3f} |", flush=True)


if __name__ == "__main__":
    main()
