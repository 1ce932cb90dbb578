"""raw: the landing files in DuckDB as they arrived, with their lineage."""

import tempfile
from datetime import timedelta
from pathlib import Path

import dagster as dg

from unified_assets.defs.checks import publish, table_check_specs, utc_now, window
from unified_assets.defs.partitions import daily, single_run
from unified_assets.defs.raw.checks import landing_files, landing_files_spec
from unified_assets.defs.resources import WarehouseResource
from unified_assets.lib.core.database import transaction
from unified_assets.lib.raw import ingest, landing


def ingest_daily(
    context: dg.AssetExecutionContext, warehouse: WarehouseResource, table: str
) -> dg.MaterializeResult:
    """Replace the run's days of raw.<table> with their landing files, in one transaction."""
    start, end = window(context)
    days = [start + timedelta(days=i) for i in range((end - start).days)]
    home = warehouse.home_path
    found = {day: landing.daily_file(home, table, day) for day in days}
    missing = [str(landing.expected_daily_file(home, table, d)) for d, p in found.items() if not p]
    if missing:
        shown = ", ".join(missing[:5]) + (
            f" and {len(missing) - 5} more" if len(missing) > 5 else ""
        )
        raise dg.Failure(
            description=f"raw.{table}: landing file missing for {len(missing)} day(s): {shown} "
            f"(land them with `unified-assets land --through {max(days)}`)",
        )
    with warehouse.connect() as conn, tempfile.TemporaryDirectory(dir=home) as scratch:
        with transaction(conn) as tx:
            files = [
                (ingest.inspect_file(path, Path(scratch), conn), day) for day, path in found.items()
            ]
            stats = ingest.replace_daily(conn, table, files, start, end, utc_now())
            context.log.info(f"raw.{table}: {stats.rows} rows from {stats.files} files")
            return publish(
                context, tx, f"raw.{table}", start, end, extra_results=[landing_files(stats)],
                settings=warehouse.settings.quality(),
            )


def ingest_reference(
    context: dg.AssetExecutionContext, warehouse: WarehouseResource, table: str
) -> dg.MaterializeResult:
    """Replace raw.<table> with its reference landing file, in one transaction."""
    home = warehouse.home_path
    path = landing.reference_file(home, table)
    if path is None:
        expected = landing.landing_root(home) / "reference" / f"{table}.csv"
        raise dg.Failure(
            description=f"raw.{table}: landing file missing: {expected} "
            "(land it with `unified-assets land`)"
        )
    with warehouse.connect() as conn, tempfile.TemporaryDirectory(dir=home) as scratch:
        with transaction(conn) as tx:
            file = ingest.inspect_file(path, Path(scratch), conn)
            stats = ingest.replace_reference(conn, table, file, utc_now())
            return publish(context, tx, f"raw.{table}", extra_results=[landing_files(stats)],
                           settings=warehouse.settings.quality())


# The landing zone, where the graph starts: files an upstream system drops (or `unified-assets
# land` replays). Dagster does not write them, so they are external assets, shown in the graph.
landing_zone = [
    dg.AssetSpec(
        ["landing", table],
        group_name="raw",
        kinds={"csv"},
        description=f"Landing files: {where} (CSV or Parquet), as an upstream system drops them.",
    )
    for table, where in (
        ("flights", "landing/flights/YYYY-MM-DD.csv, one a day"),
        ("weather", "landing/weather/YYYY-MM-DD.csv, one a day"),
        ("reference", "landing/reference/{planes,airports,airlines}.csv"),
    )
]


def _specs(table: str) -> list[dg.AssetCheckSpec]:
    return table_check_specs(table, landing_files_spec(table))


_DAILY = dict(
    group_name="raw",
    partitions_def=daily,
    backfill_policy=single_run,
    kinds={"duckdb"},
    pool="duckdb",
)


@dg.asset(
    key=["raw", "flights"],
    check_specs=_specs("raw.flights"),
    deps=[["landing", "flights"]],
    **_DAILY,
)
def flights(context: dg.AssetExecutionContext, warehouse: WarehouseResource):
    """Every flight that left a New York airport, one landing file per day, as it arrived."""
    return ingest_daily(context, warehouse, "flights")


@dg.asset(
    key=["raw", "weather"],
    check_specs=_specs("raw.weather"),
    deps=[["landing", "weather"]],
    **_DAILY,
)
def weather(context: dg.AssetExecutionContext, warehouse: WarehouseResource):
    """Hourly weather at the three New York origins, one landing file per day, as it arrived."""
    return ingest_daily(context, warehouse, "weather")


_REFERENCE = dict(
    deps=[["landing", "reference"]],
    group_name="raw",
    kinds={"duckdb"},
    pool="duckdb",
    backfill_policy=single_run,
)


@dg.asset(key=["raw", "planes"], check_specs=_specs("raw.planes"), **_REFERENCE)
def planes(context: dg.AssetExecutionContext, warehouse: WarehouseResource):
    """The aircraft register: build year, seats and engines by tail number, as it arrived."""
    return ingest_reference(context, warehouse, "planes")


@dg.asset(key=["raw", "airports"], check_specs=_specs("raw.airports"), **_REFERENCE)
def airports(context: dg.AssetExecutionContext, warehouse: WarehouseResource):
    """Airports by FAA code with location and time zone, as it arrived."""
    return ingest_reference(context, warehouse, "airports")


@dg.asset(key=["raw", "airlines"], check_specs=_specs("raw.airlines"), **_REFERENCE)
def airlines(context: dg.AssetExecutionContext, warehouse: WarehouseResource):
    """Carrier codes and names, as they arrived."""
    return ingest_reference(context, warehouse, "airlines")
