"""Checks of user-facing sampling arguments; bad values raise :class:`ConfigError`."""
from __future__ import annotations

from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

import torch
from torch import Tensor
from torch_geometric.data import Data, HeteroData
from torch_geometric.typing import EdgeType, EdgeTypeStr

from pyg_ham.errors import ConfigError
from pyg_ham.sampling.stores import check_remote, is_remote, remote_meta

BACKENDS = ("auto", "pyg_ham", "pyg")


def check_num_neighbors(num_neighbors: Any) -> List[int]:
    r"""Returns :obj:`num_neighbors` as a list of ints, each :obj:`-1`
    (all neighbours) or :obj:`>= 0`."""
    if isinstance(num_neighbors, dict):
        raise ConfigError("num_neighbors: a per-edge-type dict needs a HeteroData graph; for a "
                          "Data graph pass a list of ints, one per hop, each -1 or >= 0")
    if not isinstance(num_neighbors, Sequence) or isinstance(num_neighbors, (str, bytes)):
        raise ConfigError(f"num_neighbors must be a list of ints, one per hop, each -1 or >= 0 "
                          f"(got {num_neighbors!r})")
    out = []
    for k in num_neighbors:
        if isinstance(k, bool) or not isinstance(k, int) or k < -1:
            raise ConfigError(f"num_neighbors entries must be ints, -1 (all neighbours) or >= 0 "
                              f"(got {list(num_neighbors)!r})")
        out.append(int(k))
    return out


def check_device(device: Optional[Union[str, torch.device]]) -> Optional[torch.device]:
    r"""Parses :obj:`device`; :obj:`'cuda'` is pinned to the current GPU."""
    if device is None:
        return None
    try:
        device = torch.device(device)
    except (RuntimeError, TypeError) as e:
        raise ConfigError(f"device must be a torch device such as 'cpu' or 'cuda:0' "
                          f"(got {device!r})") from e
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise ConfigError(f"device={str(device)!r} but CUDA is not available; use 'cpu'")
        if device.index is None:
            device = torch.device("cuda", torch.cuda.current_device())
    return device


def check_backend(force: str) -> str:
    if force not in BACKENDS:
        raise ConfigError(f"force must be one of {', '.join(BACKENDS)} (got {force!r})")
    return force


def check_batch_size(batch_size: Any) -> int:
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ConfigError(f"batch_size must be a positive int (got {batch_size!r})")
    return batch_size


def check_hetero_num_neighbors(
    num_neighbors: Any,
    edge_types: Sequence[EdgeType],
) -> Dict[EdgeType, List[int]]:
    r"""Returns the fanout of every edge type, one int per hop, as
    :class:`~torch_geometric.loader.NeighborLoader` reads it: a list applies
    to every edge type; a dict maps edge types (tuples or
    :obj:`"src__rel__dst"` strings) to lists, must name every edge type of
    the graph and nothing else, and all lists must have the same length.

    Args:
        num_neighbors (List[int] or Dict[EdgeType, List[int]]): The fanout.
        edge_types (List[Tuple[str, str, str]]): The graph's edge types.
    """
    edge_types = [tuple(et) for et in edge_types]
    if not isinstance(num_neighbors, dict):
        values = check_num_neighbors(num_neighbors)
        return {et: list(values) for et in edge_types}
    out: Dict[EdgeType, List[int]] = {}
    known = {"__".join(et): et for et in edge_types}
    for key, value in num_neighbors.items():
        try:
            et = known[str(EdgeTypeStr(key))]
        except (ValueError, IndexError, TypeError, KeyError):
            raise ConfigError(f"num_neighbors names the edge type {key!r}, which is not in the graph; "
                              f"its edge types are {list(known.values())}") from None
        try:
            out[et] = check_num_neighbors(value)
        except ConfigError as e:
            raise ConfigError(f"num_neighbors[{et!r}]: {e}") from None
    hops = {len(v) for v in out.values()}
    if len(hops) > 1:
        raise ConfigError(f"the number of hops must be the same across all edge types in "
                          f"num_neighbors (got lists of lengths {sorted(hops)})")
    missing = [et for et in edge_types if et not in out]
    if missing:
        raise ConfigError(f"num_neighbors has no fanout for the edge type(s) {missing}; give every "
                          f"edge type a list (0s to skip one) or pass one list for all")
    return {et: out[et] for et in edge_types}


def check_graph(data: Any) -> None:
    r"""Raises a :class:`ConfigError` unless :obj:`data` is a
    :class:`~torch_geometric.data.Data` / :class:`~torch_geometric.data.HeteroData`
    graph or a :obj:`(FeatureStore, GraphStore)` pair."""
    check_remote(data)
    if not isinstance(data, (Data, HeteroData)) and not is_remote(data):
        raise ConfigError(f"data must be a torch_geometric.data.Data or HeteroData graph or a "
                          f"(FeatureStore, GraphStore) pair; {type(data).__name__} is not supported")


def check_input_nodes(data: Any, input_nodes: Any) -> None:
    r"""Raises a :class:`ConfigError` unless :obj:`input_nodes` fits
    :obj:`data`: :obj:`None`, node indices or a boolean mask; for a
    :class:`~torch_geometric.data.HeteroData` graph a node type or a
    :obj:`(node_type, indices or mask or None)` pair. Indices are range-checked
    here, once, on any device (one host sync when the loader is built), so that
    no batch needs a check: a bad seed on a GPU would be a device-side assert."""
    hetero, node_types, counts = _node_counts(data)
    nodes, of, num = input_nodes, "", counts[None] if not hetero else 0
    if nodes is None and is_remote(data):
        raise ConfigError("input_nodes is required with a (FeatureStore, GraphStore) pair (as in PyG): "
                          "pass node indices" + (", or a (node_type, indices) pair" if hetero else ""))
    if hetero:
        if isinstance(input_nodes, str):
            input_nodes = (input_nodes, None)
        if not (isinstance(input_nodes, (tuple, list)) and len(input_nodes) == 2 and isinstance(input_nodes[0], str)):
            raise ConfigError(f"input_nodes of a HeteroData graph must be a node type or a "
                              f"(node_type, index or mask) pair such as ('paper', train_idx) "
                              f"(got {type(input_nodes).__name__})")
        node_type, nodes = input_nodes
        if node_type not in node_types:
            raise ConfigError(f"input_nodes names the node type {node_type!r}, which is not in the graph; "
                              f"its node types are {node_types}")
        of, num = f" of {node_type!r}", counts[node_type]
    if nodes is None:
        return
    if not isinstance(nodes, (Tensor, list, tuple, range)):
        raise ConfigError(f"input_nodes must be node indices, a boolean mask or None (got {type(nodes).__name__})")
    nodes = torch.as_tensor(nodes)
    if nodes.dtype == torch.bool:
        if nodes.dim() != 1 or nodes.numel() != num:
            raise ConfigError(f"input_nodes is a boolean mask of shape {tuple(nodes.shape)} but there are {num} "
                              f"nodes{of}; pass a mask of length {num} or node indices")
        return
    if nodes.is_floating_point() or nodes.is_complex():
        raise ConfigError(f"input_nodes must hold integer node indices or be a boolean mask, got {nodes.dtype}")
    check_seed_range(nodes, num, of)


def _node_counts(data: Any) -> Tuple[bool, List[Any], Dict[Any, int]]:
    # (is heterogeneous, node types, nodes per type; None for a homogeneous graph)
    if is_remote(data):
        meta = remote_meta(data)
        return meta.is_hetero, list(meta.node_types), dict(meta.num_nodes)
    if isinstance(data, HeteroData):
        return True, list(data.node_types), {t: int(data[t].num_nodes or 0) for t in data.node_types}
    return False, [None], {None: int(data.num_nodes)}


def check_seed_range(nodes: Tensor, num: int, of: str = "") -> None:
    r"""Raises a :class:`ConfigError` unless every seed lies in :obj:`[0, num)` (one host sync)."""
    if nodes.numel():
        lo, hi = (int(v) for v in torch.stack([nodes.min(), nodes.max()]).tolist())
        if lo < 0 or hi >= num:
            raise ConfigError(f"seed nodes{of} must lie in [0, {num}) (got range [{lo}, {hi}]); "
                              f"pass node indices of this graph")
