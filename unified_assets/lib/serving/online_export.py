"""The online store's batch export: what the point-in-time flight features are made of, per
key, written from the warehouse with the SQL fragments of `lib/features/tables.py` into a new
folder of columns (`columnar.py` encodes them) under `$UNIFIED_ASSETS_HOME/online/`, then
published whole by replacing `online/store.json` atomically (`online_store.py` maps and serves
it)."""

from __future__ import annotations

import json
import shutil
import uuid
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import numpy as np

from unified_assets.lib.core.database import table_exists
from unified_assets.lib.core.files import sha256_file
from unified_assets.lib.features import catalog
from unified_assets.lib.features.tables import (
    AIRPORT,
    DATE,
    DEP_UTC,
    FLIGHT_FEATURES,
    FLIGHTS,
    GRAINS,
    KNOWN_AT_UTC,
    ORIGIN_DAILY,
    PLANE,
    RATE_DAYS,
    SCHED_DEP_UTC,
    ny_date,
    rate_ctes,
)
from unified_assets.lib.raw.landing import write_atomic
from unified_assets.lib.serving import columnar
from unified_assets.lib.serving.columnar import plain as _plain
from unified_assets.lib.serving.online_store import FORMAT, SMALL, online_root, pointer_path

_FLIGHTS_SQL = f"""
SELECT f.flight_date, f.carrier, f.flight, f.origin, f.dest, f.tailnum, f.sched_dep_ts,
    {SCHED_DEP_UTC} AS sched_dep_utc, f.sched_hour, f.distance_mi, f.arr_delay_min,
    CASE WHEN NOT f.is_cancelled AND NOT f.is_diverted AND f.arr_delay_min IS NOT NULL
         THEN {KNOWN_AT_UTC} END AS known_at_utc,
    f.dep_delay_min,
    CASE WHEN f.dep_delay_min IS NOT NULL THEN {DEP_UTC} END AS dep_utc
FROM {FLIGHTS} f LEFT JOIN {AIRPORT} a ON a.faa = f.dest
ORDER BY f.flight_date, f.sched_dep_ts, f.carrier, f.flight, f.origin
"""


def _rates_sql() -> str:
    """Every grain's 7- and 28-day late rates for every key and anchor day from the first
    flight day to the day after the last: the CTEs of `features.flight_features` over a grid."""
    ctes = ",".join(rate_ctes(name, keys) for name, keys in GRAINS.items())
    selects = " UNION ALL ".join(
        f"SELECT '{name}' AS grain, {keys[0]} AS key1, "
        f"{keys[1] if len(keys) > 1 else 'NULL'} AS key2, anchor_day, "
        f"{name}_late_rate_{RATE_DAYS[0]}d AS rate_short, "
        f"{name}_late_rate_{RATE_DAYS[1]}d AS rate_long, "
        f"{name}_flights_{RATE_DAYS[1]}d AS n_long "
        f"FROM rate_{name}"
        for name, keys in GRAINS.items()
    )
    return f"""
    WITH days AS (
        SELECT CAST(range AS DATE) AS anchor_day FROM range(
            (SELECT min(flight_date) FROM {FLIGHTS}),
            (SELECT max(flight_date) + 2 FROM {FLIGHTS}), INTERVAL 1 DAY)
    ),
    base AS MATERIALIZED (
        SELECT k.*, d.anchor_day
        FROM (SELECT DISTINCT carrier, origin, dest FROM {FLIGHTS}) k CROSS JOIN days d
    ),
    outcomes AS MATERIALIZED (
        SELECT carrier, origin, dest, {ny_date("known_at_utc")} AS known_day,
            (arr_delay_min > 15)::INTEGER AS late
        FROM (
            SELECT f.*, {KNOWN_AT_UTC} AS known_at_utc
            FROM {FLIGHTS} f LEFT JOIN {AIRPORT} a ON a.faa = f.dest
        )
        WHERE NOT is_cancelled AND NOT is_diverted AND arr_delay_min IS NOT NULL
            AND known_at_utc IS NOT NULL
    ),
    {ctes}
    {selects}
    """


_EXPORTS = {
    "flights": _FLIGHTS_SQL,
    "planes": f"SELECT tailnum, year_built FROM {PLANE}",
    "dates": f"SELECT date, day_of_week, month, days_to_nearest_holiday FROM {DATE}",
}


def export(conn: duckdb.DuckDBPyConnection, home: Path) -> dict:
    """Stage the store and publish it at once (see `stage` and `publish`)."""
    pointer = stage(conn, home)
    publish(home, pointer)
    return pointer


def stage(conn: duckdb.DuckDBPyConnection, home: Path) -> dict:
    """Write the store from the warehouse into a new folder, not yet served: `publish` points
    `online/store.json` at it, `discard` removes it. Returns its pointer (folder, files'
    sha256, days, rows, lookups)."""
    root = online_root(home)
    root.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
    folder = root / f"store-{stamp}-{uuid.uuid4().hex[:8]}"
    tmp = root / f".{folder.name}.tmp"
    tmp.mkdir()
    sqls = dict(_EXPORTS, rates=_rates_sql())
    # Each as-of group and lookup feature: the rows its batch join reads, from the same
    # declaration (catalog.AsOf, catalog.Lookup).
    groups = catalog.as_of_groups(FLIGHT_FEATURES)
    sqls |= {f"asof_{i}": f"{catalog.as_of_rows_sql(group)} ORDER BY ALL"
             for i, group in enumerate(groups)}
    lookups = catalog.lookups_of(FLIGHT_FEATURES)
    sqls |= {f"lookup_{f.name}": f.lookup.rows_sql() for f in lookups}
    defaults = {f.name: _plain(conn.execute(f"SELECT {f.lookup.default}").fetchall()[0][0])
                for f in lookups}
    if table_exists(conn, ORIGIN_DAILY):
        sqls["origin_daily"] = f"SELECT * FROM {ORIGIN_DAILY}"
    relations = {name: conn.sql(sql) for name, sql in sqls.items()}
    frames = {name: rel.df() for name, rel in relations.items()}
    days = {name: [c for c, t in zip(rel.columns, rel.types, strict=True) if str(t) == "DATE"]
            for name, rel in relations.items()}
    columns, small = columnar.encode(frames, days, groups, lookups, defaults)
    files = {}
    for name, values in columns.items():
        path = tmp / f"{name}.npy"
        np.save(path, values, allow_pickle=False)
        files[path.name] = sha256_file(path)
    small_path = tmp / SMALL
    small_path.write_text(json.dumps(small, separators=(",", ":")), "utf-8")
    files[SMALL] = sha256_file(small_path)
    first, last = conn.execute(
        f"SELECT min(flight_date), max(flight_date) FROM {FLIGHTS}"
    ).fetchall()[0]
    tmp.rename(folder)
    return {"format": FORMAT, "folder": folder.name, "files": files,
            "rows": {name: len(frame) for name, frame in frames.items()}, "built_at": stamp,
            "lookups": {f.name: {"on": [c for c, _ in f.lookup.on],
                                 "default": defaults[f.name]} for f in lookups},
            "as_of": [{"on": [c for c, _ in group[0].asof.on],
                       "features": [f.name for f in group],
                       "as_of_column": group[0].asof.as_of_column} for group in groups],
            "first_day": str(first) if first else None,
            "last_day": str(last) if last else None}


def publish(home: Path, pointer: dict) -> None:
    """Serve a staged store: replace `online/store.json` atomically; older folders go."""
    root = online_root(home)
    write_atomic(pointer_path(home), (json.dumps(pointer, indent=2) + "\n").encode())
    for old in root.glob("store-*"):
        if old.is_dir() and old.name != pointer["folder"]:
            shutil.rmtree(old, ignore_errors=True)


def discard(home: Path, pointer: dict) -> None:
    """Remove a staged store that will not be served."""
    shutil.rmtree(online_root(home) / pointer["folder"], ignore_errors=True)
