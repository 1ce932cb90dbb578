"""raw: the landing files in DuckDB as they arrived, with their lineage; one asset per source
declaration (lib/sources/)."""

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
from unified_assets.lib.sources import REFERENCE, SOURCES
from unified_assets.lib.sources.spec import SourceSpec


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
    *(dg.AssetSpec(["landing", s.name], group_name="raw", kinds={"csv"},
                   description=f"Landing files: landing/{s.name}/YYYY-MM-DD.csv (or .parquet), "
                   "one a day, as an upstream system drops them.")
      for s in SOURCES.values() if s.daily),
    dg.AssetSpec(["landing", "reference"], group_name="raw", kinds={"csv"},
                 description="Landing files: landing/reference/{" + ",".join(REFERENCE) + "}.csv "
                 "(or .parquet), each replaced whole, as an upstream system drops them."),
]


def raw_asset(source: SourceSpec) -> dg.AssetsDefinition:
    """A source's raw table: its landing files as they arrived, with their lineage; a daily
    source by day, a reference source whole."""
    common = dict(key=["raw", source.name], group_name="raw", kinds={"duckdb"}, pool="duckdb",
                  backfill_policy=single_run, description=source.description,
                  check_specs=table_check_specs(source.raw_table,
                                                landing_files_spec(source.raw_table)))
    if source.daily:
        @dg.asset(partitions_def=daily, deps=[["landing", source.name]], **common)
        def daily_table(context: dg.AssetExecutionContext, warehouse: WarehouseResource):
            return ingest_daily(context, warehouse, source.name)

        return daily_table

    @dg.asset(deps=[["landing", "reference"]], **common)
    def reference_table(context: dg.AssetExecutionContext, warehouse: WarehouseResource):
        return ingest_reference(context, warehouse, source.name)

    return reference_table


raw_tables = [raw_asset(source) for source in SOURCES.values()]
