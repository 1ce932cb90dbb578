"""The online feature store: per-key aggregates the batch graph exports, and the point-in-time
flight features the prediction service computes from them in microseconds.

Point-in-time flight features take about 0.1 s a day in DuckDB (docs/performance.md), too slow for a
request. So the batch graph exports (`online_export.py`, with the SQL fragments of
`lib/features/tables.py`) what the features are made of: every flight's schedule and outcome
times, the delay rates per carrier, origin and route for every anchor day, the hourly weather,
the planes, the calendar and the forecaster's `features.origin_daily` rows. The service answers
each flight at its cutoff with binary searches over sorted arrays that reproduce the SQL's joins
exactly; parity with `features.flight_features` is a blocking check before a store is served.

The store is columnar: one NumPy `.npy` file per column, memory-mapped read-only, so loading it
costs milliseconds, its pages are shared by every worker of `serve --workers` through the page
cache, and only the pages a request touches become resident. Strings are integer codes into
vocabularies kept, with the small reference rows (planes, calendar, lookups, the forecaster's
rows), in `small.json`. The folder lives under `$UNIFIED_ASSETS_HOME/online/` and is published
whole: written under a new name, then `online/store.json` is replaced atomically to point at
it, so a reader never sees half a store. Each file is verified against its sha256 when loaded.
Nothing reads the DuckDB file at request time, and nothing here needs pandas.
"""

from __future__ import annotations

import bisect
import json
import math
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np

from unified_assets.lib.core import files
from unified_assets.lib.features.tables import GRAINS, LIVE_HOURS, RATE_DAYS, TZ

ONLINE = "online"
POINTER = "store.json"
FORMAT = 2  # 1: Parquet files rebuilt into Python objects; 2: memory-mapped columns
SMALL = "small.json"
NY = ZoneInfo(TZ)
NAT = np.iinfo(np.int64).min  # a missing time, in int64 microseconds
_US = 1_000_000  # microseconds a second
_EPOCH = date(1970, 1, 1)
# Composite int64 search keys: (code << 32) + day number shifted to be non-negative.
_DAY_SHIFT = 1 << 31


def online_root(home: Path) -> Path:
    return Path(home) / ONLINE


def pointer_path(home: Path) -> Path:
    return online_root(home) / POINTER


# ------------------------------------------------------------------------ keys and times


def day_key(code, day_number):
    """A search key: a code (carrier, plane, grain key...) and a day number since 1970 (Python
    numbers or NumPy arrays of them)."""
    return code * (1 << 32) + (day_number + _DAY_SHIFT)


def hour_key(origin_code, day_number, hour):
    """The search key of a (day, origin, local hour) departure count."""
    return day_key(origin_code, day_number) * 32 + hour


def key_text(values) -> str:
    """A lookup or as-of key as text (in small.json): the same for exported rows and requests."""
    return json.dumps(key_of(values))


def key_of(values) -> tuple:
    """A lookup or as-of key as the service holds it: days as ISO text, the rest as given."""
    return tuple(v.isoformat() if isinstance(v, date) else v for v in values)


def to_us(ts: datetime) -> int:
    """A naive UTC datetime as microseconds since the epoch."""
    return (ts.toordinal() - _EPOCH.toordinal()) * 86_400 * _US + (
        ts.hour * 3600 + ts.minute * 60 + ts.second) * _US + ts.microsecond


def from_us(value: int | None) -> str | None:
    """Microseconds since the epoch as an ISO naive UTC time; None for missing."""
    if value is None or value == NAT:
        return None
    return (datetime(1970, 1, 1) + timedelta(microseconds=int(value))).isoformat()


def ny_day(utc_us: int) -> date:
    """The New York calendar date of a naive UTC instant."""
    moment = datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=utc_us)
    return moment.astimezone(NY).date()


def local_to_utc(local: datetime) -> datetime:
    """A New York local time as a naive UTC datetime."""
    return local.replace(tzinfo=NY).astimezone(UTC).replace(tzinfo=None)


def _day_number(day: date) -> int:
    return day.toordinal() - _EPOCH.toordinal()


def _number(value: float):
    """A stored float as the feature value: NaN is missing."""
    return None if math.isnan(value) else float(value)


# --------------------------------------------------------------------------------- load


@dataclass
class OnlineStore:
    """The loaded store: memory-mapped columns, and the vocabularies and small rows that say
    what their codes mean."""

    pointer: dict
    columns: dict  # file name -> a memoryview of the read-only mapped column
    small: dict  # small.json as written
    codes: dict  # vocabulary -> {value: code}
    rate_codes: dict  # (grain, key1, key2) -> code
    lookups: dict  # feature -> (request columns, {key_of: value}, default)
    asof: list  # per as-of group: (on, names, as-of column, {key_of: (start, end)}, kinds)
    dates: dict  # date -> (day_of_week, month, days_to_holiday)

    @property
    def version(self) -> str:
        return self.pointer.get("built_at", "")


def load(home: Path, pointer: dict | None = None) -> OnlineStore:
    """The store `online/store.json` points at (or the staged one `pointer` names), each file
    verified against its sha256, the columns memory-mapped."""
    if pointer is None:
        path = pointer_path(home)
        if not path.exists():
            raise FileNotFoundError(
                f"no online store at {path}: materialize serving/online_store first"
            )
        pointer = json.loads(path.read_text("utf-8"))
    if pointer.get("format") != FORMAT:
        raise ValueError(f"the online store {pointer.get('folder')} has format "
                         f"{pointer.get('format', 1)}; this service reads format {FORMAT}: "
                         "materialize serving/online_store again")
    folder = online_root(home) / pointer["folder"]
    columns, small = {}, None
    for name, sha in pointer["files"].items():
        path = folder / name
        if not path.exists():
            raise FileNotFoundError(f"online store file not found: {path}")
        files.check(path, sha, files.sha256_file(path), "online store file")
        if name == SMALL:
            small = json.loads(path.read_text("utf-8"))
        else:
            # a memoryview of the mapping: a request reads single elements, which a memoryview
            # gives as Python numbers several times faster than NumPy indexing does, and
            # `bisect` searches it in C
            columns[name.removesuffix(".npy")] = memoryview(
                np.load(path, mmap_mode="r", allow_pickle=False))
    if small is None:
        raise ValueError(f"the online store {pointer['folder']} has no {SMALL}")
    return OnlineStore(
        pointer, columns, small,
        codes={name: {v: i for i, v in enumerate(values)}
               for name, values in small["vocab"].items()},
        rate_codes={tuple(k): i for i, k in enumerate(small["rate_keys"])},
        lookups={name: (tuple(d["on"]), {tuple(json.loads(k)): v for k, v in d["rows"]},
                        d["default"])
                 for name, d in small["lookups"].items()},
        asof=[(tuple(g["on"]), tuple(g["features"]), g["as_of_column"],
               {tuple(json.loads(k)): tuple(v) for k, v in g["offsets"].items()}, g["kinds"])
              for g in small["as_of"]],
        dates={date.fromisoformat(d): tuple(v) for d, v in small["dates"].items()},
    )


def _between(sorted_keys: memoryview, key: int) -> tuple[int, int]:
    """Where the keys equal to `key` start and end in a sorted column."""
    return bisect.bisect_left(sorted_keys, key), bisect.bisect_right(sorted_keys, key)


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


def _known_flight(s: OnlineStore, f: FlightRequest, day: date, local_us: int):
    """The stored row of the requested flight (the last of equal keys, as the SQL's join
    reads the export), or None."""
    c = s.columns
    carrier, origin = s.codes["carrier"].get(f.carrier), s.codes["origin"].get(f.origin)
    if carrier is None or origin is None:
        return None
    lo, hi = _between(c["f_sched_local"], local_us)
    found = None
    for i in range(lo, hi):
        if (c["f_carrier"][i] == carrier and c["f_flight"][i] == f.flight
                and c["f_origin"][i] == origin and c["f_day"][i] == _day_number(day)):
            found = i
    return found


def _plane_day(s: OnlineStore, tailnum: str | None, day: date, local_us: int, cutoff: int):
    """The plane's earlier flights that day: its latest outcome and its latest departure known
    by the cutoff, each as (known, scheduled, delay)."""
    c = s.columns
    tail = s.codes["tailnum"].get(tailnum) if tailnum is not None else None
    if tail is None:
        return None, None
    lo, hi = _between(c["plane_key"], day_key(tail, _day_number(day)))
    inbound = prev_dep = None
    for i in c["plane_rows"][lo:hi]:
        sched = c["f_sched_local"][i]
        if sched >= local_us:
            continue
        known, dep = c["f_known"][i], c["f_dep"][i]
        if known != NAT and known <= cutoff and (inbound is None or (known, sched) > inbound[:2]):
            inbound = (known, sched, c["f_arr_delay"][i])
        if dep != NAT and dep <= cutoff and (prev_dep is None or (dep, sched) > prev_dep[:2]):
            prev_dep = (dep, sched, c["f_dep_delay"][i])
    return inbound, prev_dep


def _live(s: OnlineStore, grain: str, key: str, cutoff: int, live_us: int):
    """Departures of the grain's key over the hours before the cutoff: (count, mean delay,
    latest departure)."""
    span = s.small["live"][grain].get(key)
    if span is None:
        return 0, None, None
    start, end, cum_start = span
    ts = s.columns[f"live_{grain}_ts"][start:end]
    lo = bisect.bisect_left(ts, cutoff - live_us)
    hi = bisect.bisect_right(ts, cutoff)
    if hi == lo:
        return 0, None, None
    cum = s.columns[f"live_{grain}_cum"]
    total = cum[cum_start + hi] - cum[cum_start + lo]
    return hi - lo, total / (hi - lo), ts[hi - 1]


def _rates(s: OnlineStore, grain: str, key: tuple, anchor: date):
    """A grain's (short rate, long rate, outcomes seen) for the anchor day."""
    c = s.columns
    code = s.rate_codes.get((grain, key[0], key[1] if len(key) > 1 else None))
    if code is None:
        return None, None, 0
    lo, hi = _between(c["rates_key"], day_key(code, _day_number(anchor)))
    if hi == lo:
        return None, None, 0
    return _number(c["rates_short"][lo]), _number(c["rates_long"][lo]), c["rates_n"][lo]


def _as_of_value(value: float, kind: str):
    if math.isnan(value):
        return None
    return int(value) if kind == "int" else bool(value) if kind == "bool" else float(value)


def flight_features(store: OnlineStore, flights: list[FlightRequest], lead_minutes: int
                    ) -> list[FlightFeatures]:
    """Point-in-time features of each flight at its cutoff (scheduled departure minus
    `lead_minutes`, or `as_of` when earlier), as `features.flight_features` computes them."""
    s, c = store, store.columns
    out = []
    lead_us = lead_minutes * 60 * _US
    live_us = LIVE_HOURS * 3600 * _US
    request_hours: dict = {}
    for f in flights:
        hk = (f.sched_dep.date(), f.origin, f.sched_dep.hour)
        request_hours[hk] = request_hours.get(hk, 0) + 1
    last_rate_day = _last_rate_day(store)
    for f in flights:
        flags = []
        day = f.sched_dep.date()
        local_us = to_us(f.sched_dep)
        row = _known_flight(s, f, day, local_us)
        sched_utc = c["f_sched_utc"][row] if row is not None else to_us(
            local_to_utc(f.sched_dep))
        cutoff = sched_utc - lead_us
        if f.as_of is not None:
            cutoff = min(cutoff, to_us(f.as_of))
        v: dict = {"carrier": f.carrier, "origin": f.origin, "dest": f.dest,
                   "sched_hour": f.sched_dep.hour}
        dow, month, holiday = s.dates.get(day, (None, None, None))
        if dow is None:
            dow, month = day.isoweekday(), day.month
            flags.append("date_not_in_calendar")
        v |= {"day_of_week": dow, "month": month, "days_to_holiday": holiday}
        v["distance_mi"] = (c["f_distance"][row] if row is not None
                            else s.small["routes"].get(f"{f.origin}|{f.dest}"))
        year = s.small["planes"].get(f.tailnum) if f.tailnum is not None else None
        v["plane_age_years"] = day.year - year if year is not None else None
        # the request's own columns: the keys of the declared features
        request = {"flight_date": day, "carrier": f.carrier, "flight": f.flight,
                   "origin": f.origin, "dest": f.dest, "tailnum": f.tailnum,
                   "sched_hour": f.sched_dep.hour}
        # lookup features, from their declarations (catalog.Lookup)
        for name, (on, rows, default) in s.lookups.items():
            v[name] = rows.get(key_of(request[c] for c in on), default)
        # as-of features, from their declarations (catalog.AsOf): the latest row of each
        # group's table known by the cutoff, for the request's key
        group_as_of = {}
        for i, (on, names, as_of_column, offsets, kinds) in enumerate(s.asof):
            span = offsets.get(key_of(request[c] for c in on))
            known = c[f"asof_{i}_known"]
            j = -1
            if span is not None:
                j = bisect.bisect_right(known, cutoff, span[0], span[1]) - 1
                j = j if j >= span[0] else -1
            v |= ({n: _as_of_value(c[f"asof_{i}_{n}"][j], k)
                   for n, k in zip(names, kinds, strict=True)} if j >= 0
                  else dict.fromkeys(names))
            group_as_of[as_of_column.removesuffix("_as_of")] = (
                from_us(known[j]) if j >= 0 else None)
        # delay rates of the cutoff's New York day
        anchor = ny_day(cutoff)
        for grain, keys in GRAINS.items():
            short, long, n = _rates(s, grain, tuple(getattr(f, key) for key in keys), anchor)
            v[f"{grain}_late_rate_{RATE_DAYS[0]}d"] = short
            v[f"{grain}_late_rate_{RATE_DAYS[1]}d"] = long
            if grain == "carrier":
                v[f"carrier_flights_{RATE_DAYS[1]}d"] = n
        rates_as_of = to_us(local_to_utc(datetime.combine(anchor, datetime.min.time())))
        lo, hi = _between(c["days"], _day_number(day))
        if hi > lo:
            origin = s.codes["origin"].get(f.origin)
            count = 0
            if origin is not None:
                a, b = _between(c["hours_key"],
                                hour_key(origin, _day_number(day), f.sched_dep.hour))
                count = c["hours_count"][a] if b > a else 0
            v["origin_hour_departures"] = count
        else:
            v["origin_hour_departures"] = request_hours[(day, f.origin, f.sched_dep.hour)]
            flags.append("schedule_from_request")
        inbound, prev_dep = _plane_day(s, f.tailnum, day, local_us, cutoff)
        v["prev_arr_delay_min"] = int(inbound[2]) if inbound else None
        v["has_prev_flight"] = inbound is not None
        v["prev_dep_delay_min"] = int(prev_dep[2]) if prev_dep else None
        # departures over the hours before the cutoff, at the origin and of the carrier
        live_as_of = []
        for grain, k in (("origin", f.origin), ("carrier", f.carrier)):
            n, mean, latest = _live(s, grain, k, cutoff, live_us)
            v[f"{grain}_dep_delay_3h"] = mean
            if latest is not None:
                live_as_of.append(latest)
            if grain == "origin":
                v["origin_departures_3h"] = n
        as_of = group_as_of | {
            "rates": from_us(rates_as_of),
            "inbound": from_us(inbound[0]) if inbound else None,
            "prev_departure": from_us(prev_dep[0]) if prev_dep else None,
            "live": from_us(max(live_as_of)) if live_as_of else None,
        }
        if anchor > last_rate_day:
            flags.append("store_behind_cutoff")
        out.append(FlightFeatures(v, as_of, from_us(cutoff), flags))
    return out


def uncovered(store: OnlineStore, names: list[str], lead_minutes: int) -> list[str]:
    """The registered flight features the online path does not compute: a feature declared in
    the registry but built only in the batch SQL (a lookup feature never is: see catalog)."""
    c, vocab = store.columns, store.small["vocab"]
    if len(c["f_sched_local"]) == 0:
        return []
    sched = datetime(1970, 1, 1) + timedelta(microseconds=c["f_sched_local"][0])
    request = FlightRequest(vocab["carrier"][c["f_carrier"][0]], c["f_flight"][0],
                            vocab["origin"][c["f_origin"][0]], "???", sched)
    (computed,) = flight_features(store, [request], lead_minutes)
    return [n for n in names if n not in computed.values]


def _last_rate_day(store: OnlineStore) -> date:
    last = store.pointer.get("last_day")
    return date.fromisoformat(last) + timedelta(days=1) if last else date.min


def origin_daily_features(store: OnlineStore, origin: str, target_date: date,
                          horizon_days: int) -> dict | None:
    """The forecaster's row for `origin` forecasting `target_date` (its feature day is
    `horizon_days` earlier), as features.origin_daily holds it; None when not in the store."""
    feature_day = target_date - timedelta(days=horizon_days)
    return store.small["origin_daily"].get(f"{origin}|{feature_day.isoformat()}")
