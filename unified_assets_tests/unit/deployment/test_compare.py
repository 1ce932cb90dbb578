"""Champion against challenger with statistics (no Dagster): DeLong's test against brute force,
the paired bootstrap against a plain loop, and the non-inferiority decision on constructed
cases."""

from __future__ import annotations

import math

import numpy as np
import pytest

from unified_assets.lib.deployment import compare
from unified_assets.lib.models import evaluation


def classifier_case(n: int = 4_000, seed: int = 3, noise: tuple[float, float] = (0.6, 0.6)):
    """Labels and two correlated scores: both read one signal, each with its own noise.
    Rounded, so that scores tie."""
    rng = np.random.default_rng(seed)
    y = (rng.random(n) < 0.25).astype(float)
    signal = y + rng.normal(0, 1.0, n)
    a, b = (np.round(signal + rng.normal(0, s, n), 2) for s in noise)
    return y, a, b


def regression_case(n: int = 3_000, seed: int = 5, noise: tuple[float, float] = (8.0, 8.0)):
    rng = np.random.default_rng(seed)
    y = rng.gamma(2.0, 10.0, n)
    a, b = (y + rng.normal(0, s, n) for s in noise)
    return y, a, b


def brute_force_delong(y, a, b) -> tuple[float, float]:
    """AUCs' difference and its standard error from the pairwise definition, O(m * n)."""
    pos, neg = y == 1, y == 0
    v10, v01 = [], []
    for s in (a, b):
        kernel = (s[pos][:, None] > s[neg][None, :]) + 0.5 * (s[pos][:, None] == s[neg][None, :])
        v10.append(kernel.mean(axis=1))
        v01.append(kernel.mean(axis=0))
    variance = (np.var(v10[0] - v10[1], ddof=1) / pos.sum()
                + np.var(v01[0] - v01[1], ddof=1) / neg.sum())
    return float(v10[0].mean() - v10[1].mean()), math.sqrt(variance)


def test_delong_matches_the_pairwise_definition_and_the_plain_auc():
    y, a, b = classifier_case(n=600, noise=(0.5, 0.9))
    test = compare.delong(y, a, b)
    assert test.auc_a == pytest.approx(evaluation.auc(y, a), abs=1e-12)
    assert test.auc_b == pytest.approx(evaluation.auc(y, b), abs=1e-12)
    assert test.difference == pytest.approx(evaluation.auc(y, a) - evaluation.auc(y, b),
                                            abs=1e-12)
    difference, se = brute_force_delong(y, a, b)
    assert test.difference == pytest.approx(difference, abs=1e-12)
    assert test.se == pytest.approx(se, rel=1e-9)
    assert test.positives + test.negatives == 600 and 0 < test.p_value < 1


def test_delong_agrees_with_a_brute_force_bootstrap():
    y, a, b = classifier_case(n=3_000, noise=(0.55, 0.7))
    test = compare.delong(y, a, b)
    rng = np.random.default_rng(11)
    diffs = []
    for _ in range(600):
        i = rng.integers(0, len(y), len(y))
        diffs.append(evaluation.auc(y[i], a[i]) - evaluation.auc(y[i], b[i]))
    assert np.std(diffs, ddof=1) == pytest.approx(test.se, rel=0.15)
    assert np.mean(diffs) == pytest.approx(test.difference, abs=test.se / 3)
    # and the one-sided 95% bounds of the two methods agree to a fraction of the spread
    ni = compare.non_inferiority("binary", y, a, b, margin=0.01)
    assert ni.lower == pytest.approx(np.quantile(diffs, 0.05), abs=0.35 * test.se)
    assert ni.upper == pytest.approx(np.quantile(diffs, 0.95), abs=0.35 * test.se)


@pytest.mark.parametrize("metric", ["auc", "mae"])
def test_the_vectorized_bootstrap_equals_a_plain_loop_over_the_same_draws(metric):
    y, a, b = classifier_case(n=800) if metric == "auc" else regression_case(n=800)
    score = evaluation.auc if metric == "auc" else evaluation.mae
    interval = compare.paired_bootstrap(y, a, b, metric, replicates=300, seed=42)
    rng = np.random.default_rng(42)
    idx = rng.integers(0, len(y), size=(300, len(y)))  # one draw of rows per replicate
    sign = 1 if metric == "auc" else -1
    diffs = [sign * (score(y[i], a[i]) - score(y[i], b[i])) for i in idx]
    lower, upper = np.quantile(diffs, [0.05, 0.95])
    assert interval.lower == pytest.approx(lower, abs=1e-12)
    assert interval.upper == pytest.approx(upper, abs=1e-12)
    assert interval.difference == pytest.approx(sign * (score(y, a) - score(y, b)), abs=1e-12)
    assert interval.valid_replicates == interval.replicates == 300


def test_a_callable_metric_resamples_the_same_rows():
    y, a, b = regression_case(n=500)
    by_name = compare.paired_bootstrap(y, a, b, "mae", replicates=200, seed=1)
    by_callable = compare.paired_bootstrap(y, a, b, evaluation.mae, replicates=200, seed=1,
                                           higher_is_better=False)
    assert by_callable.lower == pytest.approx(by_name.lower, abs=1e-12)
    assert by_callable.metric == "mae"
    with pytest.raises(ValueError, match="higher_is_better"):
        compare.paired_bootstrap(y, a, b, evaluation.mae)


def test_the_paired_bootstrap_is_deterministic_for_a_seed():
    y, a, b = regression_case()
    first = compare.paired_bootstrap(y, a, b, "mae", seed=7)
    assert compare.paired_bootstrap(y, a, b, "mae", seed=7) == first
    other = compare.paired_bootstrap(y, a, b, "mae", seed=8)
    assert other.lower != first.lower and other.difference == first.difference
    assert first.replicates == compare.REPLICATES == 1_000
    with pytest.raises(ValueError, match="replicates"):
        compare.paired_bootstrap(y, a, b, replicates=compare.MAX_REPLICATES + 1)


@pytest.mark.parametrize(("task", "case", "margin"),
                         [("binary", classifier_case, 0.01), ("regression", regression_case, 0.5),
                          ("forecast", regression_case, 2.0)])
def test_identical_models_are_non_inferior(task, case, margin):
    y, a, _ = case()
    result = compare.non_inferiority(task, y, a, a.copy(), margin=margin)
    assert result.difference == 0 and result.lower == pytest.approx(0, abs=1e-12)
    assert result.lower >= -margin and result.promote
    assert result.method == ("delong" if task == "binary" else "paired_bootstrap")
    assert result.n == len(y) and result.margin == margin and result.confidence == 0.95
    assert (result.p_value == 0.0) if task == "binary" else result.p_value is None


def test_a_clearly_worse_classifier_is_rejected():
    y, good, worse = classifier_case(noise=(0.5, 2.5))
    result = compare.non_inferiority("binary", y, worse, good, margin=0.01)
    assert result.difference < -0.05  # challenger minus champion: negative, it is worse
    assert result.difference == pytest.approx(
        evaluation.auc(y, worse) - evaluation.auc(y, good), abs=1e-12)
    assert result.upper < -0.01 and not result.promote and result.p_value > 0.99
    assert result.width == pytest.approx(result.upper - result.lower)
    # the other way round: the better challenger passes, with a small p-value
    better = compare.non_inferiority("binary", y, good, worse, margin=0.01)
    assert better.promote and better.lower > 0 and better.p_value < 1e-6


def test_a_clearly_worse_regressor_is_rejected_and_the_orientation_is_better_is_positive():
    y, good, worse = regression_case(noise=(6.0, 12.0))
    result = compare.non_inferiority("regression", y, worse, good, margin=0.5)
    assert result.challenger == pytest.approx(evaluation.mae(y, worse))
    assert result.difference == pytest.approx(evaluation.mae(y, good) - evaluation.mae(y, worse))
    assert result.difference < -1 and result.lower < -0.5 and not result.promote
    better = compare.non_inferiority("regression", y, good, worse, margin=0.5)
    assert better.difference > 1 and better.lower > 0 and better.promote


def test_a_slightly_worse_model_within_the_margin_passes_and_beyond_it_does_not():
    y, a, _ = regression_case(n=5_000, noise=(8.0, 8.0))
    shifted = a + 0.05  # a hair worse, well inside a 0.5-minute margin
    assert compare.non_inferiority("regression", y, shifted, a, margin=0.5).promote
    assert not compare.non_inferiority("regression", y, shifted, a, margin=0.0).promote


def test_a_short_window_is_flagged_and_its_interval_is_wide():
    y, good, worse = classifier_case(n=20_000, noise=(0.6, 0.65))
    long = compare.non_inferiority("binary", y, worse, good, margin=0.01)
    short = compare.non_inferiority("binary", y[:500], worse[:500], good[:500], margin=0.01)
    assert long.enough_rows and not short.enough_rows and short.min_rows == 2_000
    assert short.width > 3 * long.width
    days = compare.non_inferiority("forecast", *regression_case(n=20), margin=2.0)
    assert not days.enough_rows and days.min_rows == 28 and days.replicates == 1_000


def test_what_cannot_be_compared_says_why():
    y, a, b = classifier_case(n=100)
    assert compare.cannot_compare("binary", y, a, b) is None
    assert "AUC needs at least two of each" in compare.cannot_compare("binary", np.zeros(50))
    with_gap = b.copy()
    with_gap[3] = np.nan
    assert compare.cannot_compare("binary", y, a, with_gap) == "no prediction for 1 of the 100 " \
        "test rows"
    with pytest.raises(ValueError, match="cannot compare"):
        compare.non_inferiority("binary", np.ones(50), a[:50], b[:50], margin=0.01)
    with pytest.raises(ValueError, match="margin"):
        compare.non_inferiority("binary", y, a, b, margin=-0.01)
    with pytest.raises(ValueError, match="confidence"):
        compare.non_inferiority("binary", y, a, b, margin=0.01, confidence=1.0)
    with pytest.raises(ValueError, match="unknown task"):
        compare.non_inferiority("ranking", y, a, b, margin=0.01)


def test_a_comparison_round_trips_through_a_dict():
    result = compare.non_inferiority("binary", *classifier_case(n=500), margin=0.01)
    assert compare.Comparison.from_dict(result.as_dict() | {"later_field": 1}) == result
    with pytest.raises(ValueError, match="lacks"):
        compare.Comparison.from_dict({"task": "binary"})
