"""marts: monthly on-time performance, the tables a BI tool reads."""

import dagster as dg

from unified_assets.defs.checks import publish, table_check_specs
from unified_assets.defs.partitions import single_run
from unified_assets.defs.resources import WarehouseResource
from unified_assets.lib import marts
from unified_assets.lib.warehouse import transaction


def refresh(context: dg.AssetExecutionContext, warehouse: WarehouseResource, table: str):
    """Rebuild the mart from the curated facts, in one transaction."""
    with warehouse.connect() as conn, transaction(conn) as tx:
        rows = marts.refresh(conn, table)
        context.log.info(f"{table}: {rows} rows")
        return publish(context, tx, table, key=("month", *marts.MARTS[table]))


# Unpartitioned: a mart is rebuilt whole from fct_flights (under a second for a year). The
# single-run policy lets `--partition-range` runs of the daily layers include the marts.
# Declarative automation: a mart simply follows its facts. Whenever a day of fct_flights is
# (re)built, the daemon's automation sensor rebuilds the marts, once no parent is mid-run.
FOLLOW_PARENTS = (
    dg.AutomationCondition.any_deps_updated()
    & ~dg.AutomationCondition.any_deps_in_progress()
    & ~dg.AutomationCondition.in_progress()
)
_MART = dict(
    automation_condition=FOLLOW_PARENTS,
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
