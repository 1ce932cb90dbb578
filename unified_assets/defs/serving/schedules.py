"""The nightly schedule: score yesterday with every promoted model, then monitor it."""

from datetime import timedelta

import dagster as dg

from unified_assets.defs.models.assets import key
from unified_assets.defs.partitions import daily
from unified_assets.defs.raw.sensors import automation_on
from unified_assets.defs.resources import WarehouseResource
from unified_assets.lib import manifests
from unified_assets.lib.models import SPECS

SCORING_ASSETS = [
    k for spec in SPECS.values()
    for k in (key("serving", spec, "predictions"), key("monitoring", spec, "monitor"))
]  # fmt: skip

scoring_job = dg.define_asset_job(
    "nightly_scoring", selection=dg.AssetSelection.assets(*SCORING_ASSETS), partitions_def=daily,
    description="A day's predictions from each promoted model, and their monitoring.",
)  # fmt: skip


def _built(instance: dg.DagsterInstance, asset: dg.AssetKey, day: str) -> bool:
    records = instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=asset, asset_partitions=[day]), limit=1
    ).records
    return bool(records)


@dg.schedule(
    job=scoring_job,
    cron_schedule="0 4 * * *",
    default_status=dg.DefaultScheduleStatus.RUNNING if automation_on()
    else dg.DefaultScheduleStatus.STOPPED,
    description="At 04:00, yesterday's partition: predictions of every model that has a promoted "
    "manifest and whose feature table holds the day, then drift, input DQ and realized "
    "performance. Skips (with the reason) when the day's features are not built yet.",
)
def nightly_scoring(context: dg.ScheduleEvaluationContext, warehouse: WarehouseResource):
    day = (context.scheduled_execution_time - timedelta(days=1)).date().isoformat()
    selection, waiting = [], []
    for spec in SPECS.values():
        if manifests.current(warehouse.home_path, spec.name) is None:
            continue
        if not _built(context.instance, dg.AssetKey(spec.table.split(".")), day):
            waiting.append(f"{spec.name} ({spec.table} {day} not built)")
            continue
        selection += [key("serving", spec, "predictions"), key("monitoring", spec, "monitor")]
    if not selection:
        return dg.SkipReason(
            f"nothing to score for {day}: " + ("; ".join(waiting) or "no promoted model yet")
        )
    return dg.RunRequest(
        run_key=f"score:{day}", partition_key=day, asset_selection=selection,
        tags={"unified_assets/trigger": "nightly_scoring"},
    )  # fmt: skip
