"""Schedules against their formulas written out: GMP's cubic, RiGL's cosine, AC/DC phases."""
import math

import pytest

from pyg_ham.sparse import cosine_drop_fraction, gmp_sparsity
from pyg_ham.sparse.schedules import acdc_compressed, auto_interval, is_gmp_step


def test_gmp_cubic_formula_monotone_and_ends_at_target():
    s_i, s_f, t0, t1 = 0.1, 0.9, 20, 120
    values = [gmp_sparsity(t, s_f, s_i, t0, t1) for t in range(0, 150)]
    for t, v in enumerate(values):
        if t < t0:
            expected = s_i
        elif t >= t1:
            expected = s_f
        else:
            expected = s_f + (s_i - s_f) * (1 - (t - t0) / (t1 - t0)) ** 3
        assert v == pytest.approx(expected)
    assert all(b >= a for a, b in zip(values, values[1:]))
    assert values[t1] == s_f and values[-1] == s_f
    # fast at first, slow at the end (the point of the cubic)
    assert values[t0 + 10] - values[t0] > values[t1] - values[t1 - 10]


def test_gmp_pruning_steps():
    steps = [t for t in range(200) if is_gmp_step(t, 10, 95, 20)]
    assert steps == [10, 30, 50, 70, 90, 95]
    assert [t for t in range(10) if is_gmp_step(t, 3, 3, 5)] == [3]


def test_rigl_cosine_drop_fraction():
    assert cosine_drop_fraction(0, 0.3, 100) == pytest.approx(0.3)
    assert cosine_drop_fraction(50, 0.3, 100) == pytest.approx(0.15)
    assert cosine_drop_fraction(25, 0.3, 100) == pytest.approx(0.15 * (1 + math.cos(math.pi / 4)))
    assert cosine_drop_fraction(100, 0.3, 100) == 0.0 and cosine_drop_fraction(130, 0.3, 100) == 0.0
    values = [cosine_drop_fraction(t, 0.3, 100) for t in range(101)]
    assert all(b <= a for a, b in zip(values, values[1:]))


def test_acdc_phases():
    # 10 dense warm-up steps, phases of 5 (C first), final compressed from 40 on.
    got = "".join("C" if acdc_compressed(t, 10, 5, 40) else "D" for t in range(50))
    assert got == "D" * 10 + "CCCCC" "DDDDD" "CCCCC" "DDDDD" "CCCCC" "DDDDD" + "C" * 10


def test_auto_interval():
    assert auto_interval(0) == 1 and auto_interval(200) == 10 and auto_interval(10 ** 6) == 100
