"""dim_date: the calendar every fact joins to, with US federal holidays."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import duckdb
import pandas as pd


def _nth_weekday(year: int, month: int, weekday: int, n: int) -> date:
    """The n-th given weekday (Mon=0) of a month; n=-1 is the last one."""
    if n > 0:
        first = date(year, month, 1)
        return first + timedelta(days=(weekday - first.weekday()) % 7 + 7 * (n - 1))
    last = date(year + (month == 12), month % 12 + 1, 1) - timedelta(days=1)
    return last - timedelta(days=(last.weekday() - weekday) % 7)


def us_federal_holidays(year: int) -> dict[date, str]:
    """The US federal holidays of a year (the observed weekday when one falls on a weekend)."""
    fixed = {
        date(year, 1, 1): "New Year's Day",
        date(year, 7, 4): "Independence Day",
        date(year, 11, 11): "Veterans Day",
        date(year, 12, 25): "Christmas Day",
    }
    observed = {}
    for day, name in fixed.items():
        shift = {5: -1, 6: 1}.get(day.weekday(), 0)
        observed[day + timedelta(days=shift)] = name
    return observed | {
        _nth_weekday(year, 1, 0, 3): "Martin Luther King Jr. Day",
        _nth_weekday(year, 2, 0, 3): "Washington's Birthday",
        _nth_weekday(year, 5, 0, -1): "Memorial Day",
        _nth_weekday(year, 9, 0, 1): "Labor Day",
        _nth_weekday(year, 10, 0, 2): "Columbus Day",
        _nth_weekday(year, 11, 3, 4): "Thanksgiving Day",
    }


def calendar(first: date, last: date) -> pd.DataFrame:
    """One row per day, `first` to `last` inclusive, with the days to the nearest holiday."""
    holidays: dict[date, str] = {}
    for year in range(first.year - 1, last.year + 2):
        holidays |= us_federal_holidays(year)
    ordered = sorted(holidays)
    rows = []
    day = first
    while day <= last:
        nearest = min(ordered, key=lambda h: abs((h - day).days))
        rows.append(
            {
                "date": day,
                "year": day.year,
                "quarter": (day.month - 1) // 3 + 1,
                "month": day.month,
                "day": day.day,
                "day_of_week": day.isoweekday(),
                "is_weekend": day.weekday() >= 5,
                "holiday": holidays.get(day),
                "days_to_nearest_holiday": abs((nearest - day).days),
            }
        )
        day += timedelta(days=1)
    frame = pd.DataFrame(rows)
    frame["date"] = pd.to_datetime(frame["date"])
    return frame


def local_day_hours(day: date, tz: str = "America/New_York") -> int:
    """Hours in a local calendar day: 23 or 25 on daylight-saving changes, else 24."""
    zone = ZoneInfo(tz)
    start = datetime(day.year, day.month, day.day, tzinfo=zone)
    end = start + timedelta(days=1)
    return round((end.timestamp() - start.timestamp()) / 3600)


def weather_hours(start: date, end: date, tz: str = "America/New_York") -> pd.DataFrame:
    """Expected hourly readings per day in [start, end) at an airport in time zone `tz`."""
    days = [start + timedelta(days=i) for i in range((end - start).days)]
    return pd.DataFrame({"day": days, "hours": [local_day_hours(d, tz) for d in days]})


def write_dim_date(conn: duckdb.DuckDBPyConnection, first: date, last: date) -> int:
    """Replace warehouse.dim_date with the calendar `first`..`last` (caller's transaction)."""
    conn.register("_calendar", calendar(first, last))
    try:
        conn.execute(
            "CREATE OR REPLACE TABLE warehouse.dim_date AS SELECT CAST(date AS DATE) AS date, "
            "year::SMALLINT AS year, quarter::SMALLINT AS quarter, month::SMALLINT AS month, "
            "day::SMALLINT AS day, day_of_week::SMALLINT AS day_of_week, is_weekend, holiday, "
            "days_to_nearest_holiday::SMALLINT AS days_to_nearest_holiday FROM _calendar"
        )
    finally:
        conn.unregister("_calendar")
    return (last - first).days + 1
