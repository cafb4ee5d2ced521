"""Throughput of pyg-ham's plain-PyTorch neighbour sampler (and PyG's, when pyg-lib is present).

Measures, per graph and device, the seconds to sample one epoch through PyG's ``NodeLoader``
(including its gather of 128-dimensional node features) and the sampled edges per second
(sum of ``num_sampled_edges`` over the batches / epoch time).

Graphs: a synthetic graph of ogbn-arxiv's size (169,343 nodes, ~2.3M directed edges after
symmetrisation, power-law degrees), the largest real graphs in ``../shared/data``
(Tolokers, LINKX cornell5), loaded from a temporary copy, and ``mag-like``: an
ogbn-mag-sized heterogeneous graph (``pyg_ham.datasets.hetero.synthetic_mag``: 1.94M nodes
of four types, 21.1M edges of four relations, plus their reverses; ``--scale`` shrinks it),
sampled from paper seeds by the heterogeneous sampler (edges/s summed over edge types), and
``mag-like-homo``: the same graph's homogeneous view (``HeteroData.to_homogeneous``, every
node with 128 features) sampled by the homogeneous sampler from the same paper seeds, which
separates the cost of heterogeneity from that of the graph's size. The last lines give the
heterogeneous / homogeneous rate ratios measured in the same run.

Examples::

    python benchmarks/sampler.py                 # full run on the CPU (+ GPU when present)
    python benchmarks/sampler.py --quick         # small graph, one epoch, seconds
    python benchmarks/sampler.py --device cuda --graphs arxiv-like
    python benchmarks/sampler.py --graphs arxiv-like mag-like --scale 0.25   # hetero vs homo
    python benchmarks/sampler.py --options --graphs arxiv-like       # weighted / temporal / ... rows
    python benchmarks/sampler.py --graphs arxiv-like --against ../before   # vs another checkout
    python benchmarks/sampler.py --scale-table 2e6 2e7 6e7 --graphs  # uniform sampler vs graph size

``--options`` times NeighborLoader's options (weighted with and without replacement, disjoint,
temporal with node- and edge-level time, "last", induced, bidirectional) on the arxiv-like graph,
sample-only, each variant taking turns with the plain uniform sampler (and a second uniform
sampler, whose ratio shows the noise) in the same run. ``--scale-table`` samples power-law graphs
of the given numbers of directed edges and reports the steady sample-only edges/s and the
sampler's extra bytes per graph edge (its CSC layout, edge-id permutation and node map).
"""
from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
import time as time_mod
from pathlib import Path
from typing import Callable, Dict, List, Optional

if "--thp" in sys.argv:  # read by PyTorch's CPU allocator at its first allocation
    os.environ["THP_MEM_ALLOC_ENABLE"] = "1"

import torch  # noqa: E402
from torch_geometric.data import Data, HeteroData  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import pyg_ham  # noqa: E402
from pyg_ham.datasets.hetero import synthetic_mag  # noqa: E402
from pyg_ham.sampling import TorchNeighborLoader, clear_csc_cache, clear_hetero_csc_cache  # noqa: E402

DATA = ROOT.parent / "shared" / "data"
ARXIV_NODES, ARXIV_UNDIRECTED, ARXIV_SEEDS = 169_343, 1_166_243, 90_941


def power_law_graph(num_nodes: int, num_undirected: int, exponent: float = 0.9,
                    seed: int = 0) -> torch.Tensor:
    r"""Symmetric graph whose degrees follow a power law: one endpoint of each
    edge is drawn with probability :math:`\propto (i + 1)^{-\text{exponent}}`
    (Zipf), the other uniformly; self-loops and duplicates are dropped."""
    g = torch.Generator().manual_seed(seed)
    w = torch.arange(1, num_nodes + 1, dtype=torch.float64).pow(-exponent)
    m = int(num_undirected * 1.03)  # a few duplicates get dropped below
    src = torch.multinomial(w, m, replacement=True, generator=g)
    src = torch.randperm(num_nodes, generator=g)[src]  # hubs at random ids
    dst = torch.randint(0, num_nodes, (m,), generator=g)
    keep = src != dst
    src, dst = src[keep], dst[keep]
    key = torch.unique(torch.minimum(src, dst) * num_nodes + torch.maximum(src, dst))
    key = key[torch.randperm(key.numel(), generator=g)[:num_undirected]]
    a, b = key // num_nodes, key % num_nodes
    return torch.stack([torch.cat([a, b]), torch.cat([b, a])])


def _staged(*rel: str) -> Path:
    tmp = Path(tempfile.mkdtemp(prefix="pyg_ham_bench_"))
    dst = tmp.joinpath(*rel)
    shutil.copytree(DATA.joinpath(*rel), dst, copy_function=shutil.copyfile)
    for p in [dst, *dst.rglob("*")]:
        if p.is_dir():
            p.chmod(0o755)
    return tmp


def load_real(name: str) -> Optional[torch.Tensor]:
    r"""``edge_index`` of a real graph from ``../shared/data`` (None if absent)."""
    try:
        if name == "tolokers":
            from torch_geometric.datasets import HeterophilousGraphDataset
            tmp = _staged("HeterophilousGraphDataset", "tolokers")
            ds = HeterophilousGraphDataset(root=str(tmp / "HeterophilousGraphDataset"), name="Tolokers")
        elif name == "cornell5":
            from torch_geometric.datasets import LINKXDataset
            tmp = _staged("LINKX", "cornell5")
            ds = LINKXDataset(root=str(tmp / "LINKX"), name="cornell5")
        else:
            raise ValueError(name)
    except (FileNotFoundError, ImportError) as e:
        print(f"[skip] {name}: {e}", file=sys.stderr)
        return None
    edge_index, num_nodes = ds[0].edge_index, ds[0].num_nodes
    shutil.rmtree(tmp, ignore_errors=True)
    return edge_index, num_nodes


_MAG: Dict[tuple, HeteroData] = {}


def make_graph(name: str, quick: bool, feat_dim: int, scale: float = 1.0) -> Optional[Data]:
    if name in ("mag-like", "mag-like-homo"):
        key = (0.01 if quick else scale, feat_dim)
        if key not in _MAG:
            _MAG[key] = synthetic_mag(scale=key[0], num_features=feat_dim, seed=0).data
        hetero = _MAG[key]
        if name == "mag-like":  # HeteroData; papers carry the features
            return hetero
        # Node types in order (papers first: ids 0..num_papers-1, the seeds' ids are unchanged).
        assert hetero.node_types[0] == "paper"
        homo = hetero.to_homogeneous(node_attrs=[], edge_attrs=[], add_node_type=False, add_edge_type=False)
        n = sum(hetero[t].num_nodes for t in hetero.node_types)
        return Data(x=torch.randn(n, feat_dim), edge_index=homo.edge_index, y=torch.zeros(n, dtype=torch.long),
                    num_nodes=n)
    if name == "arxiv-like":
        if quick:
            n, m = 20_000, 140_000
        else:
            n, m = ARXIV_NODES, ARXIV_UNDIRECTED
        edge_index = power_law_graph(n, m)
    else:
        loaded = load_real(name)
        if loaded is None:
            return None
        edge_index, n = loaded
    x = torch.randn(n, feat_dim)
    return Data(x=x, edge_index=edge_index, y=torch.zeros(n, dtype=torch.long), num_nodes=n)


def make_loader(backend: str, data: Data, fanout: List[int], batch_size: int,
                seeds: torch.Tensor, device: str, seed: int):
    if isinstance(data, HeteroData):
        seeds = ("paper", seeds)
    if backend == "pyg_ham":
        return TorchNeighborLoader(data, fanout, input_nodes=seeds, batch_size=batch_size,
                                   shuffle=True, device=device, seed=seed)
    from torch_geometric.loader import NeighborLoader
    return NeighborLoader(data, fanout, input_nodes=seeds, batch_size=batch_size, shuffle=True)


def time_epochs(loader, epochs: int, sync: Callable[[], None]) -> Dict[str, float]:
    r"""Best-of-``epochs`` wall time of one pass over ``loader`` (sampling + feature gather)."""
    best, edges, batches = float("inf"), 0, 0
    for _ in range(epochs):
        sync()
        t0 = time.perf_counter()
        edges, batches = 0, 0
        for batch in loader:
            if isinstance(batch, HeteroData):
                edges += sum(sum(v) for v in batch.num_sampled_edges_dict.values())
            else:
                edges += sum(batch.num_sampled_edges)
            batches += 1
        sync()
        best = min(best, time.perf_counter() - t0)
    return {"seconds": best, "edges": edges, "batches": batches}


def time_sampling_only(loader, batch_size: int, epochs: int, sync: Callable[[], None]) -> float:
    r"""Best-of-``epochs`` seconds for the sampler alone over the same seed batches (no
    feature gather, no ``Data`` assembly)."""
    sampler, inputs = loader.node_sampler, loader.input_data
    num = inputs.node.numel()
    best = float("inf")
    for _ in range(epochs):
        sync()
        t0 = time.perf_counter()
        for i in range(0, num, batch_size):
            sampler.sample_from_nodes(inputs[torch.arange(i, min(i + batch_size, num))])
        sync()
        best = min(best, time.perf_counter() - t0)
    return best


def _sampled_edges(out) -> int:
    counts = out.num_sampled_edges
    return sum(sum(v) for v in counts.values()) if isinstance(counts, dict) else sum(counts)


def interleaved_ratios(loaders: Dict[str, object], batch_size: int, rounds: int, batches: int,
                       sync: Callable[[], None]) -> Dict[str, List[float]]:
    r"""Sample-only edges/s of every loader's sampler over its first ``batches`` seed batches,
    the loaders taking turns for ``rounds`` rounds, so that the ratios between graphs are
    measured under the same machine load (other jobs make absolute rates drift)."""
    rates: Dict[str, List[float]] = {name: [] for name in loaders}
    for _ in range(rounds):
        for name, loader in loaders.items():
            sampler, inputs = loader.node_sampler, loader.input_data
            num = min(inputs.node.numel(), batches * batch_size)
            sync()
            t0, edges = time.perf_counter(), 0
            for i in range(0, num, batch_size):
                edges += _sampled_edges(sampler.sample_from_nodes(inputs[torch.arange(i, min(i + batch_size, num))]))
            sync()
            rates[name].append(edges / (time.perf_counter() - t0))
    return rates


def _sampler_rate(sampler, seeds: torch.Tensor, batch_size: int, batches: int,
                  time: Optional[torch.Tensor] = None) -> float:
    from torch_geometric.sampler import NodeSamplerInput
    t0, edges = time_mod.perf_counter(), 0
    for i in range(0, min(seeds.numel(), batches * batch_size), batch_size):
        idx = torch.arange(i, min(i + batch_size, seeds.numel()))
        inp = NodeSamplerInput(input_id=idx, node=seeds[idx], time=None if time is None else time[idx])
        out = sampler.sample_from_nodes(inp)
        edges += out.row.numel()  # also counts induced / bidirectional edges
    return edges / (time_mod.perf_counter() - t0)


def options_table(data: Data, fanout: List[int], batch_size: int, rounds: int, batches: int, seed: int) -> None:
    r"""Sample-only edges/s of every NeighborLoader option next to the uniform sampler, interleaved."""
    from pyg_ham.sampling import TorchNeighborSampler
    g = torch.Generator().manual_seed(seed)
    data = data.clone()
    data.w = torch.rand(data.num_edges, generator=g)
    data.node_time = torch.randint(0, 1000, (data.num_nodes,), generator=g)
    data.edge_time = torch.randint(0, 1000, (data.num_edges,), generator=g)
    seeds = torch.randperm(data.num_nodes, generator=g)
    input_time = torch.randint(500, 1000, (seeds.numel(),), generator=g)
    variants = {
        "uniform": {}, "uniform (again)": {}, "replace": dict(replace=True),
        "weighted": dict(weight_attr="w"), "weighted+replace": dict(weight_attr="w", replace=True),
        "disjoint": dict(disjoint=True), "temporal node": dict(time_attr="node_time"),
        "temporal node last": dict(time_attr="node_time", temporal_strategy="last"),
        "temporal edge": dict(time_attr="edge_time"), "bidirectional": dict(subgraph_type="bidirectional"),
        "induced": dict(subgraph_type="induced"),
    }
    samplers = {name: TorchNeighborSampler(data, fanout, seed=seed, **kw) for name, kw in variants.items()}
    rates: Dict[str, List[float]] = {name: [] for name in variants}
    for _ in range(rounds):
        for name, sampler in samplers.items():
            t = input_time if name == "temporal edge" else None
            rates[name].append(_sampler_rate(sampler, seeds, batch_size, batches, t))
    base = rates["uniform"]
    print(f"\noptions, sample-only, {rounds} rounds x {batches} batches interleaved, fanout {fanout}, "
          f"load average {os.getloadavg()[0]:.1f}")
    print(f"{'variant':<20} {'Medges/s':>9} {'/ uniform':>10} {'range':>12}")
    for name, r in rates.items():
        ratios = sorted(a / b for a, b in zip(r, base))
        print(f"{name:<20} {statistics.median(r) / 1e6:>9.2f} {statistics.median(ratios):>9.2f}x "
              f"{ratios[0]:>5.2f}-{ratios[-1]:.2f}")


def other_sampler_class(checkout: Path):
    r"""``TorchNeighborSampler`` of another pyg-ham checkout (*e.g.* a ``git worktree`` of an earlier
    commit), imported beside this one: this process' ``pyg_ham`` modules are set aside while it
    loads and restored after, so that both work side by side (each keeps its own modules)."""
    def ours():
        return [m for m in sys.modules if m == "pyg_ham" or m.startswith("pyg_ham.")]
    saved = {m: sys.modules.pop(m) for m in ours()}
    sys.path.insert(0, str(checkout))
    try:
        import pyg_ham.sampling as other
        return other.TorchNeighborSampler, Path(other.__file__).parents[2]
    finally:
        sys.path.remove(str(checkout))
        for m in ours():
            del sys.modules[m]
        sys.modules.update(saved)


def against_table(data: Data, checkout: Path, fanout: List[int], batch_size: int, rounds: int, batches: int,
                  seed: int) -> None:
    r"""Sample-only edges/s of this checkout's sampler against another checkout's on the same graph,
    interleaved in one process (the order rotating every round), with a second sampler of this
    checkout whose ratio shows the noise; also says whether both give the same first batch."""
    from pyg_ham.sampling import TorchNeighborSampler
    Other, where = other_sampler_class(checkout)
    samplers = {"this": TorchNeighborSampler(data, fanout, seed=seed), "other": Other(data, fanout, seed=seed),
                "this (again)": TorchNeighborSampler(data, fanout, seed=seed)}
    seeds = torch.randperm(data.num_nodes, generator=torch.Generator().manual_seed(seed))
    from torch_geometric.sampler import NodeSamplerInput
    first = NodeSamplerInput(input_id=torch.arange(batch_size), node=seeds[:batch_size])
    a, b = samplers["this"].sample_from_nodes(first), samplers["other"].sample_from_nodes(first)
    same = all(torch.equal(getattr(a, k), getattr(b, k)) for k in ("node", "row", "col", "edge"))
    rates: Dict[str, List[float]] = {name: [] for name in samplers}
    names = list(samplers)
    for r in range(rounds):
        for name in names[r % 3:] + names[:r % 3]:
            rates[name].append(_sampler_rate(samplers[name], seeds, batch_size, batches))
    print(f"\nthis checkout ({Path(__file__).resolve().parents[1]}) against {where}, sample-only, {rounds} rounds x "
          f"{batches} batches interleaved, fanout {fanout}, load average {os.getloadavg()[0]:.1f}; "
          f"same first batch: {'yes' if same else 'NO'}")
    for name in ("other", "this (again)"):
        ratios = sorted(x / y for x, y in zip(rates["this"], rates[name]))
        print(f"this / {name:<12} {statistics.median(ratios):.3f}x (range {ratios[0]:.2f}-{ratios[-1]:.2f}); "
              f"this {statistics.median(rates['this']) / 1e6:.2f}, {name} {statistics.median(rates[name]) / 1e6:.2f} "
              f"Medges/s")


def sampler_bytes(sampler) -> int:
    r"""Bytes of the tensors the sampler holds beyond the graph (layout, permutation, node map)."""
    csc = sampler.csc
    parts = [csc.colptr, csc.row, csc.perm, sampler._get_node_map(), sampler.weight]
    return sum(t.numel() * t.element_size() for t in parts if t is not None)


def scale_table(edge_counts: List[float], fanout: List[int], batch_size: int, batches: int, rounds: int,
                seed: int) -> None:
    r"""Steady sample-only edges/s and extra bytes per edge of the uniform sampler on power-law
    graphs of ~avg degree 13.6 (arxiv's) with the given numbers of directed edges."""
    from pyg_ham.sampling import TorchNeighborSampler
    print(f"\nscale, uniform sampler, sample-only, fanout {fanout}, batch {batch_size}, best of {rounds} x "
          f"{batches} batches after a warm-up")
    print(f"{'edges':>11} {'nodes':>10} {'build_s':>7} {'Medges/s':>9} {'extra B/edge':>12}")
    for m in edge_counts:
        n = int(m / (2 * ARXIV_UNDIRECTED / ARXIV_NODES))
        t0 = time_mod.perf_counter()
        try:
            data = Data(edge_index=power_law_graph(n, int(m // 2), seed=seed), num_nodes=n)
            sampler = TorchNeighborSampler(data, fanout, seed=seed)
        except (MemoryError, RuntimeError) as e:
            print(f"{int(m):>11} {n:>10} did not fit: {str(e).splitlines()[0][:60]}", flush=True)
            continue
        build = time_mod.perf_counter() - t0
        seeds = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
        _sampler_rate(sampler, seeds, batch_size, 2)  # warm-up
        rate = max(_sampler_rate(sampler, seeds, batch_size, batches) for _ in range(rounds))
        print(f"{data.num_edges:>11} {n:>10} {build:>7.1f} {rate / 1e6:>9.2f} "
              f"{sampler_bytes(sampler) / data.num_edges:>12.2f}", flush=True)
        del data, sampler
        clear_csc_cache()


def main(argv: Optional[List[str]] = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--graphs", nargs="+", default=["arxiv-like", "tolokers", "cornell5", "mag-like"],
                   choices=["arxiv-like", "tolokers", "cornell5", "mag-like", "mag-like-homo"],
                   help="graphs to sample from")
    p.add_argument("--scale", type=float, default=1.0,
                   help="size of mag-like relative to ogbn-mag (1.0: 1.94M nodes, 21.1M edges + "
                        "reverses; needs ~6 GB of RAM) [default: 1.0]")
    p.add_argument("--device", nargs="+", default=["cpu", "cuda"],
                   help="devices to sample on (cuda is skipped when absent) [default: cpu cuda]")
    p.add_argument("--fanout", type=int, nargs="+", default=[15, 10, 5], help="fanout per hop")
    p.add_argument("--batch-size", type=int, default=1024)
    p.add_argument("--num-seeds", type=int, default=ARXIV_SEEDS,
                   help="seed nodes per epoch (capped at the graph's node count) [default: 90941]")
    p.add_argument("--feat-dim", type=int, default=128, help="node feature dimension gathered per batch")
    p.add_argument("--epochs", type=int, default=3, help="timed epochs per setting; the best is kept")
    p.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (default: torch's)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--rounds", type=int, default=5,
                   help="rounds of the interleaved hetero/homo sample-only comparison [default: 5]")
    p.add_argument("--round-batches", type=int, default=10,
                   help="seed batches per graph and round in that comparison [default: 10]")
    p.add_argument("--thp", action="store_true",
                   help="set THP_MEM_ALLOC_ENABLE=1: PyTorch backs large CPU tensors with huge "
                        "pages, which makes the per-batch feature gather fault in fewer pages")
    p.add_argument("--quick", action="store_true",
                   help="smoke run: 20k-node synthetic graph (and mag-like at scale 0.01 when "
                        "listed in --graphs), one epoch")
    p.add_argument("--options", action="store_true",
                   help="also time NeighborLoader's options against the uniform sampler (interleaved)")
    p.add_argument("--against", type=Path, default=None, metavar="CHECKOUT",
                   help="also time this checkout's sampler against another pyg-ham checkout's (e.g. "
                        "`git worktree add ../before HEAD~1`), interleaved in one process on arxiv-like")
    p.add_argument("--scale-table", type=float, nargs="*", default=None, metavar="EDGES",
                   help="also run the scale table on power-law graphs of these edge counts, e.g. 2e6 2e7 6e7")
    args = p.parse_args(argv)
    if args.scale_table:
        scale_table(args.scale_table, args.fanout, args.batch_size, args.round_batches, args.rounds, args.seed)

    if args.threads:
        torch.set_num_threads(args.threads)
    graphs = ([g for g in args.graphs if g in ("arxiv-like", "mag-like", "mag-like-homo")] or ["arxiv-like"]) \
        if args.quick else args.graphs
    epochs = 1 if args.quick else args.epochs
    devices = []
    for d in args.device:
        if d.startswith("cuda") and not torch.cuda.is_available():
            print(f"[skip] device {d}: CUDA is not available", file=sys.stderr)
            continue
        devices.append(d)
    import torch_geometric.typing as pyg_typing
    backends = ["pyg_ham"] + (["pyg"] if pyg_typing.WITH_PYG_LIB else [])
    loaded = {}
    for name in graphs:
        t0 = time.perf_counter()
        loaded[name] = make_graph(name, args.quick, args.feat_dim, args.scale)
        print(f"[graph] {name}: built in {time.perf_counter() - t0:.1f}s", file=sys.stderr, flush=True)

    print(f"torch {torch.__version__}, threads {torch.get_num_threads()}, "
          f"THP_MEM_ALLOC_ENABLE={os.environ.get('THP_MEM_ALLOC_ENABLE', '0')}, "
          f"load average {os.getloadavg()[0]:.1f}, fanout {args.fanout}, "
          f"batch {args.batch_size}, features {args.feat_dim}, best of {epochs} epoch(s), "
          f"pyg-lib {'yes' if 'pyg' in backends else 'no'}, pyg_ham from {Path(pyg_ham.__file__).parent}")
    header = (f"{'graph':<11} {'nodes':>7} {'edges':>8} {'backend':<7} {'device':<6} {'seeds':>6} "
              f"{'csc_s':>5} {'epoch_s':>7} {'batches':>7} {'sampled_edges':>13} {'Medges/s':>8} "
              f"{'sample-only Medges/s':>20}")
    print(header)
    print("-" * len(header))
    rates: Dict[tuple, float] = {}
    only_rates: Dict[tuple, float] = {}
    kept: Dict[str, Dict[str, object]] = {}
    for name, data in loaded.items():
        if data is None:
            continue
        g = torch.Generator().manual_seed(args.seed)
        num_seed_nodes = data.num_nodes
        if name.startswith("mag-like"):  # paper seeds (ids 0..num_papers-1 in both views)
            num_seed_nodes = next(iter(_MAG.values()))["paper"].num_nodes
        seeds = torch.randperm(num_seed_nodes, generator=g)[:min(args.num_seeds, num_seed_nodes)]
        for device in devices:
            d = data.to(device) if device != "cpu" else data
            sync = (lambda: torch.cuda.synchronize()) if device.startswith("cuda") else (lambda: None)
            for backend in backends:
                if backend == "pyg" and device != "cpu":
                    continue
                clear_csc_cache()
                clear_hetero_csc_cache()
                sync()
                t0 = time.perf_counter()
                loader = make_loader(backend, d, args.fanout, args.batch_size, seeds, device, args.seed)
                sync()
                csc_s = time.perf_counter() - t0
                next(iter(loader))  # warm-up
                r = time_epochs(loader, epochs, sync)
                only = time_sampling_only(loader, args.batch_size, epochs, sync)
                rate = r["edges"] / r["seconds"]
                rates[(name, backend, device)] = rate
                if backend == "pyg_ham":
                    kept.setdefault(device, {})[name] = loader
                if backend == "pyg_ham":
                    only_rates[(name, device)] = r["edges"] / only
                print(f"{name:<11} {data.num_nodes:>7} {data.num_edges:>8} {backend:<7} {device:<6} "
                      f"{seeds.numel():>6} {csc_s:>5.2f} {r['seconds']:>7.2f} {r['batches']:>7} "
                      f"{r['edges']:>13} {rate / 1e6:>8.2f} {r['edges'] / only / 1e6:>20.2f}", flush=True)
    for name in graphs:
        cpu = rates.get((name, "pyg_ham", "cpu"))
        for (gname, backend, device), rate in rates.items():
            if gname == name and device != "cpu" and cpu:
                print(f"{name}: {backend} on {device} / pyg_ham on cpu = {rate / cpu:.1f}x")
            if gname == name and backend == "pyg" and cpu:
                print(f"{name}: pyg_ham / pyg (pyg-lib) on cpu = {cpu / rate:.2f}x")
    if args.against is not None and loaded.get("arxiv-like") is not None:
        against_table(loaded["arxiv-like"], args.against, args.fanout, args.batch_size, args.rounds,
                      args.round_batches, args.seed)
    if args.options and loaded.get("arxiv-like") is not None:
        options_table(loaded["arxiv-like"], args.fanout, args.batch_size, args.rounds, args.round_batches, args.seed)
    for device in devices:
        het = rates.get(("mag-like", "pyg_ham", device))
        for other in ("arxiv-like", "mag-like-homo"):
            hom = rates.get((other, "pyg_ham", device))
            if het and hom:
                print(f"mag-like (hetero, scale {0.01 if args.quick else args.scale}) / {other} (homo) "
                      f"pyg_ham on {device} = {het / hom:.2f}x epoch edges/s, "
                      f"{only_rates[('mag-like', device)] / only_rates[(other, device)]:.2f}x "
                      f"sample-only edges/s (goal: >= 0.5x)")
        # The same ratio with the graphs taking turns (robust to load drift between rows).
        if "mag-like" in kept.get(device, {}) and len(kept[device]) > 1:
            sync = (lambda: torch.cuda.synchronize()) if device.startswith("cuda") else (lambda: None)
            inter = interleaved_ratios(kept[device], args.batch_size, args.rounds, args.round_batches, sync)
            for other, other_rates in inter.items():
                if other == "mag-like":
                    continue
                ratios = sorted(a / b for a, b in zip(inter["mag-like"], other_rates))
                print(f"interleaved sample-only on {device}, {args.rounds} rounds x {args.round_batches} "
                      f"batches: mag-like / {other} = {statistics.median(ratios):.2f}x (median; range "
                      f"{ratios[0]:.2f}-{ratios[-1]:.2f}; mag-like {statistics.median(inter['mag-like']) / 1e6:.2f}"
                      f" vs {statistics.median(other_rates) / 1e6:.2f} Medges/s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
