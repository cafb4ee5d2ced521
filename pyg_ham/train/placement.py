r"""Where a node task's graph (its CSC / :obj:`edge_index`, every edge type's for a
heterogeneous graph, with the edge features) and features (the node-level tensors, labels
included) live while it trains: on the training device, in host memory (pinned where it lies on
CUDA, :func:`pin_in_place`), or on disk (the on-disk layout, :mod:`pyg_ham.datasets.ondisk`).

:func:`decide` is the decision, a pure function of the sizes, the device's free memory and the
config's ``graph_placement`` / ``feature_placement`` (``auto``, ``device``, ``host``, ``disk``);
:func:`place` applies it to a loaded task, once per experiment, says it on stderr (mini-batch, not --quiet) and keeps it
on the task so that every run records it (``placement`` in the run's JSON).

``auto``: a task served from its on-disk layout stays on disk; otherwise, on a GPU, the graph
goes to the device when it takes at most :data:`DEVICE_SHARE` of the device's free memory, and
then the features when the two together do (the rest is left to the model, its optimizer and
the activations); what does not fit stays in pinned host memory. The graph comes first: the
sampler runs where the graph is, and a batch's features are then gathered from the host and
copied (:mod:`pyg_ham.sampling.placement`), while features on the device with the graph on the
host would be copied back to the sampler. On a CPU-only machine the device *is* the host: both
are ``"device"`` and the record says ``device_is_host: true``. Evaluation over the whole graph
(``eval_mode="full"``) needs all of it on the device: with anything on the host it is refused
before training (``layerwise`` and ``sampled`` evaluate from the host).
"""
from __future__ import annotations

import sys
import weakref
from dataclasses import asdict, dataclass
from typing import Any, Dict, Iterator, Optional, Tuple

import torch
from torch_geometric.data.storage import EdgeStorage, NodeStorage

from pyg_ham.config import PLACEMENTS
from pyg_ham.errors import ConfigError

__all__ = ["PLACEMENTS", "DEVICE_SHARE", "Placement", "decide", "place", "pin_in_place", "tensor_bytes",
           "graph_and_feature_bytes"]

#: ``auto`` puts on the device at most this share of its free memory.
DEVICE_SHARE = 0.5
#: ``cudaHostRegisterPortable``: registered memory is pinned for every CUDA context.
_HOST_REGISTER_PORTABLE = 1


@dataclass(frozen=True)
class Placement:
    r"""The decision: :obj:`graph` and :obj:`features` each ``"device"``, ``"host"`` or
    ``"disk"``, on :obj:`device`; :obj:`device_is_host` on a CPU-only run; :obj:`reason` how it
    was chosen."""

    graph: str
    features: str
    device: str
    device_is_host: bool
    graph_bytes: int
    feature_bytes: int
    free_bytes: Optional[int]
    reason: str

    def record(self) -> Dict[str, Any]:
        r"""The run record's ``placement`` entry."""
        return asdict(self)

    def line(self) -> str:
        r"""The one line said on stderr."""
        host = " (the device is the host)" if self.device_is_host else ""
        return (f"placement: graph on {self.graph}, features on {self.features}, device {self.device}{host} "
                f"({self.reason})")


def tensor_bytes(*tensors: Optional[torch.Tensor]) -> int:
    r"""The bytes of the given tensors (:obj:`None` counts 0)."""
    return sum(t.numel() * t.element_size() for t in tensors if t is not None)


def decide(graph_bytes: int, feature_bytes: int, device: torch.device, free_bytes: Optional[int],
           graph: str = "auto", features: str = "auto", on_disk: bool = False,
           full_batch: bool = False, whole_graph_eval: bool = False) -> Placement:
    r"""The placement of a graph of :obj:`graph_bytes` and features of :obj:`feature_bytes`
    training on :obj:`device` with :obj:`free_bytes` free there (:obj:`None` on the CPU), as the
    config asks (:obj:`graph`, :obj:`features`; see the module docstring). Raises
    :class:`~pyg_ham.errors.ConfigError` (one line) for a choice that cannot be honoured.

    Args:
        graph_bytes (int): The graph's bytes (its :obj:`edge_index`).
        feature_bytes (int): The features' and labels' bytes.
        device (torch.device): The training device.
        free_bytes (int, optional): Its free memory (:func:`torch.cuda.mem_get_info`).
        graph (str): ``graph_placement``. (default: :obj:`"auto"`)
        features (str): ``feature_placement``. (default: :obj:`"auto"`)
        on_disk (bool): The task is served from its on-disk layout.
        full_batch (bool): Full-batch training (every tensor is used on the device at once).
        whole_graph_eval (bool): Evaluation runs the model on the whole graph at once
            (``eval_mode="full"``), which needs all of it on the device.
    """
    for name, value in (("graph_placement", graph), ("feature_placement", features)):
        if value not in PLACEMENTS:
            raise ConfigError(f"{name} must be one of {', '.join(PLACEMENTS)}, got {value!r}")
    device = torch.device(device)
    cpu = device.type == "cpu"
    disk = [name for name, value in (("graph", graph), ("features", features)) if value == "disk"]
    if on_disk or disk:
        if not on_disk:
            raise ConfigError(f"{' and '.join(disk)} on disk needs the on-disk layout: add --on-disk "
                              f"(it serves the graph and the features from memory-mapped files)")
        kept = [name for name, value in (("graph", graph), ("features", features)) if value not in ("auto", "disk")]
        if kept:
            raise ConfigError(f"the task is served from its on-disk layout, which keeps the graph and the features "
                              f"on disk; drop the {' and '.join(kept)} placement or train --in-memory")
        return Placement("disk", "disk", str(device), cpu, graph_bytes, feature_bytes, free_bytes,
                         "the on-disk layout: memory-mapped, every batch gathered from it")
    if full_batch and "host" in (graph, features):
        raise ConfigError("full-batch training uses the whole graph and its features on the device at every step; "
                          "set --batch-size to train mini-batches from the host, or drop the host placement")
    if graph == "host" and features == "device" and not cpu:
        raise ConfigError("features on the device with the graph on the host would be gathered by the host's "
                          "sampler and copied back; put the graph on the device too, or the features on the host")
    if cpu:
        return Placement("device", "device", str(device), True, graph_bytes, feature_bytes, None,
                         "a CPU-only run")
    asked = {"graph": graph, "features": features}
    if "auto" not in asked.values():
        return _evaluable(Placement(graph, features, str(device), False, graph_bytes, feature_bytes, free_bytes,
                                    "as set"), whole_graph_eval)
    budget = DEVICE_SHARE * (free_bytes if free_bytes is not None else 0)
    if full_batch:
        chosen = {"graph": "device", "features": "device"}
        reason = "full batch: everything on the device"
    else:
        chosen = dict(asked)
        if chosen["graph"] == "auto":
            chosen["graph"] = "device" if graph_bytes <= budget else "host"
        on_device = graph_bytes if chosen["graph"] == "device" else 0
        if chosen["features"] == "auto":
            fits = chosen["graph"] == "device" and on_device + feature_bytes <= budget
            chosen["features"] = "device" if fits else "host"
        reason = (f"auto: what fits in {DEVICE_SHARE:.0%} of the device's {(free_bytes or 0) / 2**30:.1f} GiB free "
                  f"(graph {graph_bytes / 2**30:.2f} GiB, features {feature_bytes / 2**30:.2f} GiB)")
    return _evaluable(Placement(chosen["graph"], chosen["features"], str(device), False, graph_bytes, feature_bytes,
                                free_bytes, reason), whole_graph_eval)


def _evaluable(decision: Placement, whole_graph_eval: bool) -> Placement:
    host = [name for name in ("graph", "features") if getattr(decision, name) == "host"]
    if whole_graph_eval and host:
        raise ConfigError(f"--eval-mode full runs the model on the whole graph on the device, but the "
                          f"{' and the '.join(host)} {'are' if len(host) > 1 else 'is'} placed on the host "
                          f"({decision.reason}); evaluate with --eval-mode layerwise (layer by layer from the host) "
                          f"or sampled, or place both on the device")
    return decision


def graph_and_feature_bytes(data: Any) -> Tuple[int, int]:
    r"""The bytes of the graph (every :obj:`edge_index`, with the edge features) and of the
    features (the node-level tensors: features, labels, masks) of a :class:`~torch_geometric.data.Data` or
    :class:`~torch_geometric.data.HeteroData` graph."""
    graph = features = 0
    for store, key, value in _tensors(data):
        if _is_graph(store, key):
            graph += tensor_bytes(value)
        else:
            features += tensor_bytes(value)
    return graph, features


def _tensors(data: Any) -> Iterator[Tuple[Any, str, torch.Tensor]]:
    for store in data.stores:
        for key, value in store.items():
            if isinstance(value, torch.Tensor):
                yield store, key, value


def _is_graph(store: Any, key: str) -> bool:
    # the CSC's side: edge_index, and what is gathered by edge (edge features, on an edge type)
    edge_type = isinstance(store, EdgeStorage) and not isinstance(store, NodeStorage)  # (Data's is both)
    return key == "edge_index" or edge_type or store.is_edge_attr(key)


def pin_in_place(tensor: torch.Tensor) -> torch.Tensor:
    r"""The host tensor :obj:`tensor` page-locked where it lies (``cudaHostRegister`` of its
    storage, portable to every CUDA context, as torch's pinned memory is; unregistered when the
    storage is freed), so that its copies to a GPU are asynchronous with no pinned copy of it:
    a graph memory-mapped by every rank of a machine (:func:`~pyg_ham.train.machine.share_memory`)
    stays one copy in the machine's memory. Returns :obj:`tensor` itself; an already pinned
    tensor is left as it is. Memory the driver cannot register (one line on stderr says why) is
    copied into pinned memory instead."""
    if tensor.is_pinned():
        return tensor
    storage = tensor.untyped_storage()
    if storage.nbytes() == 0:
        return tensor
    ptr, cudart = storage.data_ptr(), torch.cuda.cudart()
    error = int(cudart.cudaHostRegister(ptr, storage.nbytes(), _HOST_REGISTER_PORTABLE))
    if error != 0:
        print(f"placement: cannot pin {storage.nbytes() / 2**20:.1f} MiB in place (cudaHostRegister error "
              f"{error}); pinning a copy of it", file=sys.stderr, flush=True)
        return tensor.pin_memory()
    weakref.finalize(storage, cudart.cudaHostUnregister, ptr)
    return tensor


def place(task: Any, cfg: Any, device: torch.device, full_batch: bool) -> Placement:
    r"""Decides the placement of a loaded node :obj:`task` (:func:`decide`), homogeneous or
    heterogeneous, and puts its :obj:`data` there: every :obj:`edge_index` (and edge feature)
    with the graph, node features and labels with the features; on the host when training on
    CUDA they are pinned where they are (:func:`pin_in_place`: no copy, so the ranks' shared
    mapping stays shared). Said on stderr for mini-batch training (full-batch training has
    everything on the device) unless ``cfg.quiet``. Done once per experiment (the decision is
    kept on the task as :obj:`task.placement`, and reused while the config asks the same; the
    main process says it)."""
    from pyg_ham.train import distributed

    device = torch.device(device)
    eval_mode = getattr(cfg, "eval_mode", "full")
    asked = (getattr(cfg, "graph_placement", "auto"), getattr(cfg, "feature_placement", "auto"), str(device),
             full_batch, eval_mode)
    done = getattr(task, "placement", None)
    if done is not None and getattr(task, "placement_asked", None) == asked:
        return done
    data = task.data
    free = torch.cuda.mem_get_info(device)[0] if device.type == "cuda" else None
    on_disk = getattr(task, "stores", None) is not None
    decision = decide(*graph_and_feature_bytes(data), device, free, asked[0], asked[1], on_disk=on_disk,
                      full_batch=full_batch, whole_graph_eval=eval_mode == "full")
    if not on_disk:
        for store, key, value in list(_tensors(data)):
            if (decision.graph if _is_graph(store, key) else decision.features) == "device":
                store[key] = value.to(device)
            elif device.type == "cuda":
                store[key] = pin_in_place(value.cpu())
    task.placement, task.placement_asked = decision, asked
    # full batch: everything on the device, nothing decided; --quiet: as the runner's lines, not said
    if distributed.is_main() and not full_batch and not getattr(cfg, "quiet", False):
        print(decision.line(), file=sys.stderr, flush=True)
    return decision
