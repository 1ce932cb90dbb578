"""Broken feeds and missing outcomes: the warnings that say a source is wrong, not the world.

A feed in another unit or with a stuck sensor still passes every blocking check (its values
are plausible), so it is scored and monitored; but a model trained on it would learn the
fault. Outcomes that stop arriving leave the labels of those days missing. These functions
read the same pandera checks the tables' `quality` asset checks run, over any window: the
drift monitor (model_health.py) asks them about its week, and a training set about its
windows (`training_exclusions`), whatever started the training.
"""

from __future__ import annotations

from datetime import date
from functools import cache

import duckdb
import pandas as pd
import pandera.pandas as pa

from unified_assets.lib.core.database import table_exists
from unified_assets.lib.quality.schemas import SCHEMAS
from unified_assets.lib.quality.validation import SPECS

FEED_FAULTS = {
    "warehouse.fct_weather_hourly": {
        "warn_dewpoint_above_temp": ("temp_f", "dewp_f"),  # e.g. temperature in Celsius
        "warn_wind_stuck": ("wind_speed_mph",),
        "warn_visibility_over_10_mi": ("visib_mi",),  # e.g. visibility in kilometres
    },
}
"""Warnings that say a feed is broken (another unit, a stuck sensor), not that the world
changed, and the columns (feature names downstream) each one concerns."""

LABEL_FAULTS = {
    "warehouse.fct_flights": {"warn_outcomes_missing": ("arr_delay_min",)},
}
"""Warnings that say outcomes (the labels of the flight models) stopped arriving."""

BROKEN_DAY_ROWS = 12
"""A day is a broken-feed day for training when at least this many of its rows fail a
broken-feed warning: half a day of one origin's hours. The real 2013 has single short runs
(a wind reading repeated 6–7 hours on 7 days, no more); a feed in another unit or a sensor
stuck all day fails 24 rows a day per origin."""


@cache
def _fault_schema(table: str, names: frozenset[str]) -> pa.DataFrameSchema:
    """The table's warnings `names` alone: the same pandera check objects as its schema,
    without the other columns and checks."""
    schema = SCHEMAS[table]
    columns = {
        name: pa.Column(checks=[c for c in column.checks if c.name in names], nullable=True)
        for name, column in schema.columns.items()
        if any(c.name in names for c in column.checks)
    }
    checks = [c for c in schema.checks if c.name in names]
    return pa.DataFrameSchema(columns, checks=checks, name=f"{table} (feed faults)")


def feed_faults(conn: duckdb.DuckDBPyConnection, tables, start: date, end: date,
                faults: dict = FEED_FAULTS) -> dict[date, dict[str, int]]:
    """Per day in [start, end): the rows of `tables` that fail one of the `faults` warnings
    (default: the broken-feed ones), by warning."""
    found_by_day: dict[date, dict[str, int]] = {}
    for table in tables:
        checks = faults.get(table)
        if not checks or not table_exists(conn, table):
            continue
        column = SPECS[table].partition_column
        frame = conn.execute(f"SELECT * FROM {table} WHERE {column} >= $s AND {column} < $e",
                             {"s": start, "e": end}).df()
        if frame.empty:
            continue
        try:
            _fault_schema(table, frozenset(checks)).validate(frame, lazy=True)
            continue
        except pa.errors.SchemaErrors as exc:
            found = exc.failure_cases
        found = found.dropna(subset=["index"]).drop_duplicates(["check", "index"])
        days = pd.to_datetime(frame[column]).dt.date
        for check, index in zip(found["check"].astype(str), found["index"], strict=True):
            day = days.loc[int(index)]
            found_by_day.setdefault(day, {}).setdefault(check, 0)
            found_by_day[day][check] += 1
    return found_by_day


def training_exclusions(conn: duckdb.DuckDBPyConnection, tables, start: date, end: date
                        ) -> tuple[dict[str, str], dict[str, str]]:
    """What a training set over [start, end) must know about its days: the broken-feed days
    it leaves out (at least BROKEN_DAY_ROWS rows failing a broken-feed warning), and the days
    whose outcomes were partly missing (their unlabelled rows are out of any training by
    themselves; the days are named so that every report can say so). Day -> why."""
    def describe(checks: dict[str, int]) -> str:
        return ", ".join(f"{name} ({rows} rows)" for name, rows in sorted(checks.items()))

    broken = {str(day): describe(checks)
              for day, checks in feed_faults(conn, tables, start, end).items()
              if sum(checks.values()) >= BROKEN_DAY_ROWS}
    gaps = {str(day): describe(checks)
            for day, checks in feed_faults(conn, tables, start, end, LABEL_FAULTS).items()}
    return dict(sorted(broken.items())), dict(sorted(gaps.items()))
