"""pyg-ham: HAM (Hyperbolic Aware Minimization) for PyTorch Geometric."""
__version__ = "0.1.0"

from pyg_ham.optim import HAM, attach_ham, build_optimizer, hyperbolic_step_  # noqa: E402

__all__ = ["HAM", "attach_ham", "build_optimizer", "hyperbolic_step_", "__version__"]
