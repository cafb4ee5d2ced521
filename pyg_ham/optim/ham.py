r"""HAM as a :class:`torch.optim.Optimizer` that wraps any base optimizer, and as a hook."""
from __future__ import annotations

import copyreg
import inspect
import math
import types
import weakref
from collections import OrderedDict
from typing import Any, Callable, Dict, Iterable, List, Optional, Tuple, Type, Union

import torch
from torch import Tensor
from torch.optim import Optimizer
from torch.utils.hooks import RemovableHandle

from pyg_ham.errors import ConfigError
from pyg_ham.optim.functional import IMPLEMENTATIONS, hyperbolic_step_
from pyg_ham.optim.fused_base import ONE_PASS_BASES, one_pass_refusal, one_pass_step
from pyg_ham.optim.groups import is_weight_matrix
from pyg_ham.optim.rules import step_rule
from pyg_ham.optim.sam import register_wrapper
from pyg_ham.optim.sharding import FSDP1_VIEWS, fsdp1_views, refuse_flat_parameters
from pyg_ham.optim.stats import ExponentStats

__all__ = ["HAM", "attach_ham", "apply_hyperbolic_step", "track_exponents", "ham_pass", "HAM_DEFAULTS"]

#: The authors' defaults: ``alpha=200``, ``beta=1e-3``, the exponent clamped to ``±5``;
#: ``ham="auto"`` selects ``ndim >= 2``.
#: In param groups the knobs exist only under ``ham_*`` names (``alpha`` is RMSprop's own key).
HAM_DEFAULTS: Dict[str, Any] = {"ham": "auto", "ham_alpha": 200.0, "ham_beta": 1e-3, "ham_max_exponent": 5.0}
_HAM_MODES = (True, False, "auto")
_RECORD = "_pyg_ham_hook"  # attribute of an optimizer that carries HAM's (single) hook


class _Unset:
    """The default of an argument that was not given (so it does not replace earlier values)."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "<default>"

    def __reduce__(self) -> str:
        return "_UNSET"


_UNSET: Any = _Unset()


_CONSTRUCTOR_OPTIONS: Dict[type, Optional[frozenset]] = {}


def _constructor_options(cls: Type[Optimizer]) -> Optional[frozenset]:
    """The keyword parameters of ``cls.__init__`` (``None``: it takes ``**kwargs``), cached."""
    if cls not in _CONSTRUCTOR_OPTIONS:
        try:
            params = list(inspect.signature(cls.__init__).parameters.values())
        except (TypeError, ValueError):
            params = [inspect.Parameter("kwargs", inspect.Parameter.VAR_KEYWORD)]
        _CONSTRUCTOR_OPTIONS[cls] = (None if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params)
                                     else frozenset(p.name for p in params))
    return _CONSTRUCTOR_OPTIONS[cls]


def _validate_ham_options(options: Dict[str, Any], where: str,
                          base_cls: Optional[Type[Optimizer]] = None) -> None:
    """Raise a one-line ``ValueError`` naming the option for invalid HAM knobs.

    The single checker of HAM's options: used for constructor arguments, for every param
    group (at construction, in :meth:`HAM.add_param_group`, before every step) and for the
    param groups of a state dict before it is loaded. With :obj:`base_cls` it also refuses
    group options ``alpha``/``beta`` that the base optimizer does not have (HAM's are
    ``ham_alpha``/``ham_beta``) and ``differentiable=True``.
    """
    for name in ("ham_alpha", "ham_beta"):
        if name in options:
            value = options[name]
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
                raise ValueError(f"{where}: {name} must be a finite number >= 0, got {value!r}")
    if "ham" in options and not any(options["ham"] is mode or (isinstance(mode, str) and options["ham"] == mode)
                                    for mode in _HAM_MODES):
        raise ValueError(f"{where}: ham must be one of True, False, 'auto', got {options['ham']!r}")
    bound = options.get("ham_max_exponent")
    if bound is not None and (isinstance(bound, bool) or not isinstance(bound, (int, float)) or not bound > 0):
        raise ValueError(f"{where}: ham_max_exponent must be None or a number > 0, got {bound!r}")
    unknown = sorted(k for k in options if isinstance(k, str) and k.startswith("ham_") and k not in HAM_DEFAULTS)
    if unknown:
        raise ValueError(f"{where}: unknown HAM option {unknown[0]!r}; HAM's options are "
                         f"{', '.join(HAM_DEFAULTS)}")
    if base_cls is None:
        return
    if options.get("differentiable", False):
        raise ValueError(f"{where}: HAM cannot wrap a differentiable=True optimizer (its in-place step under "
                         f"no_grad would cut the graph); build {base_cls.__name__} with differentiable=False")
    accepted = _constructor_options(base_cls)
    for name, knob in (("alpha", "ham_alpha"), ("beta", "ham_beta")):
        if name in options and accepted is not None and name not in accepted:
            raise ValueError(f"{where}: {base_cls.__name__} has no option {name!r}; HAM's knob is {knob!r} "
                             f"(e.g. ham_param_groups(model, {knob}=...))")


def _given(ham: Any, alpha: Any, beta: Any, max_exponent: Any) -> Dict[str, Any]:
    """The knobs that were passed explicitly (not left at their :data:`HAM_DEFAULTS`)."""
    knobs = {"ham": ham, "ham_alpha": alpha, "ham_beta": beta, "ham_max_exponent": max_exponent}
    return {k: v for k, v in knobs.items() if v is not _UNSET}


def _check_base(optimizer: Any, where: str) -> None:
    if not isinstance(optimizer, Optimizer):
        raise TypeError(f"{where}: expected a torch.optim.Optimizer instance (e.g. torch.optim.AdamW(...)), "
                        f"got {type(optimizer).__name__}")
    if isinstance(optimizer, HAM):
        raise TypeError(f"{where}: the optimizer is already a HAM optimizer")
    refuse_flat_parameters(optimizer.param_groups, where)
    if isinstance(optimizer, torch.optim.LBFGS):
        raise ValueError(f"{where}: LBFGS is not supported (it re-evaluates the closure, so HAM would use a "
                         f"gradient its step did not use); use another base optimizer")


def _check_implementation(implementation: Any, where: str) -> None:
    if implementation is not _UNSET and implementation is not None and implementation not in IMPLEMENTATIONS:
        raise ValueError(f"{where}: implementation must be one of {IMPLEMENTATIONS} or None, got {implementation!r}")


def _configure(optimizer: Optimizer, given: Dict[str, Any], where: str) -> None:
    """Validate everything, then write HAM's knobs into ``defaults`` and the param groups.

    Given knobs replace the defaults and the group values an earlier :class:`HAM` or
    :func:`attach_ham` wrote (those equal to the earlier defaults); a value the user put in
    a group differs from them and is kept. Knobs not given keep earlier values, else
    :data:`HAM_DEFAULTS`.
    """
    _validate_ham_options(given, where)
    for i, group in enumerate(optimizer.param_groups):
        _validate_ham_options(group, f"{where}: param group {i}", type(optimizer))
    previous = {k: optimizer.defaults[k] for k in HAM_DEFAULTS if k in optimizer.defaults}
    knobs = {**HAM_DEFAULTS, **previous, **given}
    updates = [{key: value for key, value in knobs.items()
                if key not in group or (key in given and key in previous and _same(group[key], previous[key]))}
               for group in optimizer.param_groups]
    _refuse_no_op([{**group, **update} for group, update in zip(optimizer.param_groups, updates)], given, where)
    for group, update in zip(optimizer.param_groups, updates):
        group.update(update)
    optimizer.defaults.update(knobs)


def _refuse_no_op(groups: List[Dict[str, Any]], given: Dict[str, Any], where: str) -> None:
    r"""HAM is added but would step no tensor: one :class:`~pyg_ham.errors.ConfigError` line saying
    why and how to fix it, instead of a silent base optimizer. Checked once, when HAM is added, on
    the groups with the knobs HAM is about to write (nothing is written when it raises). HAM that
    is off on purpose (``ham=False`` given, or ``ham_alpha = ham_beta = 0`` in every group) passes."""
    def zero(g: Dict[str, Any]) -> bool:
        return g["ham_alpha"] == 0 and g["ham_beta"] == 0

    if given.get("ham") is False or all(zero(g) for g in groups):
        return
    on = [(i, g) for i, g in enumerate(groups) if g["ham"] is not False and not zero(g)]
    for i, group in on:
        if fsdp1_views(group["params"]):
            raise ConfigError(f"{where}: param group {i} {FSDP1_VIEWS}")
    if any(g["ham"] is True or any(is_weight_matrix("", p) for p in g["params"]) for _, g in on):
        return
    why = [f"{sum(len(g['params']) for _, g in on)} parameter(s) with ndim < 2 in ham='auto' groups "
           f"(it steps tensors with ndim >= 2: weight matrices)"] if on else []
    off = sum(len(g["params"]) for g in groups if g["ham"] is False)
    if off:
        why.append(f"{off} parameter(s) in groups with ham=False")
    raise ConfigError(f"{where}: HAM is on but selects no tensor ({'; '.join(why)}); give the optimizer the weight "
                      f"matrices, select them (ham=True in their param group), or leave HAM off")


def _same(a: Any, b: Any) -> bool:
    return a is b or (type(a) is type(b) and a == b)


def _selects(group: Dict[str, Any], p: Tensor) -> bool:
    """Whether HAM steps :obj:`p` of :obj:`group` (the group's ``ham`` mode and knobs)."""
    mode = group.get("ham", HAM_DEFAULTS["ham"])
    if mode is False or (group.get("ham_alpha", HAM_DEFAULTS["ham_alpha"]) == 0
                         and group.get("ham_beta", HAM_DEFAULTS["ham_beta"]) == 0):
        return False
    return mode is True or p.ndim >= 2


def _selected(param_groups: Iterable[Dict[str, Any]], defaults: Dict[str, Any]
              ) -> List[Tuple[Dict[str, Any], List[Tensor], List[Tensor]]]:
    """Per group that gets a step: the tensors (complex ones as real views) and gradients.

    Raises before anything changes when a selected tensor has a sparse gradient.
    """
    out = []
    for i, group in enumerate(param_groups):
        mode = group.get("ham", defaults["ham"])
        alpha = group.get("ham_alpha", defaults["ham_alpha"])
        beta = group.get("ham_beta", defaults["ham_beta"])
        if mode is False or (alpha == 0 and beta == 0):  # exp(0) == 1: the base optimizer exactly
            continue
        params: List[Tensor] = []
        grads: List[Tensor] = []
        for p in group["params"]:
            if p.grad is None or (mode == "auto" and p.ndim < 2):
                continue
            if p.grad.is_sparse:
                raise ValueError(f"HAM: param group {i} has a sparse gradient; use dense gradients, set ham=False "
                                 f"for that param group, or ham_alpha=ham_beta=0 there (then it is the base step)")
            if p.is_complex():  # torch's convention: a complex tensor is its real view
                params.append(torch.view_as_real(p))
                grads.append(torch.view_as_real(p.grad))
            else:
                params.append(p)
                grads.append(p.grad)
        if params:
            out.append((group, params, grads))
    return out


def apply_hyperbolic_step(
    param_groups: Iterable[Dict[str, Any]],
    defaults: Optional[Dict[str, Any]] = None,
    found_inf: Optional[Tensor] = None,
    implementation: Optional[str] = None,
    stats: Optional[ExponentStats] = None,
    lr_of: Optional[Callable[[Dict[str, Any]], Any]] = None,
) -> None:
    r"""Run the hyperbolic half-step on every param group, with each group's own knobs.

    Each group's ``ham`` key chooses the tensors (``"auto"``: those with ``ndim >= 2``;
    ``True``: all; ``False``: none), ``ham_alpha``, ``ham_beta``, ``ham_max_exponent`` and
    ``lr`` set the step, and ``maximize=True`` flips the gradient as the base step does. Parameters without a
    gradient are skipped; complex tensors are stepped as their :func:`torch.view_as_real`
    view. A group with ``ham_alpha = ham_beta = 0`` is left alone (also with sparse
    gradients); a sparse gradient elsewhere raises before any group changes.

    Args:
        param_groups (iterable of dict): the optimizer's param groups (after its base step).
        defaults (dict, optional): fallback for keys a group lacks (default: :data:`HAM_DEFAULTS`).
        found_inf (Tensor, optional): :class:`~torch.amp.GradScaler`'s inf flag; the step is
            masked where it is positive.
        implementation (str, optional): see :func:`~pyg_ham.optim.hyperbolic_step_`.
        stats (ExponentStats, optional): also accumulate the exponent's diagnostics
            (:mod:`pyg_ham.optim.stats`) inside the step's pass. (default: :obj:`None`)
        lr_of (callable, optional): a group's :math:`\eta` (default: its ``lr``; see
            :mod:`pyg_ham.optim.rules`).
    """
    defaults = {**HAM_DEFAULTS, **(defaults or {})}
    for group, params, grads in _selected(list(param_groups), defaults):
        alpha = group.get("ham_alpha", defaults["ham_alpha"])
        alpha = -alpha if group.get("maximize", False) else alpha
        beta = group.get("ham_beta", defaults["ham_beta"])
        max_exponent = group.get("ham_max_exponent", defaults["ham_max_exponent"])
        lr = group["lr"] if lr_of is None else lr_of(group)
        hyperbolic_step_(params, grads, lr, alpha, beta, max_exponent=max_exponent, found_inf=found_inf,
                         implementation=implementation, stats=stats)


def _check_step(optimizer: Optimizer) -> None:
    """Everything that would make HAM's step fail, checked before the base step runs."""
    for i, group in enumerate(optimizer.param_groups):
        _validate_ham_options(group, f"HAM: param group {i}", type(optimizer))
    _selected(optimizer.param_groups, {**HAM_DEFAULTS, **optimizer.defaults})


class _HAMHook:
    """HAM's single registration on an optimizer.

    A step pre-hook refuses what HAM cannot do (before the base step), a step post-hook runs
    the hyperbolic step; a load-state-dict pre-hook validates the loaded knobs and a post-hook
    fills knobs a state dict saved without HAM lacks. The step runs on every ``step()`` once
    :func:`attach_ham` attached it, and only inside :meth:`HAM.step` for a wrapped base.
    """

    def __init__(self, optimizer: Optimizer) -> None:
        self.implementation: Optional[str] = None
        self.attached = False  # by attach_ham: every step()
        self.wrapped = False   # by a HAM wrapper: only inside HAM.step
        self.stepping = False  # HAM.step is running
        self.stats: Optional[ExponentStats] = None  # see track_exponents
        self.done = False  # this step's HAM ran inside the base's pass (pyg_ham.optim.fused_base)
        self.asked = False  # this step asked for the one pass (see one_pass)
        self.refusal: Optional[str] = "no step yet"  # why the last step took two passes (None: one pass)
        self._numel_key: Any = None  # (see selected_numel)
        self._numel = 0
        self.handles = [
            optimizer.register_step_pre_hook(self.before_step),
            optimizer.register_step_post_hook(self.after_step),
            optimizer.register_load_state_dict_pre_hook(self.before_load),
            optimizer.register_load_state_dict_post_hook(self.after_load),
        ]
        self.step_id = self.handles[1].id
        # eta, gradient and stepped sequence of this base (pyg_ham.optim.rules)
        self.rule = step_rule(optimizer, lambda: self.attached or self.stepping)
        optimizer.__dict__[_RECORD] = self

    @staticmethod
    def of(optimizer: Optimizer) -> "_HAMHook":
        record = optimizer.__dict__.get(_RECORD)
        return record if record is not None else _HAMHook(optimizer)

    def detach(self, optimizer: Optimizer) -> None:
        for handle in self.handles:
            handle.remove()
        self.rule.remove()
        optimizer.__dict__.pop(_RECORD, None)
        optimizer.__dict__.pop("__reduce_ex__", None)

    def before_step(self, optimizer: Optimizer, args: Any, kwargs: Any) -> None:
        if self.attached and not self.stepping:  # HAM.step has checked already
            _check_step(optimizer)

    def one_pass(self, optimizer: Optimizer) -> Optional[Callable[..., Any]]:
        """The step that runs the base update and HAM's in one pass, or :obj:`None` (the reason
        is in :attr:`refusal`; then the base steps and :meth:`after_step` runs HAM's step)."""
        self.asked = True
        self.refusal = one_pass_refusal(optimizer, self.implementation, _hooks_before(optimizer, self),
                                        self.selected_numel(optimizer))
        return None if self.refusal is not None else self._one_pass_step

    def selected_numel(self, optimizer: Optimizer) -> int:
        """How many elements HAM selects, recounted only when the groups or their knobs change."""
        key = tuple((id(g["params"]), len(g["params"]), g.get("ham"), g.get("ham_alpha"), g.get("ham_beta"))
                    for g in optimizer.param_groups)
        if key != self._numel_key:
            self._numel_key = key
            self._numel = sum(p.numel() for g in optimizer.param_groups for p in g["params"] if _selects(g, p))
        return self._numel

    def _one_pass_step(self, optimizer: Optimizer, closure: Optional[Callable[[], float]] = None) -> Any:
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        stats = self.stats if self.stats is not None and self.stats.sampling() else None
        one_pass_step(optimizer, _selects, stats)
        self.done = True
        return loss

    def after_step(self, optimizer: Optimizer, args: Any, kwargs: Any) -> None:
        asked, self.asked = self.asked, False
        if self.done:  # HAM's step ran inside the base's pass
            self.done = False
            return
        if self.attached or self.stepping:
            if not asked:  # attached, but the step did not go through _attached_step
                self.refusal = (one_pass_refusal(optimizer, self.implementation, _hooks_before(optimizer, self),
                                        self.selected_numel(optimizer))
                                or "its step() was replaced after attach_ham")
            self.rule.restore_grads()
            found_inf = getattr(optimizer, "found_inf", None)
            stats = self.stats if self.stats is not None and self.stats.sampling() else None
            if self.rule.steps_state:
                defaults = {**HAM_DEFAULTS, **optimizer.defaults}
                self.rule.schedule_free_step(_selected(optimizer.param_groups, defaults), defaults, found_inf,
                                             self.implementation, stats)
                return
            apply_hyperbolic_step(optimizer.param_groups, optimizer.defaults, found_inf,
                                  self.implementation, stats, lr_of=self.rule.lr)

    def before_load(self, optimizer: Optimizer, state_dict: Dict[str, Any]) -> None:
        for i, group in enumerate(state_dict.get("param_groups", ())):
            _validate_ham_options(group, f"load_state_dict: param group {i}", type(optimizer))

    def after_load(self, optimizer: Optimizer) -> None:
        for group in optimizer.param_groups:
            for key in HAM_DEFAULTS:
                group.setdefault(key, optimizer.defaults.get(key, HAM_DEFAULTS[key]))


def _hooks_before(optimizer: Optimizer, record: _HAMHook) -> int:
    """How many step post-hooks were registered on :obj:`optimizer` before HAM's."""
    hooks = list(optimizer._optimizer_step_post_hooks)
    return hooks.index(record.step_id) if record.step_id in hooks else 0


@Optimizer.profile_hook_step
def _attached_step(optimizer: Optimizer, closure: Optional[Callable[[], float]] = None) -> Any:
    """The ``step`` of an :func:`attach_ham` optimizer whose class can take the one pass
    (:mod:`pyg_ham.optim.fused_base`): torch's hooks as always, and the one pass in place of
    the class's step where it applies (else the class's step, and HAM's post-hook)."""
    optimizer.__dict__["_opt_called"] = True  # what an LR scheduler built before attach_ham checks
    record = optimizer.__dict__.get(_RECORD)
    one_pass = record.one_pass(optimizer) if record is not None and record.attached else None
    if one_pass is not None:
        return one_pass(optimizer, closure)
    raw = type(optimizer).step.__wrapped__  # type: ignore[attr-defined]
    return raw(optimizer) if closure is None else raw(optimizer, closure)


# It sets ``_opt_called`` itself, as the tracker torch's LR schedulers wrap around ``step`` does.
_attached_step._wrapped_by_lr_sched = True  # type: ignore[attr-defined]


class _Reducer:
    """An attached optimizer's ``__reduce_ex__``: copies and pickles rebuild it with HAM
    attached (torch's own ``__getstate__`` keeps no hooks)."""

    def __init__(self, optimizer: Optimizer) -> None:
        self.optimizer = weakref.ref(optimizer)

    def __call__(self, protocol: int) -> Any:
        optimizer = self.optimizer()
        rv: Any = type(optimizer).__reduce_ex__(optimizer, protocol)  # type: ignore[call-arg, arg-type]
        newobj = copyreg.__newobj__  # type: ignore[attr-defined]
        if isinstance(rv, tuple) and len(rv) >= 3 and rv[0] is newobj and rv[1] == (type(optimizer),):
            record = optimizer.__dict__[_RECORD]
            return (_rebuild_attached, (type(optimizer), record.implementation)) + tuple(rv[2:])
        return rv


def _rebuild_attached(cls: Type[Optimizer], implementation: Optional[str]) -> Optimizer:
    optimizer = cls.__new__(cls)

    def setstate(state: Any) -> None:
        del optimizer.__dict__["__setstate__"]
        cls.__setstate__(optimizer, state)
        attach_ham(optimizer, implementation=implementation)

    optimizer.__dict__["__setstate__"] = setstate
    return optimizer


class _AttachHandle(RemovableHandle):
    """:func:`attach_ham`'s handle: :meth:`remove` detaches HAM (its knobs stay in the groups)."""

    def __init__(self, optimizer: Optimizer, record: _HAMHook) -> None:  # noqa: D107 (no super().__init__)
        self.id = record.step_id
        self.hooks_dict_ref = record.handles[1].hooks_dict_ref
        self.extra_dict_ref = ()
        self._optimizer = weakref.ref(optimizer)
        self._record = record

    def remove(self) -> None:
        optimizer = self._optimizer()
        if optimizer is None or optimizer.__dict__.get(_RECORD) is not self._record or not self._record.attached:
            return
        self._record.attached = False
        optimizer.__dict__.pop("__reduce_ex__", None)
        step = optimizer.__dict__.get("step")
        if getattr(step, "__func__", None) is _attached_step:
            del optimizer.__dict__["step"]
        if not self._record.wrapped:
            self._record.detach(optimizer)


class HAM(Optimizer):
    r"""Hyperbolic Aware Minimization (HAM) around any base optimizer, from the
    `"Hyperbolic Aware Minimization: Implicit Bias for Sparsity"
    <https://arxiv.org/abs/2506.02630>`_ paper (ICLR 2026).

    Every :meth:`step` runs the base optimizer's step and then, on the selected weights,

    .. math::
        \mathbf{w} \leftarrow \mathbf{w} \odot \exp\big(-\eta\,(\alpha\,\mathrm{sign}
        (\mathbf{w}) \odot \mathbf{g} + \beta)\big)

    with :math:`\mathbf{w}` the weights after the base step, :math:`\mathbf{g}` the same raw
    (unscaled) gradient and :math:`\eta` the group's current learning rate (the base's own step
    size for Prodigy/D-Adaptation and schedule-free bases, see :mod:`pyg_ham.optim.rules`). With
    :math:`\alpha = \beta = 0` it is the base optimizer exactly (also with sparse gradients).
    Complex tensors get the step of their :func:`torch.view_as_real` view.

    The wrapper *shares* the base's ``param_groups`` (the same dicts), ``state`` and
    ``defaults``: LR schedulers, :class:`~torch.amp.GradScaler` (also with ``fused=True``
    bases), ``zero_grad``, ``add_param_group`` and ``state_dict``/``load_state_dict`` act on
    both at once. Hooks registered on the wrapper (step, state-dict and load-state-dict
    hooks) are its own and receive it as their ``optimizer`` argument, as torch's contract
    says; hooks registered on the base receive the base; global step hooks fire once per
    :meth:`step`, with the wrapper. The wrapper's step pre-hooks run before the base's, its
    post-hooks after the hyperbolic step. The hyperbolic step runs as a step post-hook of
    the base (only inside :meth:`step`): after post-hooks registered on the base before the
    wrapper was built, before those registered later. HAM's knobs live in each param group
    as ``ham``, ``ham_alpha``, ``ham_beta``, ``ham_max_exponent`` (HAM reads no other names:
    ``alpha`` is RMSprop's own key), so they can differ per group and are saved by
    :meth:`state_dict`; loaded values are validated like the arguments.

    Arguments that are given replace the values an earlier :class:`HAM` or
    :func:`attach_ham` wrote into the base's groups; values a user put in a param group
    win over the arguments, as with torch's own options.

    Args:
        base (torch.optim.Optimizer): the base optimizer instance (SGD, Adam, AdamW, ...);
            not :class:`~torch.optim.LBFGS` and not ``differentiable=True``.
        alpha (float): strength :math:`\alpha \geq 0` of the hyperbolic geometry, for groups
            that do not set their own ``ham_alpha``. (default: :obj:`200.0`)
        beta (float): multiplicative decay :math:`\beta \geq 0` (``ham_beta``).
            (default: :obj:`1e-3`)
        ham (bool or str): which tensors of a group get the step when the group does not say:
            ``"auto"`` (``ndim >= 2``: weight matrices, not biases or norms), ``True`` (all),
            ``False`` (none). (default: :obj:`"auto"`)
        max_exponent (float, optional): clamp the exponent to ``±max_exponent``, as the
            authors' wrapper does; it only acts when one step would scale a weight by more than
            :math:`e^{5}`, and keeps a too large :math:`\eta\alpha` from overflowing the weights.
            :obj:`None` (or ``inf``) gives the unclamped update. (default: :obj:`5.0`)
        implementation (str, optional): ``"for-loop"``, ``"foreach"``, ``"fused"`` (the
            separate step on that path, see :func:`~pyg_ham.optim.hyperbolic_step_`) or
            :obj:`None`: the one pass with the base's where the base is a ``fused=True``
            AdamW, Adam or SGD (:mod:`pyg_ham.optim.fused_base`), else the separate step on the
            path chosen by size. (default: :obj:`None`)

    Example:
        >>> base = torch.optim.AdamW(ham_param_groups(model, weight_decay=0.01), lr=1e-3)
        >>> opt = HAM(base, alpha=200.0, beta=1e-3)
        >>> loss.backward(); opt.step(); opt.zero_grad()
    """

    def __init__(
        self,
        base: Optimizer,
        alpha: float = _UNSET,
        beta: float = _UNSET,
        *,
        ham: Union[bool, str] = _UNSET,
        max_exponent: Optional[float] = _UNSET,
        implementation: Optional[str] = _UNSET,
    ) -> None:
        _check_base(base, "HAM")
        _check_implementation(implementation, "HAM")
        _configure(base, _given(ham, alpha, beta, max_exponent), "HAM")
        self.base = base
        self._hook = _HAMHook.of(base)
        self._hook.wrapped = True
        if implementation is not _UNSET:
            self._hook.implementation = implementation
        _own_hooks(self)

    @property
    def implementation(self) -> Optional[str]:
        return self._hook.implementation

    @property
    def two_pass_reason(self) -> Optional[str]:
        """:obj:`None` when the base update and HAM's step run in one pass (a ``fused=True``
        AdamW, Adam or SGD; :mod:`pyg_ham.optim.fused_base`), else why they run as two."""
        return one_pass_refusal(self.base, self.implementation, _hooks_before(self.base, self._hook),
                                self._hook.selected_numel(self.base))

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
        self.base.state = value  # type: ignore[assignment]

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
        self._hook = _HAMHook.of(self.base)
        self._hook.wrapped = True
        self._hook.implementation = state.get("implementation")
        _own_hooks(self)

    def __repr__(self) -> str:
        return f"HAM({self.base!r})"

    @Optimizer.profile_hook_step  # torch's global step hooks and this HAM's own, with this HAM as optimizer
    def step(self, closure: Optional[Callable[[], float]] = None) -> Optional[float]:  # type: ignore[override]
        """Run the base step (evaluating :obj:`closure` if given), then the hyperbolic step.

        Everything HAM cannot do (sparse gradients where it acts, invalid knobs) raises
        before the base step. Returns the loss the closure returned, as
        :meth:`torch.optim.Optimizer.step` does.
        """
        _check_step(self.base)
        # Set by GradScaler.step for amp-aware (fused) bases; the fused kernel unscales the
        # gradients in place, or skips the step when found_inf > 0.
        grad_scale = getattr(self, "grad_scale", None)
        found_inf = getattr(self, "found_inf", None)
        forwarded = grad_scale is not None or found_inf is not None
        if forwarded:
            # GradScaler's protocol for optimizers that unscale themselves (fused Adam/AdamW)
            self.base.grad_scale, self.base.found_inf = grad_scale, found_inf  # type: ignore[attr-defined]
        self._hook.stepping = True
        try:
            return _base_step(self.base, closure, self._hook.one_pass(self.base))
        finally:
            self._hook.stepping = False
            if forwarded:
                del self.base.grad_scale, self.base.found_inf  # type: ignore[attr-defined]

    def zero_grad(self, set_to_none: bool = True) -> None:
        self.base.zero_grad(set_to_none=set_to_none)

    def train(self) -> None:
        """The base's ``train()`` (schedule-free optimizers; through SAM); a no-op for others."""
        self._mode("train")

    def eval(self) -> None:
        """The base's ``eval()`` (schedule-free optimizers; through SAM); a no-op for others."""
        self._mode("eval")

    def _mode(self, name: str) -> None:
        from pyg_ham.optim.sam import innermost

        switch = getattr(innermost(self.base), name, None)
        if callable(switch):
            switch()

    def add_param_group(self, param_group: Dict[str, Any]) -> None:
        _validate_ham_options(param_group, "HAM.add_param_group", type(self.base))
        self.base.add_param_group(param_group)

    def state_dict(self) -> Dict[str, Any]:
        """The base optimizer's state dict (the hooks of the base and then of this HAM run);
        HAM's per-group knobs are part of its groups."""
        for pre_hook in self._optimizer_state_dict_pre_hooks.values():
            pre_hook(self)
        state_dict = self.base.state_dict()
        for post_hook in self._optimizer_state_dict_post_hooks.values():
            result = post_hook(self, state_dict)
            if result is not None:
                state_dict = result
        return state_dict

    def load_state_dict(self, state_dict: Dict[str, Any]) -> None:
        """Load into the base (this HAM's pre-hooks, then the base's hooks, which validate HAM's
        knobs, then this HAM's post-hooks run); the wrapper keeps sharing the (new) param group dicts."""
        for pre_hook in self._optimizer_load_state_dict_pre_hooks.values():
            result = pre_hook(self, state_dict)
            if result is not None:
                state_dict = result
        self.base.load_state_dict(state_dict)
        for post_hook in self._optimizer_load_state_dict_post_hooks.values():
            post_hook(self)


_HOOK_DICTS = ("_optimizer_step_pre_hooks", "_optimizer_step_post_hooks", "_optimizer_state_dict_pre_hooks",
               "_optimizer_state_dict_post_hooks", "_optimizer_load_state_dict_pre_hooks",
               "_optimizer_load_state_dict_post_hooks")


def _own_hooks(optimizer: HAM) -> None:
    """Give a :class:`HAM` the (empty) hook registries of a torch optimizer, so that
    :class:`~torch.optim.Optimizer`'s ``register_*_hook`` methods register on the wrapper itself."""
    for name in _HOOK_DICTS:
        optimizer.__dict__[name] = OrderedDict()


def _base_step(base: Optimizer, closure: Optional[Callable[[], float]],
               one_pass: Optional[Callable[..., Any]] = None) -> Optional[float]:
    """The base's step with the base's own step hooks (HAM's hyperbolic step is one of them) but
    not torch's global ones, which :meth:`HAM.step` has run already: they fire once per step.

    Runs the unpatched ``step`` that torch's ``profile_hook_step`` wraps (``__wrapped__``), or
    :obj:`one_pass` in its place, and the base's own hook registries, as that wrapper does
    (torch 2.x's private names; a test pins them)."""
    raw = one_pass or getattr(type(base).step, "__wrapped__", None)
    if raw is None:  # a base whose step torch did not wrap: it runs no hooks of its own
        return base.step(closure) if closure is not None else base.step()
    args: Tuple[Any, ...] = (base,) if closure is None else (base, closure)
    kwargs: Dict[str, Any] = {}
    for pre_hook in list(base._optimizer_step_pre_hooks.values()):
        result = pre_hook(base, args, kwargs)
        if result is not None:
            args, kwargs = result
    out = raw(*args, **kwargs)
    base._optimizer_step_code()
    base.__dict__["_opt_called"] = True  # what an LR scheduler built on the base checks (its step wrapper sets it)
    for post_hook in list(base._optimizer_step_post_hooks.values()):
        post_hook(base, args, kwargs)
    return out


def attach_ham(
    optimizer: Optimizer,
    alpha: float = _UNSET,
    beta: float = _UNSET,
    *,
    ham: Union[bool, str] = _UNSET,
    max_exponent: Optional[float] = _UNSET,
    implementation: Optional[str] = _UNSET,
) -> RemovableHandle:
    r"""Add HAM to an existing optimizer in place, without replacing the object.

    For optimizers built by frameworks (Hugging Face ``Trainer``, Lightning, Accelerate):
    registers a step post-hook that runs the hyperbolic step after every ``optimizer.step()``
    (and not at all when :class:`~torch.amp.GradScaler` skips the step), and a pre-hook
    that refuses, before the base step, what HAM cannot do. The knobs are stored in the
    optimizer's param groups as with :class:`HAM`; loaded state dicts are validated.

    Attaching is idempotent: an optimizer carries at most one HAM hook (also with a
    :class:`HAM` wrapper around it), and a second call only replaces the settings it is
    given. The hyperbolic step runs after the step post-hooks registered before the first
    :func:`attach_ham` (an EMA or mask hook registered earlier sees the weights before the
    hyperbolic step: register those after HAM) and before global post-hooks.
    :func:`copy.deepcopy` and pickling keep HAM attached.

    Args:
        optimizer (torch.optim.Optimizer): the optimizer to extend (not
            :class:`~torch.optim.LBFGS`, not ``differentiable=True``).
        alpha, beta, ham, max_exponent, implementation: as in :class:`HAM`; given ones
            replace what an earlier :func:`attach_ham` or :class:`HAM` wrote.

    Returns:
        :class:`torch.utils.hooks.RemovableHandle`: ``handle.remove()`` detaches HAM again
        (the ``ham_*`` knobs stay in the groups).
    """
    _check_base(optimizer, "attach_ham")
    _check_implementation(implementation, "attach_ham")
    _configure(optimizer, _given(ham, alpha, beta, max_exponent), "attach_ham")
    record = _HAMHook.of(optimizer)
    record.attached = True
    if implementation is not _UNSET:
        record.implementation = implementation
    optimizer.__dict__["__reduce_ex__"] = _Reducer(optimizer)
    if type(optimizer) in ONE_PASS_BASES and (  # not over another override, except an LR scheduler's tracker
            "step" not in optimizer.__dict__ or getattr(optimizer.step, "_wrapped_by_lr_sched", False)):
        optimizer.__dict__["step"] = types.MethodType(_attached_step, optimizer)
    return _AttachHandle(optimizer, record)


def ham_pass(optimizer: Optimizer) -> Optional[str]:
    """How the last step ran HAM's step: ``"one"`` (inside the base's pass,
    :mod:`pyg_ham.optim.fused_base`), ``"separate (why)"``, or :obj:`None` without HAM."""
    base = optimizer.base if isinstance(optimizer, HAM) else optimizer
    record = base.__dict__.get(_RECORD)
    if record is None or not (record.wrapped or record.attached):
        return None
    return "one" if record.refusal is None else f"separate ({record.refusal})"


def track_exponents(optimizer: Optimizer, every: int = 1) -> Optional[ExponentStats]:
    r"""Switch on the exponent diagnostics (:mod:`pyg_ham.optim.stats`) of an optimizer that
    carries HAM (a :class:`HAM` or an :func:`attach_ham` optimizer) and return the accumulator
    (the same one on a second call, with :obj:`every` updated); :obj:`None` for an optimizer
    without HAM.

    Args:
        optimizer (Optimizer): the optimizer.
        every (int): observe every :obj:`every`-th step (the first after each
            :meth:`~pyg_ham.optim.ExponentStats.read` always). (default: :obj:`1`)
    """
    base = optimizer.base if isinstance(optimizer, HAM) else optimizer
    record = base.__dict__.get(_RECORD)
    if record is None:
        return None
    if record.stats is None:
        record.stats = ExponentStats(every)
    record.stats.every = ExponentStats(every).every  # validated
    return record.stats


register_wrapper(HAM)  # innermost / takes_closure look through HAM without importing this module
