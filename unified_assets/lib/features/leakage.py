"""The leakage audit: could each feature value really have been known at its row's cutoff?

The feature tables say when each value was known (an as-of column per feature), and
`leakage_report` checks each of those against its row's cutoff. The audit (`audit`) does not
trust them: it goes back to the events in the warehouse, the actual departure (local time
at the origin), the actual arrival (local time at the destination) and the weather hour, puts
them in UTC with each airport's own time zone, and checks every feature value of a row against
what had happened by that row's cutoff. It shares no SQL with the feature builders, so a wrong
as-of expression there cannot hide a leak here. Plain SQL over DuckDB; no Dagster.

Rules, per feature:
- `schedule`: published schedule, reference data and calendar; known in advance.
- `weather`: the value equals the latest reading at the origin whose hour had ended by the
  cutoff (a reading of hour H is taken late in the hour, so it is known at H + 1 h).
- `inbound`: an earlier flight of the same plane that day had landed, plus the outcome lag, by
  the cutoff with exactly that arrival delay.
- `departed`: an earlier flight of the same plane that day had left by the cutoff with exactly
  that departure delay.
- `rates`: the delay rate equals the one computed from the outcomes known (landed + lag)
  before the cutoff's New York day, over the feature's window.
- `live`: the departure delays of the 3 hours up to the cutoff, from actual departures.
- `history`: departures per origin and day counted from flights that had left by the cutoff.
- `unaudited`: a feature whose as-of column has no rule here. The audit fails closed: every
  value counts as a violation until a rule says how to check it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date

import duckdb

from unified_assets.lib.features.catalog import REGISTRY, Feature, features_of
from unified_assets.lib.features.tables import OUTCOME_LAG_MINUTES, WINDOW_COLUMN

SAMPLE = 5
TOLERANCE = 1e-9

# Each flight's events in UTC, with the airports' own time zones.
_EVENTS = """
    SELECT f.flight_date, f.carrier, f.flight, f.origin, f.dest, f.tailnum, f.sched_dep_ts,
        f.dep_delay_min, f.arr_delay_min, f.is_cancelled, f.is_diverted,
        (f.dep_ts AT TIME ZONE o.tzone) AT TIME ZONE 'UTC' AS departed_utc,
        (f.arr_ts AT TIME ZONE d.tzone) AT TIME ZONE 'UTC' AS landed_utc
    FROM warehouse.fct_flights f
    LEFT JOIN warehouse.dim_airport o ON o.faa = f.origin
    LEFT JOIN warehouse.dim_airport d ON d.faa = f.dest"""


@dataclass
class Finding:
    """The audit of one feature over the audited rows."""

    feature: str
    rule: str
    rows: int = 0  # rows with a value
    violations: int = 0
    sample: list[dict] = field(default_factory=list)

    def as_dict(self) -> dict:
        return {"feature": self.feature, "rule": self.rule, "rows": self.rows,
                "violations": self.violations}


def _window(column: str, start: date | None, end: date | None) -> tuple[str, dict]:
    where, params = ["TRUE"], {}
    if start is not None:
        where.append(f"r.{column} >= $start")
        params["start"] = start
    if end is not None:
        where.append(f"r.{column} < $end")
        params["end"] = end
    return " AND ".join(where), params


def _weather(name: str) -> str:
    """The value against the reading staged beside each row (`weather`, one as-of join for
    every weather feature of the table)."""
    return f"SELECT r.*, r.{name} IS NOT DISTINCT FROM r.w_{name} AS ok FROM weather r"


def _earlier_flight(value: str, event_value: str | None, event_time: str) -> str:
    same = f"AND e.{event_value} = r.{value}" if event_value else ""
    return f"""
    SELECT r.*, EXISTS (
        SELECT 1 FROM events e
        WHERE e.tailnum = r.tailnum AND e.flight_date = r.flight_date
            AND e.sched_dep_ts < r.sched_dep_ts {same} AND {event_time} <= r.cutoff_utc
    ) AS ok
    FROM rows r"""


def _rates(name: str, keys: tuple[str, ...], days: int, counts: bool = False) -> str:
    on = " AND ".join(f"o.{k} = a.{k}" for k in keys)
    value, known = ("count(o.late)", "coalesce(k.v, 0)") if counts else ("avg(o.late)", "k.v")
    return f"""
    SELECT r.*, abs(r.{name} - {known}) <= {TOLERANCE} AS ok
    FROM rows r LEFT JOIN (
        SELECT {", ".join(f"a.{k}" for k in keys)}, a.day, {value} AS v
        FROM (SELECT DISTINCT {", ".join(keys)}, day FROM rows) a
        JOIN outcomes o ON {on}
            AND o.known_utc >= timezone('UTC', timezone('America/New_York',
                                                       (a.day - {days})::TIMESTAMP))
            AND o.known_utc < timezone('UTC', timezone('America/New_York', a.day::TIMESTAMP))
        GROUP BY ALL
    ) k ON {" AND ".join(f"k.{k} = r.{k}" for k in keys)} AND k.day = r.day"""


def _live(name: str, grain: str, measure: str) -> str:
    """Departures of the grain in [cutoff - 3 h, cutoff]: running totals of actual departures
    read at the cutoff and just before the window (two as-of joins)."""
    if measure == "delay":
        known = "(hi.s - coalesce(lo.s, 0)) / nullif(hi.n - coalesce(lo.n, 0), 0)"
        ok = f"(r.{name} IS NULL AND k IS NULL) OR abs(r.{name} - k) <= {TOLERANCE}"
    else:
        known = "coalesce(hi.n, 0) - coalesce(lo.n, 0)"
        ok = f"r.{name} = k"
    return f"""
    SELECT r.*, {ok} AS ok
    FROM (
        SELECT r.*, {known} AS k
        FROM rows r
        ASOF LEFT JOIN running_{grain} hi ON hi.g = r.{grain} AND r.cutoff_utc >= hi.t
        ASOF LEFT JOIN running_{grain} lo
            ON lo.g = r.{grain} AND r.cutoff_utc - INTERVAL 3 HOUR > lo.t
    ) r"""


def _history(name: str, day: str, mean_days: int | None = None) -> str:
    """Departures of an origin on a day (or their mean over `mean_days` loaded days up to the
    feature day), counted from the flights that had left by the row's cutoff."""
    span = (f"d.day BETWEEN q.feature_date - {mean_days - 1} AND q.feature_date" if mean_days
            else f"d.day = {day}")
    return f"""
    SELECT r.*, abs(r.{name} - k.v) <= {TOLERANCE} AS ok
    FROM rows r LEFT JOIN (
        SELECT origin, feature_date, avg(n) AS v FROM (
            SELECT q.origin, q.feature_date, d.day, count(e.flight_date) AS n
            FROM (SELECT DISTINCT origin, feature_date, target_date, cutoff_utc FROM rows) q
            JOIN (SELECT DISTINCT flight_date AS day FROM warehouse.fct_flights) d ON {span}
            LEFT JOIN events e ON e.origin = q.origin AND e.flight_date = d.day
                AND NOT e.is_cancelled AND e.departed_utc <= q.cutoff_utc
            GROUP BY ALL
        ) GROUP BY ALL
    ) k USING (origin, feature_date)"""


def audit_rule(feature: Feature) -> tuple[str, str | None]:
    """The rule and the audit query (over `rows`, giving `ok` per row) of one feature."""
    name = feature.name
    if feature.as_of == "cutoff_utc":
        return "schedule", None
    if feature.as_of == "weather_as_of":
        return "weather", _weather(name)
    if name == "prev_arr_delay_min":
        return "inbound", _earlier_flight(name, "arr_delay_min", "e.landed_utc + lag")
    if name == "has_prev_flight":
        return "inbound", _earlier_flight(name, None, "e.landed_utc + lag").replace(
            "AS ok", "= r.has_prev_flight AS ok")
    if name == "prev_dep_delay_min":
        return "departed", _earlier_flight(name, "dep_delay_min", "e.departed_utc")
    if feature.as_of == "rates_as_of":
        grain, _, rest = name.partition("_")
        keys = {"carrier": ("carrier",), "origin": ("origin",), "route": ("origin", "dest")}
        days = int(rest.rsplit("_", 1)[1].rstrip("d"))
        return "rates", _rates(name, keys[grain], days, counts=rest.startswith("flights"))
    if feature.as_of == "live_as_of":
        grain = name.split("_")[0]
        return "live", _live(name, grain, "count" if "departures" in name else "delay")
    if feature.as_of == "history_as_of":
        lag = {"departures_d0": "r.feature_date", "departures_d1": "r.feature_date - 1",
               "departures_lag7": "r.target_date - 7", "departures_lag14": "r.target_date - 14"}
        if name in lag:
            return "history", _history(name, lag[name].replace("r.", "q."))
        return "history", _history(name, "", int(name.rsplit("_", 1)[1].rstrip("d")))
    return "unaudited", None


STAGED = ("events", "outcomes", "rows", "running_origin", "running_carrier", "weather")
"""What the features' queries read, computed once per audit as temporary tables (`leak_*`)."""

NEEDS = {
    "schedule": ("rows",),
    "unaudited": ("rows",),
    "weather": ("rows", "weather"),
    "inbound": ("rows", "events"),
    "departed": ("rows", "events"),
    "rates": ("rows", "events", "outcomes"),
    "live": ("rows", "events", "running_origin", "running_carrier"),
    "history": ("rows", "events"),
}
"""The staged tables each rule reads (outcomes and running totals are made from events)."""


def lookback_days(table: str, registry: dict[str, Feature]) -> int:
    """How many days before its window an audited row's values can reach back: the longest
    rate or history window, plus three (a cutoff the evening before, a flight landing the
    day after its scheduled day, late by up to a day)."""
    longest = 1
    for feature in features_of(table, registry):
        rule, _ = audit_rule(feature)
        tail = feature.name.rsplit("_", 1)[-1].rstrip("d")
        if rule in ("rates", "history") and tail.isdigit():
            longest = max(longest, int(tail))
        elif rule == "history":  # a day or a lag (departures_lag14)
            longest = max(longest, 14)
    return longest + 3


def _stage(conn: duckdb.DuckDBPyConnection, table: str, where: str, params: dict,
           since: date | None, until: date | None, features: list[Feature]
           ) -> list[str]:
    """The intermediates the features' rules read, as temporary tables: the flights' events
    scheduled from `since` through `until` (the day after the audited window: a flight
    scheduled just after midnight can leave before it; None: no bound), the known outcomes,
    the audited rows, the running totals, and each row's latest ended weather reading.
    Returns what was staged. The running totals start a little before the earliest cutoff
    less the 3-hour window: a live feature is a difference of two totals inside it, whatever
    they started from."""
    bounds = {name: value for name, value in (("since", since), ("until", until))
              if value is not None}
    limits = {"since": "f.flight_date >= $since", "until": "f.flight_date <= $until"}
    events = _EVENTS + (" WHERE " + " AND ".join(limits[name] for name in bounds) if bounds
                        else "")
    day = ", CAST(timezone('America/New_York', timezone('UTC', r.cutoff_utc)) AS DATE) AS day"
    queries = {
        "events": (events, bounds),
        "outcomes": (f"""SELECT carrier, origin, dest, (arr_delay_min > 15)::INTEGER AS late,
            landed_utc + to_minutes({OUTCOME_LAG_MINUTES}) AS known_utc
            FROM leak_events
            WHERE NOT is_cancelled AND NOT is_diverted AND arr_delay_min IS NOT NULL
                AND landed_utc IS NOT NULL""", {}),
        "rows": (f"SELECT r.*{day} FROM {table} r WHERE {where}", params),
    }
    for grain in ("origin", "carrier"):
        queries[f"running_{grain}"] = (f"""SELECT {grain} AS g, departed_utc AS t,
            sum(dep_delay_min) OVER w AS s, count(*) OVER w AS n
            FROM leak_events WHERE dep_delay_min IS NOT NULL AND departed_utc IS NOT NULL
                AND departed_utc >= (SELECT min(cutoff_utc) FROM leak_rows) - INTERVAL 4 HOUR
            WINDOW w AS (PARTITION BY {grain} ORDER BY departed_utc)""", {})
    weather = [f.name for f in features if audit_rule(f)[0] == "weather"]
    if weather:
        queries["weather"] = (f"""SELECT r.*, {", ".join(f"w.{c} AS w_{c}" for c in weather)}
            FROM leak_rows r ASOF LEFT JOIN (
                SELECT origin, time_hour_utc + INTERVAL 1 HOUR AS ended_utc, {", ".join(weather)}
                FROM warehouse.fct_weather_hourly
            ) w ON w.origin = r.origin AND r.cutoff_utc >= w.ended_utc""", {})
    needed = {name for f in features for name in NEEDS.get(audit_rule(f)[0], ())}
    staged = [name for name in STAGED if name in needed]
    for name in staged:
        sql, values = queries[name]
        conn.execute(f"CREATE OR REPLACE TEMP TABLE leak_{name} AS {sql}", values)
    return staged


def leakage_report(
    conn: duckdb.DuckDBPyConnection,
    table: str,
    start: date | None = None,
    end: date | None = None,
    registry: dict[str, Feature] = REGISTRY,
) -> dict[str, int]:
    """Per registered feature of `table`: rows in [start, end) whose value is not NULL and whose
    as_of column is after cutoff_utc. All zeros on a point-in-time correct table."""
    feats = features_of(table, registry)
    if not feats:
        return {}
    column = WINDOW_COLUMN[table]
    where, params = [], {}
    if start is not None:
        where.append(f"{column} >= $start")
        params["start"] = start
    if end is not None:
        where.append(f"{column} < $end")
        params["end"] = end
    counts = ", ".join(
        f"count(*) FILTER (WHERE {f.name} IS NOT NULL AND {f.as_of} > cutoff_utc)" for f in feats
    )
    sql = f"SELECT {counts} FROM {table}"
    if where:
        sql += " WHERE " + " AND ".join(where)
    (row,) = conn.execute(sql, params).fetchall()
    return {f.name: int(n) for f, n in zip(feats, row, strict=True)}


def audit(
    conn: duckdb.DuckDBPyConnection,
    table: str,
    start: date | None = None,
    end: date | None = None,
    registry: dict[str, Feature] = REGISTRY,
) -> list[Finding]:
    """Audit every registered feature of `table` over the rows of [start, end). The events
    read are those of the window and the longest look-back before it, so a day's audit does
    not grow with the history. Every feature is counted in one statement (a query per feature
    cost more in DuckDB's per-statement overhead than in the work); a feature with violations
    is read again for its sample."""
    column = WINDOW_COLUMN[table]
    where, params = _window(column, start, end)
    since = None
    if start is not None:
        since = date.fromordinal(start.toordinal() - lookback_days(table, registry))
    features = features_of(table, registry)
    staged = _stage(conn, table, where, params, since, end, features)
    ctes = "WITH " + ", ".join(f"{name} AS (SELECT * FROM leak_{name})" for name in staged)
    try:
        findings = _count(conn, features, ctes)
        for feature, finding in zip(features, findings, strict=True):
            query = _audited(feature)
            if finding.rule == "unaudited" and finding.rows:
                finding.violations = finding.rows
                finding.sample = [{"reason": f"no audit rule for the as-of column "
                                   f"{feature.as_of!r}: add one to "
                                   "lib/features/leakage.py"}]
            elif finding.violations and query is not None:
                finding.sample = _sample(conn, table, feature, f"{ctes}, {query}")
    finally:
        for name in staged:
            conn.execute(f"DROP TABLE IF EXISTS leak_{name}")
    return findings


def _audited(feature: Feature, name: str = "audited") -> str | None:
    """The CTE `name` of a feature with an audit query: its rows with a value, with `ok`."""
    _, query = audit_rule(feature)
    if query is None:
        return None
    query = query.replace("e.landed_utc + lag",
                          f"e.landed_utc + to_minutes({OUTCOME_LAG_MINUTES})")
    return f"{name} AS (SELECT * FROM ({query}) WHERE {feature.name} IS NOT NULL)"


def _count(conn: duckdb.DuckDBPyConnection, features: list[Feature], ctes: str
           ) -> list[Finding]:
    """Each feature's rows with a value and its violations (none counted for a feature
    without an audit query: the caller decides), from one statement over the staged rows."""
    parts, counts = [], []
    for i, feature in enumerate(features):
        query = _audited(feature, f"audited_{i}")
        if query is None:
            counts.append(f"SELECT {i} AS i, count({feature.name}) AS n, 0 AS bad FROM rows")
            continue
        parts.append(query)
        counts.append(f"SELECT {i} AS i, count(*) AS n, count(*) FILTER "
                      f"(WHERE NOT coalesce(ok, FALSE)) AS bad FROM audited_{i}")
    found = dict.fromkeys(range(len(features)), (0, 0))
    if counts:
        sql = ", ".join([ctes, *parts]) + " " + " UNION ALL ".join(counts)
        found |= {i: (n, bad) for i, n, bad in conn.execute(sql).fetchall()}
    return [Finding(f.name, audit_rule(f)[0], *found[i]) for i, f in enumerate(features)]


def _sample(conn: duckdb.DuckDBPyConnection, table: str, feature: Feature, audited: str
            ) -> list[dict]:
    """Up to SAMPLE rows of a feature's violations, by their keys."""
    keys = [c for c in ("flight_date", "carrier", "flight", "origin", "feature_date",
                        "tailnum", "cutoff_utc") if c in _columns(conn, table)]
    cols = ", ".join([*keys, feature.name])
    cur = conn.execute(f"{audited} SELECT {cols} FROM audited WHERE NOT coalesce(ok, FALSE) "
                       f"ORDER BY ALL LIMIT {SAMPLE}")
    names = [d[0] for d in cur.description]
    return [{n: str(v) for n, v in zip(names, row, strict=True)} for row in cur.fetchall()]


def _columns(conn: duckdb.DuckDBPyConnection, table: str) -> set[str]:
    schema, name = table.split(".")
    return {r[0] for r in conn.execute(
        "SELECT column_name FROM information_schema.columns WHERE table_schema = $s "
        "AND table_name = $t", {"s": schema, "t": name}).fetchall()}


# -- leaks through missing values --------------------------------------------------------------
MISSINGNESS_RATIO = 5.0
"""A binary label: a feature is flagged when the odds ratio of (value missing, label positive)
is at least this, or at most its inverse: missing values tell the class (+0.5 in each cell, so
a class without nulls gives a finite ratio)."""
MISSINGNESS_SHIFT_SD = 0.5
"""A numeric label: flagged when the label's mean where the feature is null sits at least this
many standard deviations of the label from its mean where the feature is present."""
MISSINGNESS_MIN_ROWS = 20
"""Below this many null rows, a difference is noise and nothing is flagged."""


@dataclass
class MissingnessLeak:
    """A feature whose absence tells the label: the model can learn the gap, not the value."""

    feature: str
    null_rows: int
    measure: str  # "odds ratio" (binary label) or "label shift (sd)" (numeric label)
    score: float  # compared with MISSINGNESS_RATIO or MISSINGNESS_SHIFT_SD
    where_null: float  # binary: null rate among positives; numeric: label mean where null
    elsewhere: float  # binary: null rate among negatives; numeric: label mean where present

    def as_dict(self) -> dict:
        return {k: round(v, 4) if isinstance(v, float) else v for k, v in self.__dict__.items()}


def missingness_leaks(frame, features: list[str], label: str, binary: bool,
                      min_rows: int = MISSINGNESS_MIN_ROWS) -> list[MissingnessLeak]:
    """The features of a training window whose nulls differ sharply with the label, worst
    first. The point-in-time audit checks when a value became known; this checks what its
    absence says (a plane unknown exactly when the flight was cancelled, say)."""
    y = frame[label].astype(float)
    found = []
    for name in features:
        missing = frame[name].isna()
        n = int(missing.sum())
        if n < min_rows or n == len(frame):
            continue
        if binary:
            positive = y == 1
            cells = [float((missing & positive).sum()), float((~missing & positive).sum()),
                     float((missing & ~positive).sum()), float((~missing & ~positive).sum())]
            a, b, c, d = (v + 0.5 for v in cells)
            odds = (a / b) / (c / d)
            score = max(odds, 1 / odds)
            leak = MissingnessLeak(name, n, "odds ratio", score, cells[0] / (cells[0] + cells[1]),
                                   cells[2] / (cells[2] + cells[3]))
            flagged = score >= MISSINGNESS_RATIO
        else:
            spread = float(y.std())
            inside, outside = float(y[missing].mean()), float(y[~missing].mean())
            score = abs(inside - outside) / spread if spread > 0 else 0.0
            leak = MissingnessLeak(name, n, "label shift (sd)", score, inside, outside)
            flagged = score >= MISSINGNESS_SHIFT_SD
        if flagged:
            found.append(leak)
    return sorted(found, key=lambda leak: -leak.score)
