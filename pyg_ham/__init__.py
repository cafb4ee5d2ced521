"""pyg-ham: HAM (Hyperbolic Aware Minimization) for PyTorch Geometric.

The optimizer core is imported lazily so that ``import pyg_ham`` and ``pyg-ham --help``
stay fast; ``from pyg_ham import HAM`` works as usual.
"""
from typing import Any

from pyg_ham._version import __version__

_OPTIM_EXPORTS = ("HAM", "attach_ham", "build_optimizer", "hyperbolic_step_")
__all__ = [*_OPTIM_EXPORTS, "__version__"]


def __getattr__(name: str) -> Any:
    if name in _OPTIM_EXPORTS:
        from pyg_ham import optim

        return getattr(optim, name)
    raise AttributeError(f"module 'pyg_ham' has no attribute {name!r}")
