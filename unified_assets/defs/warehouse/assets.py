"""warehouse: typed, deduplicated, conformed facts and dimensions; bad rows quarantined."""

from datetime import date

import dagster as dg

from unified_assets.defs.checks import publish, table_check_specs, utc_now, window
from unified_assets.defs.partitions import daily, single_run
from unified_assets.defs.resources import WarehouseResource
from unified_assets.defs.warehouse import checks
from unified_assets.lib.core.config import FIRST_DAY
from unified_assets.lib.core.database import transaction
from unified_assets.lib.raw import landing
from unified_assets.lib.warehouse import calendar, curated, overrides, transforms
from unified_assets.lib.warehouse.transforms import Curation


def build(
    context: dg.AssetExecutionContext,
    warehouse: WarehouseResource,
    spec: Curation,
    extra=(),
    complete=None,
) -> dg.MaterializeResult:
    """Curate the run's partitions (or the whole table) and report its checks, atomically.
    `complete(conn)` adds curated reference rows after the landed ones, returning metadata."""
    start, end = window(context)
    quality = warehouse.settings.quality()
    with warehouse.connect() as conn, transaction(conn) as tx:
        # A refused write (a blocking check failed) still files its quarantined rows.
        tx.keep_on_rollback(
            lambda c: transforms.quarantined_rows(c, spec.target, start, end),
            lambda c, rows: transforms.keep_refused(c, rows, utc_now()),
        )
        totals = transforms.curate(conn, spec, utc_now(), start, end)
        if complete is not None:
            totals |= complete(conn)
        context.log.info(f"{spec.target}: {totals}")
        results = [
            checks.conservation(conn, spec.target, start, end),
            checks.quarantine_share(conn, spec.target, start, end, quality.max_quarantine_share),
            checks.conflicting_duplicates(conn, spec.target, start, end),
            *(evaluate(conn, start, end) for evaluate in extra),
        ]
        if spec.partition_column is None:
            results.append(checks.dimension_loss(conn, spec, quality.max_dimension_loss_share))
        return publish(context, tx, spec.target, start, end, key=spec.key, metadata=totals,
            extra_results=results, settings=quality,
        )


def _specs(spec: Curation, *extra: dg.AssetCheckSpec) -> list[dg.AssetCheckSpec]:
    """Every curated table's checks (conservation, quarantine share, keys delivered twice with
    other values); a dimension's also refuse a reference file that would empty it."""
    if spec.partition_column is None:
        extra = (checks.dimension_loss_spec(spec.target), *extra)
    return table_check_specs(
        spec.target,
        checks.conservation_spec(spec.target),
        checks.quarantine_share_spec(spec.target),
        checks.conflicting_duplicates_spec(spec.target),
        *extra,
    )


_DIM = dict(group_name="warehouse", kinds={"duckdb"}, pool="duckdb", backfill_policy=single_run)
_FACT = _DIM | dict(partitions_def=daily)


@dg.asset(
    key=["warehouse", "dim_carrier"],
    deps=[["raw", "airlines"]],
    check_specs=_specs(curated.CARRIERS),
    **_DIM,
)
def dim_carrier(context: dg.AssetExecutionContext, warehouse: WarehouseResource):
    """Airlines by carrier code."""
    return build(context, warehouse, curated.CARRIERS)


@dg.asset(
    key=["warehouse", "dim_airport"],
    deps=[["raw", "airports"]],
    check_specs=_specs(curated.AIRPORTS),
    **_DIM,
)
def dim_airport(context: dg.AssetExecutionContext, warehouse: WarehouseResource):
    """Airports by FAA code: location, altitude and time zone; the airports the landing file
    lacks come from the curated override (lib/reference/airports_override.csv)."""
    return build(context, warehouse, curated.AIRPORTS, complete=lambda conn: {
        "added_from_override": ", ".join(overrides.add_airport_overrides(conn)) or "none"})


@dg.asset(
    key=["warehouse", "dim_plane"],
    deps=[["raw", "planes"]],
    check_specs=_specs(curated.PLANES),
    **_DIM,
)
def dim_plane(context: dg.AssetExecutionContext, warehouse: WarehouseResource):
    """Aircraft by tail number: build year, seats, engines."""
    return build(context, warehouse, curated.PLANES)


@dg.asset(
    key=["warehouse", "dim_date"], check_specs=table_check_specs("warehouse.dim_date"), **_DIM
)
def dim_date(context: dg.AssetExecutionContext, warehouse: WarehouseResource):
    """The calendar from the first partition to the end of the last landed year, with holidays."""
    landed = landing.landed_days(warehouse.home_path, "flights")
    last = date((landed[-1] if landed else FIRST_DAY).year, 12, 31)
    with warehouse.connect() as conn, transaction(conn) as tx:
        calendar.write_dim_date(conn, FIRST_DAY, last)
        return publish(
            context,
            tx,
            "warehouse.dim_date",
            key=("date",),
            metadata={"first_day": str(FIRST_DAY), "last_day": str(last)},
            settings=warehouse.settings.quality(),
        )


@dg.asset(
    key=["warehouse", "fct_flights"],
    deps=[["raw", "flights"], ["warehouse", "dim_carrier"], ["warehouse", "dim_airport"],
          ["warehouse", "dim_plane"]],
    check_specs=_specs(curated.FLIGHTS, checks.referential_spec()),
    **_FACT,
)
def fct_flights(context: dg.AssetExecutionContext, warehouse: WarehouseResource):
    """One row per scheduled flight: typed times, delays, cancelled and diverted flags."""
    return build(context, warehouse, curated.FLIGHTS, extra=[checks.referential_integrity])


@dg.asset(
    key=["warehouse", "fct_weather_hourly"],
    deps=[["raw", "weather"], ["warehouse", "dim_airport"]],
    check_specs=_specs(curated.WEATHER, checks.coverage_spec()),
    **_FACT,
)
def fct_weather_hourly(context: dg.AssetExecutionContext, warehouse: WarehouseResource):
    """One row per origin and hour: temperature, wind, visibility, pressure, precipitation."""
    return build(context, warehouse, curated.WEATHER, extra=[checks.hour_coverage])
