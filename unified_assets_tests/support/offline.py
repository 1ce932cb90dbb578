"""The data layers and the flight features of a window, built in one process without Dagster.

A development utility, never imported by the code location: for benches and tests that need a
real warehouse quickly. The same lib/ functions the assets call (ingest, curation with the
airport override, the calendar, the features), in the same order, into
`$home/unified_assets.duckdb`. The platform itself builds through its assets.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from pathlib import Path

from unified_assets.lib.core import config, database
from unified_assets.lib.features import flight_table
from unified_assets.lib.raw import ingest, landing
from unified_assets.lib.sources import SOURCES
from unified_assets.lib.warehouse import calendar, overrides, transforms


def build_window(home: Path, start: date, end: date, lead_minutes: int = 120) -> Path:
    """Land [start, end), then raw, warehouse (dimensions with the airport override) and
    features.flight_features for those days; returns the warehouse file."""
    landing.land(home, through=end - timedelta(days=1), start=start)
    now = datetime.now()
    path = config.warehouse_path(home)
    conn = database.connect(path)
    try:
        database.ensure_schemas(conn)
        days = [start + timedelta(days=i) for i in range((end - start).days)]
        with database.transaction(conn):
            for table in landing.REFERENCE_TABLES:
                file = ingest.inspect_file(landing.reference_file(home, table), home, conn)
                ingest.replace_reference(conn, table, file, now)
            for table in landing.DAILY_TABLES:
                files = [(ingest.inspect_file(landing.daily_file(home, table, d), home, conn), d)
                         for d in days]
                ingest.replace_daily(conn, table, files, start, end, now)
        with database.transaction(conn):
            for spec in (SOURCES[n].curation for n in ("airlines", "airports", "planes")):
                transforms.curate(conn, spec, now)
            overrides.add_airport_overrides(conn)
            for spec in (SOURCES["flights"].curation, SOURCES["weather"].curation):
                transforms.curate(conn, spec, now, start, end)
        with database.transaction(conn):
            calendar.write_dim_date(conn, start, date(end.year, 12, 31))
            flight_table.build_flight_features(conn, start, end, lead_minutes)
    finally:
        conn.close()
    return path
