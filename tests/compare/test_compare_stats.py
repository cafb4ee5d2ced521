"""Paired statistics against hand computations on fixed numbers."""
import math

import pytest
from scipy import stats

from pyg_ham.compare.stats import (
    corrected_resampled_ttest,
    cv_test_train_ratio,
    pair_runs,
    paired_difference,
    paired_ttest,
    wilcoxon_p,
)

BASE = [0.80, 0.81, 0.79, 0.83, 0.80]
DIFFS = [0.02, 0.01, 0.03, -0.01, 0.02]
VAR = [b + d for b, d in zip(BASE, DIFFS)]
T_975_DF4 = 2.7764451051977987  # Student t quantile, 4 degrees of freedom (tables: 2.776)


def t_cdf_df4(t):
    """Closed form of Student's t CDF for 4 degrees of freedom."""
    x = t / math.sqrt(4 + t * t)
    return 0.5 + 0.75 * x - 0.25 * x ** 3


def test_paired_ttest_by_hand():
    # mean 0.014; squared deviations 3.6e-5, 1.6e-5, 2.56e-4, 5.76e-4, 3.6e-5 -> s^2 = 9.2e-4 / 4
    s2 = 9.2e-4 / 4
    se = math.sqrt(s2 / 5)
    t = 0.014 / se
    r = paired_ttest(DIFFS)
    assert r["n"] == 5 and r["df"] == 4
    assert r["mean"] == pytest.approx(0.014, abs=1e-15)
    assert r["std"] == pytest.approx(math.sqrt(s2), rel=1e-12)
    assert r["t"] == pytest.approx(t, rel=1e-12)
    assert r["t"] == pytest.approx(2.06419, abs=1e-5)
    assert r["p"] == pytest.approx(2 * (1 - t_cdf_df4(t)), rel=1e-9)
    assert r["ci_low"] == pytest.approx(0.014 - T_975_DF4 * se, rel=1e-9)
    assert r["ci_high"] == pytest.approx(0.014 + T_975_DF4 * se, rel=1e-9)
    # and SciPy's own paired test agrees
    ref = stats.ttest_rel(VAR, BASE)
    assert r["t"] == pytest.approx(ref.statistic, rel=1e-9) and r["p"] == pytest.approx(ref.pvalue, rel=1e-9)


def test_corrected_resampled_ttest_by_hand():
    # 5 folds, n_test / n_train = 20 / 80: variance (1/5 + 0.25) * s^2 instead of s^2 / 5
    s2 = 9.2e-4 / 4
    t = 0.014 / math.sqrt((1 / 5 + 20 / 80) * s2)
    assert t == pytest.approx(1.37612, abs=1e-5)
    r = corrected_resampled_ttest(DIFFS, 20 / 80)
    assert r["t"] == pytest.approx(t, rel=1e-12)
    assert r["df"] == 4
    assert r["p"] == pytest.approx(2 * (1 - t_cdf_df4(t)), rel=1e-9)
    half = T_975_DF4 * math.sqrt((1 / 5 + 0.25) * s2)
    assert (r["ci_low"], r["ci_high"]) == (pytest.approx(0.014 - half), pytest.approx(0.014 + half))
    # the correction makes the test more conservative than the plain paired t-test
    assert r["p"] > paired_ttest(DIFFS)["p"]
    with pytest.raises(ValueError):
        corrected_resampled_ttest(DIFFS, 0.0)


def test_wilcoxon_exact_by_hand():
    # |d| ranks 1..5, only -0.02 (rank 2) negative: W- = 2; P(W <= 2) = 3/32 (subsets {}, {1}, {2})
    assert wilcoxon_p([0.05, 0.01, 0.03, -0.02, 0.04]) == pytest.approx(2 * 3 / 32)
    assert wilcoxon_p([0.0, 0.0, 0.01]) is None


def test_paired_difference_verdicts_and_direction():
    better = paired_difference([0.5, 0.6, 0.7, 0.55], [0.6, 0.71, 0.79, 0.66])
    assert better["verdict"] == "better" and better["ci_low"] > 0 and better["wilcoxon_p"] is not None
    worse = paired_difference([0.6, 0.71, 0.79, 0.66], [0.5, 0.6, 0.7, 0.55])
    assert worse["verdict"] == "worse"
    # for RMSE lower is better: a negative difference is an improvement
    assert paired_difference([0.6, 0.71, 0.79, 0.66], [0.5, 0.6, 0.7, 0.55], metric="rmse")["verdict"] == "better"
    assert paired_difference(BASE, VAR)["verdict"] == "no significant difference"
    assert paired_difference([0.5], [0.6])["verdict"] == "too few runs"
    cv = paired_difference(BASE, VAR, test_train_ratio=0.25)
    assert cv["wilcoxon_p"] is None and cv["test"].startswith("corrected resampled")
    same = paired_difference([0.5, 0.6], [0.5, 0.6])
    assert same["p"] == 1.0 and same["verdict"] == "no significant difference"
    with pytest.raises(ValueError):
        paired_difference([1, 2], [1])


def test_cv_ratio_from_splits():
    # 10 graphs, 2 folds: test 5, valid 1 -> the model trains on 4
    doc = {"splits": [{"key": "repeat0_fold0", "test": [0, 1, 2, 3, 4], "valid": [5]},
                      {"key": "repeat0_fold1", "test": [5, 6, 7, 8, 9], "valid": [0]}]}
    assert cv_test_train_ratio(doc) == pytest.approx(5 / 4)
    assert cv_test_train_ratio({"runs": []}) is None


def test_pair_runs_by_key_and_checks():
    a = {"runs": [{"key": "run0", "seed": 0, "test": 0.5}, {"key": "run1", "seed": 1, "test": 0.6},
                  {"key": "run2", "seed": 2, "test": 0.7}]}
    b = {"runs": [{"key": "run1", "seed": 1, "test": 0.65}, {"key": "run0", "seed": 0, "test": float("nan")},
                  {"key": "run2", "seed": 2, "test": 0.75}, {"key": "run3", "seed": 3, "test": 0.9}]}
    p = pair_runs(a, b)
    assert p["keys"] == ["run1", "run2"] and p["baseline"] == [0.6, 0.7] and p["variant"] == [0.65, 0.75]
    assert p["excluded"] == ["run0"] and p["unpaired"] == ["run3"]
    assert p["same_seeds"] is True and p["same_splits"] is None
    b["runs"][0]["seed"] = 7
    assert pair_runs(a, b)["same_seeds"] is False
