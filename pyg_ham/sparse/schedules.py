r"""Schedules of sparse training, as pure functions of the step (no tensors, no syncs).

Steps count completed optimizer steps: step ``t`` is the state after ``t`` updates, i.e. the
mask in force for the ``(t+1)``-th update.
"""
from __future__ import annotations

import math

__all__ = ["fraction_to_step", "auto_interval", "gmp_sparsity", "is_gmp_step", "cosine_drop_fraction",
           "acdc_compressed"]


def fraction_to_step(fraction: float, total_steps: int) -> int:
    """``round(fraction * total_steps)``: a point of training given as a fraction of it."""
    return int(round(fraction * total_steps))


def auto_interval(span: int, updates: int = 20, cap: int = 100) -> int:
    """A default update interval: about :obj:`updates` updates over :obj:`span` steps, at
    most every :obj:`cap` steps (the papers' 100 for long runs), at least every step."""
    return max(1, min(cap, span // updates))


def gmp_sparsity(step: int, final: float, initial: float, start_step: int, end_step: int) -> float:
    r"""The cubic sparsity schedule of gradual magnitude pruning, from the `"To prune, or not
    to prune: exploring the efficacy of pruning for model compression"
    <https://arxiv.org/abs/1710.01878>`_ paper (Zhu & Gupta, 2017):

    .. math::
        s_t = s_f + (s_i - s_f) \Big(1 - \frac{t - t_0}{t_1 - t_0}\Big)^3
        \quad\text{for } t_0 \le t \le t_1,

    :math:`s_i` before :math:`t_0` and :math:`s_f` after :math:`t_1`. Non-decreasing for
    :math:`s_i \le s_f`, fast at first and slow near the end.

    Args:
        step (int): the step :math:`t`.
        final (float): final sparsity :math:`s_f`.
        initial (float): initial sparsity :math:`s_i`.
        start_step (int): :math:`t_0`.
        end_step (int): :math:`t_1 \ge t_0` (equal: a single pruning step to :math:`s_f`).
    """
    if step < start_step:
        return initial
    if step >= end_step:
        return final
    progress = (step - start_step) / (end_step - start_step)
    # the same polynomial, written so that it is exactly s_i at t_0 (no rounding below s_i)
    return initial + (final - initial) * (1.0 - (1.0 - progress) ** 3)


def is_gmp_step(step: int, start_step: int, end_step: int, frequency: int) -> bool:
    """Whether GMP prunes at :obj:`step`: every :obj:`frequency` steps from :obj:`start_step`,
    and at :obj:`end_step` (so that the schedule always ends exactly at its target)."""
    if step < start_step or step > end_step:
        return False
    return step == end_step or (step - start_step) % frequency == 0


def cosine_drop_fraction(step: int, initial: float, end_step: int) -> float:
    r"""RiGL's cosine-decayed update fraction (Evci et al., 2020):
    :math:`f(t) = \frac{\alpha}{2}\big(1 + \cos(\pi t / T_{end})\big)`, and 0 from
    :math:`T_{end}` on."""
    if step >= end_step:
        return 0.0
    return 0.5 * initial * (1.0 + math.cos(math.pi * step / end_step))


def acdc_compressed(step: int, warmup_steps: int, phase_steps: int, final_start: int) -> bool:
    r"""Whether AC/DC (Peste et al., 2021) is in a compressed (sparse) phase at :obj:`step`.

    Dense warm-up for ``[0, warmup_steps)``; then compressed and decompressed phases of
    :obj:`phase_steps` steps each alternate, compressed first; from :obj:`final_start` on,
    one final compressed phase to the end of training.
    """
    if step >= final_start:
        return True
    if step < warmup_steps:
        return False
    return ((step - warmup_steps) // phase_steps) % 2 == 0
