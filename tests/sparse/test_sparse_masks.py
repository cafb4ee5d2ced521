"""Layer-wise densities (ERK by hand), exact kept counts, magnitude masks, selection."""

import pytest
import torch

from pyg_ham.errors import ConfigError
from pyg_ham.sparse import erk_densities, magnitude_masks, select_parameters, uniform_densities
from pyg_ham.sparse.masks import kept_count, random_mask, topk_mask


def test_erk_densities_by_hand_no_dense_layer():
    # Linear(10, 20) and Linear(20, 5) weights at 50% sparsity:
    # raw ratios (20+10)/200 = 0.15 and (5+20)/100 = 0.25; eps = 150 / (0.15*200 + 0.25*100) = 150/55.
    d = erk_densities({"a": (20, 10), "b": (5, 20)}, 0.5)
    eps = 150 / 55
    assert d["a"] == pytest.approx(0.15 * eps)
    assert d["b"] == pytest.approx(0.25 * eps)
    assert d["a"] * 200 + d["b"] * 100 == pytest.approx(150)


def test_erk_densities_by_hand_with_dense_layer():
    # (50, 100): ratio 150/5000 = 0.03; (2, 50): ratio 52/100 = 0.52. At 50% sparsity the first
    # eps = 2550 / (0.03*5000 + 0.52*100) = 12.62 gives the small layer density 6.6 > 1: it becomes
    # dense and eps = (2550 - 100) / (0.03 * 5000) for the big one.
    d = erk_densities({"big": (50, 100), "small": (2, 50)}, 0.5)
    assert d["small"] == 1.0
    assert d["big"] == pytest.approx(0.03 * 2450 / 150)
    assert d["big"] * 5000 + 100 == pytest.approx(2550)


def test_erk_conv_kernel_ratio_and_uniform_limit():
    # A conv kernel (out, in, kh, kw): the ratio is (sum of dims) / (product of dims).
    shapes = {"conv": (16, 8, 3, 3), "fc": (10, 64)}
    d = erk_densities(shapes, 0.9)
    ratio = (16 + 8 + 3 + 3) / (16 * 8 * 9) / ((10 + 64) / 640)
    assert d["conv"] / d["fc"] == pytest.approx(ratio)
    assert erk_densities(shapes, 0.9, power_scale=0.0) == pytest.approx(uniform_densities(shapes, 0.9))
    assert erk_densities(shapes, 0.0) == {"conv": 1.0, "fc": 1.0}


@pytest.mark.parametrize("density,numel,expected", [(0.5, 11, 6), (0.25, 8, 2), (1e-9, 100, 1), (1.0, 7, 7)])
def test_kept_count(density, numel, expected):
    assert kept_count(density, numel) == expected


def test_random_mask_exact_count_and_seeded():
    a = random_mask((30, 7), 50, torch.Generator().manual_seed(3))
    b = random_mask((30, 7), 50, torch.Generator().manual_seed(3))
    c = random_mask((30, 7), 50, torch.Generator().manual_seed(4))
    assert a.dtype == torch.bool and a.shape == (30, 7) and int(a.sum()) == 50
    assert torch.equal(a, b) and not torch.equal(a, c)


def test_topk_mask_keeps_largest():
    score = torch.tensor([[0.3, -5.0, 2.0], [1.0, 0.1, 4.0]])
    assert topk_mask(score, 2).tolist() == [[False, False, True], [False, False, True]]
    assert not topk_mask(score, 0).any() and topk_mask(score, 6).all()


def test_magnitude_masks_uniform_global_and_allowed():
    w1 = torch.tensor([[0.1, -0.9, 0.5, 0.05]])
    w2 = torch.tensor([[2.0, -3.0], [0.2, 0.3]])
    m = magnitude_masks({"a": w1, "b": w2}, 0.5)
    assert m["a"].tolist() == [[False, True, True, False]]
    assert m["b"].tolist() == [[True, True], [False, False]]
    g = magnitude_masks({"a": w1, "b": w2}, 0.5, "global")  # keeps 4 of 8: 3.0, 2.0, 0.9, 0.5
    assert g["a"].tolist() == [[False, True, True, False]]
    assert g["b"].tolist() == [[True, True], [False, False]]
    g = magnitude_masks({"a": w1, "b": w2}, 0.75, "global")  # keeps 3.0 and 2.0
    assert not g["a"].any() and int(g["b"].sum()) == 2
    # entries outside ``allowed`` are never kept, however large
    allowed = {"a": torch.tensor([[True, False, True, True]]), "b": torch.ones(2, 2, dtype=torch.bool)}
    m = magnitude_masks({"a": w1, "b": w2}, 0.5, allowed=allowed)
    assert m["a"].tolist() == [[True, False, True, False]]


def test_select_parameters_default_override_and_error():
    model = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.LayerNorm(8), torch.nn.Linear(8, 2))
    assert [n for n, _ in select_parameters(model)] == ["0.weight", "2.weight"]
    assert [n for n, _ in select_parameters(model, "0.*")] == ["0.weight", "0.bias"]
    assert [n for n, _ in select_parameters(model, lambda n, p: n.startswith("2"))] == ["2.weight", "2.bias"]
    model[0].weight.requires_grad_(False)
    assert [n for n, _ in select_parameters(model)] == ["2.weight"]
    with pytest.raises(ConfigError, match="select"):
        select_parameters(model, "nothing*")
