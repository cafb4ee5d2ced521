r"""The built-in task kinds (``"node"``, ``"graph"``, ``"hetero-node"``), registered in
:data:`~pyg_ham.train.task.TASK_KINDS` when this module is imported. Import it before looking a
kind up (:func:`~pyg_ham.train.distributed.check_config` does not import the kinds: they
import it); the runner does."""
from pyg_ham.train import graph, hetero, node  # noqa: F401 - registers the kinds

__all__: list = []
