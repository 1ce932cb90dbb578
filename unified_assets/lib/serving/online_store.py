"""The online feature store: per-key aggregates the batch graph exports, and the point-in-time
flight features the prediction service computes from them in microseconds.

Point-in-time flight features take about 0.1 s a day in DuckDB (PITFALLS.md), too slow for a
request. So the batch graph exports, with the SQL of `lib/features/features.py`, what the features are
made of: every flight's schedule and outcome times, the delay rates per carrier, origin and
route for every anchor day, the hourly weather, the planes, the calendar and the forecaster's
`features.origin_daily` rows. The service holds them in memory and answers each flight at its
cutoff with sorted-array lookups that reproduce the SQL's joins exactly; parity with
`features.flight_features` is tested and checked on every scored day.

The store is a folder of Parquet files under `$UNIFIED_ASSETS_HOME/online/`, published whole:
the folder is written under a new name and `online/store.json` is then replaced atomically to
point at it, so a reader never sees half a store. Nothing reads the DuckDB file at request time.
"""

from __future__ import annotations

import bisect
import hashlib
import json
import math
import shutil
import uuid
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import duckdb
import numpy as np
import pandas as pd

from unified_assets.lib.features import features
from unified_assets.lib.features.features import (
    _DEP_UTC,
    _GRAINS,
    _KNOWN_AT_UTC,
    _LIVE_HOURS,
    _RATE_DAYS,
    _SCHED_DEP_UTC,
    _ny_date,
    _rate_ctes,
)
from unified_assets.lib.raw.landing import write_atomic

ONLINE = "online"
POINTER = "store.json"
TABLES = ("flights", "rates", "weather", "planes", "dates", "origin_daily")
NY = ZoneInfo(features.TZ)
_US = 1_000_000  # microseconds a second
_EPOCH = date(1970, 1, 1)

WEATHER_COLUMNS = ("temp_f", "dewp_f", "humid_pct", "wind_speed_mph", "wind_gust_mph",
                   "precip_in", "pressure_mb", "visib_mi")  # fmt: skip
RATE_COLUMNS = tuple(f"{g}_late_rate_{d}d" for g in _GRAINS for d in _RATE_DAYS)


def online_root(home: Path) -> Path:
    return Path(home) / ONLINE


def pointer_path(home: Path) -> Path:
    return online_root(home) / POINTER


# ------------------------------------------------------------------------------- export (SQL)

_FLIGHTS_SQL = f"""
SELECT f.flight_date, f.carrier, f.flight, f.origin, f.dest, f.tailnum, f.sched_dep_ts,
    {_SCHED_DEP_UTC} AS sched_dep_utc, f.sched_hour, f.distance_mi, f.arr_delay_min,
    CASE WHEN NOT f.is_cancelled AND NOT f.is_diverted AND f.arr_delay_min IS NOT NULL
         THEN {_KNOWN_AT_UTC} END AS known_at_utc,
    f.dep_delay_min,
    CASE WHEN f.dep_delay_min IS NOT NULL THEN {_DEP_UTC} END AS dep_utc
FROM {features._FLIGHTS} f LEFT JOIN {features._AIRPORT} a ON a.faa = f.dest
ORDER BY f.flight_date, f.sched_dep_ts, f.carrier, f.flight, f.origin
"""


def _rates_sql() -> str:
    """Every grain's 7- and 28-day late rates for every key and anchor day from the first
    flight day to the day after the last: the CTEs of `features.flight_features` over a grid."""
    ctes = ",".join(_rate_ctes(name, keys) for name, keys in _GRAINS.items())
    selects = " UNION ALL ".join(
        f"SELECT '{name}' AS grain, {keys[0]} AS key1, "
        f"{keys[1] if len(keys) > 1 else 'NULL'} AS key2, anchor_day, "
        f"{name}_late_rate_{_RATE_DAYS[0]}d AS rate_short, "
        f"{name}_late_rate_{_RATE_DAYS[1]}d AS rate_long, "
        f"{name}_flights_{_RATE_DAYS[1]}d AS n_long "
        f"FROM rate_{name}"
        for name, keys in _GRAINS.items()
    )
    return f"""
    WITH days AS (
        SELECT CAST(range AS DATE) AS anchor_day FROM range(
            (SELECT min(flight_date) FROM {features._FLIGHTS}),
            (SELECT max(flight_date) + 2 FROM {features._FLIGHTS}), INTERVAL 1 DAY)
    ),
    base AS MATERIALIZED (
        SELECT k.*, d.anchor_day
        FROM (SELECT DISTINCT carrier, origin, dest FROM {features._FLIGHTS}) k CROSS JOIN days d
    ),
    outcomes AS MATERIALIZED (
        SELECT carrier, origin, dest, {_ny_date("known_at_utc")} AS known_day,
            (arr_delay_min > 15)::INTEGER AS late
        FROM (
            SELECT f.*, {_KNOWN_AT_UTC} AS known_at_utc
            FROM {features._FLIGHTS} f LEFT JOIN {features._AIRPORT} a ON a.faa = f.dest
        )
        WHERE NOT is_cancelled AND NOT is_diverted AND arr_delay_min IS NOT NULL
            AND known_at_utc IS NOT NULL
    ),
    {ctes}
    {selects}
    """


_EXPORTS = {
    "flights": _FLIGHTS_SQL,
    "weather": f"SELECT origin, time_hour_utc + INTERVAL 1 HOUR AS known_utc, "
    f"{', '.join(WEATHER_COLUMNS)} FROM {features._WEATHER} ORDER BY origin, known_utc",
    "planes": f"SELECT tailnum, year_built, seats, engine FROM {features._PLANE}",
    "dates": f"SELECT date, day_of_week, month, days_to_nearest_holiday FROM {features._DATE}",
}


def _table_exists(conn: duckdb.DuckDBPyConnection, table: str) -> bool:
    schema, name = table.split(".")
    return bool(conn.execute(
        "SELECT count(*) FROM information_schema.tables WHERE table_schema = $s "
        "AND table_name = $t", {"s": schema, "t": name}).fetchall()[0][0])  # fmt: skip


def export(conn: duckdb.DuckDBPyConnection, home: Path) -> dict:
    """Write the store from the warehouse into a new folder and point `online/store.json` at
    it; older folders are removed. Returns the pointer (folder, files' sha256, days, rows)."""
    root = online_root(home)
    root.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
    folder = root / f"store-{stamp}-{uuid.uuid4().hex[:8]}"
    tmp = root / f".{folder.name}.tmp"
    tmp.mkdir()
    sqls = dict(_EXPORTS, rates=_rates_sql())
    if _table_exists(conn, features.ORIGIN_DAILY):
        sqls["origin_daily"] = f"SELECT * FROM {features.ORIGIN_DAILY}"
    files, rows = {}, {}
    for name, sql in sqls.items():
        path = tmp / f"{name}.parquet"
        conn.execute(f"COPY ({sql}) TO '{path}' (FORMAT parquet)")
        files[name] = hashlib.sha256(path.read_bytes()).hexdigest()
        rows[name] = conn.execute(f"SELECT count(*) FROM '{path}'").fetchall()[0][0]
    first, last = conn.execute(
        f"SELECT min(flight_date), max(flight_date) FROM {features._FLIGHTS}"
    ).fetchall()[0]
    tmp.rename(folder)
    pointer = {"folder": folder.name, "files": files, "rows": rows, "built_at": stamp,
               "first_day": str(first) if first else None,
               "last_day": str(last) if last else None}  # fmt: skip
    write_atomic(pointer_path(home), (json.dumps(pointer, indent=2) + "\n").encode())
    for old in root.glob("store-*"):
        if old.is_dir() and old.name != folder.name:
            shutil.rmtree(old, ignore_errors=True)
    return pointer


# --------------------------------------------------------------------------------- load


def _us(values: pd.Series) -> np.ndarray:
    """Naive UTC timestamps as int64 microseconds since the epoch (NaT as int64 min)."""
    return values.to_numpy(dtype="datetime64[us]").astype(np.int64)


_NAT = np.iinfo(np.int64).min


def to_us(ts: datetime) -> int:
    """A naive UTC datetime as microseconds since the epoch."""
    return (ts.toordinal() - _EPOCH.toordinal()) * 86_400 * _US + (
        ts.hour * 3600 + ts.minute * 60 + ts.second) * _US + ts.microsecond  # fmt: skip


def from_us(value: int | None) -> str | None:
    """Microseconds since the epoch as an ISO naive UTC time; None for missing."""
    if value is None or value == _NAT:
        return None
    return (datetime(1970, 1, 1) + timedelta(microseconds=int(value))).isoformat()


def ny_day(utc_us: int) -> date:
    """The New York calendar date of a naive UTC instant."""
    moment = datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=utc_us)
    return moment.astimezone(NY).date()


def local_to_utc(local: datetime) -> datetime:
    """A New York local time as a naive UTC datetime."""
    return local.replace(tzinfo=NY).astimezone(UTC).replace(tzinfo=None)


def _none(value):
    """A pandas/NumPy missing value as None, a NumPy scalar as a Python number."""
    if value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NA:
        return None
    return value.item() if isinstance(value, np.generic) else value


@dataclass
class _Series:
    """Departures of one grain: times sorted, delays' running sums."""

    ts: np.ndarray
    cum: np.ndarray  # cum[i] = sum of the first i delays


@dataclass
class OnlineStore:
    """The loaded store: dictionaries and sorted arrays keyed the way the features join."""

    pointer: dict
    flights: dict = field(default_factory=dict)  # key -> (sched_dep_utc, distance)
    by_plane_day: dict = field(default_factory=dict)  # (tailnum, day) -> list of flights
    hour_counts: dict = field(default_factory=dict)  # (day, origin, hour) -> flights
    days: set = field(default_factory=set)
    routes: dict = field(default_factory=dict)  # (origin, dest) -> distance
    rates: dict = field(default_factory=dict)  # (grain, key1, key2, anchor) -> (short, long, n)
    weather: dict = field(default_factory=dict)  # origin -> (known_us array, values matrix)
    planes: dict = field(default_factory=dict)  # tailnum -> (year_built, seats, engine)
    dates: dict = field(default_factory=dict)  # day -> (day_of_week, month, days_to_holiday)
    live: dict = field(default_factory=dict)  # ("origin"|"carrier", key) -> _Series
    origin_daily: dict = field(default_factory=dict)  # (origin, feature_date) -> row dict

    @property
    def version(self) -> str:
        return self.pointer.get("built_at", "")


def load(home: Path) -> OnlineStore:
    """The store `online/store.json` points at, each file verified against its sha256."""
    path = pointer_path(home)
    if not path.exists():
        raise FileNotFoundError(
            f"no online store at {path}: materialize serving/online_store first"
        )
    pointer = json.loads(path.read_text("utf-8"))
    folder = online_root(home) / pointer["folder"]
    frames = {}
    for name, sha in pointer["files"].items():
        data = (folder / f"{name}.parquet").read_bytes()
        if hashlib.sha256(data).hexdigest() != sha:
            raise ValueError(f"online store file {folder / name}.parquet fails its sha256")
        frames[name] = pd.read_parquet(folder / f"{name}.parquet")
    return _build(pointer, frames)


def _build(pointer: dict, frames: dict[str, pd.DataFrame]) -> OnlineStore:
    store = OnlineStore(pointer)
    fl = frames["flights"]
    day = pd.to_datetime(fl["flight_date"]).dt.date.to_numpy()
    sched_local = _us(fl["sched_dep_ts"])
    sched_utc = _us(fl["sched_dep_utc"])
    known = _us(fl["known_at_utc"])
    dep = _us(fl["dep_utc"])
    arr = fl["arr_delay_min"].to_numpy(dtype=float, na_value=np.nan)
    dep_delay = fl["dep_delay_min"].to_numpy(dtype=float, na_value=np.nan)
    cols = [
        fl[c].to_numpy(dtype=object)
        for c in ("carrier", "flight", "origin", "dest", "tailnum", "sched_hour", "distance_mi")
    ]
    carrier, flight, origin, dest, tailnum, hour, distance = cols
    for i in range(len(fl)):
        store.flights[(day[i], carrier[i], int(flight[i]), origin[i], int(sched_local[i]))] = (
            int(sched_utc[i]),
            int(distance[i]),
        )
        store.routes[(origin[i], dest[i])] = int(distance[i])
        hk = (day[i], origin[i], int(hour[i]))
        store.hour_counts[hk] = store.hour_counts.get(hk, 0) + 1
        if tailnum[i] is not None and tailnum[i] is not pd.NA:
            store.by_plane_day.setdefault((tailnum[i], day[i]), []).append(
                (int(sched_local[i]), arr[i], int(known[i]), dep_delay[i], int(dep[i]))
            )
    store.days = set(day.tolist())
    departed = dep != _NAT
    for grain, keys in (("origin", origin), ("carrier", carrier)):
        frame = pd.DataFrame({"k": keys[departed], "ts": dep[departed],
                              "v": dep_delay[departed].astype(np.int64)})  # fmt: skip
        for k, part in frame.sort_values(["k", "ts"], kind="stable").groupby("k"):
            cum = np.concatenate([[0], np.cumsum(part["v"].to_numpy(np.int64))])
            store.live[(grain, k)] = _Series(part["ts"].to_numpy(np.int64), cum)
    r = frames["rates"]
    anchor = pd.to_datetime(r["anchor_day"]).dt.date.to_numpy()
    for g, k1, k2, a, s, lo, n in zip(r["grain"], r["key1"], r["key2"], anchor,
                                      r["rate_short"], r["rate_long"], r["n_long"],
                                      strict=True):  # fmt: skip
        store.rates[(g, k1, _none(k2), a)] = (_none(s), _none(lo), int(n))
    w = frames["weather"]
    for o, part in w.groupby("origin"):
        store.weather[o] = (
            _us(part["known_utc"]),
            part[list(WEATHER_COLUMNS)].to_numpy(dtype=float, na_value=np.nan),
        )
    for t, y, s, e in frames["planes"].itertuples(index=False):
        store.planes[t] = (_none(y), _none(s), _none(e))
    for d, dow, m, h in frames["dates"].itertuples(index=False):
        store.dates[pd.Timestamp(d).date()] = (int(dow), int(m), int(h))
    if "origin_daily" in frames:
        od = frames["origin_daily"]
        od_dates = pd.to_datetime(od["feature_date"]).dt.date.to_numpy()
        for row, d in zip(od.to_dict("records"), od_dates, strict=True):
            store.origin_daily[(row["origin"], d)] = {k: _none(v) for k, v in row.items()}
    return store


# --------------------------------------------------------------- point-in-time flight features


@dataclass(frozen=True)
class FlightRequest:
    """A flight as the published schedule knows it; `as_of` (naive UTC) for historical days."""

    carrier: str
    flight: int
    origin: str
    dest: str
    sched_dep: datetime  # New York local time, naive
    tailnum: str | None = None
    as_of: datetime | None = None


@dataclass
class FlightFeatures:
    """One flight's features (the columns of features.flight_features) and when each group of
    them was known."""

    values: dict
    as_of: dict
    cutoff_utc: str
    flags: list


def flight_features(store: OnlineStore, flights: list[FlightRequest], lead_minutes: int
                    ) -> list[FlightFeatures]:  # fmt: skip
    """Point-in-time features of each flight at its cutoff (scheduled departure minus
    `lead_minutes`, or `as_of` when earlier), as `features.flight_features` computes them."""
    out = []
    lead_us = lead_minutes * 60 * _US
    live_us = _LIVE_HOURS * 3600 * _US
    request_hours: dict = {}
    for f in flights:
        hk = (f.sched_dep.date(), f.origin, f.sched_dep.hour)
        request_hours[hk] = request_hours.get(hk, 0) + 1
    for f in flights:
        flags = []
        day = f.sched_dep.date()
        local_us = to_us(f.sched_dep)
        known_flight = store.flights.get((day, f.carrier, f.flight, f.origin, local_us))
        sched_utc = known_flight[0] if known_flight else to_us(local_to_utc(f.sched_dep))
        cutoff = sched_utc - lead_us
        if f.as_of is not None:
            cutoff = min(cutoff, to_us(f.as_of))
        v: dict = {"carrier": f.carrier, "origin": f.origin, "dest": f.dest,
                   "sched_hour": f.sched_dep.hour}  # fmt: skip
        dow, month, holiday = store.dates.get(day, (None, None, None))
        if dow is None:
            dow, month = day.isoweekday(), day.month
            flags.append("date_not_in_calendar")
        v |= {"day_of_week": dow, "month": month, "days_to_holiday": holiday}
        distance = known_flight[1] if known_flight else store.routes.get((f.origin, f.dest))
        v["distance_mi"] = distance
        year, seats, engine = store.planes.get(f.tailnum, (None, None, None))
        v["plane_age_years"] = day.year - year if year is not None else None
        v["seats"], v["engine"] = seats, engine
        # weather: the latest reading known by the cutoff
        readings = store.weather.get(f.origin)
        weather_as_of = None
        if readings is not None:
            i = int(np.searchsorted(readings[0], cutoff, side="right")) - 1
            if i >= 0:
                weather_as_of = int(readings[0][i])
                v |= {c: _none(x) for c, x in zip(WEATHER_COLUMNS, readings[1][i], strict=True)}
        if weather_as_of is None:
            v |= dict.fromkeys(WEATHER_COLUMNS)
        # delay rates of the cutoff's New York day
        anchor = ny_day(cutoff)
        for grain, keys in _GRAINS.items():
            k = tuple(getattr(f, key) for key in keys)
            short, long, n = store.rates.get((grain, k[0], k[1] if len(k) > 1 else None, anchor),
                                             (None, None, 0))  # fmt: skip
            v[f"{grain}_late_rate_{_RATE_DAYS[0]}d"] = short
            v[f"{grain}_late_rate_{_RATE_DAYS[1]}d"] = long
            if grain == "carrier":
                v[f"carrier_flights_{_RATE_DAYS[1]}d"] = n
        rates_as_of = to_us(local_to_utc(datetime.combine(anchor, datetime.min.time())))
        if day in store.days:
            v["origin_hour_departures"] = store.hour_counts.get((day, f.origin, f.sched_dep.hour),
                                                                0)  # fmt: skip
        else:
            v["origin_hour_departures"] = request_hours[(day, f.origin, f.sched_dep.hour)]
            flags.append("schedule_from_request")
        # the plane's earlier flights that day: latest outcome and latest departure by the cutoff
        inbound = prev_dep = None
        for sched, arr, known, dep_delay, dep in store.by_plane_day.get((f.tailnum, day), ()):
            if sched >= local_us:
                continue
            if (
                known != _NAT
                and known <= cutoff
                and (inbound is None or (known, sched) > inbound[:2])
            ):
                inbound = (known, sched, arr)
            if dep != _NAT and dep <= cutoff and (prev_dep is None or (dep, sched) > prev_dep[:2]):
                prev_dep = (dep, sched, dep_delay)
        v["prev_arr_delay_min"] = int(inbound[2]) if inbound else None
        v["has_prev_flight"] = inbound is not None
        v["prev_dep_delay_min"] = int(prev_dep[2]) if prev_dep else None
        # departures over the hours before the cutoff, at the origin and of the carrier
        live_as_of = []
        for grain, k in (("origin", f.origin), ("carrier", f.carrier)):
            series = store.live.get((grain, k))
            n, mean = 0, None
            if series is not None:
                lo = bisect.bisect_left(series.ts, cutoff - live_us)
                hi = bisect.bisect_right(series.ts, cutoff)
                n = hi - lo
                if n:
                    mean = int(series.cum[hi] - series.cum[lo]) / n
                    live_as_of.append(int(series.ts[hi - 1]))
            v[f"{grain}_dep_delay_3h"] = mean
            if grain == "origin":
                v["origin_departures_3h"] = n
        as_of = {
            "weather": from_us(weather_as_of),
            "rates": from_us(rates_as_of),
            "inbound": from_us(inbound[0]) if inbound else None,
            "prev_departure": from_us(prev_dep[0]) if prev_dep else None,
            "live": from_us(max(live_as_of)) if live_as_of else None,
        }
        if anchor > _last_rate_day(store):
            flags.append("store_behind_cutoff")
        out.append(FlightFeatures(v, as_of, from_us(cutoff), flags))
    return out


def _last_rate_day(store: OnlineStore) -> date:
    last = store.pointer.get("last_day")
    return date.fromisoformat(last) + timedelta(days=1) if last else date.min


def origin_daily_features(store: OnlineStore, origin: str, target_date: date,
                          horizon_days: int) -> dict | None:  # fmt: skip
    """The forecaster's row for `origin` forecasting `target_date` (its feature day is
    `horizon_days` earlier), as features.origin_daily holds it; None when not in the store."""
    return store.origin_daily.get((origin, target_date - timedelta(days=horizon_days)))
