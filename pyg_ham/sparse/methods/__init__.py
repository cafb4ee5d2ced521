r"""The sparse-training methods: pruning at initialisation, gradual pruning, AC/DC, RiGL."""
from pyg_ham.sparse.methods.acdc import ACDC
from pyg_ham.sparse.methods.gmp import GMP
from pyg_ham.sparse.methods.rigl import RigL
from pyg_ham.sparse.methods.static import ERKPruning, MagnitudePruning, RandomPruning

__all__ = ["RandomPruning", "ERKPruning", "MagnitudePruning", "GMP", "ACDC", "RigL"]
