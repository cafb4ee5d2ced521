r"""Diagnostics of HAM's exponent, gathered only when asked for (the trainer asks).

For every weight HAM steps, the exponent of its multiplicative step is
:math:`e = -\eta\,(\alpha\,\mathrm{sign}(w)\,g + \beta)`. Two numbers tell whether the step is in
its stable range:

* ``clamp_fraction``: the share of exponents at the clamp, :math:`|e| \geq` ``max_exponent``
  (only for clamped groups); a large share means the step saturates,
* ``max_step``: the largest :math:`|\eta\,\alpha\,g|` (the size of the geometric part of the step).

They accumulate on the device over steps; :meth:`ExponentStats.read` is the one host sync, once
per epoch. A bare :class:`~pyg_ham.optim.HAM` computes nothing of this: the step's cost is
unchanged unless :func:`~pyg_ham.optim.track_exponents` switched it on.
"""
from __future__ import annotations

from typing import Dict, Optional, Sequence, Union

import torch
from torch import Tensor

from pyg_ham.optim.sharding import local_shards

__all__ = ["ExponentStats"]


class ExponentStats:
    r"""Accumulates ``clamp_fraction`` and ``max_step`` over HAM steps (see the module docstring)."""

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self._at_clamp: Dict[torch.device, Tensor] = {}
        self._max_step: Dict[torch.device, Tensor] = {}
        self._clamped = 0  # exponents of clamped groups seen (a Python count: no sync)

    @torch.no_grad()
    def observe(self, params: Sequence[Tensor], grads: Sequence[Tensor], lr: Union[float, Tensor], alpha: float,
                beta: float,
                max_exponent: Optional[float], found_inf: Optional[Tensor] = None) -> None:
        r"""Add one group's step (the weights after the base step and the gradients it used)."""
        params, grads = local_shards(params, grads)
        for w, g in zip(params, grads):
            device = w.device
            step = g.float().abs().mul_(abs(alpha)).mul_(lr)  # |eta alpha g|
            if found_inf is not None:  # a step GradScaler skips does not count
                step.mul_((found_inf.to(device) == 0).float())
            top = step.max() if step.numel() else torch.zeros((), device=device)
            self._max_step[device] = torch.maximum(self._max_step[device], top) if device in self._max_step else top
            if max_exponent is not None:
                e = torch.sign(w).float().mul_(g.float()).mul_(alpha).add_(beta).mul_(lr).abs_()
                hits = (e >= max_exponent).sum()
                if found_inf is not None:
                    hits = hits * (found_inf.to(device) == 0)
                self._at_clamp[device] = self._at_clamp.get(device, 0) + hits
                self._clamped += w.numel()

    def read(self, reset: bool = True) -> Dict[str, float]:
        r"""``{"clamp_fraction", "max_step"}`` since the last read (one host sync); empty if no step."""
        out: Dict[str, float] = {}
        if self._max_step:
            out["max_step"] = max(float(v) for v in self._max_step.values())
        if self._clamped:
            out["clamp_fraction"] = sum(float(v) for v in self._at_clamp.values()) / self._clamped
        if reset:
            self.reset()
        return out
