r"""Diagnostics of HAM's exponent, gathered only when asked for (the trainer asks).

For every weight HAM steps, the exponent of its multiplicative step is
:math:`e = -\eta\,(\alpha\,\mathrm{sign}(w)\,g + \beta)`. Two numbers tell whether the step is in
its stable range:

* ``clamp_fraction``: the share of exponents at the clamp, :math:`|e| \geq` ``max_exponent``
  (only for clamped groups); a large share means the step saturates,
* ``max_step``: the largest :math:`|\eta\,\alpha\,\mathrm{sign}(w)\,g|` (the size of the
  geometric part of the step; a weight at zero does not move).

:func:`~pyg_ham.optim.hyperbolic_step_` computes them inside its own pass, from the values it
computes anyway, and adds them to device-side accumulators: no extra pass over the weights, no
host sync, and a step that :class:`~torch.amp.GradScaler` skips adds nothing (also no NaN from
its inf gradients). :meth:`ExponentStats.read` is the one host sync, once per epoch. With
``every = k`` only every k-th optimizer step is observed (the first one after each read
always is). A bare :class:`~pyg_ham.optim.HAM` computes nothing of this: the step's cost is
unchanged unless :func:`~pyg_ham.optim.track_exponents` switched it on.
"""
from __future__ import annotations

from typing import Dict, List, Optional, Tuple

import torch
from torch import Tensor

__all__ = ["ExponentStats"]


class ExponentStats:
    r"""Accumulates ``clamp_fraction`` and ``max_step`` over HAM steps (see the module docstring).

    Args:
        every (int): observe every :obj:`every`-th optimizer step (counted from the last
            :meth:`read`, whose next step is always observed). (default: :obj:`1`)
    """

    def __init__(self, every: int = 1) -> None:
        if isinstance(every, bool) or not isinstance(every, int) or every < 1:
            raise ValueError(f"ExponentStats: every must be an integer >= 1, got {every!r}")
        self.every = every
        self._steps = 0
        self._observed = self._clamped = False  # since the last read: any step, any clamped group
        # device -> [largest step, exponents at the clamp, exponents of clamped groups] since the
        # last read, and the same three for the step under way (zeroed, not reallocated)
        self._total: Dict[torch.device, List[Tensor]] = {}
        self._step: Dict[torch.device, List[Tensor]] = {}

    def sampling(self) -> bool:
        """Whether this optimizer step is observed (called once per step, by HAM's hook)."""
        take = self._steps % self.every == 0
        self._steps += 1
        return take

    def begin(self, device: torch.device) -> Tuple[Tensor, Tensor]:
        """This step's ``(largest step, hits)`` accumulators on :obj:`device`, zeroed."""
        step = self._step.get(device)
        if step is None:
            step = self._step[device] = _zeros(device)
            self._total[device] = _zeros(device)
        else:
            for t in step:
                t.zero_()
        return step[0], step[1]

    def end(self, device: torch.device, skip: Optional[Tensor], clamped: int) -> None:
        """Add the step begun on :obj:`device` (:obj:`clamped` exponents of clamped groups)
        unless :obj:`skip` is true (on the device: no sync)."""
        top, hits, count = self._step[device]
        total = self._total[device]
        self._observed, self._clamped = True, self._clamped or clamped > 0
        count.fill_(clamped)
        if skip is not None:
            for t in (top, hits, count):
                t.masked_fill_(skip, 0)  # a fill: the inf/NaN of a skipped step leave nothing behind
        torch.maximum(total[0], top, out=total[0])
        total[1].add_(hits)
        total[2].add_(count)

    def read(self, reset: bool = True) -> Dict[str, float]:
        r"""``{"clamp_fraction", "max_step"}`` since the last read (one host sync); empty if no step."""
        out: Dict[str, float] = {}
        if self._observed:
            values = torch.stack([torch.stack([t.double() for t in total]).cpu() for total in self._total.values()])
            out["max_step"] = float(values[:, 0].max())
            if self._clamped:  # every clamped step skipped: 0 of 0 at the clamp
                out["clamp_fraction"] = float(values[:, 1].sum()) / max(float(values[:, 2].sum()), 1.0)
        if reset:
            for total in self._total.values():
                for t in total:
                    t.zero_()
            self._steps = 0
            self._observed = self._clamped = False
        return out


def _zeros(device: torch.device) -> List[Tensor]:
    return [torch.zeros((), dtype=torch.float32, device=device), torch.zeros((), dtype=torch.int64, device=device),
            torch.zeros((), dtype=torch.int64, device=device)]
