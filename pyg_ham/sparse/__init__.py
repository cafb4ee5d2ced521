r"""Sparse training with HAM: masks kept in force around any optimizer (plain or HAM).

HAM's hyperbolic step is multiplicative, :math:`w \leftarrow w \odot e^{\ldots}`, so a pruned
weight (exactly zero, with zero gradient and zero optimizer state) stays zero: sparse
training composes with HAM without special cases. This module provides the sparsifiers
the HAM paper combines it with:

* ``"random"``, ``"erk"``: random pruning at initialisation (uniform or ERK densities),
* ``"magnitude"``: magnitude pruning at initialisation,
* ``"gmp"``: gradual magnitude pruning (Zhu & Gupta, 2017),
* ``"acdc"``: alternating compressed/decompressed training (Peste et al., 2021),
* ``"rigl"``: RigL, drop by magnitude and regrow by gradient (Evci et al., 2020).

Example:
    >>> opt = build_optimizer(model, "adamw", lr=1e-3)
    >>> sp = build_sparsifier("rigl", model, opt, sparsity=0.9, total_steps=epochs * len(loader))
    >>> loss.backward(); sp.before_step(); opt.step(); sp.after_step(); opt.zero_grad()
"""
from pyg_ham.sparse.base import Sparsifier
from pyg_ham.sparse.factory import SPARSIFIER_OPTIONS, SPARSIFIERS, build_sparsifier, sparsifier_class
from pyg_ham.sparse.masks import erk_densities, magnitude_masks, select_parameters, uniform_densities
from pyg_ham.sparse.methods import ACDC, GMP, ERKPruning, MagnitudePruning, RandomPruning, RigL
from pyg_ham.sparse.schedules import cosine_drop_fraction, gmp_sparsity

__all__ = [
    "build_sparsifier", "Sparsifier", "SPARSIFIERS", "SPARSIFIER_OPTIONS", "sparsifier_class",
    "RandomPruning", "ERKPruning", "MagnitudePruning", "GMP", "ACDC", "RigL",
    "select_parameters", "uniform_densities", "erk_densities", "magnitude_masks", "gmp_sparsity",
    "cosine_drop_fraction",
]
