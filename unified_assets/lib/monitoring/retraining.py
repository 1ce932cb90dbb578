"""When to retrain a model: the decision the retraining sensor acts on, as a pure function.

A model is retrained when its scored days have drifted for `drift_days` days in a row, or when
its realized performance over the last matured days is past its floor, or, before the labels
can say so, when the label-free estimate of its performance (estimation.py) over its last
`estimate_days` scored days is; and, failing all evidence, when the serving model's data is
`max_age_days` old, so the loop is never staler than a monthly calendar. A drift verdict
needs `min_drift_rows` rows behind it (a forecaster's week of three origins says nothing). One
retraining at a time, and none within `cooldown_days` of the last, so a drifting week asks
once, not daily; after a challenger the gates rejected, the next try comes `retry_days` later
(the champion only grows older while it waits; a month-long wait cost the regressor in the
replayed year).

After a detected change (drift, performance past the floor, its estimate) the retraining holds
out fewer of the latest days (`change_rolling_days`, one week each for early stopping and the
gates, not two): its model trains on data two weeks fresher, which the scenario replays showed
it needs to learn a change at all (docs/scenarios.md). Drift that persists after a retraining
on drift is not new evidence while the model it deployed has drifted on every day it served:
the next retraining waits for performance evidence or age, so a covariate shift with no concept
change retrains once, not monthly. Once that model has served a calm day, drift is news again.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date

from unified_assets.lib.models.specs import Rolling


@dataclass(frozen=True)
class RetrainPolicy:
    """Thresholds of the decision (the settings resource's `retrain_*` fields)."""

    drift_days: int = 3  # consecutive drifted scored days, all served by the same model
    performance_days: int = 7  # matured days pooled for the realized metric
    min_performance_days: int = 4  # fewer matured days than this: no verdict yet
    cooldown_days: int = 21  # scored days between two retrainings of a model
    retry_days: int = 7  # scored days after a retraining whose challenger was rejected
    estimate_days: int = 7  # scored days pooled for the estimated metric; 0: never on estimates
    max_age_days: int = 30  # days since the serving model's last labelled day; 0: no limit
    min_drift_rows: int = 1000  # rows in the drift window behind a drift verdict
    change_rolling_days: str = "all,7,7"  # windows after a detected change; "": the spec's

    def __post_init__(self):
        if min(v for v in vars(self).values() if isinstance(v, int)) < 0:
            raise ValueError(f"retraining thresholds must not be negative: {self}")
        Rolling.parse(self.change_rolling_days)  # refused here, not at the first retraining

    def rolling_days(self, reason: str) -> str:
        """The windows of a retraining asked for `reason`: "" for the spec's own."""
        return self.change_rolling_days if reason in CHANGE_REASONS else ""


CHANGE_REASONS = ("drift", "performance", "estimated_performance")


@dataclass(frozen=True)
class DayHealth:
    """One monitored day of a model, as the monitoring tables hold it."""

    day: date
    model_version: str | None
    is_drift: bool | None
    prediction_psi: float | None = None
    drifted_share: float | None = None
    realized: float | None = None  # realized metric of the day whose outcomes matured
    realized_rows: int = 0
    estimated: float | None = None  # label-free estimate of this scored day's metric
    estimated_rows: int = 0
    inputs_broken: bool = False  # a broken-feed warning (unit, stuck sensor) in its drift window
    drift_rows: int | None = None  # rows in its drift window (None: not recorded, trusted)


@dataclass(frozen=True)
class Decision:
    retrain: bool
    reason: str  # "drift" | "performance" | "estimated_performance" | "" (no retraining)
    message: str
    evidence: dict = field(default_factory=dict)
    refused: str = ""  # "broken_feed": a retraining would learn a fault, a person must act


def broken_since(days: list[DayHealth]) -> date | None:
    """The first day of the trailing run of days on a broken feed, or None."""
    since = None
    for day in reversed(days):
        if not day.inputs_broken:
            break
        since = day.day
    return since


def overdue_age(days: list[DayHealth], serving_as_of: date | None,
                policy: RetrainPolicy) -> int | None:
    """The serving model's age when it is past `max_age_days` (the retraining asked for at the
    limit did not replace it), else None."""
    if not days or serving_as_of is None or not policy.max_age_days:
        return None
    age = (days[-1].day - serving_as_of).days
    return age if age > policy.max_age_days else None


def _drift_streak(days: list[DayHealth], min_rows: int = 0) -> list[DayHealth]:
    """The trailing run of drifted days served by the latest model version, on sound inputs
    and with at least `min_rows` rows behind each verdict."""
    streak: list[DayHealth] = []
    version = days[-1].model_version
    for day in reversed(days):
        thin = day.drift_rows is not None and day.drift_rows < min_rows
        if day.model_version != version or not day.is_drift or day.inputs_broken or thin:
            break
        streak.append(day)
    return list(reversed(streak))


def realized_mean(days: list[DayHealth], window: int) -> tuple[float | None, list[DayHealth]]:
    """The realized metric of the last `window` matured days, weighted by their rows."""
    matured = [d for d in days if d.realized is not None and d.realized_rows > 0][-window:]
    rows = sum(d.realized_rows for d in matured)
    if not rows:
        return None, matured
    return sum(d.realized * d.realized_rows for d in matured) / rows, matured


def estimated_mean(days: list[DayHealth], window: int) -> tuple[float | None, list[DayHealth]]:
    """The estimate over the last `window` scored days, weighted by their rows; None unless
    each of those days has one and the latest model version served them all (a new version
    starts afresh, as a drift streak does)."""
    if window <= 0 or len(days) < window:
        return None, []
    last = days[-window:]
    version = days[-1].model_version
    if any(d.model_version != version or d.estimated is None or d.estimated_rows <= 0
           for d in last):
        return None, []
    rows = sum(d.estimated_rows for d in last)
    return sum(d.estimated * d.estimated_rows for d in last) / rows, last


def realized_verdict(days: list[DayHealth], policy: RetrainPolicy) -> float | None:
    """The realized metric over the outcomes that matured during the estimate's window, when
    enough did for a verdict (`min_performance_days`), else None: the labels have not spoken
    on those days yet (they come late, or stopped coming)."""
    window = days[-policy.estimate_days:] if policy.estimate_days > 0 else []
    mean, matured = realized_mean(window, len(window))
    return mean if len(matured) >= max(1, policy.min_performance_days) else None


def decide(
    days: list[DayHealth],
    policy: RetrainPolicy,
    floor: float,
    higher_is_better: bool,
    last_retrain: date | None,
    in_progress: bool,
    serving_as_of: date | None = None,
    last_rejected: bool = False,
    last_reason: str = "",
) -> Decision:
    """Retrain now, or not, and why, from the model's monitored days in day order.
    `last_retrain`: the monitored day that asked for the last retraining (its as-of day plus
    the label lag), so the cool-down counts scored days for every model alike.
    `serving_as_of`: the same for the serving model's last labelled day (its age).
    `last_rejected`: the gates rejected the last retraining's challenger, so the wait before
    the next is `retry_days`, not `cooldown_days`. `last_reason`: why the last retraining was
    asked for; after one on drift whose challenger was promoted, drift that has lasted every
    day the serving version served asks no more."""
    if not days:
        return Decision(False, "", "no monitored day yet")
    latest = days[-1].day
    if in_progress:
        return Decision(False, "", "a retraining of this model is already queued or running")
    wait = policy.retry_days if last_rejected else policy.cooldown_days
    if last_retrain is not None and (latest - last_retrain).days < wait:
        return Decision(
            False, "", f"cooling down: last retraining asked on {last_retrain}"
            f"{' (rejected)' if last_rejected else ''}, {(latest - last_retrain).days} of "
            f"{wait} days",
        )
    if days[-1].inputs_broken:
        # A model trained now would learn the broken feed: the response is to fix the feed.
        return Decision(False, "", f"inputs of the week up to {latest} come from a broken feed "
                        "(another unit, a stuck sensor): fix the feed, no retraining",
                        refused="broken_feed")
    streak = _drift_streak(days, policy.min_drift_rows)
    # Drift is news unless it is the drift a promoted retraining on drift already answered:
    # the serving version has drifted on every day it served. A version that served calm days
    # and then drifts has met a new change.
    served = [d for d in days if d.model_version == days[-1].model_version]
    drift_is_news = not (last_reason == "drift" and not last_rejected
                         and len(streak) == len(served))
    if policy.drift_days and len(streak) >= policy.drift_days and drift_is_news:
        return Decision(True, "drift", f"{len(streak)} drifted days in a row up to {latest}", {
            "model_version": (days[-1].model_version or "")[:12],
            "days": [str(d.day) for d in streak],
            "prediction_psi": [round(d.prediction_psi or 0.0, 3) for d in streak],
            "drifted_share": [round(d.drifted_share or 0.0, 3) for d in streak],
        })
    mean, matured = realized_mean(days, policy.performance_days)
    if mean is not None and len(matured) >= policy.min_performance_days:
        breached = mean < floor if higher_is_better else mean > floor
        if breached:
            return Decision(
                True, "performance",
                f"realized {mean:.3f} over {len(matured)} matured days is past the floor "
                f"{floor}", {
                    "realized": round(mean, 4), "floor": floor,
                    "days": [str(matured[0].day), str(matured[-1].day)],
                    "model_version": (days[-1].model_version or "")[:12],
                },
            )
    verdict = realized_verdict(days, policy)
    estimate, estimated = estimated_mean(days, policy.estimate_days)
    if estimate is not None and verdict is None:
        breached = estimate < floor if higher_is_better else estimate > floor
        if breached:
            return Decision(
                True, "estimated_performance",
                f"estimated {estimate:.3f} over the {len(estimated)} scored days up to {latest} "
                f"is past the floor {floor}, with no realized verdict on them yet", {
                    "estimated": round(estimate, 4), "floor": floor,
                    "days": [str(estimated[0].day), str(estimated[-1].day)],
                    "model_version": (days[-1].model_version or "")[:12],
                },
            )
    shown = "n/a" if mean is None else f"{mean:.3f}"
    guess = "n/a" if estimate is None else f"{estimate:.3f}"
    healthy = f"drift streak {len(streak)}, realized {shown}, estimated {guess}"
    if not drift_is_news and len(streak) >= policy.drift_days:
        healthy += " (drift persists since the last retraining on drift: not new evidence)"
    age = None if serving_as_of is None else (latest - serving_as_of).days
    if policy.max_age_days and age is not None and age >= policy.max_age_days:
        return Decision(True, "age", f"the serving model's data is {age} days old (limit "
                        f"{policy.max_age_days}); {healthy}", {
                            "age_days": age, "max_age_days": policy.max_age_days,
                            "model_version": (days[-1].model_version or "")[:12]})
    return Decision(False, "", f"healthy: {healthy}")
