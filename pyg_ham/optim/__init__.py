r"""The HAM optimizer core: one implementation of the hyperbolic step, used everywhere."""
from pyg_ham.optim.factory import OPTIMIZER_NAMES, build_optimizer, canonical_optimizer_name, optimizer_class
from pyg_ham.optim.functional import hyperbolic_step_
from pyg_ham.optim.groups import ham_param_groups, is_weight_matrix
from pyg_ham.optim.ham import HAM, HAM_DEFAULTS, apply_hyperbolic_step, attach_ham, track_exponents
from pyg_ham.optim.stats import ExponentStats

__all__ = [
    "HAM", "HAM_DEFAULTS", "attach_ham", "apply_hyperbolic_step", "hyperbolic_step_", "build_optimizer",
    "optimizer_class", "canonical_optimizer_name", "OPTIMIZER_NAMES", "ham_param_groups", "is_weight_matrix",
    "track_exponents", "ExponentStats",
]
