r"""HAM as a :class:`torch.optim.Optimizer` that wraps any base optimizer, and as a hook."""
from __future__ import annotations

import math
from collections import OrderedDict
from typing import Any, Callable, Dict, Iterable, List, Optional, Union

from torch import Tensor
from torch.optim import Optimizer
from torch.utils.hooks import RemovableHandle

from pyg_ham.optim.functional import IMPLEMENTATIONS, hyperbolic_step_
from pyg_ham.optim.sharding import refuse_flat_parameters

__all__ = ["HAM", "attach_ham", "apply_hyperbolic_step", "HAM_DEFAULTS"]

#: The authors' defaults: ``alpha=200``, ``beta=1e-3``, the exponent clamped to ``±5``;
#: ``ham="auto"`` selects ``ndim >= 2``.
#: In param groups the knobs are prefixed (``ham_alpha``...): ``alpha`` is RMSprop's own key.
HAM_DEFAULTS: Dict[str, Any] = {"ham": "auto", "ham_alpha": 200.0, "ham_beta": 1e-3, "ham_max_exponent": 5.0}
_HAM_MODES = (True, False, "auto")


def _validate_ham_options(options: Dict[str, Any], where: str) -> None:
    """Raise a ``ValueError`` naming the argument for invalid HAM knobs."""
    for name in ("ham_alpha", "ham_beta"):
        if name in options:
            value = options[name]
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
                raise ValueError(f"{where}: {name} must be a finite number >= 0, got {value!r}")
    if "ham" in options and options["ham"] not in _HAM_MODES:
        raise ValueError(f"{where}: ham must be one of True, False, 'auto', got {options['ham']!r}")
    bound = options.get("ham_max_exponent")
    if bound is not None and (isinstance(bound, bool) or not isinstance(bound, (int, float)) or not bound > 0):
        raise ValueError(f"{where}: ham_max_exponent must be None or a number > 0, got {bound!r}")


def _knobs(ham: Union[bool, str], alpha: float, beta: float, max_exponent: Optional[float]) -> Dict[str, Any]:
    return {"ham": ham, "ham_alpha": alpha, "ham_beta": beta, "ham_max_exponent": max_exponent}


def apply_hyperbolic_step(
    param_groups: Iterable[Dict[str, Any]],
    defaults: Optional[Dict[str, Any]] = None,
    found_inf: Optional[Tensor] = None,
    implementation: Optional[str] = None,
) -> None:
    r"""Run the hyperbolic half-step on every param group, with each group's own knobs.

    Each group's ``ham`` key chooses the tensors (``"auto"``: those with ``ndim >= 2``;
    ``True``: all; ``False``: none), ``ham_alpha``, ``ham_beta``, ``ham_max_exponent`` and
    ``lr`` set the step, and ``maximize=True`` flips the gradient as the base step does. Parameters without a
    gradient are skipped.

    Args:
        param_groups (iterable of dict): the optimizer's param groups (after its base step).
        defaults (dict, optional): fallback for keys a group lacks (default: :data:`HAM_DEFAULTS`).
        found_inf (Tensor, optional): :class:`~torch.amp.GradScaler`'s inf flag; the step is
            masked where it is positive.
        implementation (str, optional): see :func:`~pyg_ham.optim.hyperbolic_step_`.
    """
    defaults = {**HAM_DEFAULTS, **(defaults or {})}
    for group in param_groups:
        mode = group.get("ham", defaults["ham"])
        if mode is False:
            continue
        params: List[Tensor] = []
        grads: List[Tensor] = []
        for p in group["params"]:
            if p.grad is None or (mode == "auto" and p.ndim < 2):
                continue
            if p.grad.is_sparse:
                raise RuntimeError("HAM does not support sparse gradients; use dense embeddings or set ham=False "
                                   "for that param group")
            params.append(p)
            grads.append(p.grad)
        alpha = group.get("ham_alpha", defaults["ham_alpha"])
        hyperbolic_step_(
            params, grads, group["lr"],
            -alpha if group.get("maximize", False) else alpha,
            group.get("ham_beta", defaults["ham_beta"]),
            max_exponent=group.get("ham_max_exponent", defaults["ham_max_exponent"]),
            found_inf=found_inf,
            implementation=implementation,
        )


class HAM(Optimizer):
    r"""Hyperbolic Aware Minimization (HAM) around any base optimizer, from the
    `"Hyperbolic Aware Minimization: Implicit Bias for Sparsity"
    <https://arxiv.org/abs/2506.02630>`_ paper (ICLR 2026).

    Every :meth:`step` runs the base optimizer's step and then, on the selected weights,

    .. math::
        \mathbf{w} \leftarrow \mathbf{w} \odot \exp\big(-\eta\,(\alpha\,\mathrm{sign}
        (\mathbf{w}) \odot \mathbf{g} + \beta)\big)

    with :math:`\mathbf{w}` the weights after the base step, :math:`\mathbf{g}` the same raw
    (unscaled) gradient and :math:`\eta` the group's current learning rate. With
    :math:`\alpha = \beta = 0` it is the base optimizer exactly.

    The wrapper *shares* the base's ``param_groups`` (the same dicts), ``state`` and
    ``defaults``: LR schedulers, :class:`~torch.amp.GradScaler` (also with ``fused=True``
    bases), ``zero_grad``, ``add_param_group`` and ``state_dict``/``load_state_dict`` act on
    both at once. HAM's knobs live in each param group as ``ham``, ``ham_alpha``,
    ``ham_beta``, ``ham_max_exponent`` (prefixed: ``alpha`` is RMSprop's own key), so they can differ per group and are saved by :meth:`state_dict`.

    Args:
        base (torch.optim.Optimizer): the base optimizer instance (SGD, Adam, AdamW, ...).
        alpha (float): strength :math:`\alpha \geq 0` of the hyperbolic geometry, for groups
            that do not set their own. (default: :obj:`200.0`)
        beta (float): multiplicative decay :math:`\beta \geq 0`. (default: :obj:`1e-3`)
        ham (bool or str): which tensors of a group get the step when the group does not say:
            ``"auto"`` (``ndim >= 2``: weight matrices, not biases or norms), ``True`` (all),
            ``False`` (none). (default: :obj:`"auto"`)
        max_exponent (float, optional): clamp the exponent to ``±max_exponent``, as the
            authors' wrapper does; it only acts when one step would scale a weight by more than
            :math:`e^{5}`, and keeps a too large :math:`\eta\alpha` from overflowing the weights.
            :obj:`None` (or ``inf``) gives the unclamped update. (default: :obj:`5.0`)
        implementation (str, optional): ``"for-loop"``, ``"foreach"``, ``"fused"`` or
            :obj:`None` to choose by size (see :func:`~pyg_ham.optim.hyperbolic_step_`).

    Example:
        >>> base = torch.optim.AdamW(ham_param_groups(model, weight_decay=0.01), lr=1e-3)
        >>> opt = HAM(base, alpha=200.0, beta=1e-3)
        >>> loss.backward(); opt.step(); opt.zero_grad()
    """

    def __init__(
        self,
        base: Optimizer,
        alpha: float = HAM_DEFAULTS["ham_alpha"],
        beta: float = HAM_DEFAULTS["ham_beta"],
        *,
        ham: Union[bool, str] = HAM_DEFAULTS["ham"],
        max_exponent: Optional[float] = HAM_DEFAULTS["ham_max_exponent"],
        implementation: Optional[str] = None,
    ) -> None:
        if not isinstance(base, Optimizer):
            raise TypeError(f"HAM: base must be a torch.optim.Optimizer instance (e.g. torch.optim.AdamW(...)), "
                            f"got {type(base).__name__}")
        if isinstance(base, HAM):
            raise TypeError("HAM: base is already a HAM optimizer")
        if implementation is not None and implementation not in IMPLEMENTATIONS:
            raise ValueError(f"HAM: implementation must be one of {IMPLEMENTATIONS} or None, got {implementation!r}")
        knobs = _knobs(ham, alpha, beta, max_exponent)
        _validate_ham_options(knobs, "HAM")
        refuse_flat_parameters(base.param_groups, "HAM")
        self.base = base
        self.implementation = implementation
        self._init_hooks()
        for key, value in knobs.items():
            base.defaults.setdefault(key, value)
        for group in base.param_groups:
            _validate_ham_options(group, "HAM param group")
            for key, value in knobs.items():
                group.setdefault(key, value)

    def _init_hooks(self) -> None:
        # What Optimizer.__init__ sets up, without creating param groups of our own.
        self._optimizer_step_pre_hooks: Dict[int, Callable] = OrderedDict()
        self._optimizer_step_post_hooks: Dict[int, Callable] = OrderedDict()
        self._optimizer_state_dict_pre_hooks: Dict[int, Callable] = OrderedDict()
        self._optimizer_state_dict_post_hooks: Dict[int, Callable] = OrderedDict()
        self._optimizer_load_state_dict_pre_hooks: Dict[int, Callable] = OrderedDict()
        self._optimizer_load_state_dict_post_hooks: Dict[int, Callable] = OrderedDict()
        self._patch_step_function()
        self._warned_capturable_if_run_uncaptured = True

    # Shared with the base: reading or replacing these acts on the base optimizer.
    @property  # type: ignore[override]
    def param_groups(self) -> List[Dict[str, Any]]:
        return self.base.param_groups

    @param_groups.setter
    def param_groups(self, value: List[Dict[str, Any]]) -> None:
        self.base.param_groups = value

    @property  # type: ignore[override]
    def state(self) -> Dict[Tensor, Any]:
        return self.base.state

    @state.setter
    def state(self, value: Dict[Tensor, Any]) -> None:
        self.base.state = value

    @property  # type: ignore[override]
    def defaults(self) -> Dict[str, Any]:
        return self.base.defaults

    @defaults.setter
    def defaults(self, value: Dict[str, Any]) -> None:
        self.base.defaults = value

    @property
    def _step_supports_amp_scaling(self) -> bool:
        # GradScaler hands amp-aware (fused) bases ``grad_scale``/``found_inf``; we forward them.
        return getattr(self.base, "_step_supports_amp_scaling", False)

    def __getstate__(self) -> Dict[str, Any]:
        return {"base": self.base, "implementation": self.implementation}

    def __setstate__(self, state: Dict[str, Any]) -> None:
        self.base = state["base"]
        self.implementation = state.get("implementation")
        self._init_hooks()

    def __repr__(self) -> str:
        return f"HAM({self.base!r})"

    def step(self, closure: Optional[Callable[[], float]] = None) -> Optional[float]:  # type: ignore[override]
        """Run the base step (evaluating :obj:`closure` if given), then the hyperbolic step.

        Returns the loss the closure returned, as :meth:`torch.optim.Optimizer.step` does.
        """
        # Set by GradScaler.step for amp-aware (fused) bases; the fused kernel unscales the
        # gradients in place, or skips the step when found_inf > 0.
        grad_scale = getattr(self, "grad_scale", None)
        found_inf = getattr(self, "found_inf", None)
        forwarded = grad_scale is not None or found_inf is not None
        if forwarded:
            self.base.grad_scale, self.base.found_inf = grad_scale, found_inf
        try:
            loss = self.base.step(closure) if closure is not None else self.base.step()
        finally:
            if forwarded:
                del self.base.grad_scale, self.base.found_inf
        apply_hyperbolic_step(self.param_groups, self.defaults, found_inf, self.implementation)
        return loss

    def zero_grad(self, set_to_none: bool = True) -> None:
        self.base.zero_grad(set_to_none=set_to_none)

    def add_param_group(self, param_group: Dict[str, Any]) -> None:
        _validate_ham_options(param_group, "HAM.add_param_group")
        self.base.add_param_group(param_group)

    def state_dict(self) -> Dict[str, Any]:
        """The base optimizer's state dict; HAM's per-group knobs are part of its groups."""
        return self.base.state_dict()

    def load_state_dict(self, state_dict: Dict[str, Any]) -> None:
        """Load into the base; the wrapper keeps sharing the (new) param group dicts."""
        self.base.load_state_dict(state_dict)
        for group in self.param_groups:
            for key in HAM_DEFAULTS:
                group.setdefault(key, self.defaults[key])


def attach_ham(
    optimizer: Optimizer,
    alpha: float = HAM_DEFAULTS["ham_alpha"],
    beta: float = HAM_DEFAULTS["ham_beta"],
    *,
    ham: Union[bool, str] = HAM_DEFAULTS["ham"],
    max_exponent: Optional[float] = HAM_DEFAULTS["ham_max_exponent"],
    implementation: Optional[str] = None,
) -> RemovableHandle:
    r"""Add HAM to an existing optimizer in place, without replacing the object.

    For optimizers built by frameworks (Hugging Face ``Trainer``, Lightning, Accelerate):
    registers a step post-hook that runs the hyperbolic step after every ``optimizer.step()``
    (and not at all when :class:`~torch.amp.GradScaler` skips the step). The knobs are stored
    in the optimizer's param groups as with :class:`HAM`.

    Args:
        optimizer (torch.optim.Optimizer): the optimizer to extend.
        alpha, beta, ham, max_exponent, implementation: as in :class:`HAM`.

    Returns:
        :class:`torch.utils.hooks.RemovableHandle`: ``handle.remove()`` detaches HAM again.
    """
    if not isinstance(optimizer, Optimizer):
        raise TypeError(f"attach_ham: optimizer must be a torch.optim.Optimizer, got {type(optimizer).__name__}")
    knobs = _knobs(ham, alpha, beta, max_exponent)
    _validate_ham_options(knobs, "attach_ham")
    refuse_flat_parameters(optimizer.param_groups, "attach_ham")
    if implementation is not None and implementation not in IMPLEMENTATIONS:
        raise ValueError(f"attach_ham: implementation must be one of {IMPLEMENTATIONS} or None, got {implementation!r}")
    for key, value in knobs.items():
        optimizer.defaults.setdefault(key, value)
        for group in optimizer.param_groups:
            group.setdefault(key, value)

    def hook(opt: Optimizer, args: Any, kwargs: Any) -> None:
        apply_hyperbolic_step(opt.param_groups, opt.defaults, getattr(opt, "found_inf", None), implementation)

    return optimizer.register_step_post_hook(hook)
