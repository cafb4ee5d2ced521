r"""``build_optimizer``: the one constructor that trainers, adapters and the CLI use."""
from __future__ import annotations

import inspect
import math
from typing import Any, Dict, Iterable, List, Optional, Type, Union

import torch
from torch import Tensor
from torch.optim import Optimizer

from pyg_ham.errors import ConfigError
from pyg_ham.optim.fused_base import fused_base_by_default
from pyg_ham.optim.groups import Selector, ham_param_groups
from pyg_ham.optim.ham import HAM, HAM_DEFAULTS, _validate_ham_options
from pyg_ham.optim.sam import build_sam

__all__ = ["build_optimizer", "optimizer_class", "canonical_optimizer_name", "OPTIMIZER_NAMES", "SOURCES"]

_ALIASES = {"sgd": "SGD", "adam": "Adam", "adamw": "AdamW"}


def _torch_optimizers() -> Dict[str, Type[Optimizer]]:
    return {name.lower(): cls for name, cls in vars(torch.optim).items()
            if inspect.isclass(cls) and issubclass(cls, Optimizer) and cls is not Optimizer}


#: The optimizers the CLI offers: those that train a model with HAM (tested in
#: ``tests/optim/test_contract.py``). :func:`build_optimizer` also accepts any other
#: ``torch.optim`` class by name, e.g. ``"sparseadam"`` with ``alpha=beta=0`` or ``ham=False``
#: groups; ``"lbfgs"`` only with ``ham=False``; ``"muon"`` needs 2-D parameters only.
OPTIMIZER_NAMES = ("adadelta", "adafactor", "adagrad", "adam", "adamax", "adamw", "asgd", "nadam", "radam",
                   "rmsprop", "rprop", "sgd")


#: The prefixes that name an optimizer's source (``"pytorch_optimizer:adafactor"``).
SOURCES = ("torch", "pytorch_optimizer")


def _pytorch_optimizers() -> Optional[Dict[str, Type[Optimizer]]]:
    """``pytorch-optimizer``'s registry (lower-case names), ``None`` when it is not installed."""
    try:
        import pytorch_optimizer
    except ImportError:
        return None
    return {name: pytorch_optimizer.load_optimizer(name) for name in pytorch_optimizer.get_supported_optimizers()}


def _po_key(name: str) -> str:
    return name.lower().replace("_", "").replace("-", "")  # schedulefree_adamw -> schedulefreeadamw


def optimizer_class(name: str) -> Type[Optimizer]:
    r"""The optimizer class called :obj:`name` (case-insensitive): a ``torch.optim`` class
    (``"adamw"``) or, with the optional ``pytorch-optimizer`` package (``pip install
    'pyg-ham[optim]'``), one of its optimizers (``"lion"``, ``"prodigy"``, ``"schedulefree_adamw"``;
    underscores and dashes are ignored there). Where both define a name, ``torch.optim`` wins;
    the prefixes ``"torch:"`` and ``"pytorch_optimizer:"`` choose the source
    (``"pytorch_optimizer:adafactor"``)."""
    text = str(name).strip()
    source, sep, rest = text.partition(":")
    if sep and source.lower() not in SOURCES:
        raise ConfigError(f"unknown optimizer source {source!r} in {text!r}; write NAME, torch:NAME or "
                          f"pytorch_optimizer:NAME")
    sources = (source.lower(),) if sep else SOURCES
    key = (rest if sep else text).lower()
    classes = _torch_optimizers()
    if "torch" in sources and key in classes:
        return classes[key]
    others = _pytorch_optimizers() if "pytorch_optimizer" in sources else None
    if others is not None and _po_key(key) in others:
        return others[_po_key(key)]
    where = []
    if "torch" in sources:
        where.append(f"torch.optim ({', '.join(sorted(classes))})")
    if "pytorch_optimizer" in sources:
        where.append("pytorch_optimizer (not installed: pip install 'pyg-ham[optim]')" if others is None else
                     f"pytorch_optimizer ({len(others)} names: pytorch_optimizer.get_supported_optimizers())")
    raise ConfigError(f"unknown optimizer {text!r}; looked in {' and '.join(where)}")


def canonical_optimizer_name(name: str) -> str:
    """The lower-case spelling of :obj:`name` (``"AdamW"`` -> ``"adamw"``; a source prefix is kept)."""
    source, sep, rest = str(name).strip().partition(":")
    return f"{source.lower()}:{rest.lower()}" if sep else source.lower()


def _check_number(name: str, value: Any, allow_negative: bool = False) -> None:
    if isinstance(value, Tensor):
        return  # a tensor lr (for torch.compile) is the caller's responsibility
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) \
            or (value < 0 and not allow_negative):
        raise ConfigError(f"{name} must be a finite number >= 0, got {value!r}")


def build_optimizer(
    model_or_params: Union[torch.nn.Module, Iterable[Any]],
    name: str = "adamw",
    lr: Union[float, Tensor] = 1e-3,
    weight_decay: float = 0.0,
    ham: bool = True,
    alpha: float = HAM_DEFAULTS["ham_alpha"],
    beta: float = HAM_DEFAULTS["ham_beta"],
    *,
    select: Selector = None,
    exclude: Selector = None,
    decay: Selector = None,
    max_exponent: Optional[float] = HAM_DEFAULTS["ham_max_exponent"],
    implementation: Optional[str] = None,
    sam: bool = False,
    rho: float = 0.05,
    adaptive: bool = False,
    fused: Optional[bool] = None,
    **kwargs: Any,
) -> Optimizer:
    r"""Build a base optimizer, inside SAM when :obj:`sam` is set, wrapped in
    :class:`~pyg_ham.optim.HAM` when :obj:`ham` is set (``HAM(SAM(base))``: HAM's step follows
    SAM's base step and uses the same gradient, the one at the perturbed point).

    Given a model, the tensors with ``ndim >= 2`` (weight matrices and kernels) get the
    hyperbolic step and weight decay; biases and normalisation parameters get neither
    (override with :obj:`select`, :obj:`exclude`, :obj:`decay`). Given an iterable of
    parameters the same ``ndim`` rule applies; given param-group dicts they are used as they
    are (a group's own ``weight_decay``, ``ham``, ``ham_alpha``, ``ham_beta`` win). A group
    option ``alpha``/``beta`` is the base optimizer's own (RMSprop's ``alpha``) and refused
    for a base that has no such option.

    Args:
        model_or_params (Module or iterable): the model, its parameters, ``(name, param)``
            pairs or param-group dicts.
        name (str): ``"sgd"``, ``"adam"``, ``"adamw"``, another name in
            :data:`OPTIMIZER_NAMES`, any ``torch.optim`` class name (``"lbfgs"`` only with
            ``ham=False``) or a ``pytorch-optimizer`` name (see :func:`optimizer_class`).
            (default: :obj:`"adamw"`)
        lr (float or Tensor): learning rate. (default: :obj:`1e-3`)
        weight_decay (float): weight decay of the decayed tensors. (default: :obj:`0.0`)
        ham (bool): wrap the base in HAM. (default: :obj:`True`)
        alpha (float): HAM's :math:`\alpha`. (default: :obj:`200.0`)
        beta (float): HAM's :math:`\beta`. (default: :obj:`1e-3`)
        select, exclude, decay (Selector): see :func:`~pyg_ham.optim.ham_param_groups`.
        max_exponent (float, optional): see :class:`~pyg_ham.optim.HAM`.
        implementation (str, optional): see :func:`~pyg_ham.optim.hyperbolic_step_`.
        sam (bool): sharpness-aware minimization around the base (``pytorch_optimizer.SAM``;
            its ``step`` needs a closure, see :mod:`pyg_ham.optim.sam`). (default: :obj:`False`)
        rho (float): SAM's radius :math:`\rho > 0`. (default: :obj:`0.05`)
        adaptive (bool): ASAM's scale-invariant perturbation. (default: :obj:`False`)
        fused (bool, optional): build the base with ``fused=True``; :obj:`None` does so where
            the base and the device allow (AdamW, Adam, SGD on CPU or CUDA, see
            :func:`~pyg_ham.optim.fused_base.fused_base_by_default`), and then HAM's step runs
            inside the base's pass (:mod:`pyg_ham.optim.fused_base`). (default: :obj:`None`)
        **kwargs: passed to the base optimizer (e.g. ``momentum=0.9``, ``nesterov=True``,
            ``betas=(0.9, 0.999)``, ``foreach=True``, ``fused=True``).
    """
    cls = optimizer_class(name)
    _check_number("lr", lr)
    _check_number("weight_decay", weight_decay)
    if ham:
        _check_number("alpha", alpha)
        _check_number("beta", beta)
    if sam:
        _check_number("rho", rho)
        if not rho > 0:
            raise ConfigError(f"rho must be > 0 (SAM's radius; drop sam for no perturbation), got {rho!r}")
        if not isinstance(adaptive, bool):
            raise ConfigError(f"adaptive must be true or false, got {adaptive!r}")
    if isinstance(model_or_params, torch.nn.Module):
        groups: List[Dict[str, Any]] = ham_param_groups(model_or_params, weight_decay,
                                                        select=select, exclude=exclude, decay=decay)
    else:
        items = list(model_or_params)
        if not items:
            raise ConfigError("build_optimizer: got an empty parameter list")
        if isinstance(items[0], dict):
            groups = [{"weight_decay": weight_decay, **g} for g in items]
        elif isinstance(items[0], tuple):
            groups = ham_param_groups(items, weight_decay, select=select, exclude=exclude, decay=decay)
        else:
            groups = ham_param_groups([(str(i), p) for i, p in enumerate(items)], weight_decay,
                                      select=select, exclude=exclude, decay=decay)
            for g in groups:
                g.pop("param_names")
    if fused is None:
        chosen = {"foreach", "fused"} & kwargs.keys() or kwargs.get("differentiable")
        fused = not chosen and fused_base_by_default(cls, [p for g in groups for p in g["params"]])
    elif not isinstance(fused, bool):
        raise ConfigError(f"fused must be true, false or null (where the base and device allow), got {fused!r}")
    if fused:
        kwargs["fused"] = True
    try:
        base = (build_sam(groups, cls, rho=rho, adaptive=adaptive, lr=lr, **kwargs) if sam
                else cls(groups, lr=lr, **kwargs))  # type: ignore[call-arg]
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"cannot build optimizer {name!r}: {exc}") from None
    try:
        if not ham:
            for i, group in enumerate(base.param_groups):  # a group's alpha/beta must be the base's own
                _validate_ham_options({k: group[k] for k in ("alpha", "beta") if k in group},
                                      f"build_optimizer: param group {i}", cls)
            return base
        return HAM(base, alpha=alpha, beta=beta, max_exponent=max_exponent, implementation=implementation)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
