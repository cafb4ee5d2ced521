r"""Sharpness-aware minimization (SAM, ASAM) around any base optimizer, from ``pytorch-optimizer``.

SAM (`Foret et al., ICLR 2021 <https://arxiv.org/abs/2010.01412>`_) and its adaptive form ASAM
(`Kwon et al., ICML 2021 <https://arxiv.org/abs/2102.11600>`_) take two gradients per step:
at the weights :math:`\mathbf{w}` (the caller's first forward/backward pass) and at the
perturbed point :math:`\mathbf{w} + \boldsymbol{\epsilon}`, with

.. math::
    \boldsymbol{\epsilon} = \rho\,\frac{T^2 \mathbf{g}}{\lVert T \mathbf{g} \rVert},
    \qquad T = \mathrm{diag}(|\mathbf{w}|) \text{ (ASAM) or } I \text{ (SAM)},

then restore :math:`\mathbf{w}` and run the base step with the second gradient. The
maintained implementation is ``pytorch_optimizer.SAM``; this module builds it from a base
optimizer *class* and tells a training loop that its ``step`` needs a closure that
recomputes the loss and gradients (:func:`takes_closure`).
"""
from __future__ import annotations

from typing import Any, Dict, List, Type

from torch.optim import Optimizer

from pyg_ham.errors import ConfigError

__all__ = ["build_sam", "is_sam", "takes_closure", "innermost"]

_MISSING = "SAM needs the pytorch-optimizer package: pip install 'pyg-ham[optim]'"


def _sam_class() -> Any:
    try:
        from pytorch_optimizer import SAM
    except ImportError:
        raise ConfigError(_MISSING) from None
    return SAM


def build_sam(groups: List[Dict[str, Any]], base_cls: Type[Optimizer], rho: float = 0.05,
              adaptive: bool = False, **kwargs: Any) -> Optimizer:
    r"""``pytorch_optimizer.SAM`` over a base optimizer class built on the same param groups.

    Args:
        groups (list of dict): param groups (as :func:`~pyg_ham.optim.ham_param_groups` builds).
        base_cls (type): the base optimizer class (``torch.optim.AdamW``, ``pytorch_optimizer.Lion``...).
        rho (float): the neighbourhood radius :math:`\rho > 0`. (default: :obj:`0.05`)
        adaptive (bool): ASAM's scale-invariant perturbation. (default: :obj:`False`)
        **kwargs: the base optimizer's options (``lr``, ``momentum``...).
    """
    return _sam_class()(groups, base_cls, rho=rho, adaptive=adaptive, **kwargs)


def is_sam(optimizer: Any) -> bool:
    """Whether :obj:`optimizer` is ``pytorch_optimizer.SAM`` (not looking through wrappers)."""
    try:
        from pytorch_optimizer import SAM
    except ImportError:
        return False
    return isinstance(optimizer, SAM)


#: Optimizer classes that wrap a base optimizer as ``.base``: :class:`~pyg_ham.optim.HAM` registers
#: itself when its module is imported (no HAM exists before), so this module need not import it.
_WRAPPERS: List[Type[Any]] = []


def register_wrapper(cls: Type[Any]) -> Type[Any]:
    r"""Let :func:`innermost` and :func:`takes_closure` look through :obj:`cls`'s ``.base``."""
    if cls not in _WRAPPERS:
        _WRAPPERS.append(cls)
    return cls


def _wrapper(optimizer: Any) -> bool:
    return any(isinstance(optimizer, cls) for cls in _WRAPPERS)


def innermost(optimizer: Any) -> Any:
    r"""The optimizer that holds the update rule: through a :class:`~pyg_ham.optim.HAM` wrapper
    (``.base``) and SAM (``.base_optimizer``)."""
    while True:
        if _wrapper(optimizer):
            optimizer = optimizer.base
        elif is_sam(optimizer):
            optimizer = optimizer.base_optimizer
        else:
            return optimizer


def takes_closure(optimizer: Any) -> bool:
    r"""Whether ``optimizer.step`` needs a closure that recomputes the loss and gradients
    (SAM, also inside a :class:`~pyg_ham.optim.HAM` wrapper); other optimizers step on the
    gradients already computed."""
    return is_sam(optimizer.base if _wrapper(optimizer) else optimizer)
