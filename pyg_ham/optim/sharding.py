r"""Sharded parameters: the hyperbolic step on FSDP2 (:class:`DTensor`) shards, FSDP1 refused.

The hyperbolic step is elementwise, so on a sharded parameter it is exactly the step applied
to the local shard of the parameter and of its (equally sharded) gradient: no all-gather and
no host synchronisation are needed. FSDP1 (:class:`~torch.distributed.fsdp.FullyShardedDataParallel`)
instead flattens every module's parameters into one 1-D ``FlatParameter``, which defeats HAM's
``ndim >= 2`` selection of weight matrices; it is refused. With ``use_orig_params=True`` FSDP1
hands the optimizer the original parameters, but each is a 1-D view of this rank's shard (or
empty), so the selection would pick nothing there either; that is refused too
(:func:`fsdp1_views`).
"""
from __future__ import annotations

import sys
from typing import Any, Dict, Iterable, List, Sequence, Tuple

from torch import Tensor

from pyg_ham.errors import ConfigError

__all__ = ["local_shards", "refuse_flat_parameters", "fsdp1_views", "FSDP1_VIEWS"]


def _dtensor_type() -> Any:
    # No DTensor can exist unless its module has been imported: avoid importing it ourselves.
    module = sys.modules.get("torch.distributed.tensor")
    return getattr(module, "DTensor", None)


def local_shards(params: Sequence[Tensor], grads: Sequence[Tensor]) -> Tuple[List[Tensor], List[Tensor]]:
    r"""Replace every :class:`~torch.distributed.tensor.DTensor` parameter and gradient by its
    local shard (a view: updating it in place updates the parameter).

    Plain tensors are returned as they are, so no list mixes a DTensor with plain tensors (or
    two device meshes) in one ``torch._foreach_*`` call.

    Args:
        params (Sequence[Tensor]): parameters, plain or DTensor.
        grads (Sequence[Tensor]): their gradients; a DTensor parameter needs a DTensor gradient
            on the same mesh with the same placements (as FSDP2's reduce-scattered gradients).

    Returns:
        (List[Tensor], List[Tensor]): the local parameters and gradients.
    """
    dtensor = _dtensor_type()
    if dtensor is None:
        return list(params), list(grads)
    ws: List[Tensor] = []
    gs: List[Tensor] = []
    for w, g in zip(params, grads):  # DTensor's attributes are not in Tensor's stubs
        w_sharded, g_sharded = isinstance(w, dtensor), isinstance(g, dtensor)
        if w_sharded or g_sharded:
            if not (w_sharded and g_sharded and w.device_mesh == g.device_mesh  # type: ignore[attr-defined]
                    and w.placements == g.placements):  # type: ignore[attr-defined]
                where = (_placement(w) if w_sharded else "plain tensor", _placement(g) if g_sharded else "plain tensor")
                raise ConfigError(f"hyperbolic_step_: a parameter ({where[0]}) and its gradient ({where[1]}) must "
                                  f"be sharded alike; redistribute the gradient to the parameter's placements")
            w, g = w.to_local(), g.to_local()  # type: ignore[attr-defined]
        ws.append(w)
        gs.append(g)
    return ws, gs


def refuse_flat_parameters(param_groups: Iterable[Dict[str, Any]], where: str) -> None:
    r"""Raise a :class:`~pyg_ham.errors.ConfigError` if a param group holds an FSDP1
    ``FlatParameter``.

    Args:
        param_groups (iterable of dict): the optimizer's param groups.
        where (str): the caller's name, for the message.
    """
    for group in param_groups:
        for p in group["params"]:
            if getattr(p, "_is_flat_param", False):  # what isinstance(p, FlatParameter) checks
                raise ConfigError(f"{where}: FSDP1 (FullyShardedDataParallel) flattens parameters into 1-D "
                                  f"FlatParameters, which hides the weight matrices HAM selects; shard the model "
                                  f"with FSDP2 (torch.distributed.fsdp.fully_shard) instead")


#: Why FSDP1 with ``use_orig_params=True`` is refused, and what to do instead.
FSDP1_VIEWS = ("holds FSDP1 (FullyShardedDataParallel) parameters with use_orig_params=True: the optimizer sees "
               "them as flattened 1-D views of each rank's shard, so HAM's ndim >= 2 selection would step no weight "
               "matrix; shard the model with FSDP2 (torch.distributed.fsdp.fully_shard) instead")


def fsdp1_views(params: Iterable[Tensor]) -> bool:
    r"""Whether :obj:`params` hold a parameter that FSDP1 flattened (``use_orig_params=True``: a
    1-D view of this rank's shard of the original parameter). FSDP1 marks every such parameter
    (``_fsdp_flattened``); FSDP2 does not."""
    return any(getattr(p, "_fsdp_flattened", False) and not getattr(p, "_is_flat_param", False) for p in params)


def _placement(t: Any) -> str:
    return f"{tuple(t.placements)} on {t.device_mesh}"
