"""The retraining decision and the trailing windows, without Dagster."""

from dataclasses import replace
from datetime import date, timedelta

import pytest

from unified_assets.lib.models import specs
from unified_assets.lib.monitoring import retraining
from unified_assets.lib.monitoring.retraining import DayHealth, RetrainPolicy, decide

POLICY = RetrainPolicy(drift_days=3, performance_days=7, min_performance_days=4, cooldown_days=14)
D0 = date(2013, 5, 1)


def days(flags: list[bool], version: str = "v1", realized: float | None = 0.75,
         start: date = D0) -> list[DayHealth]:
    return [
        DayHealth(start + timedelta(days=i), version, flag, 0.3 if flag else 0.05,
                  0.4 if flag else 0.0, realized, 900)
        for i, flag in enumerate(flags)
    ]


def auc_decision(history, last=None, busy=False):
    return decide(history, POLICY, floor=0.70, higher_is_better=True, last_retrain=last,
                  in_progress=busy)


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


def test_after_a_rejected_challenger_the_next_try_comes_after_the_retry_days():
    """The champion kept by a rejection only grows older: a week, not the cool-down."""
    history = days([True] * 5)
    latest = history[-1].day

    def decision(ago: int, rejected: bool):
        return decide(history, POLICY, floor=0.70, higher_is_better=True,
                      last_retrain=latest - timedelta(days=ago), in_progress=False,
                      last_rejected=rejected)

    assert POLICY.retry_days == 7 < POLICY.cooldown_days
    waiting = decision(6, rejected=True)
    assert not waiting.retrain and "(rejected), 6 of 7 days" in waiting.message
    assert decision(7, rejected=True).retrain
    assert not decision(7, rejected=False).retrain  # a promoted one waits the cool-down


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
                      in_progress=False)
    assert decision.retrain and decision.reason == "performance"
    ok = decide(days([False] * 7, realized=20.0), POLICY, 30.0, False, None, False)
    assert not ok.retrain


def test_an_old_model_is_retrained_once_the_evidence_is_quiet():
    history = days([False] * 7)
    latest = history[-1].day
    old = decide(history, POLICY, 0.70, True, None, False, serving_as_of=latest - timedelta(30))
    assert old.retrain and old.reason == "age" and old.evidence["age_days"] == 30
    young = decide(history, POLICY, 0.70, True, None, False, serving_as_of=latest - timedelta(29))
    assert not young.retrain and "healthy" in young.message
    # the evidence names the reason when there is some; the cool-down still holds
    drifted = decide(days([True] * 3), POLICY, 0.70, True, None, False,
                     serving_as_of=D0 - timedelta(60))
    assert drifted.reason == "drift"
    cooling = decide(history, POLICY, 0.70, True, latest - timedelta(3), False,
                     serving_as_of=latest - timedelta(60))
    assert not cooling.retrain and "cooling down" in cooling.message
    # never retrained on a broken feed, however old
    broken = [*history[:-1], replace(history[-1], inputs_broken=True)]
    assert not decide(broken, POLICY, 0.70, True, None, False, latest - timedelta(90)).retrain
    assert not decide(history, replace(POLICY, max_age_days=0), 0.70, True, None, False,
                      latest - timedelta(365)).retrain


def test_a_drift_verdict_on_too_few_rows_does_not_ask():
    thin = [replace(d, drift_rows=21) for d in days([True] * 5)]
    decision = auc_decision(thin)
    assert not decision.retrain and "drift streak 0" in decision.message
    assert auc_decision([replace(d, drift_rows=6000) for d in days([True] * 5)]).retrain


def test_trailing_windows_end_with_the_as_of_day(monkeypatch):
    spec = specs.DELAY_CLASSIFIER
    w = spec.windows(date(2013, 6, 30))
    assert w["test"] == (date(2013, 6, 17), date(2013, 7, 1))
    assert w["valid"] == (date(2013, 6, 3), date(2013, 6, 17))
    assert w["train"] == (date(2013, 1, 1), date(2013, 6, 3))  # expanding: all history
    trailing = spec.windows(date(2013, 6, 30), specs.Rolling(train_days=90))
    assert trailing["train"] == (date(2013, 3, 5), date(2013, 6, 3))
    # early in the year the training window starts at the first day
    assert spec.windows(date(2013, 2, 28))["train"] == (date(2013, 1, 1), date(2013, 2, 1))
    assert spec.windows(None)["test"] == spec.test
    short = specs.Rolling.parse("14,7,7")
    assert spec.windows(date(2013, 1, 28), short)["train"] == (date(2013, 1, 1), date(2013, 1, 15))
    with pytest.raises(ValueError, match="no training days"):
        spec.windows(date(2013, 1, 10), short)
    assert specs.Rolling.parse(" ") is None
    assert specs.Rolling.parse("all,14,14,60") == specs.Rolling(0, 14, 14, 60)
    for bad in ("14,7", "14,0,7", "a,b,c", "90,14,14,1,2"):
        with pytest.raises(ValueError, match="train,valid,test"):
            specs.Rolling.parse(bad)


def test_recency_weights_halve_every_half_life():
    import pandas as pd

    days = pd.Series(pd.to_datetime(["2013-06-30", "2013-05-31", "2013-05-01"]))
    weights = specs.Rolling(half_life_days=30).weights(days, date(2013, 7, 1))
    assert weights == pytest.approx([0.5 ** (1 / 30), 0.5 ** (31 / 30), 0.5 ** (61 / 30)])
    assert specs.Rolling().weights(days, date(2013, 7, 1)) is None


def estimated(values: list[float | None], realized: float | None = None, version: str = "v1",
              start: date = D0) -> list[DayHealth]:
    """Quiet days (no drift) with a label-free estimate each, and a realized value or none."""
    return [
        DayHealth(start + timedelta(days=i), version, False, 0.05, 0.0, realized,
                  900 if realized is not None else 0, value, 950 if value is not None else 0)
        for i, value in enumerate(values)
    ]


def test_an_estimate_past_the_floor_triggers_before_the_labels():
    decision = auc_decision(estimated([0.66] * 6 + [0.62]))
    assert decision.retrain and decision.reason == "estimated_performance"
    assert decision.evidence["estimated"] == pytest.approx((6 * 0.66 + 0.62) / 7, abs=1e-4)
    assert decision.evidence["days"] == ["2013-05-01", "2013-05-07"]
    assert "no realized verdict" in decision.message
    healthy = auc_decision(estimated([0.72] * 7))
    assert not healthy.retrain and "estimated 0.720" in healthy.message


def test_the_estimate_waits_for_a_full_window_of_the_serving_version():
    assert not auc_decision(estimated([0.6] * 6)).retrain  # 6 of 7 days
    gap = estimated([0.6] * 3 + [None] + [0.6] * 3)  # a day without an estimate
    assert not auc_decision(gap).retrain
    new = estimated([0.6] * 4, version="old") + estimated([0.6] * 3, version="new",
                                                          start=D0 + timedelta(4))
    assert not auc_decision(new).retrain
    later = estimated([0.6] * 4, version="new", start=D0 + timedelta(7))
    assert auc_decision(new + later).retrain
    off = RetrainPolicy(drift_days=3, performance_days=7, min_performance_days=4,
                        cooldown_days=14, estimate_days=0)
    assert not decide(estimated([0.6] * 7), off, 0.70, True, None, False).retrain


def test_a_realized_verdict_on_those_days_overrules_the_estimate():
    # The labels of the same days are in and say the model is fine: no retraining.
    decision = auc_decision(estimated([0.6] * 7, realized=0.74))
    assert not decision.retrain and "realized 0.740" in decision.message
    # The labels stopped coming: the old matured days give no verdict on the last week.
    stopped = estimated([0.72] * 7, realized=0.74) + estimated([0.6] * 7, start=D0 + timedelta(7))
    decision = auc_decision(stopped)
    assert decision.retrain and decision.reason == "estimated_performance"
    # Three matured days in the window are too few for a verdict (min_performance_days 4)...
    late = estimated([0.6] * 4) + estimated([0.6] * 3, realized=0.74, start=D0 + timedelta(4))
    assert auc_decision(late).retrain
    # ...four are enough, and the realized value wins.
    enough = estimated([0.6] * 3) + estimated([0.6] * 4, realized=0.74, start=D0 + timedelta(3))
    assert not auc_decision(enough).retrain


def test_cooldown_and_one_at_a_time_win_over_the_estimate():
    history = estimated([0.6] * 7)
    latest = history[-1].day
    cooling = auc_decision(history, last=latest - timedelta(days=13))
    assert not cooling.retrain and "cooling down" in cooling.message
    assert auc_decision(history, last=latest - timedelta(days=14)).retrain
    busy = auc_decision(history, busy=True)
    assert not busy.retrain and "already queued or running" in busy.message
    # drift, when it persists, is reported first
    drifting = [replace(d, is_drift=True) for d in history]
    assert auc_decision(drifting).reason == "drift"


def test_for_an_error_metric_the_estimate_past_a_ceiling_triggers():
    decision = decide(estimated([36.0] * 7), POLICY, floor=30.0, higher_is_better=False,
                      last_retrain=None, in_progress=False)
    assert decision.retrain and decision.reason == "estimated_performance"
    assert not decide(estimated([25.0] * 7), POLICY, 30.0, False, None, False).retrain


def test_a_broken_feed_stops_a_retraining_and_breaks_a_drift_streak():
    policy = RetrainPolicy(drift_days=3, cooldown_days=0)
    start = date(2013, 3, 1)

    def day(i, broken=False):
        return DayHealth(start + timedelta(days=i), "v1", True, 0.3, 0.5, inputs_broken=broken)

    assert decide([day(0), day(1), day(2)], policy, 0.65, True, None, False).retrain
    broken = decide([day(0), day(1), day(2, True)], policy, 0.65, True, None, False)
    assert not broken.retrain and "broken feed" in broken.message
    # once the window is clean again, the streak counts from the first sound day
    after = [day(0, True), day(1), day(2)]
    decision = decide(after, policy, 0.65, True, None, False)
    assert not decision.retrain and "drift streak 2" in decision.message
    assert decide([*after, day(3)], policy, 0.65, True, None, False).retrain


def test_drift_that_persists_after_a_retraining_on_drift_is_not_new_evidence():
    """A covariate shift with no concept change: one retraining, not one a month."""
    history = days([True] * 5)
    after_drift = decide(history, POLICY, 0.70, True, last_retrain=D0 - timedelta(30),
                         in_progress=False, last_reason="drift")
    assert not after_drift.retrain and "not new evidence" in after_drift.message
    # its challenger was rejected: the drift still asks (after the retry days)
    rejected = decide(history, POLICY, 0.70, True, last_retrain=D0 - timedelta(30),
                      in_progress=False, last_rejected=True, last_reason="drift")
    assert rejected.retrain and rejected.reason == "drift"
    # after one on age, or on performance, drift asks as before
    for reason in ("age", "performance", ""):
        assert decide(history, POLICY, 0.70, True, last_retrain=D0 - timedelta(30),
                      in_progress=False, last_reason=reason).reason == "drift"
    # a new change: the serving version served calm days, then drifts: news again
    calm_then_drift = days([False, False, True, True, True])
    assert decide(calm_then_drift, POLICY, 0.70, True, last_retrain=D0 - timedelta(30),
                  in_progress=False, last_reason="drift").reason == "drift"
    # performance past the floor still asks after a retraining on drift
    worse = days([True] * 5, realized=0.6)
    assert decide(worse, POLICY, 0.70, True, last_retrain=D0 - timedelta(30),
                  in_progress=False, last_reason="drift").reason == "performance"


def test_a_retraining_after_a_detected_change_holds_out_fresher_windows():
    policy = RetrainPolicy()
    assert [policy.rolling_days(r) for r in ("drift", "performance", "estimated_performance")] \
        == ["all,7,7"] * 3
    assert policy.rolling_days("age") == policy.rolling_days("calendar") == ""
    assert RetrainPolicy(change_rolling_days="").rolling_days("drift") == ""
    with pytest.raises(ValueError, match="rolling days"):
        RetrainPolicy(change_rolling_days="7,7")
    windows = specs.DELAY_CLASSIFIER.windows(date(2013, 6, 29), specs.Rolling.parse("all,7,7"))
    assert windows["train"][1] == date(2013, 6, 16)  # two weeks fresher than 14/14's June 2


def test_what_a_person_is_told_a_broken_streak_and_a_model_past_its_age():
    policy = retraining.RetrainPolicy(max_age_days=30)
    start = date(2013, 6, 1)
    days = [retraining.DayHealth(day=start + timedelta(days=i), model_version="v",
                                 is_drift=False, inputs_broken=i in (1, 3, 4))
            for i in range(5)]
    assert retraining.broken_since(days) == start + timedelta(days=3)
    assert retraining.broken_since(days[:3]) is None
    decision = retraining.decide(days, policy, 0.7, True, None, False)
    assert not decision.retrain and decision.refused == "broken_feed"
    # at its limit the age retraining is asked for; a day past it, that one did not replace it
    latest = days[-1].day
    assert retraining.overdue_age(days, latest - timedelta(days=30), policy) is None
    assert retraining.overdue_age(days, latest - timedelta(days=31), policy) == 31
    assert retraining.overdue_age(days, None, policy) is None
    assert retraining.overdue_age(days, latest - timedelta(days=99),
                                  retraining.RetrainPolicy(max_age_days=0)) is None
