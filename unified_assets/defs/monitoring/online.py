"""The prediction service's traffic, monitored like the batch predictions: its request log read
into the warehouse per day, with latency, unseen categories, drift and realized metrics."""

from datetime import timedelta
from functools import cache, partial

import dagster as dg

from unified_assets.defs.checks import window
from unified_assets.defs.jobs import key
from unified_assets.defs.partitions import daily, single_run
from unified_assets.defs.resources import WarehouseResource
from unified_assets.lib.core import artifacts
from unified_assets.lib.core.database import transaction
from unified_assets.lib.models.specs import SPECS
from unified_assets.lib.monitoring import drift_classifier, online_monitoring
from unified_assets.lib.serving import request_log


@dg.asset(
    key=["monitoring", "online_predictions"],
    group_name="monitoring",
    partitions_def=daily,
    backfill_policy=single_run,
    deps=[["warehouse", "fct_flights"], ["features", "origin_daily"]]
    + [key("serving", s, "predictions") for s in SPECS.values()],
    kinds={"duckdb"},
    pool="duckdb",
)
def online_predictions(context: dg.AssetExecutionContext, warehouse: WarehouseResource):
    """The online service's predictions of a day, read from its request log into
    monitoring.online_predictions, and per model and version in monitoring.online_daily: rows,
    latency, unseen categories, drift of the trailing week's online rows against the version's
    training reference, realized metric once outcomes are known, and the largest gap to the
    batch prediction of the same flight by the same version."""
    start, end = window(context)
    home = warehouse.home_path
    days = [start + timedelta(days=i) for i in range((end - start).days)]
    frame = request_log.read_days(home, days)
    with warehouse.connect() as conn, transaction(conn):
        rows, summary = online_monitoring.record(
            conn, frame, start, end,
            cache(partial(artifacts.load_reference_with_sample, home, key=drift_classifier.SAMPLE)),
            warehouse.settings.drift_policy(),
        )
    context.log.info(f"{rows} online predictions over {len(days)} days")
    return dg.MaterializeResult(metadata={
        "dagster/row_count": rows,
        "summary": dg.MetadataValue.md(summary.to_markdown(index=False) if len(summary)
                                       else "no online traffic"),
    })
