"""The retraining decision and the trailing windows, without Dagster."""

from datetime import date, timedelta

import pytest

from unified_assets.lib import models
from unified_assets.lib.retraining import DayHealth, RetrainPolicy, decide

POLICY = RetrainPolicy(drift_days=3, performance_days=7, min_performance_days=4, cooldown_days=14)
D0 = date(2013, 5, 1)


def days(flags: list[bool], version: str = "v1", realized: float | None = 0.75,
         start: date = D0) -> list[DayHealth]:  # fmt: skip
    return [
        DayHealth(start + timedelta(days=i), version, flag, 0.3 if flag else 0.05,
                  0.4 if flag else 0.0, realized, 900)
        for i, flag in enumerate(flags)
    ]  # fmt: skip


def auc_decision(history, last=None, busy=False):
    return decide(history, POLICY, floor=0.70, higher_is_better=True, last_retrain=last,
                  in_progress=busy)  # fmt: skip


def test_persistent_drift_triggers_with_its_evidence():
    decision = auc_decision(days([False, True, True, True]))
    assert decision.retrain and decision.reason == "drift"
    assert decision.evidence["days"] == ["2013-05-02", "2013-05-03", "2013-05-04"]
    assert decision.evidence["prediction_psi"] == [0.3, 0.3, 0.3]


def test_a_short_or_broken_streak_does_not():
    assert not auc_decision(days([True, True])).retrain
    assert not auc_decision(days([True, True, False, True, True])).retrain


def test_a_new_model_version_starts_a_new_streak():
    history = days([True, True], version="old") + days([True, True], "new", start=D0 + timedelta(2))
    decision = auc_decision(history)
    assert not decision.retrain and "drift streak 2" in decision.message


def test_cooldown_and_one_at_a_time_win_over_drift():
    history = days([True] * 5)
    latest = history[-1].day
    cooling = auc_decision(history, last=latest - timedelta(days=13))
    assert not cooling.retrain and "cooling down" in cooling.message
    assert auc_decision(history, last=latest - timedelta(days=14)).retrain
    busy = auc_decision(history, busy=True)
    assert not busy.retrain and "already queued or running" in busy.message


def test_realized_performance_below_the_floor_triggers():
    decision = auc_decision(days([False] * 7, realized=0.66))
    assert decision.retrain and decision.reason == "performance"
    assert decision.evidence["realized"] == pytest.approx(0.66)
    assert not auc_decision(days([False] * 7, realized=0.71)).retrain
    # too few matured days for a verdict
    assert not auc_decision(days([False] * 3, realized=0.5)).retrain


def test_for_an_error_metric_the_floor_is_a_ceiling():
    history = days([False] * 7, realized=35.0)
    decision = decide(history, POLICY, floor=30.0, higher_is_better=False, last_retrain=None,
                      in_progress=False)  # fmt: skip
    assert decision.retrain and decision.reason == "performance"
    ok = decide(days([False] * 7, realized=20.0), POLICY, 30.0, False, None, False)
    assert not ok.retrain


def test_trailing_windows_end_with_the_as_of_day(monkeypatch):
    spec = models.DELAY_CLASSIFIER
    w = spec.windows(date(2013, 6, 30))
    assert w["test"] == (date(2013, 6, 17), date(2013, 7, 1))
    assert w["valid"] == (date(2013, 6, 3), date(2013, 6, 17))
    assert w["train"] == (date(2013, 3, 5), date(2013, 6, 3))
    # early in the year the training window starts at the first day
    assert spec.windows(date(2013, 2, 28))["train"] == (date(2013, 1, 1), date(2013, 2, 1))
    assert spec.windows(None)["test"] == spec.test
    short = models.Rolling.parse("14,7,7")
    assert spec.windows(date(2013, 1, 28), short)["train"] == (date(2013, 1, 1), date(2013, 1, 15))
    with pytest.raises(ValueError, match="no training days"):
        spec.windows(date(2013, 1, 10), short)
    assert models.Rolling.parse(" ") is None
    for bad in ("14,7", "14,0,7", "a,b,c"):
        with pytest.raises(ValueError, match="three positive day counts"):
            models.Rolling.parse(bad)
