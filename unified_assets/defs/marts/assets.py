"""marts: monthly on-time performance, the tables a BI tool reads."""

import dagster as dg

from unified_assets.defs.checks import publish, table_check_specs, window
from unified_assets.defs.partitions import daily, single_run
from unified_assets.defs.resources import WarehouseResource
from unified_assets.lib import marts
from unified_assets.lib.warehouse import transaction


def refresh(context: dg.AssetExecutionContext, warehouse: WarehouseResource, table: str):
    """Recompute the whole months that the run's days touch, in one transaction."""
    start, end = window(context)
    first, last = marts.month_window(start, end)
    with warehouse.connect() as conn, transaction(conn):
        rows = marts.refresh(conn, table, start, end)
        context.log.info(f"{table}: {rows} rows for months {first} .. {last}")
        return publish(
            context,
            conn,
            table,
            first,
            last,
            key=("month", *marts.MARTS[table]),
            metadata={"months": f"{first} .. {last}"},
        )


_MART = dict(
    group_name="marts", partitions_def=daily, backfill_policy=single_run, kinds={"duckdb"},
    pool="duckdb", deps=[["warehouse", "fct_flights"]],
)  # fmt: skip


@dg.asset(
    key=["marts", "carrier_origin_monthly"],
    check_specs=table_check_specs("marts.carrier_origin_monthly"),
    **_MART,
)
def carrier_origin_monthly(context: dg.AssetExecutionContext, warehouse: WarehouseResource):
    """On-time performance by carrier, origin airport and month."""
    return refresh(context, warehouse, "marts.carrier_origin_monthly")


@dg.asset(
    key=["marts", "route_monthly"], check_specs=table_check_specs("marts.route_monthly"), **_MART
)
def route_monthly(context: dg.AssetExecutionContext, warehouse: WarehouseResource):
    """On-time performance by route (origin to destination) and month."""
    return refresh(context, warehouse, "marts.route_monthly")
