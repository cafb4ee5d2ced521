r"""HAM's step size :math:`\eta`, its gradient and the sequence it steps, per base optimizer.

HAM's step :math:`\mathbf{w} \leftarrow \mathbf{w} \odot \exp(-\eta(\alpha\,\mathrm{sign}(\mathbf{w})
\odot \mathbf{g} + \beta))` follows the base step with the base's own step size. For most bases
that is the param group's ``lr``; a few bases scale or place their step differently:

* **``torch.optim``, Lion, Adan, SOAP and the other ``pytorch-optimizer`` bases:**
  :math:`\eta` = the group's ``lr`` (bias corrections are not part of :math:`\eta`, as for
  Adam), on the parameters.
* **Prodigy and D-Adaptation** (groups carry a distance estimate ``d``; they are run with
  ``lr=1``): :math:`\eta = d \cdot \mathrm{lr}` with the :math:`d` the base step used (read
  before the step, which updates it), on the parameters. Their optional bias corrections (and
  D-Adapt SGD's division by the first gradient norm) are not part of :math:`\eta`.
* **Schedule-free AdamW and SGD** (``ScheduleFreeAdamW``, ``ScheduleFreeSGD``): the parameters
  hold the interpolation :math:`y = (1-\beta_1) z + \beta_1 x`, the state the base sequence
  :math:`z`; the averaged weights :math:`x` (what ``eval()`` puts in the parameters) are
  implied. HAM steps :math:`z`, the sequence the base's gradient step moves, with
  :math:`\eta` = the step's scheduled learning rate ``lr · min(1, step / warmup_steps)``, and
  moves :math:`y` by :math:`(1-\beta_1)\Delta z` so that :math:`x` stays what the base step made
  it; HAM's effect reaches :math:`x` through the base's own averaging from the next step on.

The gradient :math:`\mathbf{g}` is the raw gradient the base step was given: a
``pytorch-optimizer`` base may overwrite ``p.grad`` in its step (schedule-free AdamW divides it
by its preconditioner in place), so for those bases the gradients are copied before the step
and put back after it. Under SAM the rule reads the inner base (its step follows the second
pass, so :math:`\mathbf{g}` is the gradient at the perturbed point).
"""
from __future__ import annotations

from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import torch
from torch import Tensor
from torch.optim import Optimizer
from torch.utils.hooks import RemovableHandle

from pyg_ham.optim.functional import Scalar, hyperbolic_step_
from pyg_ham.optim.stats import ExponentStats

__all__ = ["StepRule", "step_rule"]

_DISTANCE = ("Prodigy", "DAdaptAdaGrad", "DAdaptAdam", "DAdaptAdan", "DAdaptLion", "DAdaptSGD")
_SCHEDULE_FREE = {"ScheduleFreeAdamW": lambda g: g["betas"][0], "ScheduleFreeSGD": lambda g: g["momentum"]}


def _pytorch_optimizer_class(optimizer: Any) -> Optional[str]:
    """The class name when :obj:`optimizer` comes from ``pytorch-optimizer`` (else ``None``)."""
    module = type(optimizer).__module__
    return type(optimizer).__name__ if module.split(".")[0] == "pytorch_optimizer" else None


class StepRule:
    r"""Where HAM's :math:`\eta` and gradient come from for one base optimizer (see the module).

    Args:
        optimizer (Optimizer): the optimizer HAM is registered on (SAM is looked through).
        active (callable): whether HAM steps at the coming step (the rule records only then).
    """

    def __init__(self, optimizer: Optimizer, active: Callable[[], bool]) -> None:
        from pyg_ham.optim.sam import innermost

        self.base = innermost(optimizer)
        self.active = active
        name = _pytorch_optimizer_class(self.base)
        self.kind = ("distance" if name in _DISTANCE else "schedule-free" if name in _SCHEDULE_FREE
                     else "lr")
        self.beta1 = _SCHEDULE_FREE.get(name or "")
        self.copies_grads = name is not None
        self.etas: Dict[int, Scalar] = {}
        self.grads: List[Tuple[Tensor, Tensor]] = []
        self.handle: Optional[RemovableHandle] = None
        if self.kind != "lr" or self.copies_grads:
            self.handle = self.base.register_step_pre_hook(self._before_base_step)

    @property
    def steps_state(self) -> bool:
        """Whether HAM steps a state sequence (schedule-free's :math:`z`) instead of the parameters."""
        return self.kind == "schedule-free"

    def _before_base_step(self, base: Optimizer, args: Any, kwargs: Any) -> None:
        if not self.active():
            return
        if self.kind == "distance":
            self.etas = {id(g): g["d"] * g["lr"] for g in base.param_groups}
        elif self.kind == "schedule-free":
            self.etas = {}
            for g in base.param_groups:
                step, warmup = g.get("step", 0) + 1, g.get("warmup_steps", 0)
                self.etas[id(g)] = g["lr"] * (step / warmup if step < warmup else 1.0)
        if self.copies_grads:
            self.grads = [(p, p.grad.clone()) for g in base.param_groups for p in g["params"]
                          if p.grad is not None and not p.grad.is_sparse]

    def restore_grads(self) -> None:
        """Put back the raw gradients a base may have overwritten in its step."""
        for p, grad in self.grads:
            p.grad = grad
        self.grads = []

    def lr(self, group: Dict[str, Any]) -> Scalar:
        r""":math:`\eta` of :obj:`group` at the step that just ran."""
        return self.etas.get(id(group), group["lr"]) if self.kind != "lr" else group["lr"]

    def remove(self) -> None:
        if self.handle is not None:
            self.handle.remove()

    def schedule_free_step(self, selected: Sequence[Tuple[Dict[str, Any], List[Tensor], List[Tensor]]],
                           defaults: Dict[str, Any], found_inf: Optional[Tensor], implementation: Optional[str],
                           stats: Optional[ExponentStats]) -> None:
        r"""HAM on schedule-free's :math:`z` (state ``"z"``) of the selected tensors, and
        :math:`y \mathrel{+}= (1-\beta_1)\Delta z` on the parameters (:math:`x` unchanged)."""
        assert self.beta1 is not None
        sign = -1.0 if getattr(self.base, "maximize", False) else 1.0
        for group, params, grads in selected:
            zs = []
            for p in params:
                z = self.base.state.get(p, {}).get("z")
                if z is None:
                    raise ValueError(f"HAM: {type(self.base).__name__} has no z for a parameter of shape "
                                     f"{tuple(p.shape)} (complex parameters are not supported with schedule-free)")
                zs.append(z)
            if not zs:
                continue
            keep = 1.0 - self.beta1(group)
            alpha = sign * group.get("ham_alpha", defaults["ham_alpha"])
            beta = group.get("ham_beta", defaults["ham_beta"])
            bound = group.get("ham_max_exponent", defaults["ham_max_exponent"])
            eta = self.lr(group)
            with torch.no_grad():
                torch._foreach_add_(params, zs, alpha=-keep)  # beta1 * x
                hyperbolic_step_(zs, grads, eta, alpha, beta, max_exponent=bound, found_inf=found_inf,
                                 implementation=implementation, stats=stats)
                torch._foreach_add_(params, zs, alpha=keep)  # y = beta1 x + (1 - beta1) z


def step_rule(optimizer: Optimizer, active: Callable[[], bool]) -> StepRule:
    """The :class:`StepRule` of :obj:`optimizer`."""
    return StepRule(optimizer, active)
