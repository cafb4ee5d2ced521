r"""The one set of argument checks: every user-facing value is checked here, and every failure is
a :class:`~pyg_ham.errors.ConfigError` (a ``ValueError``) with one message style,
``<name> must be …, got …``, raised before anything changes.
"""
from __future__ import annotations

import math
import numbers
from typing import Any, Optional, Sequence

from pyg_ham.errors import ConfigError

__all__ = ["check_number", "check_int", "check_choice", "coerce_option"]

_TRUE, _FALSE = ("true", "1", "yes", "on"), ("false", "0", "no", "off")


def check_number(name: str, value: Any, low: float = -math.inf, high: float = math.inf, *,
                 low_open: bool = False, high_open: bool = False, integer: bool = False,
                 allow_none: bool = False) -> Any:
    r"""Returns :obj:`value` if it is a finite real number (not a bool) in the given range.

    Args:
        name (str): the argument's name, for the message.
        value: the value.
        low, high (float): the bounds (inclusive unless :obj:`low_open` / :obj:`high_open`).
        integer (bool): require an integral value. (default: :obj:`False`)
        allow_none (bool): accept :obj:`None`. (default: :obj:`False`)
    """
    if value is None and allow_none:
        return None
    ok = isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value)
    ok = ok and (value > low if low_open else value >= low) and (value < high if high_open else value <= high)
    ok = ok and (not integer or float(value).is_integer())
    if not ok:
        parts = []
        if low != -math.inf:
            parts.append(f"> {low:g}" if low_open else f">= {low:g}")
        if high != math.inf:
            parts.append(f"< {high:g}" if high_open else f"<= {high:g}")
        kind = "an integer" if integer else "a finite number"
        none = " or None" if allow_none else ""
        raise ConfigError(f"{name} must be {kind}{' ' + ' and '.join(parts) if parts else ''}{none}, got {value!r}")
    return value


def check_int(name: str, value: Any, low: int = 1, *, allow_none: bool = False) -> Optional[int]:
    r"""Returns :obj:`value` as an ``int`` if it is an integer (not a bool) ``>= low``."""
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < low:
        none = " or None" if allow_none else ""
        raise ConfigError(f"{name} must be an integer >= {low}{none}, got {value!r}")
    return int(value)


def check_choice(name: str, value: Any, allowed: Sequence[Any], *, lower: bool = False) -> Any:
    r"""Returns :obj:`value` (lower-cased first with :obj:`lower`) if it is one of :obj:`allowed`."""
    key = value.lower() if lower and isinstance(value, str) else value
    if key not in allowed:
        raise ConfigError(f"{name} must be one of {', '.join(str(a) for a in allowed)}, got {value!r}")
    return key


def coerce_option(owner: str, key: str, value: Any, default: Any) -> Any:
    r"""A dataset option (often a string from ``-o key=value``) converted to the type of its default."""
    name = f"{owner}: option {key}"
    if isinstance(default, bool):
        if isinstance(value, str) and value.strip().lower() in _TRUE + _FALSE:
            return value.strip().lower() in _TRUE
        if not isinstance(value, bool):
            raise ConfigError(f"{name} must be true or false, got {value!r}")
        return value
    if isinstance(default, (int, float)):
        try:
            number = float(value)
        except (TypeError, ValueError):
            number = math.nan
        integer = isinstance(default, int)
        if isinstance(value, bool) or not math.isfinite(number) or (integer and not number.is_integer()):
            raise ConfigError(f"{name} must be {'an integer' if integer else 'a number'}, got {value!r}")
        return int(number) if integer else number
    if isinstance(default, str) and not isinstance(value, str):
        raise ConfigError(f"{name} must be a string, got {value!r}")
    return value
