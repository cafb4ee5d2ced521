r"""Re-export of :mod:`pyg_ham.config` (the configuration moved to the layer below ``datasets``
and ``train``); importing it here also loads the dataset registry, so that
:meth:`ExperimentConfig.from_recipe` finds every dataset's recipe."""
import pyg_ham.datasets  # noqa: F401 - sets ExperimentConfig.from_recipe's recipe lookup
from pyg_ham.config import (
           EVAL_MODES,
           PROTOCOLS,
           SCHEDULERS,
           SECTIONS,
           ExperimentConfig,
           check_cuda_devices,
           load_config,
           no_clamp_as_none,
           resolve_device,
)

__all__ = ["ExperimentConfig", "SECTIONS", "SCHEDULERS", "load_config", "resolve_device", "PROTOCOLS",
           "EVAL_MODES", "no_clamp_as_none", "check_cuda_devices"]
