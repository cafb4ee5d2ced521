r"""Lazy imports of the ``pyg-ham[llm]`` extra (``transformers``, ``peft``).

Importing :mod:`pyg_ham.llm` never imports them; the functions that need them call
:func:`require` first, which raises a one-line
:class:`~pyg_ham.errors.MissingDependencyError` when the extra is not installed.
"""
from __future__ import annotations

import importlib
from types import ModuleType

from pyg_ham.errors import MissingDependencyError

__all__ = ["require", "INSTALL_HINT"]

#: What to install for the LLM adapter.
INSTALL_HINT = "pip install 'pyg-ham[llm]'"


def require(module: str) -> ModuleType:
    r"""Import :obj:`module` (``"transformers"``, ``"peft"``...) or raise a one-line error.

    Args:
        module (str): the top-level module name.

    Raises:
        MissingDependencyError: if the module is not installed (or was blocked with
            ``sys.modules[module] = None``).
    """
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise MissingDependencyError(
            f"the LLM adapter needs '{module}', which is not installed ({exc.__class__.__name__}); "
            f"install it with: {INSTALL_HINT}") from None
