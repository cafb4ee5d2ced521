"""Checks of user-facing sampling arguments; bad values raise :class:`ConfigError`."""
from __future__ import annotations

from typing import Any, List, Optional, Sequence, Union

import torch

from pyg_ham.errors import ConfigError

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
