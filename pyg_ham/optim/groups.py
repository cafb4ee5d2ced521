r"""Which tensors get the hyperbolic step (and weight decay): param groups from a model.

By default, as in the HAM paper, weight matrices and kernels (tensors with ``ndim >= 2``:
linear and convolution weights, embeddings) get the hyperbolic step and weight decay;
biases, normalisation scales and other vectors get neither. Both rules can be overridden
by :mod:`fnmatch` name patterns or by a predicate ``f(name, param) -> bool``.
"""
from __future__ import annotations

from fnmatch import fnmatch
from typing import Any, Callable, Dict, Iterable, List, Sequence, Tuple, Union

import torch
from torch import Tensor

__all__ = ["Selector", "is_weight_matrix", "as_predicate", "ham_param_groups"]

#: A selection rule: ``None`` (the default rule), a name pattern, a sequence of patterns,
#: or a predicate over ``(name, parameter)``.
Selector = Union[None, str, Sequence[str], Callable[[str, Tensor], bool]]


def is_weight_matrix(name: str, param: Tensor) -> bool:
    """The default rule: ``True`` for tensors with ``ndim >= 2``."""
    return param.ndim >= 2


def ham_selects(mode: Any, param: Tensor) -> bool:
    """Whether a param group's ``ham`` key selects :obj:`param`: every tensor with ``True``, none
    with ``False``, the weight matrices (:func:`is_weight_matrix`) with ``"auto"``."""
    return mode is True or (mode == "auto" and is_weight_matrix("", param))


def as_predicate(selector: Selector, default: Callable[[str, Tensor], bool] = is_weight_matrix
                 ) -> Callable[[str, Tensor], bool]:
    """Turn a :data:`Selector` into a predicate ``f(name, param) -> bool``.

    Args:
        selector (Selector): ``None`` for :obj:`default`, one or more :mod:`fnmatch` patterns
            matched against the parameter's qualified name (e.g. ``"*.lin*.weight"``), or a
            predicate.
        default (callable): the rule used when :obj:`selector` is ``None``.
    """
    if selector is None:
        return default
    if callable(selector):
        return selector
    patterns = (selector,) if isinstance(selector, str) else tuple(selector)
    if not all(isinstance(p, str) for p in patterns):
        raise TypeError(f"a selector must be None, a pattern, a sequence of patterns or a callable, got {selector!r}")
    return lambda name, _: any(fnmatch(name, p) for p in patterns)


def ham_param_groups(
    model_or_named_params: Union[torch.nn.Module, Iterable[Tuple[str, Tensor]]],
    weight_decay: float = 0.0,
    *,
    select: Selector = None,
    exclude: Selector = None,
    decay: Selector = None,
    **group_options: Any,
) -> List[Dict[str, Any]]:
    r"""Build optimizer param groups that say which tensors HAM acts on.

    Parameters are split by two flags, ``ham`` (gets the hyperbolic step) and ``decay`` (gets
    :obj:`weight_decay`), into at most four groups, each carrying its ``param_names``.
    Frozen parameters (``requires_grad=False``) are left out.

    Args:
        model_or_named_params (Module or iterable of (name, Tensor)): the model.
        weight_decay (float): weight decay for the decayed group. (default: :obj:`0.0`)
        select (Selector): which tensors get the hyperbolic step.
            (default: :obj:`None`, tensors with ``ndim >= 2``)
        exclude (Selector): removed from :obj:`select`, e.g. ``"*embed*"``.
            (default: :obj:`None`, nothing)
        decay (Selector): which tensors get weight decay.
            (default: :obj:`None`, tensors with ``ndim >= 2``)
        **group_options: further keys for every group, e.g. ``lr``, HAM's ``ham_alpha`` and
            ``ham_beta``, or the base optimizer's own options (``momentum``; ``alpha`` is
            RMSprop's smoothing constant, not HAM's :math:`\alpha`, and is refused by
            :class:`~pyg_ham.optim.HAM` for a base without such an option).
    """
    named = (model_or_named_params.named_parameters() if isinstance(model_or_named_params, torch.nn.Module)
             else model_or_named_params)
    use_ham = as_predicate(select)
    excluded = as_predicate(exclude, default=lambda name, param: False)
    use_decay = as_predicate(decay)
    buckets: Dict[Tuple[bool, bool], Dict[str, Any]] = {}
    for name, param in named:
        if not param.requires_grad:
            continue
        key = (bool(use_ham(name, param)) and not excluded(name, param), bool(use_decay(name, param)))
        group = buckets.setdefault(key, {"params": [], "param_names": [], "ham": key[0],
                                         "weight_decay": weight_decay if key[1] else 0.0, **group_options})
        group["params"].append(param)
        group["param_names"].append(name)
    if not buckets:
        raise ValueError("ham_param_groups: the model has no trainable parameters")
    return [buckets[k] for k in sorted(buckets, reverse=True)]
