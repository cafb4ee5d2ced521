r"""Paired statistics of two result documents: the difference, its confidence interval, p-values.

* Seeds (node tasks, OGB official splits): the runs of two variants share seed and split, so
  the per-seed differences :math:`d_i` are paired: Student's paired t-test,
  :math:`t = \bar d / (s_d / \sqrt{n})` with :math:`n - 1` degrees of freedom, and the
  Wilcoxon signed-rank test as a distribution-free check.
* Cross-validation folds: folds share most of their training data, so the fold differences
  are correlated and the plain t-test is far too confident. The corrected resampled t-test
  (Nadeau & Bengio, 2003; Bouckaert & Frank, 2004 for repeated CV) inflates the variance:
  :math:`t = \bar d / \sqrt{(1/n + n_{test}/n_{train})\, s_d^2}`, :math:`n - 1` degrees of
  freedom, :math:`n` the number of folds (times repeats). No Wilcoxon test is reported for
  folds (it assumes independent differences).
"""
from __future__ import annotations

import math
from typing import Any, Dict, Optional, Sequence

from scipy import stats as _st

__all__ = ["paired_ttest", "corrected_resampled_ttest", "wilcoxon_p", "paired_difference", "pair_runs",
           "cv_test_train_ratio", "is_cv", "higher_is_better", "LOWER_IS_BETTER"]

#: Metrics where a smaller value is better.
LOWER_IS_BETTER = ("rmse", "mae", "mse", "loss")


def higher_is_better(metric: str) -> bool:
    return str(metric).lower() not in LOWER_IS_BETTER


def is_cv(doc: Dict[str, Any]) -> bool:
    """Whether a result document comes from cross-validation folds (``cv`` or ``gin`` protocol)."""
    protocol = str(doc.get("protocol", ""))
    return protocol.startswith("cv") or protocol.startswith("gin") or any("fold" in r for r in doc.get("runs", []))


def _moments(diffs: Sequence[float]) -> tuple:
    n = len(diffs)
    mean = math.fsum(diffs) / n if n else math.nan
    sd = math.sqrt(math.fsum((d - mean) ** 2 for d in diffs) / (n - 1)) if n > 1 else math.nan
    return n, mean, sd


def _t_result(n: int, mean: float, sd: float, factor: float, confidence: float, name: str) -> Dict[str, Any]:
    """t statistic, two-sided p and CI for a mean difference with variance ``factor * sd^2``."""
    out: Dict[str, Any] = {"test": name, "n": n, "mean": mean, "std": sd, "df": n - 1 if n > 1 else None,
                           "se": math.nan, "t": math.nan, "p": math.nan, "ci_low": math.nan, "ci_high": math.nan,
                           "confidence": confidence, "note": ""}
    if n < 2:
        out["note"] = "needs at least 2 paired runs"
        return out
    se = math.sqrt(factor) * sd
    out["se"] = se
    if se == 0.0:  # every difference is the same number
        out.update(t=0.0 if mean == 0 else math.copysign(math.inf, mean), p=1.0 if mean == 0 else 0.0,
                   ci_low=mean, ci_high=mean, note="zero variance: every paired difference is identical")
        return out
    t = mean / se
    q = float(_st.t.ppf(0.5 + confidence / 2, n - 1))
    out.update(t=t, p=float(2 * _st.t.sf(abs(t), n - 1)), ci_low=mean - q * se, ci_high=mean + q * se)
    return out


def paired_ttest(diffs: Sequence[float], confidence: float = 0.95) -> Dict[str, Any]:
    r"""Student's paired t-test on differences :obj:`diffs` (variant − baseline).

    Returns:
        dict: ``test``, ``n``, ``mean``, ``std`` (unbiased), ``se`` = :math:`s_d/\sqrt n`, ``t``,
        ``df`` = :math:`n-1`, two-sided ``p``, the ``ci_low``/``ci_high`` of the mean difference
        at :obj:`confidence`, and a ``note`` for degenerate cases.
    """
    n, mean, sd = _moments([float(d) for d in diffs])
    return _t_result(n, mean, sd, 1.0 / n if n else math.nan, confidence, "paired t-test")


def corrected_resampled_ttest(diffs: Sequence[float], test_train_ratio: float,
                              confidence: float = 0.95) -> Dict[str, Any]:
    r"""The corrected resampled t-test of Nadeau & Bengio (2003) for cross-validation folds.

    The variance of the mean difference is :math:`(1/n + n_{test}/n_{train})\, s_d^2` instead of
    :math:`s_d^2/n`, with :math:`n` = the number of differences (folds × repeats).

    Args:
        diffs (sequence of float): per-fold differences (variant − baseline).
        test_train_ratio (float): :math:`n_{test}/n_{train}` of the folds (about
            :math:`1/(k-1)` for :math:`k`-fold CV).
        confidence (float): level of the confidence interval. (default: :obj:`0.95`)
    """
    if not (test_train_ratio > 0 and math.isfinite(test_train_ratio)):
        raise ValueError(f"test_train_ratio must be a finite number > 0, got {test_train_ratio!r}")
    n, mean, sd = _moments([float(d) for d in diffs])
    out = _t_result(n, mean, sd, (1.0 / n + test_train_ratio) if n else math.nan, confidence,
                    "corrected resampled t-test (Nadeau & Bengio 2003)")
    out["test_train_ratio"] = test_train_ratio
    return out


def wilcoxon_p(diffs: Sequence[float]) -> Optional[float]:
    """Two-sided p-value of the Wilcoxon signed-rank test (``None`` when undefined: < 2 nonzero diffs)."""
    diffs = [float(d) for d in diffs]
    if sum(1 for d in diffs if d != 0) < 2:
        return None
    try:
        return float(_st.wilcoxon(diffs, alternative="two-sided").pvalue)
    except ValueError:  # pragma: no cover - scipy refuses degenerate inputs
        return None


def paired_difference(baseline: Sequence[float], variant: Sequence[float], *,
                      test_train_ratio: Optional[float] = None, metric: str = "acc",
                      confidence: float = 0.95) -> Dict[str, Any]:
    r"""Compare paired scores: ``variant - baseline`` with CI, p-value and a verdict.

    Args:
        baseline, variant (sequence of float): scores of the same seeds/folds, in the same order.
        test_train_ratio (float, optional): for cross-validation folds, :math:`n_{test}/n_{train}`;
            selects :func:`corrected_resampled_ttest` (no Wilcoxon). ``None``: independent seeds,
            :func:`paired_ttest` and :func:`wilcoxon_p`.
        metric (str): the metric's name (``rmse``/``mae`` are lower-is-better).
        confidence (float): the CI level; the verdict uses the matching two-sided test.

    Returns:
        dict: the t-test's fields plus ``wilcoxon_p`` and ``verdict`` (``"better"``,
        ``"worse"`` or ``"no significant difference"`` for the variant).
    """
    if len(baseline) != len(variant):
        raise ValueError(f"paired scores need equal lengths, got {len(baseline)} and {len(variant)}")
    diffs = [float(v) - float(b) for b, v in zip(baseline, variant)]
    if test_train_ratio is None:
        out = paired_ttest(diffs, confidence)
        out["wilcoxon_p"] = wilcoxon_p(diffs)
    else:
        out = corrected_resampled_ttest(diffs, test_train_ratio, confidence)
        out["wilcoxon_p"] = None
    out["diffs"] = diffs
    out["higher_is_better"] = higher_is_better(metric)
    verdict = "no significant difference"
    if out["n"] < 2:
        verdict = "too few runs"
    elif out["ci_low"] > 0 or out["ci_high"] < 0:  # the CI excludes 0 (NaN compares False)
        improved = (out["mean"] > 0) == out["higher_is_better"]
        verdict = "better" if improved else "worse"
    out["verdict"] = verdict
    return out


def cv_test_train_ratio(doc: Dict[str, Any]) -> Optional[float]:
    r"""Mean :math:`n_{test}/n_{train}` over the folds of a cross-validation result document.

    The document's ``splits`` list (written by the runner) holds each fold's validation and
    test indices; the dataset size is the union of the test folds of one repeat, and
    :math:`n_{train}` = size − |valid ∪ test| (the graphs the model was fitted on). ``None``
    when the document has no splits.
    """
    splits = doc.get("splits")
    if not splits:
        return None
    first = str(splits[0]["key"]).split("_")[0]
    universe = set()
    for s in splits:
        if str(s["key"]).split("_")[0] == first:
            universe.update(s["test"])
    ratios = []
    for s in splits:
        test = set(s["test"])
        train = len(universe) - len(test | set(s["valid"]))
        if train <= 0:
            return None
        ratios.append(len(test) / train)
    return math.fsum(ratios) / len(ratios)


def pair_runs(baseline_doc: Dict[str, Any], variant_doc: Dict[str, Any], key: str = "test") -> Dict[str, Any]:
    r"""Match the runs of two result documents by their ``key`` (``run3``, ``repeat0_fold4``).

    Returns:
        dict: ``keys``, ``baseline`` and ``variant`` (the paired scores, non-finite pairs
        dropped), ``excluded`` (keys dropped: diverged or NaN), ``unpaired`` (keys present in
        only one document), ``same_seeds`` and ``same_splits`` (``None`` for seed runs, whose
        split follows the seed).
    """
    def by_key(doc: Dict[str, Any]) -> Dict[str, Dict[str, Any]]:
        return {str(r.get("key", i)): r for i, r in enumerate(doc.get("runs", []))}

    a, b = by_key(baseline_doc), by_key(variant_doc)
    common = [k for k in a if k in b]
    out: Dict[str, Any] = {"keys": [], "baseline": [], "variant": [], "excluded": [],
                           "unpaired": sorted(set(a) ^ set(b))}
    out["same_seeds"] = all(a[k].get("seed") == b[k].get("seed") for k in common)
    splits_a = {s["key"]: (s["valid"], s["test"]) for s in baseline_doc.get("splits") or []}
    splits_b = {s["key"]: (s["valid"], s["test"]) for s in variant_doc.get("splits") or []}
    out["same_splits"] = (all(splits_a.get(k) == splits_b.get(k) for k in common)
                          if (splits_a or splits_b) else None)
    for k in common:
        x, y = a[k].get(key, math.nan), b[k].get(key, math.nan)
        if not (isinstance(x, (int, float)) and isinstance(y, (int, float)) and math.isfinite(x) and math.isfinite(y)):
            out["excluded"].append(k)
            continue
        out["keys"].append(k)
        out["baseline"].append(float(x))
        out["variant"].append(float(y))
    return out

