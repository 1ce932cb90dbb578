"""Drift math against distributions with known answers."""

import numpy as np
import pandas as pd
import pytest

from unified_assets.lib import drift

POLICY = drift.DriftPolicy()


def _normal(mean: float, n: int = 5000, seed: int = 1) -> pd.Series:
    return pd.Series(np.random.default_rng(seed).normal(mean, 1.0, n))


def test_identical_distribution_has_psi_near_zero_and_no_ks_rejection():
    profile = drift.numeric_profile(_normal(0.0, seed=1))
    same = _normal(0.0, seed=2)
    assert drift.numeric_psi(profile, same) < 0.02
    statistic, p = drift.ks_test(profile, same)
    assert statistic < 0.04 and p > 0.01


@pytest.mark.parametrize("n", [200, 1_000, 1_001, 6_000])
@pytest.mark.parametrize("statistic", [0.01, 0.03, 0.06])
def test_ks_pvalue_matches_the_exact_distribution(n, statistic):
    from scipy import stats

    exact = stats.kstwo.sf(statistic, n)
    assert drift.ks_pvalue(statistic, n) == pytest.approx(exact, rel=0.05, abs=1e-12)


def test_shifted_distribution_crosses_the_threshold_and_ks_rejects():
    profile = drift.numeric_profile(_normal(0.0))
    shifted = _normal(1.0, seed=3)
    value = drift.numeric_psi(profile, shifted)
    assert value > POLICY.psi_threshold
    # A one-sigma shift: PSI over deciles is known to be about 1.0 (well past 0.2).
    assert 0.6 < value < 1.6
    statistic, p = drift.ks_test(profile, shifted)
    assert statistic == pytest.approx(0.38, abs=0.03)  # Φ(0.5) − Φ(−0.5)
    assert p < 1e-10


def test_psi_formula_on_hand_computed_bins():
    expected = np.array([0.5, 0.5])
    actual = np.array([0.25, 0.75])
    hand = (0.25 - 0.5) * np.log(0.25 / 0.5) + (0.75 - 0.5) * np.log(0.75 / 0.5)
    assert drift.psi(expected, actual) == pytest.approx(hand)
    assert drift.psi(expected, expected) == 0.0


def test_missing_values_are_a_bin_of_their_own():
    profile = drift.numeric_profile(_normal(0.0))
    with_nulls = _normal(0.0, seed=4).mask(lambda s: s.index % 2 == 0)
    assert drift.numeric_psi(profile, with_nulls) > POLICY.psi_threshold


def test_categorical_psi_and_unseen_categories():
    reference = pd.Series(["JFK"] * 500 + ["LGA"] * 300 + ["EWR"] * 200)
    profile = drift.categorical_profile(reference)
    assert drift.categorical_psi(profile, reference.sample(frac=1, random_state=1)) < 1e-9
    moved = pd.Series(["JFK"] * 200 + ["LGA"] * 300 + ["EWR"] * 500)
    assert drift.categorical_psi(profile, moved) > POLICY.psi_threshold
    # A value never seen in training goes to the pooled "other" bin and counts as drift.
    unseen = pd.Series(["SJU"] * 600 + ["JFK"] * 400)
    assert drift.categorical_psi(profile, unseen) > 1.0


def test_day_drift_flags_a_day_when_predictions_or_many_features_move():
    rng = np.random.default_rng(7)
    train = pd.DataFrame({"a": rng.normal(0, 1, 4000), "b": rng.normal(5, 2, 4000),
                          "c": rng.choice(["x", "y"], 4000),
                          "day_of_week": rng.integers(1, 8, 4000)})  # fmt: skip
    reference = drift.reference_profile(train, ["a", "b", "c", "day_of_week"], ["c"],
                                        rng.uniform(0, 1, 4000))  # fmt: skip
    calm = pd.DataFrame({"a": rng.normal(0, 1, 900), "b": rng.normal(5, 2, 900),
                         "c": rng.choice(["x", "y"], 900), "day_of_week": 3})  # fmt: skip
    summary, rows = drift.day_drift(reference, calm, rng.uniform(0, 1, 900), POLICY)
    assert not summary["is_drift"] and summary["drifted_features"] == 0
    # one weekday against all seven: the calendar is not drift, and is not watched
    assert [r["feature"] for r in rows] == ["a", "b", "c"]
    one = calm.assign(a=calm["a"] + 2.0)
    summary, rows = drift.day_drift(reference, one, rng.uniform(0, 1, 900), POLICY)
    assert not summary["is_drift"] and summary["drifted_features"] == 1  # 1 of 3 is not half
    assert summary["top_features"][0].startswith("a=")
    two = one.assign(b=calm["b"] * 3)
    summary, rows = drift.day_drift(reference, two, rng.uniform(0, 1, 900), POLICY)
    assert summary["is_drift"] and summary["drifted_features"] == 2
    summary, _ = drift.day_drift(reference, calm, rng.uniform(0.6, 1, 900), POLICY)
    assert summary["is_drift"] and summary["prediction_psi"] > POLICY.prediction_psi
