"""The online feature store: per-key aggregates the batch graph exports, and the point-in-time
flight features the prediction service computes from them in microseconds.

Point-in-time flight features take about 0.1 s a day in DuckDB (docs/performance.md), too slow for a
request. So the batch graph exports (`online_export.py`, with the SQL fragments of
`lib/features/tables.py`) what the features are made of: every flight's schedule and outcome
times, the delay rates per carrier, origin and route for every anchor day, the hourly weather,
the planes, the calendar and the forecaster's `features.origin_daily` rows. The service holds
them in memory and answers each flight at its cutoff with sorted-array lookups that reproduce
the SQL's joins exactly; parity with `features.flight_features` is tested and checked on every
scored day.

The store is a folder of Parquet files under `$UNIFIED_ASSETS_HOME/online/`, published whole:
the folder is written under a new name and `online/store.json` is then replaced atomically to
point at it, so a reader never sees half a store. Nothing reads the DuckDB file at request time.
"""

from __future__ import annotations

import bisect
import io
import json
import math
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd

from unified_assets.lib.core import files
from unified_assets.lib.features.tables import GRAINS, LIVE_HOURS, RATE_DAYS, TZ

ONLINE = "online"
POINTER = "store.json"
NY = ZoneInfo(TZ)
_US = 1_000_000  # microseconds a second
_EPOCH = date(1970, 1, 1)



def online_root(home: Path) -> Path:
    return Path(home) / ONLINE


def pointer_path(home: Path) -> Path:
    return online_root(home) / POINTER


# --------------------------------------------------------------------------------- load


def _us(values: pd.Series) -> np.ndarray:
    """Naive UTC timestamps as int64 microseconds since the epoch (NaT as int64 min)."""
    return values.to_numpy(dtype="datetime64[us]").astype(np.int64)


_NAT = np.iinfo(np.int64).min


def to_us(ts: datetime) -> int:
    """A naive UTC datetime as microseconds since the epoch."""
    return (ts.toordinal() - _EPOCH.toordinal()) * 86_400 * _US + (
        ts.hour * 3600 + ts.minute * 60 + ts.second) * _US + ts.microsecond


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
    asof: list = field(default_factory=list)  # per as-of group: (on, names, as-of, {key: rows})
    planes: dict = field(default_factory=dict)  # tailnum -> year_built
    lookups: dict = field(default_factory=dict)  # feature -> (request columns, {key: v}, default)
    dates: dict = field(default_factory=dict)  # day -> (day_of_week, month, days_to_holiday)
    live: dict = field(default_factory=dict)  # ("origin"|"carrier", key) -> _Series
    origin_daily: dict = field(default_factory=dict)  # (origin, feature_date) -> row dict

    @property
    def version(self) -> str:
        return self.pointer.get("built_at", "")


def load(home: Path, pointer: dict | None = None) -> OnlineStore:
    """The store `online/store.json` points at (or the staged one `pointer` names), each file
    verified against its sha256."""
    if pointer is None:
        path = pointer_path(home)
        if not path.exists():
            raise FileNotFoundError(
                f"no online store at {path}: materialize serving/online_store first"
            )
        pointer = json.loads(path.read_text("utf-8"))
    folder = online_root(home) / pointer["folder"]
    frames = {}
    for name, sha in pointer["files"].items():
        data = files.read_verified(folder / f"{name}.parquet", sha, "online store file")
        frames[name] = pd.read_parquet(io.BytesIO(data))
    return _build(pointer, frames)


def _key_values(column: pd.Series) -> list:
    """A lookup's key column as the request gives it: dates as dates, numbers as ints."""
    if pd.api.types.is_datetime64_any_dtype(column):
        return list(column.dt.date)
    return [_none(v) for v in column.to_numpy(dtype=object)]


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
                              "v": dep_delay[departed].astype(np.int64)})
        for k, part in frame.sort_values(["k", "ts"], kind="stable").groupby("k"):
            cum = np.concatenate([[0], np.cumsum(part["v"].to_numpy(np.int64))])
            store.live[(grain, k)] = _Series(part["ts"].to_numpy(np.int64), cum)
    r = frames["rates"]
    anchor = pd.to_datetime(r["anchor_day"]).dt.date.to_numpy()
    for g, k1, k2, a, s, lo, n in zip(r["grain"], r["key1"], r["key2"], anchor,
                                      r["rate_short"], r["rate_long"], r["n_long"],
                                      strict=True):
        store.rates[(g, k1, _none(k2), a)] = (_none(s), _none(lo), int(n))
    for i, group in enumerate(pointer.get("as_of", [])):
        rows, names = frames[f"asof_{i}"], group["features"]
        by_key = {}
        key_columns = [f"k{j}" for j in range(len(group["on"]))]
        for key, part in rows.groupby(key_columns, sort=False):
            by_key[tuple(_key_values(pd.Series(key if isinstance(key, tuple) else (key,))))] = (
                _us(part["known"]), part[names].to_numpy(dtype=object))
        store.asof.append((tuple(group["on"]), tuple(names), group["as_of_column"], by_key))
    for t, y in frames["planes"].itertuples(index=False):
        store.planes[t] = _none(y)
    for name, declared in pointer.get("lookups", {}).items():
        rows = frames[f"lookup_{name}"]
        keys = [_key_values(rows[f"k{i}"]) for i in range(len(declared["on"]))]
        values = [_none(v) for v in rows["v"].to_numpy(dtype=object)]
        found = dict(zip(zip(*keys, strict=True), values, strict=True))
        store.lookups[name] = (tuple(declared["on"]), found, declared["default"])
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
                    ) -> list[FlightFeatures]:
    """Point-in-time features of each flight at its cutoff (scheduled departure minus
    `lead_minutes`, or `as_of` when earlier), as `features.flight_features` computes them."""
    out = []
    lead_us = lead_minutes * 60 * _US
    live_us = LIVE_HOURS * 3600 * _US
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
                   "sched_hour": f.sched_dep.hour}
        dow, month, holiday = store.dates.get(day, (None, None, None))
        if dow is None:
            dow, month = day.isoweekday(), day.month
            flags.append("date_not_in_calendar")
        v |= {"day_of_week": dow, "month": month, "days_to_holiday": holiday}
        distance = known_flight[1] if known_flight else store.routes.get((f.origin, f.dest))
        v["distance_mi"] = distance
        year = store.planes.get(f.tailnum)
        v["plane_age_years"] = day.year - year if year is not None else None
        # the request's own columns: the keys of the declared features
        request = {"flight_date": day, "carrier": f.carrier, "flight": f.flight,
                   "origin": f.origin, "dest": f.dest, "tailnum": f.tailnum,
                   "sched_hour": f.sched_dep.hour}
        # lookup features, from their declarations (catalog.Lookup)
        for name, (on, rows, default) in store.lookups.items():
            v[name] = rows.get(tuple(request[c] for c in on), default)
        # as-of features, from their declarations (catalog.AsOf): the latest row of each
        # group's table known by the cutoff, for the request's key
        group_as_of = {}
        for on, names, as_of_column, by_key in store.asof:
            rows = by_key.get(tuple(request[c] for c in on))
            i = -1 if rows is None else int(np.searchsorted(rows[0], cutoff, side="right")) - 1
            v |= ({n: _none(x) for n, x in zip(names, rows[1][i], strict=True)} if i >= 0
                  else dict.fromkeys(names))
            group_as_of[as_of_column.removesuffix("_as_of")] = (
                from_us(int(rows[0][i])) if i >= 0 else None)
        # delay rates of the cutoff's New York day
        anchor = ny_day(cutoff)
        for grain, keys in GRAINS.items():
            k = tuple(getattr(f, key) for key in keys)
            short, long, n = store.rates.get((grain, k[0], k[1] if len(k) > 1 else None, anchor),
                                             (None, None, 0))
            v[f"{grain}_late_rate_{RATE_DAYS[0]}d"] = short
            v[f"{grain}_late_rate_{RATE_DAYS[1]}d"] = long
            if grain == "carrier":
                v[f"carrier_flights_{RATE_DAYS[1]}d"] = n
        rates_as_of = to_us(local_to_utc(datetime.combine(anchor, datetime.min.time())))
        if day in store.days:
            v["origin_hour_departures"] = store.hour_counts.get((day, f.origin, f.sched_dep.hour),
                                                                0)
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
        as_of = group_as_of | {
            "rates": from_us(rates_as_of),
            "inbound": from_us(inbound[0]) if inbound else None,
            "prev_departure": from_us(prev_dep[0]) if prev_dep else None,
            "live": from_us(max(live_as_of)) if live_as_of else None,
        }
        if anchor > _last_rate_day(store):
            flags.append("store_behind_cutoff")
        out.append(FlightFeatures(v, as_of, from_us(cutoff), flags))
    return out


def uncovered(store: OnlineStore, names: list[str], lead_minutes: int) -> list[str]:
    """The registered flight features the online path does not compute: a feature declared in
    the registry but built only in the batch SQL (a lookup feature never is: see catalog)."""
    if not store.flights:
        return []
    day, carrier, flight, origin, local_us = next(iter(store.flights))
    sched = datetime(1970, 1, 1) + timedelta(microseconds=local_us)
    request = FlightRequest(carrier, flight, origin, "???", sched)
    (computed,) = flight_features(store, [request], lead_minutes)
    return [n for n in names if n not in computed.values]


def _last_rate_day(store: OnlineStore) -> date:
    last = store.pointer.get("last_day")
    return date.fromisoformat(last) + timedelta(days=1) if last else date.min


def origin_daily_features(store: OnlineStore, origin: str, target_date: date,
                          horizon_days: int) -> dict | None:
    """The forecaster's row for `origin` forecasting `target_date` (its feature day is
    `horizon_days` earlier), as features.origin_daily holds it; None when not in the store."""
    return store.origin_daily.get((origin, target_date - timedelta(days=horizon_days)))
