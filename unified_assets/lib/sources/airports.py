"""airports: airports by FAA code, one reference file; the airports it lacks come from a
curated override (lib/warehouse/reference/airports_override.csv)."""

from unified_assets.lib.quality.checks import in_range, sql_present, warn_present
from unified_assets.lib.sources.spec import SourceSpec
from unified_assets.lib.warehouse import overrides
from unified_assets.lib.warehouse.transforms import (
    Column,
    matches,
    parsed,
    parsed_each,
    within,
)


def _add_overrides(conn) -> dict:
    return {"added_from_override": ", ".join(overrides.add_airport_overrides(conn)) or "none"}


SOURCE = SourceSpec(
    name="airports",
    description="Airports by FAA code with location and time zone, as it arrived.",
    columns=("faa", "name", "lat", "lon", "alt", "tz", "dst", "tzone"),
    numeric=("lat", "lon", "alt", "tz"),
    embedded="airports.csv",
    table="warehouse.dim_airport",
    table_description="Airports by FAA code: location, altitude and time zone; the airports the "
    "landing file lacks come from the curated override (lib/warehouse/reference/"
    "airports_override.csv).",
    typed=(
        Column("faa", "VARCHAR", "faa"),
        Column("name", "VARCHAR", "name"),
        Column("lat", "DOUBLE", "TRY_CAST(lat AS DOUBLE)"),
        Column("lon", "DOUBLE", "TRY_CAST(lon AS DOUBLE)"),
        Column("alt_ft", "INTEGER", "TRY_CAST(alt AS INTEGER)"),
        Column("tz_offset_h", "DOUBLE", "TRY_CAST(tz AS DOUBLE)"),
        Column("dst", "VARCHAR", "dst"),
        Column("tzone", "VARCHAR", "tzone"),
    ),
    key=("faa",),
    required=("faa", "name", "lat", "lon"),
    rules=(
        *parsed_each("DOUBLE", "lat", "lon", "tz"),
        parsed("alt", "INTEGER"),
        within("lat", -90, 90, "latitude"),
        within("lon", -180, 180, "longitude"),
        matches("faa", "[A-Z0-9]{3,4}"),
    ),
    not_null=("name", "lat", "lon"),
    checks={
        "lat": [in_range(-90, 90)],
        "lon": [in_range(-180, 180)],
        "tz_offset_h": [in_range(-12, 14)],
        "tzone": [warn_present("tzone_present")],
    },
    expected=("faa", "name", "lat", "lon", "alt", "tz", "dst", "tzone"),
    dq_required=sql_present("faa", "name", "lat", "lon", "alt_ft", "tz_offset_h", "tzone"),
    dq_accuracy=("tzone IS NULL OR tz_offset_h IS NULL OR tz_offset_h BETWEEN -12 AND 14",),
    add_rows=_add_overrides,
)
