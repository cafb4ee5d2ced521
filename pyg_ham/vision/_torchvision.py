r"""The guarded import of ``torchvision`` (optional, and not an install requirement).

``torchvision`` wheels are built against one exact ``torch`` release; importing a
mismatched build raises ``RuntimeError`` (or ``OSError`` for missing symbols), not
``ImportError``. So the import is guarded against *any* exception, and everything that
needs it calls :func:`require_torchvision`, which raises a one-line
:class:`~pyg_ham.errors.MissingDependencyError` saying how to install it.
"""
from __future__ import annotations

import importlib
from types import ModuleType
from typing import Optional, Tuple

from pyg_ham.errors import MissingDependencyError

__all__ = ["import_torchvision", "torchvision_available", "require_torchvision", "INSTALL_HINT"]

#: How to get torchvision (it must match the installed torch exactly).
INSTALL_HINT = ("install a torchvision build that matches your torch, e.g. "
                "`pip install torch==2.14.1 torchvision==0.29.1` (x86_64, in a fresh venv)")


def import_torchvision() -> Tuple[Optional[ModuleType], str]:
    r"""Try to import ``torchvision``.

    Returns:
        ``(module, "")`` on success, ``(None, reason)`` on any failure (not installed, a build
        for another torch, missing native symbols, ...).
    """
    try:
        return importlib.import_module("torchvision"), ""
    except Exception as exc:  # noqa: BLE001 - a mismatched build raises RuntimeError/OSError
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        return None, f"{exc.__class__.__name__}: {first}" if first else exc.__class__.__name__


def torchvision_available() -> bool:
    """Whether ``torchvision`` can be imported here."""
    return import_torchvision()[0] is not None


def require_torchvision(what: str) -> ModuleType:
    r"""Import ``torchvision`` or raise a one-line error naming what needed it.

    Args:
        what (str): e.g. ``"dataset 'mnist'"`` or ``"model 'resnet18'"``.

    Raises:
        MissingDependencyError: if ``torchvision`` cannot be imported.
    """
    module, reason = import_torchvision()
    if module is None:
        raise MissingDependencyError(f"{what} needs torchvision, which cannot be imported here ({reason}); "
                                     f"{INSTALL_HINT}")
    return module
