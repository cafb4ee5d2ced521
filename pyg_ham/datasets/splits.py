"""Train / validation / test splits.

* :func:`stratified_folds` - the graph-classification protocol of Errica et al.,
  "A Fair Comparison of Graph Neural Networks for Graph Classification" (ICLR 2020).
* :func:`random_split` - a seeded random split of (labelled) nodes by ratios.
* :func:`per_class_split` - a seeded split with a fixed number of training nodes per
  class.
* :func:`mask_split` - a split read from boolean masks, one column per fixed split.
"""
from __future__ import annotations

from typing import Dict, List, Optional, Sequence, Union

import numpy as np
import torch
from torch import Tensor

from pyg_ham.errors import ConfigError

Split = Dict[str, Tensor]


def _generator(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(int(seed) & 0x7FFF_FFFF_FFFF_FFFF)


def split_seed(seed: int, run: int) -> int:
    r"""A seed for split :obj:`run` derived from a base :obj:`seed` (distinct pairs
    give distinct seeds for all practical values)."""
    return int(seed) * 1_000_003 + int(run)


def _sorted(idx: Union[Tensor, np.ndarray, Sequence[int]]) -> Tensor:
    return torch.as_tensor(np.asarray(idx), dtype=torch.long).sort().values


def stratified_folds(
    labels: Union[Tensor, np.ndarray, Sequence[int]],
    num_folds: int = 10,
    seed: int = 0,
    valid_fraction: float = 0.1,
) -> List[Split]:
    r"""Stratified :math:`K`-fold cross-validation with an inner stratified hold-out
    (Errica et al., ICLR 2020).

    The samples are split into :math:`K` stratified folds (:class:`StratifiedKFold`,
    shuffled with :obj:`seed`); fold :math:`k` is the test set of outer split
    :math:`k`, and the remaining samples are split once more, stratified, into
    training and validation (``train_test_split`` with
    ``test_size=valid_fraction``).  Test sets are disjoint and cover all samples;
    inside every split train, valid and test are disjoint and cover all samples.

    Args:
        labels (Tensor or array): Class label of every sample, shape :obj:`[N]`.
        num_folds (int, optional): Number of outer folds :math:`K`, at least 2 and at
            most the size of the smallest class. (default: :obj:`10`)
        seed (int, optional): Seed of both shuffles; equal seeds give equal folds.
            (default: :obj:`0`)
        valid_fraction (float, optional): Fraction of each outer training part held
            out for validation, in :math:`[0, 1)`. (default: :obj:`0.1`)

    Returns:
        A list of :obj:`num_folds` dicts with sorted LongTensor indices under
        ``"train"``, ``"valid"`` and ``"test"``.
    """
    from sklearn.model_selection import StratifiedKFold, train_test_split

    y = np.asarray(labels.cpu() if isinstance(labels, Tensor) else labels).reshape(-1)
    if y.size == 0:
        raise ConfigError("stratified_folds: no labels given; pass one label per sample")
    if not isinstance(num_folds, (int, np.integer)) or num_folds < 2:
        raise ConfigError(f"stratified_folds: num_folds={num_folds!r} is invalid; use an integer >= 2")
    if not 0.0 <= float(valid_fraction) < 1.0:
        raise ConfigError(
            f"stratified_folds: valid_fraction={valid_fraction!r} is invalid; use a value in [0, 1)")
    classes, counts = np.unique(y, return_counts=True)
    if num_folds > counts.min():
        smallest = classes[counts.argmin()]
        raise ConfigError(
            f"stratified_folds: num_folds={num_folds} exceeds the size of the smallest class "
            f"(class {smallest!r} has {counts.min()} samples); use at most {counts.min()} folds")

    outer = StratifiedKFold(n_splits=int(num_folds), shuffle=True, random_state=int(seed))
    folds: List[Split] = []
    for trainval, test in outer.split(np.zeros(len(y)), y):
        if valid_fraction > 0:
            try:
                train, valid = train_test_split(
                    trainval, test_size=float(valid_fraction), stratify=y[trainval],
                    random_state=int(seed))
            except ValueError as exc:  # too few samples per class for a stratified hold-out
                raise ConfigError(
                    f"stratified_folds: cannot hold out valid_fraction={valid_fraction} "
                    f"stratified ({exc}); use a larger valid_fraction or fewer folds") from None
        else:
            train, valid = trainval, np.zeros(0, dtype=np.int64)
        folds.append({"train": _sorted(train), "valid": _sorted(valid), "test": _sorted(test)})
    return folds


def check_ratios(train_ratio: float, valid_ratio: float, name: str = "random_split") -> None:
    r"""Raises a :class:`ConfigError` unless :math:`0 < r_{train} < 1`,
    :math:`0 \le r_{valid}` and :math:`r_{train} + r_{valid} < 1`."""
    if not (0 < train_ratio < 1 and 0 <= valid_ratio < 1 and train_ratio + valid_ratio < 1):
        raise ConfigError(
            f"{name}: split ratios train={train_ratio}, valid={valid_ratio} are invalid; use "
            f"0 < train < 1, 0 <= valid and train + valid < 1 (the rest is test)")


def random_split(
    num_nodes: int,
    train_ratio: float,
    valid_ratio: float,
    seed: int,
    candidates: Optional[Tensor] = None,
) -> Split:
    r"""A random split of :obj:`candidates` (default: all :obj:`num_nodes` nodes)
    into :math:`\lfloor r_{train} n \rfloor` training, :math:`\lfloor r_{valid} n
    \rfloor` validation and the remaining test nodes, deterministic by :obj:`seed`.

    Args:
        num_nodes (int): Number of nodes.
        train_ratio (float): Training fraction.
        valid_ratio (float): Validation fraction.
        seed (int): Seed of the permutation.
        candidates (Tensor, optional): The nodes to split (e.g. the labelled ones).
            (default: :obj:`None`)
    """
    check_ratios(train_ratio, valid_ratio)
    nodes = torch.arange(num_nodes) if candidates is None else candidates.view(-1).long()
    perm = nodes[torch.randperm(nodes.numel(), generator=_generator(seed))]
    n_train = int(train_ratio * nodes.numel())
    n_valid = int(valid_ratio * nodes.numel())
    return {
        "train": perm[:n_train].sort().values,
        "valid": perm[n_train:n_train + n_valid].sort().values,
        "test": perm[n_train + n_valid:].sort().values,
    }


def per_class_split(y: Tensor, train_per_class: int, seed: int) -> Split:
    r"""A split with :obj:`train_per_class` random training nodes per class; the
    other nodes are shuffled and halved into validation and test.  Deterministic by
    :obj:`seed`.

    Args:
        y (Tensor): Node labels, shape :obj:`[N]`.
        train_per_class (int): Training nodes per class.
        seed (int): Seed.
    """
    gen = _generator(seed)
    y = y.view(-1)
    train = []
    for c in y.unique().tolist():
        members = (y == c).nonzero().view(-1)
        if members.numel() <= train_per_class:
            raise ConfigError(
                f"train_per_class={train_per_class} leaves no nodes of class {c} "
                f"({members.numel()} nodes) for evaluation; use a smaller value")
        train.append(members[torch.randperm(members.numel(), generator=gen)[:train_per_class]])
    train_idx = torch.cat(train)
    rest = torch.ones(y.numel(), dtype=torch.bool)
    rest[train_idx] = False
    rest_idx = rest.nonzero().view(-1)
    rest_idx = rest_idx[torch.randperm(rest_idx.numel(), generator=gen)]
    half = rest_idx.numel() // 2
    return {"train": train_idx.sort().values, "valid": rest_idx[:half].sort().values,
            "test": rest_idx[half:].sort().values}


def mask_split(train_mask: Tensor, valid_mask: Tensor, test_mask: Tensor, run: int) -> Split:
    r"""Indices of the boolean masks; 2-D masks hold one fixed split per column and
    split :obj:`run` uses column ``run % num_columns``."""
    out = {}
    for key, mask in (("train", train_mask), ("valid", valid_mask), ("test", test_mask)):
        if mask.dim() == 2:
            mask = mask[:, run % mask.size(1)]
        out[key] = mask.nonzero().view(-1)
    return out


def num_mask_splits(mask: Tensor) -> int:
    r"""Number of fixed splits stored in a mask (its columns; 1 for a 1-D mask)."""
    return int(mask.size(1)) if mask.dim() == 2 else 1
