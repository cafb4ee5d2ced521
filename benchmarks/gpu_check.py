"""The GPU check: what pyg-ham claims about CUDA, measured in one run on one GPU (< 5 minutes).

Prints one table with a row per check:

* **sync-free step**: :func:`torch.cuda.set_sync_debug_mode` ``"error"`` around steps of
  ``HAM(AdamW(fused=True))``, ``HAM(AdamW(foreach=True))`` and ``HAM(AdamW(fused=True))`` under
  :class:`torch.amp.GradScaler` (``scaler.step`` + ``scaler.update``): any host synchronisation
  raises, so "ok" means none happened (after two warm-up steps, which create the state);
* **sync-free scheduled steps**: 100 steps with a new learning rate every step (cosine), the
  trainer's diagnostics sampled, float lr on the fused and foreach paths and a tensor lr, under
  sync debug mode ``"error"`` after warm-up; **CUDA graph**: a compiled training step with HAM
  (capturable AdamW, tensor lr) captured in one CUDA graph, replayed, and equal to eager steps;
* **step ratio** at 25M parameters (``benchmarks/optimizer_step.py``'s transformer-like set):
  ``HAM(AdamW(fused=True))`` — the one pass of the base update and HAM's step
  (``pyg_ham.optim.fused_base``; target <= 1.5x, stretch 1.3x) — and the hyperbolic step as a
  separate compiled pass (bandwidth bound: it reads w and g and writes w, 12 B/param on top of
  fused AdamW's 28, so about 1.4x is its limit), over fused AdamW alone, and the base step with
  HAM compiled into one :func:`torch.compile`-d step over fused AdamW (goal <= 1.10x);
  interleaved medians;
* **one pass**: equal to torch's fused base step then HAM's separate step over 20 steps (AdamW
  with weight decay and amsgrad, SGD with Nesterov momentum), no host sync in scheduled
  GradScaler steps of ``HAM(SGD(momentum, fused=True))``, and the CUDA kernels one step launches
  (profiler);
* **sampler**: :class:`~pyg_ham.sampling.TorchNeighborLoader` on the GPU and on the CPU on the
  ogbn-arxiv-sized synthetic graph (``benchmarks/sampler.py``'s builder: 169,343 nodes,
  2.33M directed edges, 128 features), sampled edges/s over one epoch of the 90,941 seeds, and
  every tensor of every GPU batch checked to live on that one device;
* **sync-free prefetch**: batches one step ahead (:class:`~pyg_ham.sampling.Prefetcher`) from
  the graph kept on the host, four batches under sync debug mode ``"error"`` after two warm-up;
* **prefetch overlap**: with the graph and the features on the host, the share of the
  host->device copy (pinned, ``non_blocking``) that the prefetcher hides behind the GraphSAGE
  step, from CUDA events: copy alone, compute alone, an epoch of the same batches without and
  with :class:`~pyg_ham.sampling.Prefetcher`, hidden share = (without - with) / copy;
* **sync-free trainer step**: the trainer's :class:`~pyg_ham.train.node.MiniBatchNodeTask`
  (built by its own code, graph and features placed on the host) stepping over its own batches
  (``batch_loss`` with ``task.loss``, backward, the HAM step) under sync debug mode ``"error"``
  after two warm-up batches;
* **kernel plan**: :func:`~pyg_ham.optim.functional.foreach_chunk_plan` for the device (chunks
  of at most ``DEVICE_CHUNK_NUMEL`` elements on CUDA) and the implementation chosen by size; **found_inf**:
  :func:`~pyg_ham.optim.functional.found_inf_per_device` gives one flag per parameter device;
* **GraphSAGE epoch**: one epoch of mini-batch GraphSAGE (3 x 256, fanout 15,10,5, batch 1024,
  HAM(Adam)) on the arxiv-sized graph on the GPU, against the CPU (``--cpu-batches`` batches
  timed, the epoch extrapolated from them, so the whole check stays within minutes);
* **placement**: a graph larger than the device's free memory (a filler tensor leaves 1 GiB free;
  2.7 GiB of features, labels and edge_index) trained one epoch through ``run_experiment``:
  ``auto`` must put the graph and the features on the host, pinned in place (the same
  ``data_ptr``, ``is_pinned``), and the loss must be finite (the filler is freed after).

``--cpu-quick`` runs the same code on the CPU in seconds (a small graph and parameter set, the
compiled step with the ``eager`` backend, sync checks trivially true): the test suite runs it so
that the script cannot rot.

Examples::

    python benchmarks/gpu_check.py              # on a machine with a CUDA GPU
    python benchmarks/gpu_check.py --cpu-quick  # seconds, anywhere
"""
from __future__ import annotations

import argparse
import copy
import math
import statistics
import sys
import time
import traceback
from pathlib import Path
from typing import Callable, Dict, List, Sequence, Tuple

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "benchmarks")]

from optimizer_step import transformer_25m  # noqa: E402
from prefetch import sage_step  # noqa: E402
from sampler import ARXIV_NODES, ARXIV_SEEDS, ARXIV_UNDIRECTED, power_law_graph  # noqa: E402
from torch_geometric.data import Data  # noqa: E402

from pyg_ham.models import build_node_model  # noqa: E402
from pyg_ham.optim import HAM  # noqa: E402
from pyg_ham.optim import functional as F  # noqa: E402
from pyg_ham.sampling import Prefetcher, TorchNeighborLoader  # noqa: E402

Row = Tuple[str, str, str, str]  # check, device, result, note


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _params(device: torch.device, quick: bool) -> List[torch.nn.Parameter]:
    params = transformer_25m(d=64, layers=1) if quick else transformer_25m()
    out = [torch.nn.Parameter(p.detach().to(device)) for p in params]
    for p in out:
        p.grad = torch.randn_like(p) * 1e-3
    return out


def _adamw(params: Sequence[torch.Tensor], **kw) -> torch.optim.AdamW:
    return torch.optim.AdamW(params, lr=1e-3, weight_decay=0.01, **kw)


# --- the checks ------------------------------------------------------------------------------

def _train_step(model, opt, scaler, x, y, device: torch.device, debug: bool) -> None:
    """One training step; with :obj:`debug`, the optimizer step runs under sync debug mode "error"."""
    loss = torch.nn.functional.cross_entropy(model(x), y)
    scaler.scale(loss).backward()
    if debug and device.type == "cuda":
        torch.cuda.set_sync_debug_mode("error")
    try:
        scaler.step(opt)
        scaler.update()
    finally:
        if device.type == "cuda":
            torch.cuda.set_sync_debug_mode("default")
    opt.zero_grad()


def check_sync_free(device: torch.device, quick: bool) -> List[Row]:
    rows = []
    for name, kw, scaled in (("HAM(AdamW(fused=True))", {"fused": True}, False),
                             ("HAM(AdamW(foreach=True))", {"foreach": True}, False),
                             ("HAM(AdamW(fused=True)) + GradScaler", {"fused": True}, True)):
        model = torch.nn.Sequential(torch.nn.Linear(64, 256), torch.nn.ReLU(), torch.nn.Linear(256, 8)).to(device)
        opt = HAM(_adamw(model.parameters(), **kw))
        scaler = torch.amp.GradScaler(device.type, enabled=scaled)
        x, y = torch.randn(128, 64, device=device), torch.randint(0, 8, (128,), device=device)
        for _ in range(2):  # creates the state (and compiles a fused kernel) outside the check
            _train_step(model, opt, scaler, x, y, device, debug=False)
        try:
            for _ in range(3):
                _train_step(model, opt, scaler, x, y, device, debug=True)
            result = "ok" if device.type == "cuda" else "ran"
        except RuntimeError as exc:
            result = f"SYNC: {str(exc).splitlines()[0]}"
        note = "no host sync in 3 steps" if device.type == "cuda" else "CPU: nothing to synchronise"
        rows.append((f"sync-free step: {name}", str(device), result, note))
    return rows


def check_scheduled_sync_free(device: torch.device, quick: bool) -> List[Row]:
    """100 steps with a new learning rate every step (cosine, per step, as the HF Trainer's), the
    trainer's exponent diagnostics sampled, under sync debug mode "error" after a warm-up: HAM's
    device scalars are refilled in place, so a changing lr costs no host->device copy."""
    rows = []
    for name, kw in (("fused path, float lr", {"fused": True}), ("foreach path, float lr", {"foreach": True}),
                     ("fused path, tensor lr (capturable)", {"fused": True, "lr": torch.tensor(1e-3, device=device)})):
        from pyg_ham.optim import track_exponents

        torch.manual_seed(0)
        model = torch.nn.Sequential(torch.nn.Linear(64, 256), torch.nn.ReLU(), torch.nn.Linear(256, 8)).to(device)
        opt = HAM(torch.optim.AdamW(model.parameters(), **{"lr": 1e-3, "weight_decay": 0.01, **kw}),
                  implementation="fused" if "fused path" in name else "foreach")
        track_exponents(opt, every=10)
        sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=100)
        scaler = torch.amp.GradScaler(device.type, enabled=False)
        x, y = torch.randn(128, 64, device=device), torch.randint(0, 8, (128,), device=device)
        for _ in range(2):
            _train_step(model, opt, scaler, x, y, device, debug=False)
            sched.step()
        try:
            for _ in range(10 if quick else 100):
                _train_step(model, opt, scaler, x, y, device, debug=True)
                sched.step()
            result = "ok" if device.type == "cuda" else "ran"
        except RuntimeError as exc:
            result = f"SYNC: {str(exc).splitlines()[0]}"
        rows.append((f"sync-free scheduled steps: HAM {name}", str(device), result,
                     "lr changes every step; diagnostics every 10th step"))
    return rows


def check_cuda_graph(device: torch.device, quick: bool) -> List[Row]:
    """A compiled training step with HAM (capturable AdamW, tensor lr) captured in one CUDA graph
    and replayed; its weights must equal the same steps run eagerly."""
    if device.type != "cuda":
        return [("CUDA graph of a compiled step with HAM", str(device), "skipped", "needs CUDA")]
    torch.manual_seed(0)
    models = [torch.nn.Sequential(torch.nn.Linear(64, 128), torch.nn.Tanh(), torch.nn.Linear(128, 8)).to(device)
              for _ in range(2)]
    models[1].load_state_dict(models[0].state_dict())
    opts = [HAM(torch.optim.AdamW(m.parameters(), lr=torch.tensor(1e-2, device=device), capturable=True,
                                  foreach=True), alpha=50.0) for m in models]
    x, y = torch.randn(64, 64, device=device), torch.randint(0, 8, (64,), device=device)

    def step(model, opt) -> None:
        loss = torch.nn.functional.cross_entropy(model(x), y)
        loss.backward()
        opt.step()

    compiled = torch.compile(step)
    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):  # warm-up outside the capture: state, compilation
        for _ in range(3):
            for m, o in zip(models, opts):
                o.zero_grad(set_to_none=False)
                (compiled if m is models[1] else step)(m, o)
    torch.cuda.current_stream().wait_stream(side)
    graph = torch.cuda.CUDAGraph()
    opts[1].zero_grad(set_to_none=False)
    try:
        with torch.cuda.graph(graph):
            compiled(models[1], opts[1])
    except Exception as exc:  # report, do not hide
        return [("CUDA graph of a compiled step with HAM", str(device), f"FAILED: {type(exc).__name__}",
                 str(exc).splitlines()[0] if str(exc) else "")]
    for _ in range(5):
        opts[0].zero_grad(set_to_none=False)
        step(models[0], opts[0])
        opts[1].zero_grad(set_to_none=False)
        graph.replay()
    torch.cuda.synchronize(device)  # (a capture records kernels without running them)
    diff = max((a - b).abs().max().item() for a, b in zip(models[0].parameters(), models[1].parameters()))
    return [("CUDA graph of a compiled step with HAM", str(device), "ok" if diff < 1e-4 else f"DIFFERS {diff:.2e}",
             f"captured once, replayed 5x; max |eager - replayed| = {diff:.1e}")]


def _median_times(fns: Dict[str, Callable[[], None]], device: torch.device, reps: int) -> Dict[str, float]:
    times: Dict[str, List[float]] = {k: [] for k in fns}
    for _ in range(reps):  # interleaved, so machine noise hits every variant alike
        for name, fn in fns.items():
            _sync(device)
            t0 = time.perf_counter()
            fn()
            _sync(device)
            times[name].append(time.perf_counter() - t0)
    return {k: statistics.median(v) for k, v in times.items()}


def check_step_ratios(device: torch.device, quick: bool) -> List[Row]:
    fused_ok = device.type == "cuda" or quick
    base_kw = {"fused": True} if fused_ok else {"foreach": True}
    p_base, p_ham, p_comp = _params(device, quick), _params(device, quick), _params(device, quick)
    base = _adamw(p_base, **base_kw)
    ham = HAM(_adamw(p_ham, **base_kw))
    compiled_opt = HAM(_adamw(p_comp, foreach=True))
    backend = "eager" if device.type == "cpu" else "inductor"

    @torch.compile(backend=backend)
    def compiled_step() -> None:
        compiled_opt.step()

    separate = HAM(_adamw(_params(device, quick), **base_kw), implementation="fused")
    fns = {"base": base.step, "ham": ham.step, "separate": separate.step, "compiled": compiled_step}
    for fn in fns.values():  # warm-up: state, compilation
        fn()
        fn()
    reps = 3 if quick else 50
    t = _median_times(fns, device, reps)
    numel = f"{sum(p.numel() for p in p_base):,}"
    how = "one pass" if ham.two_pass_reason is None else f"two passes ({ham.two_pass_reason})"
    return [(f"step ratio, {numel} params: HAM(AdamW fused), {how} / AdamW fused", str(device),
             f"{t['ham'] / t['base']:.2f}x", f"target <= 1.5x, stretch 1.3x; base {t['base'] * 1e3:.2f} ms"),
            (f"step ratio, {numel} params: HAM(AdamW fused) separate compiled pass / AdamW fused", str(device),
             f"{t['separate'] / t['base']:.2f}x", "limit ~1.4x (+12 of 28 B/param)"),
            (f"step ratio, {numel} params: compiled AdamW+HAM step / AdamW fused", str(device),
             f"{t['compiled'] / t['base']:.2f}x", f"goal <= 1.10x; torch.compile backend {backend}")]


def arxiv_like(quick: bool) -> Data:
    nodes, undirected = (4_000, 20_000) if quick else (ARXIV_NODES, ARXIV_UNDIRECTED)
    g = torch.Generator().manual_seed(0)
    edge_index = power_law_graph(nodes, undirected, seed=0)
    data = Data(x=torch.randn(nodes, 128, generator=g), edge_index=edge_index,
                y=torch.randint(0, 40, (nodes,), generator=g))
    data.train_idx = torch.randperm(nodes, generator=g)[: (2_000 if quick else ARXIV_SEEDS)]
    return data


def _one_device(batch: Data, device: torch.device) -> bool:
    return all(v.device == device for _, v in batch if isinstance(v, torch.Tensor))


def _loader(data: Data, device: torch.device) -> TorchNeighborLoader:
    data = copy.copy(data).to(device)  # (Data.to moves in place: the caller's graph stays where it is)
    return TorchNeighborLoader(data, [15, 10, 5], input_nodes=data.train_idx, batch_size=1024, shuffle=True,
                               device=device, seed=0)


def check_sampler(data: Data, devices: Sequence[torch.device]) -> List[Row]:
    rows = []
    for device in devices:
        loader = _loader(data, device)
        _sync(device)
        t0, edges, one_device, batches = time.perf_counter(), 0, True, 0
        for batch in loader:
            edges += int(sum(batch.num_sampled_edges))
            one_device &= _one_device(batch, device)
            batches += 1
        _sync(device)
        seconds = time.perf_counter() - t0
        rows.append((f"sampler: one epoch, {data.num_nodes:,} nodes, fanout 15,10,5", str(device),
                     f"{edges / seconds / 1e6:.2f}M edges/s",
                     f"{batches} batches in {seconds:.2f} s; one-device batches: {'yes' if one_device else 'NO'}"))
    return rows


def check_prefetch_sync_free(data: Data, device: torch.device) -> List[Row]:
    """Batches one step ahead from a graph kept on the host (the sampler and the feature gather on
    the CPU, each batch pinned and moved non_blocking on a side stream, the training stream waiting
    on it): after two warm-up batches, the next ones are consumed under sync debug mode "error"
    (each used by a device reduction), so "ok" means the prefetch path made no host sync."""
    loader = TorchNeighborLoader(data, [15, 10, 5], input_nodes=data.train_idx, batch_size=256, shuffle=True,
                                 seed=0)
    total, batches, on_device = torch.zeros((), device=device), 0, True
    result = "ok" if device.type == "cuda" else "ran"
    try:
        for batch in Prefetcher(loader, device):
            batches += 1
            if batches > 2 and device.type == "cuda":
                torch.cuda.set_sync_debug_mode("error")
            batch = batch.to(device)  # what the trainer does: a no-op for a prefetched batch
            total += batch.x.sum() + batch.edge_index.sum()
            on_device &= _one_device(batch, device)
            if batches == 6:
                break
    except RuntimeError as exc:
        result = f"SYNC: {str(exc).splitlines()[0]}"
    finally:
        if device.type == "cuda":
            torch.cuda.set_sync_debug_mode("default")
    note = (f"{batches - 2} prefetched batches after 2 warm-up, host graph -> {device}; "
            f"one-device batches: {'yes' if on_device else 'NO'}")
    if device.type != "cuda":
        note += "; CPU: nothing to synchronise"
    return [("sync-free prefetch: batches one step ahead", str(device), result, note)]


def check_kernel_plan(device: torch.device, quick: bool) -> List[Row]:
    params = _params(device, quick)
    numels = [p.numel() for p in params]
    plan = F.foreach_chunk_plan(device.type, numels)
    chunking = "no chunking" if len(plan) == 1 else f"{len(plan)} chunks"
    implementation = F._default_implementation(params)
    cuda_plan = F.foreach_chunk_plan("cuda", numels)  # a pure function: checkable anywhere
    devices = [p.device for p in params] + [torch.device("cpu")]
    flag = torch.zeros((), device=device)
    per_device = F.found_inf_per_device(flag, devices)
    ok = set(per_device) == set(devices) and all(v.device == d for d, v in per_device.items())
    return [("kernel plan (foreach)", str(device), chunking,
             f"{len(numels)} tensors; CUDA plan: {len(cuda_plan)} chunk(s); implementation by size: {implementation}"),
            ("found_inf per device", str(device), "ok" if ok else "WRONG",
             f"one flag on each of {', '.join(sorted(map(str, per_device)))}")]


def _sage_epoch(data: Data, device: torch.device, max_batches: int) -> Tuple[float, int, int]:
    torch.manual_seed(0)
    model = build_node_model("sage", 128, 40, hidden_channels=256, num_layers=3, norm="batch_norm").to(device)
    opt = HAM(torch.optim.Adam(model.parameters(), lr=1e-3))
    loader = _loader(data, device)
    total = math.ceil(data.train_idx.numel() / 1024)
    _sync(device)
    t0, done = time.perf_counter(), 0
    for batch in loader:
        sage_step(model, opt, batch)
        done += 1
        if done >= max_batches:
            break
    _sync(device)
    return time.perf_counter() - t0, done, total


def check_sage_epoch(data: Data, device: torch.device, cpu_batches: int) -> List[Row]:
    rows = []
    seconds: Dict[str, float] = {}
    for dev, limit in ((device, 10**9), (torch.device("cpu"), cpu_batches)):
        if dev.type == device.type and dev != device:
            continue
        t, done, total = _sage_epoch(data, dev, limit)
        epoch = t * total / done
        seconds[dev.type] = epoch
        note = f"{done} of {total} batches" + ("" if done == total else ", epoch extrapolated")
        rows.append(("GraphSAGE 3x256 + HAM(Adam): one mini-batch epoch", str(dev), f"{epoch:.2f} s", note))
        if device.type == "cpu":
            break
    if "cuda" in seconds:
        rows.append(("GraphSAGE epoch: CPU / GPU", str(device), f"{seconds['cpu'] / seconds['cuda']:.1f}x", ""))
    return rows


# --- the trainer's host placement, the prefetch's overlap, the trainer's step from the host ---------

#: The placement check on CUDA: the device's free memory left beside a filler tensor, and the
#: synthetic graph (nodes, directed edges, float32 features): 1.9 GiB of features and labels and a
#: 0.75 GiB edge_index, 2.7 GiB in all, more than the 1 GiB left free (and the edge_index more than
#: the half of it that ``auto`` gives the graph).
PLACEMENT_FREE_LEFT = 1 << 30
PLACEMENT_GRAPH = (4_000_000, 50_000_000, 128)
PLACEMENT_GRAPH_QUICK = (4_000, 20_000, 128)
#: the trainer's settings in these checks (``benchmarks/ondisk.py``'s: GraphSAGE, fanout 5,5, batch 1024)
TRAINER = dict(dataset="synthetic", model="sage", hidden=32, layers=2, fanout=[5, 5], batch_size=1024,
               eval_mode="sampled", epochs=1, runs=1, quiet=True, eval_train=False)


def random_graph(nodes: int, edges: int, dims: int, classes: int = 40, seed: int = 0) -> Data:
    r"""A homogeneous graph of :obj:`edges` uniformly random directed edges, uniform features in
    :math:`[-1, 1)` and random labels (cheap to build at any size)."""
    g = torch.Generator().manual_seed(seed)
    x = torch.empty(nodes, dims).uniform_(-1, 1, generator=g)
    return Data(x=x, edge_index=torch.randint(0, nodes, (2, edges), generator=g),
                y=torch.randint(0, classes, (nodes,), generator=g), num_nodes=nodes)


def _graph_only(data: Data) -> Data:
    r"""A new :class:`~torch_geometric.data.Data` holding :obj:`data`'s graph, features and labels
    on the host (the same tensors there) and nothing else: no :obj:`train_idx` riding along in
    every batch, and what a placement assigns lands on this object, not on :obj:`data`."""
    return Data(x=data.x.cpu(), edge_index=data.edge_index.cpu(), y=data.y.cpu(), num_nodes=data.num_nodes)


def _node_task(data: Data, split: Dict[str, torch.Tensor], num_classes: int, name: str):
    r"""A :class:`~pyg_ham.datasets.NodeTask` over :obj:`data` with one fixed split, as a
    dataset loader returns it (the trainer takes it through ``run_experiment(..., task=)``)."""
    from pyg_ham.datasets.metrics import accuracy
    from pyg_ham.datasets.tasks import NodeTask

    return NodeTask(name=name, data=data, num_features=data.x.size(1), num_classes=num_classes, metric="acc",
                    split_fn=lambda run: dict(split), eval_fn=accuracy)


def _split(nodes: int, train: int, held_out: int, seed: int = 0) -> Dict[str, torch.Tensor]:
    ids = torch.randperm(nodes, generator=torch.Generator().manual_seed(seed))
    return {"train": ids[:train], "valid": ids[train:train + held_out],
            "test": ids[train + held_out:train + 2 * held_out]}


def _trainer_config(device: torch.device, **kw):
    from pyg_ham.train.config import ExperimentConfig

    return ExperimentConfig(**{**TRAINER, "device": str(device), **kw})


def check_host_placement(device: torch.device, quick: bool) -> List[Row]:
    r"""A graph larger than the device's free memory through the real trainer: on CUDA a filler
    tensor first leaves :data:`PLACEMENT_FREE_LEFT` free; then the trainer's placement
    (:func:`~pyg_ham.train.placement.place`, ``auto``) and one epoch of GraphSAGE on a few
    thousand training nodes (``run_experiment`` with the task, sampled evaluation), which reuses
    that placement. "ok" means ``auto`` put the graph and the features on the host, pinned in place
    (the same :meth:`~torch.Tensor.data_ptr`, :meth:`~torch.Tensor.is_pinned`), the run recorded
    that decision and moved nothing again, and the epoch's loss is finite; the filler is freed
    afterwards, also on failure. On the CPU (a small graph, no filler) the decision is ``device``
    with ``device_is_host``."""
    from pyg_ham.train.placement import place
    from pyg_ham.train.runner import run_experiment

    cuda = device.type == "cuda"
    nodes, edges, dims = PLACEMENT_GRAPH_QUICK if quick else PLACEMENT_GRAPH
    data = random_graph(nodes, edges, dims)
    keys = ("x", "y", "edge_index")
    before = {k: data[k].data_ptr() for k in keys}
    size = sum(data[k].numel() * data[k].element_size() for k in keys)
    train, held_out = (2_000, 500) if quick else (4_096, 1_024)
    task = _node_task(data, _split(nodes, train, held_out), 40, "synthetic-placement")
    amount = f"{size / 2**30:.2f} GiB" if size >= 2**30 else f"{size / 2**20:.1f} MiB"
    name = f"placement: graph larger than free memory ({amount}), auto"
    filler = None
    try:
        if cuda:
            torch.cuda.empty_cache()  # what earlier checks left cached is not free
            free = torch.cuda.mem_get_info(device)[0]
            if free > PLACEMENT_FREE_LEFT:
                filler = torch.empty(free - PLACEMENT_FREE_LEFT, dtype=torch.uint8, device=device)
        free_now = torch.cuda.mem_get_info(device)[0] if cuda else None
        cfg = _trainer_config(device)
        # the decision and the move, as the trainer's MiniBatchNodeTask makes them first (and then
        # reuses for the same config): the tensors are inspected as the training will find them
        decision = place(task, cfg, device, full_batch=False)
        placed = {k: task.data[k] for k in keys}
        copied = [k for k in keys if placed[k].data_ptr() != before[k]]
        unpinned = [k for k in keys if cuda and not placed[k].is_pinned()]
        doc = run_experiment(cfg, log=lambda s: None, task=task)
        run = doc["runs"][0]
        placement, loss = run["placement"], run["history"][0]["loss"]
        moved_again = [k for k in keys if task.data[k].data_ptr() != placed[k].data_ptr()]
        reused = task.placement is decision and placement == decision.record()
    except Exception as exc:  # an OOM among them: reported, and the checks after this one still run
        first = str(exc).splitlines()[0] if str(exc) else ""
        return [(name, str(device), f"FAILED: {type(exc).__name__}", f"{first} ({_site(exc)})")]
    finally:
        del filler
        if cuda:
            torch.cuda.empty_cache()
    problems = []
    want = ("host", "host") if cuda else ("device", "device")
    if (placement["graph"], placement["features"]) != want or placement["device_is_host"] == cuda:
        problems.append(f"WRONG PLACEMENT (graph {placement['graph']}, features {placement['features']})")
    if free_now is not None and free_now >= size:
        problems.append(f"NOT LARGER: {free_now / 2**30:.2f} GiB free")
    if not reused or moved_again:
        problems.append(f"RE-PLACED BY THE RUN{': ' + ', '.join(moved_again) if moved_again else ''}")
    if copied:
        problems.append(f"COPIED: {', '.join(copied)}")
    if unpinned:
        problems.append(f"NOT PINNED: {', '.join(unpinned)}")
    if not math.isfinite(loss):
        problems.append(f"LOSS {loss}")
    result = "; ".join(problems) or ("ok" if cuda else "ran")
    free_note = f"{free_now / 2**30:.2f} GiB free beside the filler; " if free_now is not None else "no filler; "
    note = (f"{free_note}decision: graph {placement['graph']}, features {placement['features']}, "
            f"device_is_host {placement['device_is_host']} ({placement['reason']}); "
            f"tensors in place: {'no (' + ', '.join(copied) + ')' if copied else 'yes'}"
            + (f", pinned: {'no (' + ', '.join(unpinned) + ')' if unpinned else 'yes'}" if cuda else "")
            + f"; the run reused it: {'yes' if reused and not moved_again else 'NO'}"
            + f"; {train:,} training nodes, 1 epoch, loss {loss:.4f}")
    return [(name, str(device), result, note)]


def _site(exc: BaseException) -> str:
    r"""Where :obj:`exc` was raised: the innermost frame of pyg_ham or PyG (else of any file) in
    its traceback, ``path:line in function``."""
    frames = traceback.extract_tb(exc.__traceback__)
    ours = [f for f in frames if "/pyg_ham/" in f.filename or "/torch_geometric/" in f.filename] or frames
    if not ours:
        return "no traceback"
    f = ours[-1]
    path = f.filename.split("/pyg_ham/")[-1] if "/pyg_ham/" in f.filename else f.filename.split("/")[-1]
    return f"at {path}:{f.lineno} in {f.name}"


def _reported(name: str, device: torch.device, check: Callable[..., List[Row]], *args) -> List[Row]:
    r"""The rows of :obj:`check`, or one row saying how it failed (the table is printed at the end:
    one check's error must not lose the others' rows)."""
    try:
        return check(*args)
    except Exception as exc:
        first = str(exc).splitlines()[0] if str(exc) else ""
        return [(name, str(device), f"FAILED: {type(exc).__name__}", f"{first} ({_site(exc)})")]


def _elapsed_ms(device: torch.device, fn: Callable[[], None]) -> float:
    r"""Milliseconds of :obj:`fn`: between two CUDA events on the current stream (the device idle
    before the first, so host work that holds the device back counts), or perf_counter on the CPU."""
    if device.type != "cuda":
        t0 = time.perf_counter()
        fn()
        return (time.perf_counter() - t0) * 1e3
    stream = torch.cuda.current_stream(device)
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    torch.cuda.synchronize(device)
    start.record(stream)
    fn()
    end.record(stream)
    end.synchronize()
    return start.elapsed_time(end)


def check_prefetch_overlap(data: Data, device: torch.device, quick: bool) -> List[Row]:
    r"""How much of the host->device copy :class:`~pyg_ham.sampling.Prefetcher` hides behind the
    step, with the graph and the features on the host and training on :obj:`device`. Over the
    same :math:`N` batches, sampled beforehand (the sampling is not timed): the copy alone
    (:func:`~pyg_ham.sampling.prefetch.move_batch`: pinned, ``non_blocking``), the compute alone
    (forward, backward, the HAM(Adam) step of GraphSAGE 3x256 on batches already on the device),
    an epoch without the prefetcher (each batch ``.to(device)`` in the step, as the trainer
    without it) and one with it; medians of interleaved repetitions, CUDA events on the GPU.
    Hidden share :math:`= (t_\text{without} - t_\text{with}) / t_\text{copy}`, printed as it
    comes out (the copy without the prefetcher is from pageable memory, so it is not exactly
    :math:`t_\text{copy}`; below 0 or above 1 is reported as such)."""
    from itertools import islice

    from pyg_ham.sampling.prefetch import move_batch

    cuda = device.type == "cuda"
    n, reps = (2, 1) if quick else (20, 3)
    loader = TorchNeighborLoader(_graph_only(data), [15, 10, 5], input_nodes=data.train_idx, batch_size=1024,
                                 shuffle=True, seed=0)
    host = list(islice(loader, n))
    torch.manual_seed(0)
    hidden = 64 if quick else 256
    model = build_node_model("sage", data.x.size(1), int(data.y.max()) + 1, hidden_channels=hidden, num_layers=3,
                             norm="batch_norm").to(device)
    opt = HAM(torch.optim.Adam(model.parameters(), lr=1e-3))

    def step(batch: Data) -> None:
        sage_step(model, opt, batch)

    on_device: List[Data] = []

    def copy_alone(batches: List[Data]) -> None:
        on_device[:] = [move_batch(b, device) for b in batches]

    def compute_alone(batches: List[Data]) -> None:
        for b in on_device:
            step(b)

    def without(batches: List[Data]) -> None:
        for b in batches:
            step(b.to(device))

    def with_prefetch(batches: List[Data]) -> None:
        for b in Prefetcher(batches, device):
            step(b.to(device))  # a no-op for a prefetched batch, as in the trainer

    # Data.to and Data.pin_memory replace a batch's tensors in place: every variant moves shallow
    # copies (new stores, the same host tensors), so the host batches stay pageable and on the host
    fns = {"copy": copy_alone, "compute": compute_alone, "without": without, "with": with_prefetch}
    for fn in fns.values():  # warm-up: state, kernels, the pinned-memory cache
        fn([copy.copy(b) for b in host])
    times: Dict[str, List[float]] = {k: [] for k in fns}
    for _ in range(reps):  # interleaved: machine noise hits every variant alike
        for k, fn in fns.items():
            fresh = [copy.copy(b) for b in host]
            times[k].append(_elapsed_ms(device, lambda: fn(fresh)))  # noqa: B023
    assert all(v.device.type == "cpu" and not (cuda and v.is_pinned()) for b in host for _, v in b
               if isinstance(v, torch.Tensor)), "a host batch was moved or pinned in place"
    t = {k: statistics.median(v) for k, v in times.items()}
    ms = (f"copy {t['copy']:.1f} ms, compute {t['compute']:.1f} ms, without prefetch {t['without']:.1f} ms, "
          f"with prefetch {t['with']:.1f} ms (bound max(copy, compute) {max(t['copy'], t['compute']):.1f} ms)")
    name = f"prefetch overlap: GraphSAGE 3x{hidden}, {n} batches from the host graph, fanout 15,10,5"
    if not cuda:
        return [(name, str(device), "ran", f"CPU: no copy to hide (perf_counter); {ms}")]
    share = (t["without"] - t["with"]) / t["copy"] if t["copy"] > 0 else math.nan
    odd = "" if 0 <= share <= 1 else " (outside [0, 1])"
    return [(name, str(device), f"{share:.0%} of the copy hidden{odd}",
             f"{ms}; copy = pin + H2D non_blocking; median of {reps}, CUDA events")]


def check_trainer_sync_free(data: Data, device: torch.device, quick: bool) -> List[Row]:
    r"""The trainer's step from a graph kept on the host, without a host sync: a
    :class:`~pyg_ham.train.node.MiniBatchNodeTask` built by the trainer's own code
    (``graph_placement`` and ``feature_placement`` ``host``), its model and optimizer as
    :func:`~pyg_ham.train.single.train_run` makes them, and the steps of
    :func:`~pyg_ham.train.engine.fit`'s epoch over its :meth:`train_batches` (``prepare_batch``,
    :func:`~pyg_ham.train.common.training_step` of ``batch_loss``: forward, ``task.loss``,
    backward, the HAM step; the loss summed on the device; HAM's exponent diagnostics every
    2nd step), under sync debug mode ``"error"`` after two warm-up batches."""
    from pyg_ham.optim import track_exponents
    from pyg_ham.train.common import make_optimizer, prefetches, set_optimizer_mode, training_step
    from pyg_ham.train.engine import seed_everything
    from pyg_ham.train.node import MiniBatchNodeTask
    from pyg_ham.train.runner import run_specs
    from pyg_ham.train.task import task_kind

    cuda = device.type == "cuda"
    split = _split(data.num_nodes, data.train_idx.numel(), 256)
    split["train"] = data.train_idx
    task = _node_task(_graph_only(data), split, int(data.y.max()) + 1, "arxiv-like-host")
    cfg = _trainer_config(device, graph_placement="host", feature_placement="host", hidden=64, fanout=[10, 5],
                          batch_size=256 if quick else 1024)
    spec = run_specs(task, cfg)[1][0]
    seed_everything(spec["seed"])
    run = task_kind(task).create(task, cfg, spec, device)
    assert isinstance(run, MiniBatchNodeTask), type(run)
    model = run.build_model().to(device)
    optimizer = make_optimizer(model, cfg)
    track_exponents(optimizer, every=2)
    model.train()
    set_optimizer_mode(optimizer, training=True)
    total, count, batches, n = torch.zeros((), device=device), 0, 0, 6
    result = "ok" if cuda else "ran"
    try:
        for batch in run.train_batches():
            if batches == 2 and cuda:
                torch.cuda.set_sync_debug_mode("error")
            batch = run.prepare_batch(batch)
            loss, size = training_step(lambda: run.batch_loss(model, batch), model, optimizer)  # noqa: B023
            total += loss.detach() * size
            count += size
            batches += 1
            if batches == n:
                break
    except RuntimeError as exc:
        if "synchroniz" not in str(exc):
            raise
        result = f"SYNC: {str(exc).splitlines()[0]} ({_site(exc)})"
    finally:
        if cuda:
            torch.cuda.set_sync_debug_mode("default")
    p = run.placement
    mean = float(total) / max(count, 1)
    note = (f"{max(batches - 2, 0)} steps after 2 warm-up; graph on {p.graph}, features on {p.features}"
            f"{' (the device is the host)' if p.device_is_host else ''}; loader {type(run.loader).__name__}, "
            f"prefetch: {'yes' if prefetches(run.loader, cfg) else 'no'}; mean loss {mean:.4f}")
    if not cuda:
        note += "; CPU: nothing to synchronise"
    return [("sync-free trainer step: graph on the host, MiniBatchNodeTask.batch_loss", str(device), result, note)]


def table(rows: Sequence[Row]) -> str:
    lines = ["| check | device | result | note |", "|---|---|---|---|"]
    lines += [f"| {' | '.join(r)} |" for r in rows]
    return "\n".join(lines)


def check_one_pass(device: torch.device, quick: bool) -> List[Row]:
    """The one pass of a fused base and HAM (``pyg_ham.optim.fused_base``, Triton on CUDA):
    equal to torch's fused base step then HAM's separate step over 20 steps (|diff| <= 1e-6 |ref| +
    1e-7 max|w|), no host sync in 20 scheduled GradScaler steps, and the kernels one step launches."""
    from pyg_ham.optim import fused_base

    rows: List[Row] = []
    threshold, fused_base.ONE_PASS_MIN_NUMEL = fused_base.ONE_PASS_MIN_NUMEL, 0  # these small models too
    try:
        return rows + _one_pass_rows(device, quick)
    finally:
        fused_base.ONE_PASS_MIN_NUMEL = threshold


def _one_pass_rows(device: torch.device, quick: bool) -> List[Row]:
    rows: List[Row] = []
    for name, kw in (("AdamW(wd, amsgrad)", {"weight_decay": 0.01, "amsgrad": True}),
                     ("SGD(momentum, nesterov)", {"momentum": 0.9, "nesterov": True})):
        cls = torch.optim.SGD if name.startswith("SGD") else torch.optim.AdamW
        torch.manual_seed(0)
        shapes = [(256, 64), (64,), (64, 64, 3), (8, 64)]
        start = [torch.randn(s, device=device) * 0.5 for s in shapes]
        opts = [HAM(cls([torch.nn.Parameter(t.clone()) for t in start], lr=1e-3, fused=True, **kw),
                    implementation=impl) for impl in (None, "foreach")]
        for _ in range(20):
            grads = [torch.randn(s, device=device) for s in shapes]
            for opt in opts:
                for p, g in zip(opt.param_groups[0]["params"], grads):
                    p.grad = g.clone()
                opt.step()
        worst = 0.0
        for p, q in zip(*(o.param_groups[0]["params"] for o in opts)):
            tol = 1e-6 * q.abs() + 1e-7 * q.abs().max()
            worst = max(worst, ((p - q).abs() / tol).max().item())
        one = opts[0].two_pass_reason is None
        rows.append((f"one pass = base then HAM: HAM({name} fused)", str(device),
                     "ok" if one and worst <= 1 else f"DIFFERS ({worst:.2f} of the tolerance; one pass: {one})",
                     f"20 steps; largest |diff| / tolerance {worst:.2f}"))
    model = torch.nn.Sequential(torch.nn.Linear(64, 256), torch.nn.ReLU(), torch.nn.Linear(256, 8)).to(device)
    opt = HAM(torch.optim.SGD(model.parameters(), lr=1e-2, momentum=0.9, fused=True))
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=100)
    scaler = torch.amp.GradScaler(device.type, enabled=device.type == "cuda")
    x, y = torch.randn(128, 64, device=device), torch.randint(0, 8, (128,), device=device)
    for _ in range(3):
        _train_step(model, opt, scaler, x, y, device, debug=False)
        sched.step()
    try:
        for _ in range(5 if quick else 20):
            _train_step(model, opt, scaler, x, y, device, debug=True)
            sched.step()
        result = "ok" if device.type == "cuda" else "ran"
    except RuntimeError as exc:
        result = f"SYNC: {str(exc).splitlines()[0]}"
    rows.append(("sync-free one pass: HAM(SGD(momentum, fused)) + GradScaler", str(device), result,
                 f"scheduled lr; {opt.two_pass_reason or 'one pass'}"))
    if device.type == "cuda":
        from torch.profiler import ProfilerActivity, profile

        with profile(activities=[ProfilerActivity.CUDA]) as prof:
            opt.step()
            torch.cuda.synchronize(device)
        kernels = [e.name for e in prof.events() if e.device_type == torch.autograd.DeviceType.CUDA]
        rows.append(("kernels of one one-pass step (4 tensors)", str(device), str(len(kernels)),
                     ", ".join(sorted(set(k[:40] for k in kernels)))[:200]))
    return rows


def main(argv: Sequence[str] = ()) -> List[Row]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cpu-quick", action="store_true", help="the same code on the CPU, in seconds")
    parser.add_argument("--cpu-batches", type=int, default=10, help="CPU batches timed for the GraphSAGE epoch")
    args = parser.parse_args(list(argv))
    if args.cpu_quick:
        device = torch.device("cpu")
    elif torch.cuda.is_available():
        device = torch.device("cuda", torch.cuda.current_device())
    else:
        sys.exit("gpu_check: no CUDA device here; run it on a GPU machine, or pass --cpu-quick")
    quick = args.cpu_quick
    t0 = time.perf_counter()
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "CPU (--cpu-quick)"
    print(f"# GPU check on {name}, torch {torch.__version__}", flush=True)
    rows: List[Row] = []
    rows += check_sync_free(device, quick)
    rows += check_scheduled_sync_free(device, quick)
    rows += check_cuda_graph(device, quick)
    rows += check_step_ratios(device, quick)
    rows += check_one_pass(device, quick)
    rows += check_kernel_plan(device, quick)
    data = arxiv_like(quick)
    rows += check_sampler(data, [device] if device.type == "cpu" else [device, torch.device("cpu")])
    rows += check_prefetch_sync_free(data, device)
    rows += _reported("prefetch overlap", device, check_prefetch_overlap, data, device, quick)
    rows += _reported("sync-free trainer step", device, check_trainer_sync_free, data, device, quick)
    rows += check_sage_epoch(data, device, 2 if quick else args.cpu_batches)
    rows += check_host_placement(device, quick)
    print(table(rows))
    print(f"total {time.perf_counter() - t0:.0f} s")
    return rows


if __name__ == "__main__":
    main(sys.argv[1:])
