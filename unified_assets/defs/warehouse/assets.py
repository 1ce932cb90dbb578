"""warehouse: typed, deduplicated, conformed facts and dimensions; bad rows quarantined. One
asset per source declaration (lib/sources/), and the calendar."""

from datetime import date

import dagster as dg

from unified_assets.defs.checks import publish, table_check_specs, utc_now, window
from unified_assets.defs.partitions import daily, single_run
from unified_assets.defs.resources import WarehouseResource
from unified_assets.defs.warehouse import checks
from unified_assets.lib.core.config import FIRST_DAY
from unified_assets.lib.core.database import transaction
from unified_assets.lib.raw import landing
from unified_assets.lib.sources import SOURCES
from unified_assets.lib.sources.spec import SourceSpec
from unified_assets.lib.warehouse import calendar, transforms
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


def curated_asset(source: SourceSpec) -> dg.AssetsDefinition:
    """A source's curated table (a fact by day, or a dimension), with its checks: those of
    every curated table, a dimension's loss check, and the source's own (`extra_checks`)."""
    curation = source.curation
    extra = [checks.EXTRA[name] for name in source.extra_checks]

    @dg.asset(
        key=curation.target.split("."),
        deps=[["raw", source.name], *(t.split(".") for t in source.needs)],
        check_specs=_specs(curation, *(spec() for spec, _ in extra)),
        description=source.table_description,
        partitions_def=daily if source.daily else None,
        group_name="warehouse", kinds={"duckdb"}, pool="duckdb", backfill_policy=single_run,
    )
    def curated_table(context: dg.AssetExecutionContext, warehouse: WarehouseResource):
        return build(context, warehouse, curation, extra=[evaluate for _, evaluate in extra],
                     complete=source.add_rows)

    return curated_table


curated_tables = [curated_asset(source) for source in SOURCES.values()]


@dg.asset(
    key=["warehouse", "dim_date"], check_specs=table_check_specs("warehouse.dim_date"),
    group_name="warehouse", kinds={"duckdb"}, pool="duckdb", backfill_policy=single_run,
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
