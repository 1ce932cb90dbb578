"""marts: monthly on-time performance, the tables a BI tool reads."""

import dagster as dg

from unified_assets.defs.checks import publish, table_check_specs
from unified_assets.defs.partitions import single_run
from unified_assets.defs.resources import WarehouseResource
from unified_assets.lib.core.database import transaction
from unified_assets.lib.marts import monthly


def refresh(context: dg.AssetExecutionContext, warehouse: WarehouseResource, table: str):
    """Rebuild the mart from the curated facts, in one transaction."""
    with warehouse.connect() as conn, transaction(conn) as tx:
        rows = monthly.refresh(conn, table)
        context.log.info(f"{table}: {rows} rows")
        return publish(context, tx, table, key=("month", *monthly.MARTS[table]),
                       settings=warehouse.settings.quality())


# Unpartitioned: a mart is rebuilt whole from fct_flights (under a second for a year). The
# single-run policy lets `--partition-range` runs of the daily layers include the marts.
# Declarative automation: a mart simply follows its facts. Every Monday at 05:00, once
# fct_flights has been updated since the last Monday, the daemon's automation sensor rebuilds
# it (monthly aggregates: a weekly refresh is fresh enough, and costs a run a week, not a day).
FOLLOW_FACTS = dg.AutomationCondition.on_cron("0 5 * * 1")
_MART = dict(
    automation_condition=FOLLOW_FACTS,
    group_name="marts",
    backfill_policy=single_run,
    kinds={"duckdb"},
    pool="duckdb",
    deps=[["warehouse", "fct_flights"]],
)


@dg.asset(
    key=["marts", "carrier_origin_monthly"],
    check_specs=table_check_specs("marts.carrier_origin_monthly"),
    **_MART,
)
def carrier_origin_monthly(context: dg.AssetExecutionContext, warehouse: WarehouseResource):
    """On-time performance by carrier, origin airport and month."""
    return refresh(context, warehouse, "marts.carrier_origin_monthly")


@dg.asset(
    key=["marts", "route_monthly"],
    check_specs=table_check_specs("marts.route_monthly"),
    **_MART,
)
def route_monthly(context: dg.AssetExecutionContext, warehouse: WarehouseResource):
    """On-time performance by route (origin to destination) and month."""
    return refresh(context, warehouse, "marts.route_monthly")
