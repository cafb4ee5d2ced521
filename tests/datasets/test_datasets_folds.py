"""Stratified K-fold CV with an inner hold-out (Errica et al., ICLR 2020)."""
import numpy as np
import pytest
import torch

from pyg_ham.datasets import stratified_folds
from pyg_ham.errors import ConfigError

LABELS = torch.tensor([0] * 63 + [1] * 125)          # MUTAG's class sizes


def _check_partition(folds, n):
    tests = torch.cat([f["test"] for f in folds]).sort().values
    assert torch.equal(tests, torch.arange(n))       # test folds disjoint and covering
    for f in folds:
        parts = torch.cat([f["train"], f["valid"], f["test"]]).sort().values
        assert torch.equal(parts, torch.arange(n))   # train/valid/test disjoint and covering
        assert all(v.dtype == torch.long for v in f.values())


def test_folds_are_stratified_disjoint_and_covering():
    folds = stratified_folds(LABELS, num_folds=10, seed=0, valid_fraction=0.1)
    assert len(folds) == 10
    _check_partition(folds, len(LABELS))
    for f in folds:
        n_test = f["test"].numel()
        assert n_test in (18, 19)
        counts = torch.bincount(LABELS[f["test"]], minlength=2).float()
        expected = n_test * torch.tensor([63, 125]) / 188
        assert (counts - expected).abs().max() <= 1.0
        # inner hold-out: ~10 % of the training part, also stratified
        n_trainval = 188 - n_test
        assert abs(f["valid"].numel() - 0.1 * n_trainval) <= 1
        v_counts = torch.bincount(LABELS[f["valid"]], minlength=2).float()
        assert (v_counts - f["valid"].numel() * torch.tensor([63, 125]) / 188).abs().max() <= 1.0


def test_folds_are_deterministic_by_seed():
    a = stratified_folds(LABELS.numpy(), 5, seed=1)
    b = stratified_folds(list(LABELS.tolist()), 5, seed=1)
    c = stratified_folds(LABELS, 5, seed=2)
    for x, y in zip(a, b):
        assert all(torch.equal(x[k], y[k]) for k in x)
    assert any(not torch.equal(x["test"], z["test"]) for x, z in zip(a, c))


def test_multiclass_and_zero_validation():
    labels = np.repeat(np.arange(6), 100)                # ENZYMES: 6 x 100
    folds = stratified_folds(labels, 10, seed=0, valid_fraction=0.0)
    _check_partition(folds, 600)
    for f in folds:
        assert f["valid"].numel() == 0
        assert torch.bincount(torch.as_tensor(labels)[f["test"]]).tolist() == [10] * 6


def test_too_many_folds_is_a_config_error():
    labels = [0] * 3 + [1] * 20
    with pytest.raises(ConfigError, match="smallest class"):
        stratified_folds(labels, num_folds=5)
    assert len(stratified_folds(labels, num_folds=3)) == 3


@pytest.mark.parametrize("kwargs", [{"num_folds": 1}, {"valid_fraction": 1.0},
                                    {"valid_fraction": -0.1}])
def test_invalid_arguments(kwargs):
    with pytest.raises(ConfigError):
        stratified_folds(LABELS, **{"num_folds": 10, **kwargs})
