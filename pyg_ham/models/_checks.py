"""Argument checks shared by the model builders.

They are :mod:`pyg_ham.validation`'s checks with the builders' conventions (choices are
case-insensitive).
"""
from typing import Any, Dict, Optional, Sequence, Tuple

import torch

from pyg_ham import validation

#: Normalisation layers accepted by the builders (``None`` or ``"none"``: no norm).
NORMS: Tuple[str, ...] = ("batch_norm", "layer_norm", "none")


def check_choice(arg: str, value: Any, allowed: Sequence[Any]) -> Any:
    """Returns ``value`` (lower-cased if a string) if it is one of ``allowed``."""
    return validation.check_choice(arg, value, allowed, lower=True)


def check_int(arg: str, value: Any, minimum: int = 1) -> int:
    """Returns ``value`` if it is an integer (not a bool) of at least ``minimum``."""
    return int(validation.check_int(arg, value, minimum))  # type: ignore[arg-type]


def check_dropout(value: Any) -> float:
    """Returns ``value`` as a float if it is a probability in ``[0, 1)``."""
    return float(validation.check_number("dropout", value, 0, 1, high_open=True))


def resolve_norm(norm: Optional[str]) -> Tuple[Optional[str], Optional[Dict[str, Any]]]:
    """Maps the ``norm`` option to PyG's ``(norm, norm_kwargs)``.

    ``"layer_norm"`` normalises each node's features (PyG's ``LayerNorm`` in
    ``mode="node"``, i.e. :class:`torch.nn.LayerNorm` semantics), not whole graphs.
    """
    key = check_choice("norm", "none" if norm is None else norm, NORMS)
    if key == "none":
        return None, None
    if key == "layer_norm":
        return key, {"mode": "node"}
    return key, None


def count_parameters(model: torch.nn.Module) -> int:
    r"""Returns the number of trainable parameters of :obj:`model`.

    Shared parameters are counted once; parameters with ``requires_grad=False``
    (e.g. frozen layers) are not counted.

    Args:
        model (torch.nn.Module): The model.
    """
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
