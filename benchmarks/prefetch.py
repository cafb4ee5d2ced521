"""Mini-batch training steps/s with and without batches one step ahead (``pyg_ham.sampling.Prefetcher``).

GraphSAGE (``--layers`` x ``--hidden``, ``HAM(Adam)``) trained with neighbour sampling
(:class:`~pyg_ham.sampling.TorchNeighborLoader`, the graph and its features stored on the CPU as
the trainer's host placement keeps them) on a power-law graph (``benchmarks/sampler.py``'s
builder); ``--steps`` training steps per measurement, the two ways interleaved ``--repeats``
times from the same weights and the same sampling seed, medians printed side by side. Each
step moves its batch to ``--device`` (``batch.to(device)``, as the node trainer does); with the
prefetcher that move, and the next batch's sampling and gather, are issued before the current
step. On the CPU the same code runs and the move is a no-op, so the two should be equal there
(what it measures is that prefetching costs nothing); on a GPU the copy overlaps the step.

    python benchmarks/prefetch.py                       # CPU
    python benchmarks/prefetch.py --device cuda --nodes 169343 --edges 1166243
"""
from __future__ import annotations

import argparse
import copy
import statistics
import sys
import time
from pathlib import Path
from typing import Dict, List, Sequence

import torch

sys.path[:0] = [str(Path(__file__).resolve().parents[1]), str(Path(__file__).resolve().parent)]

from sampler import power_law_graph  # noqa: E402
from torch_geometric.data import Data  # noqa: E402

from pyg_ham.models import build_node_model  # noqa: E402
from pyg_ham.optim import HAM  # noqa: E402
from pyg_ham.sampling import Prefetcher, TorchNeighborLoader  # noqa: E402


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def sage_step(model: torch.nn.Module, opt: torch.optim.Optimizer, batch: Data) -> None:
    """One node-classification training step on a sampled batch: its seeds' cross-entropy, backward, step."""
    out = model(batch.x, batch.edge_index)[: batch.batch_size]
    torch.nn.functional.cross_entropy(out, batch.y[: batch.batch_size]).backward()
    opt.step()
    opt.zero_grad()


def steps_per_second(data: Data, model: torch.nn.Module, device: torch.device, steps: int, batch_size: int,
                     fanout: List[int], prefetch: bool) -> float:
    model = copy.deepcopy(model).to(device)
    opt = HAM(torch.optim.Adam(model.parameters(), lr=1e-3))
    loader = TorchNeighborLoader(data, fanout, input_nodes=data.train_idx, batch_size=batch_size, shuffle=True,
                                 seed=0)
    batches = Prefetcher(loader, device) if prefetch else loader
    _sync(device)
    t0, done = time.perf_counter(), 0
    while done < steps:
        for batch in batches:
            sage_step(model, opt, batch.to(device))  # the trainer's move: a no-op for a prefetched batch
            done += 1
            if done >= steps:
                break
    _sync(device)
    return steps / (time.perf_counter() - t0)


def main(argv: Sequence[str] = ()) -> Dict[str, float]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--nodes", type=int, default=50_000)
    parser.add_argument("--edges", type=int, default=300_000, help="undirected edges")
    parser.add_argument("--features", type=int, default=128)
    parser.add_argument("--hidden", type=int, default=128)
    parser.add_argument("--layers", type=int, default=2)
    parser.add_argument("--fanout", default="10,5")
    parser.add_argument("--batch-size", type=int, default=512)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(list(argv))
    device = torch.device(args.device)
    fanout = [int(k) for k in args.fanout.split(",")]
    g = torch.Generator().manual_seed(0)
    data = Data(x=torch.randn(args.nodes, args.features, generator=g),
                edge_index=power_law_graph(args.nodes, args.edges, seed=0),
                y=torch.randint(0, 40, (args.nodes,), generator=g))
    data.train_idx = torch.randperm(args.nodes, generator=g)[: args.nodes // 2]
    torch.manual_seed(0)
    model = build_node_model("sage", args.features, 40, hidden_channels=args.hidden, num_layers=args.layers,
                             norm="batch_norm")
    steps_per_second(data, model, device, 2, args.batch_size, fanout, True)  # warm-up
    runs: Dict[str, List[float]] = {"without prefetch": [], "with prefetch": []}
    for _ in range(args.repeats):
        for name in runs:
            runs[name].append(steps_per_second(data, model, device, args.steps, args.batch_size, fanout,
                                               name == "with prefetch"))
    medians = {name: statistics.median(values) for name, values in runs.items()}
    print(f"# {args.nodes:,} nodes, {args.edges:,} undirected edges, {args.features} features, SAGE "
          f"{args.layers}x{args.hidden}, fanout {args.fanout}, batch {args.batch_size}, {args.steps} steps x "
          f"{args.repeats} interleaved, device {device}, torch threads {torch.get_num_threads()}")
    print("| | steps/s (median) | all |")
    print("|---|---|---|")
    for name, values in runs.items():
        print(f"| {name} | {medians[name]:.2f} | {', '.join(f'{v:.2f}' for v in values)} |")
    print(f"with / without: {medians['with prefetch'] / medians['without prefetch']:.3f}x")
    return medians


if __name__ == "__main__":
    main(sys.argv[1:])
