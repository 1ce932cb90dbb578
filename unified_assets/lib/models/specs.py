"""Model specs: a model is declared once, and one factory turns each spec into its assets."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:  # imported where used: the prediction service never loads pandas
    import pandas as pd

from unified_assets.lib.core.config import FIRST_DAY
from unified_assets.lib.deployment.gates import Gates

Window = tuple[date, date]  # [start, end)

TRAIN: Window = (date(2013, 1, 1), date(2013, 9, 1))
VALID: Window = (date(2013, 9, 1), date(2013, 10, 1))
TEST: Window = (date(2013, 10, 1), date(2014, 1, 1))

_BASE = {
    "learning_rate": 0.05,
    "num_leaves": 31,
    "min_data_in_leaf": 100,
    "feature_fraction": 0.9,
    "bagging_fraction": 0.8,
    "bagging_freq": 1,
    "lambda_l2": 1.0,
}
_SPACE = {
    "learning_rate": (0.03, 0.05, 0.1),
    "num_leaves": (15, 31, 63, 127),
    "min_data_in_leaf": (50, 100, 200),
    "feature_fraction": (0.7, 0.8, 0.9),
    "lambda_l2": (0.0, 1.0, 10.0),
}


@dataclass(frozen=True)
class Rolling:
    """Windows for a retraining as of a day: the most recent `test_days` test the model, the
    `valid_days` before them early-stop it, and the days before those train it: all of them
    since the first day (expanding, `train_days` 0), or at most `train_days`. With
    `half_life_days`, a training row's weight halves for every that many days it is older than
    the training window's end (recency weighting); 0 weighs every row the same."""

    train_days: int = 0
    valid_days: int = 14
    test_days: int = 14
    half_life_days: int = 0

    @classmethod
    def parse(cls, text: str) -> Rolling | None:
        """"train,valid,test[,half_life]" days, train 0 (or "all") for expanding (e.g. "90,14,14"
        or "all,14,14,60"); None for an empty text."""
        text = text.strip()
        if not text:
            return None
        parts = [p.strip().lower() for p in text.split(",")]
        parts[0] = "0" if parts[0] == "all" else parts[0]
        if (len(parts) not in (3, 4) or not all(p.isdigit() for p in parts)
                or int(parts[1]) <= 0 or int(parts[2]) <= 0):
            raise ValueError(f"rolling days {text!r}: expected train,valid,test[,half_life] "
                             "day counts, train 0 or 'all' for every day, valid and test "
                             "positive")
        return cls(*(int(p) for p in parts))

    def weights(self, days: pd.Series, end: date) -> np.ndarray | None:
        """Recency weights of training rows dated `days`, the window ending (exclusive) at
        `end`; None when every row weighs the same."""
        if not self.half_life_days:
            return None
        import pandas as pd

        age = (pd.Timestamp(end) - pd.to_datetime(days)).dt.days.to_numpy(float)
        return 0.5 ** (age / self.half_life_days)


@dataclass(frozen=True)
class ModelSpec:
    """Everything that defines a model: task, data, windows, parameters, search, gates."""

    name: str
    task: str  # "binary" | "regression" | "forecast"
    description: str
    table: str
    date_column: str
    key: tuple[str, ...]
    label: str
    features: tuple[str, ...]
    categorical: tuple[str, ...]
    params: dict
    gates: Gates
    train: Window = TRAIN
    valid: Window = VALID
    test: Window = TEST
    search_space: dict = field(default_factory=lambda: dict(_SPACE))
    budget: int = 4
    num_boost_round: int = 2000
    early_stopping_rounds: int = 50
    slice_columns: tuple[str, ...] = ("carrier", "origin")
    baseline_groups: tuple[str, ...] = ()
    baseline_column: str | None = None
    residual_of: str | None = None  # learn the label minus this column, add it back to predict
    rolling: Rolling = Rolling()
    label_lag_days: int = 1  # a scored day's outcomes are all known this many days later
    owner: str = "ml-platform"

    @property
    def higher_is_better(self) -> bool:
        return self.task == "binary"

    def windows(self, as_of: date | None = None, rolling: Rolling | None = None
                ) -> dict[str, Window]:
        """train/valid/test windows: the spec's fixed ones, or trailing ones ending with the
        day `as_of` (inclusive), as a retraining uses them (`rolling` overrides the spec's)."""
        if as_of is None:
            return {"train": self.train, "valid": self.valid, "test": self.test}
        rolling = rolling or self.rolling
        end = as_of + timedelta(days=1)
        test_start = end - timedelta(days=rolling.test_days)
        valid_start = test_start - timedelta(days=rolling.valid_days)
        train_start = FIRST_DAY
        if rolling.train_days:
            train_start = max(FIRST_DAY, valid_start - timedelta(days=rolling.train_days))
        if train_start >= valid_start:
            raise ValueError(f"{self.name}: no training days before {valid_start} (as of {as_of})")
        return {"train": (train_start, valid_start), "valid": (valid_start, test_start),
                "test": (test_start, end)}


def training_plan(spec: ModelSpec, start: date, through: date) -> tuple[str | None, str]:
    """How a build of the days start..through (inclusive) trains `spec`: its fixed windows when
    they lie inside ("", why); else trailing windows ending with the window's last labelled day
    (that day as ISO text, why); None when the window holds too little for them (None, why)."""
    first, last = spec.train[0], spec.test[1] - timedelta(days=1)
    if start <= first and last <= through:
        return "", f"its fixed windows {first}..{last}"
    as_of = through - timedelta(days=spec.label_lag_days)
    need = spec.rolling.valid_days + spec.rolling.test_days + spec.label_lag_days + 1
    short = (None, f"{start}..{through} is too short for it: at least {need} days (a training "
             f"day, {spec.rolling.valid_days} validation and {spec.rolling.test_days} test "
             f"days, then {spec.label_lag_days} for their labels)")
    try:
        windows = spec.windows(as_of)
    except ValueError:
        return short
    valid, test = windows["valid"][0], windows["test"][0]
    if max(windows["train"][0], start) >= valid:
        return short
    return as_of.isoformat(), (f"as of {as_of}: trains on the days before {valid}, validates "
                               f"on {valid}..{test - timedelta(days=1)}, tests on "
                               f"{test}..{as_of}")


_FLIGHT_KEY = ("flight_date", "carrier", "flight", "origin", "sched_dep_ts")
# `month` is generated but not used: with a month-based split, test months never occur in
# training; features that generalise across seasons are preferred.
_FLIGHT_FEATURES = (
    "sched_hour", "day_of_week", "days_to_holiday", "carrier", "origin", "dest", "distance_mi",
    "plane_age_years", "seats", "engine", "temp_f", "dewp_f", "humid_pct", "wind_speed_mph",
    "wind_gust_mph", "precip_in", "pressure_mb", "visib_mi", "carrier_late_rate_7d",
    "carrier_late_rate_28d", "origin_late_rate_7d", "origin_late_rate_28d",
    "route_late_rate_7d", "route_late_rate_28d", "carrier_flights_28d",
    "origin_hour_departures", "prev_arr_delay_min", "has_prev_flight", "prev_dep_delay_min",
    "origin_dep_delay_3h", "origin_departures_3h", "carrier_dep_delay_3h",
)
_FLIGHT_CATEGORICAL = ("carrier", "origin", "dest", "engine")

DELAY_CLASSIFIER = ModelSpec(
    name="delay_classifier",
    task="binary",
    description="Will the flight arrive more than 15 minutes late? Scored 2 hours before "
    "its scheduled departure.",
    table="features.flight_features",
    date_column="flight_date",
    key=_FLIGHT_KEY,
    label="is_late_15",
    features=_FLIGHT_FEATURES,
    categorical=_FLIGHT_CATEGORICAL,
    params=_BASE | {"objective": "binary", "metric": "auc"},
    gates=Gates(
        # Useful, not perfect: the naive baseline scores about 0.57, and a two-week test
        # window moves a good model's AUC by several points (0.69-0.79 over 2013).
        metric_floor=0.65,
        champion_tolerance=0.01,
        amdr_threshold=0.6,
        max_slice_gap=0.15,
        higher_is_better=True,
    ),
    baseline_groups=("carrier", "origin"),
)

ARRIVAL_DELAY_REGRESSOR = ModelSpec(
    name="arrival_delay_regressor",
    task="regression",
    description="Arrival delay in minutes; Huber loss keeps the long tail of big delays from "
    "dominating.",
    table="features.flight_features",
    date_column="flight_date",
    key=_FLIGHT_KEY,
    label="arr_delay_min",
    features=_FLIGHT_FEATURES,
    categorical=_FLIGHT_CATEGORICAL,
    params=_BASE | {"objective": "huber", "alpha": 30.0, "metric": "l1"},
    gates=Gates(
        metric_floor=30.0,
        champion_tolerance=0.5,
        amdr_threshold=0.02,
        max_slice_gap=1.0,
        higher_is_better=False,
    ),
    baseline_groups=("carrier", "origin"),
)

DEPARTURES_FORECASTER = ModelSpec(
    name="departures_forecaster",
    task="forecast",
    description="Departures per origin per day, 7 days ahead.",
    table="features.origin_daily",
    date_column="feature_date",
    key=("feature_date", "origin"),
    label="departures_target",
    features=(
        "origin",
        "departures_d0",
        "departures_d1",
        "departures_lag7",
        "departures_lag14",
        "departures_mean_7d",
        "departures_mean_28d",
        "target_day_of_week",
        "target_days_to_holiday",
    ),
    categorical=("origin",),
    params=_BASE
    | {
        "objective": "regression_l1",
        "metric": "l1",
        "min_data_in_leaf": 10,
        "num_leaves": 7,
    },
    search_space={
        "learning_rate": (0.03, 0.05, 0.1),
        "num_leaves": (4, 7, 15),
        "min_data_in_leaf": (5, 10, 20),
    },
    gates=Gates(
        metric_floor=60.0,
        champion_tolerance=2.0,
        amdr_threshold=0.0,
        max_slice_gap=1.0,
        higher_is_better=False,
    ),
    slice_columns=("origin",),
    baseline_column="departures_lag7",
    label_lag_days=7,
    # Learn the correction to the seasonal naive forecast rather than the count itself: the
    # trees then start from last week's number and only move it where the history says so.
    residual_of="departures_lag7",
)

SPECS: dict[str, ModelSpec] = {
    spec.name: spec for spec in (DELAY_CLASSIFIER, ARRIVAL_DELAY_REGRESSOR, DEPARTURES_FORECASTER)
}
