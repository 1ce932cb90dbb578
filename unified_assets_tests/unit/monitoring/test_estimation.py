"""The label-free performance estimate (CBPE) and its place in monitoring, without Dagster."""

from datetime import date, timedelta

import duckdb
import numpy as np
import pytest

from unified_assets.lib.models import evaluation, specs
from unified_assets.lib.monitoring import estimation, model_health
from unified_assets_tests.support.synthetic import monitor_four_days, sample


def test_calibrated_probabilities_give_the_realized_auc_at_large_n():
    p, y = sample(200_000, seed=1)
    assert estimation.expected_auc(p, p) == pytest.approx(evaluation.auc(y, p), abs=0.01)
    # Through the stored estimator, fitted on another sample of the same process, and on a
    # day whose flights are riskier and more alike (the inputs moved, and with them the AUC;
    # what a score means did not).
    valid_p, valid_y = sample(50_000, seed=2)
    estimator = estimation.fit_estimator("binary", valid_y, valid_p)
    day_p, day_y = sample(200_000, seed=3, shift=0.7, spread=0.5)
    estimate = estimation.estimate(estimator, day_p)
    assert estimate["metric"] == "auc" and estimate["rows"] == 200_000
    assert estimate["value"] == pytest.approx(evaluation.auc(day_y, day_p), abs=0.01)
    assert evaluation.auc(y, p) - evaluation.auc(day_y, day_p) > 0.05


def test_a_miscalibrated_but_ordered_score_is_estimated_through_its_calibration():
    p, y = sample(50_000, seed=4)
    score = p**3  # same order, far from the rate of positives
    estimator = estimation.fit_estimator("binary", y, score)
    day_p, day_y = sample(200_000, seed=5, shift=-0.5)
    realized = evaluation.auc(day_y, day_p**3)
    assert estimation.estimate(estimator, day_p**3)["value"] == pytest.approx(realized, abs=0.01)
    # Taking the raw score for a probability would be far off.
    assert abs(estimation.expected_auc(day_p**3, day_p**3) - realized) > 0.03


def test_isotonic_calibration_is_monotone_and_improves_the_brier_score():
    p, y = sample(20_000, seed=6)
    score = np.clip(p**3 + 0.05, 0, 1)
    calibration = estimation.isotonic_fit(score, y)
    assert np.all(np.diff(calibration["x"]) > 0) and np.all(np.diff(calibration["p"]) >= 0)
    grid = np.linspace(-0.5, 1.5, 2001)
    assert np.all(np.diff(estimation.isotonic_apply(calibration, grid)) >= 0)
    new_p, new_y = sample(20_000, seed=7)
    new_score = np.clip(new_p**3 + 0.05, 0, 1)
    raw = evaluation.brier(new_y, new_score)
    calibrated = evaluation.brier(new_y, estimation.isotonic_apply(calibration, new_score))
    assert calibrated < raw - 0.01
    assert calibrated == pytest.approx(evaluation.brier(new_y, new_p), abs=0.002)


def test_pool_adjacent_violators_on_a_small_case():
    fitted = estimation.isotonic_fit(np.array([1.0, 2, 3, 4, 4]), np.array([1.0, 0, 1, 0, 1]))
    # (1: 1) and (2: 0) violate: pooled to 0.5; 3 then 4 (1, then 0.5) pool to 2/3.
    assert fitted["x"] == [1.0, 2.0, 3.0, 4.0]
    assert fitted["p"] == pytest.approx([0.5, 0.5, 2 / 3, 2 / 3], abs=1e-6)
    assert estimation.isotonic_apply(fitted, np.array([0.0, 2.5, 9.0])) == pytest.approx(
        [0.5, (0.5 + 2 / 3) / 2, 2 / 3], abs=1e-6)


def test_expected_auc_of_simple_cases():
    assert estimation.expected_auc(np.array([2.0, 1.0]), np.array([1.0, 0.0])) == 1.0
    assert estimation.expected_auc(np.array([1.0, 2.0]), np.array([1.0, 0.0])) == 0.0
    assert estimation.expected_auc(np.ones(5), np.full(5, 0.3)) == pytest.approx(0.5)
    assert np.isnan(estimation.expected_auc(np.array([1.0, 2.0]), np.zeros(2)))


def test_no_estimator_for_a_regressor_or_a_thin_window_and_no_estimate_without_one():
    p, y = sample(1_000, seed=8)
    assert estimation.fit_estimator("regression", y, p) is None
    assert estimation.fit_estimator("binary", y[:100], p[:100]) is None
    assert estimation.fit_estimator("binary", np.zeros(1_000), p) is None
    assert estimation.estimate(None, p) is None
    estimator = estimation.fit_estimator("binary", y, p)
    assert estimation.estimate(estimator, np.array([np.nan])) is None
    assert estimator["validation"]["rows"] == 1_000
    assert estimator["validation"]["auc"] == pytest.approx(evaluation.auc(y, p), abs=1e-6)


def test_the_estimator_is_stored_beside_its_model_once(tmp_path):
    sha = "ab" * 32
    p, y = sample(1_000, seed=9)
    estimator = estimation.fit_estimator("binary", y, p)
    assert estimation.load_estimator(tmp_path, sha) is None
    assert estimation.save_estimator(tmp_path, sha, estimator)
    assert estimation.estimator_path(tmp_path, sha).name == f"{sha}.estimator.json"
    assert estimation.load_estimator(tmp_path, sha) == estimator
    assert not estimation.save_estimator(tmp_path, sha, {"method": "other"})  # never rewritten
    assert estimation.load_estimator(tmp_path, sha) == estimator
    assert not estimation.save_estimator(tmp_path, "cd" * 32, None)
    with pytest.raises(ValueError, match="not a sha256"):
        estimation.load_estimator(tmp_path, "../x")


def test_monitoring_records_the_estimate_of_each_scored_day_beside_the_realized_one():
    """The retraining sensor's reading of these days is in system/monitoring/test_sensors.py."""
    spec = specs.DELAY_CLASSIFIER
    conn = duckdb.connect()
    monitored = monitor_four_days(conn)
    first, scored, flights = monitored["first"], monitored["scored"], monitored["flights"]
    measured, asked = monitored["measured"], monitored["asked"]
    assert [m["estimate"] is None for m in measured] == [True, True, False, False]
    assert set(asked) == {"old", "new"}
    recorded = model_health.estimates(conn, spec.name)
    assert [d.date() for d in recorded["day"]] == [first + timedelta(days=2),
                                                   first + timedelta(days=3)]
    assert set(recorded["model_version"]) == {"new"} and set(recorded["rows"]) == {3_000}
    for row in recorded.itertuples():
        day = scored[(row.day.date() - first).days]
        y = flights[(row.day.date() - first).days]["is_late_15"].to_numpy(dtype=float)
        assert row.value == pytest.approx(evaluation.auc(y, day["prediction"]), abs=0.03)
    perf = conn.execute("SELECT day, scored_day, value, estimated_value FROM "
                        "monitoring.performance_daily ORDER BY day").df()
    assert [d.date() for d in perf["scored_day"]] == [date(2013, 3, 31), first,
                                                      first + timedelta(1), first + timedelta(2)]
    assert perf["estimated_value"].isna().tolist() == [True, True, True, False]
    last = perf.iloc[-1]
    assert last["estimated_value"] == pytest.approx(recorded["value"].iloc[0], abs=1e-9)
    assert last["estimated_value"] == pytest.approx(last["value"], abs=0.03)
