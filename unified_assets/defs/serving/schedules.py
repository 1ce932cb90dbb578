"""The nightly schedule: score and monitor yesterday with every promoted model, where the
landing run has not already done it."""

from datetime import timedelta

import dagster as dg

from unified_assets.defs.jobs import key, schedule_status, scoring_keys
from unified_assets.defs.jobs import nightly_scoring as nightly_scoring_job
from unified_assets.defs.resources import WarehouseResource
from unified_assets.lib.deployment import manifests
from unified_assets.lib.models.specs import SPECS


def _built(instance: dg.DagsterInstance, asset: dg.AssetKey, day: str) -> float | None:
    """When the day's partition of the asset was last materialized (a timestamp), or None."""
    records = instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=asset, asset_partitions=[day]), limit=1
    ).records
    return records[0].timestamp if records else None


@dg.schedule(
    job=nightly_scoring_job,
    cron_schedule="0 4 * * *",
    default_status=schedule_status(),
    description="At 04:00, the backstop for yesterday: every model with a promoted manifest "
    "whose features hold the day but whose predictions and monitoring of it are missing or "
    "older than the features (the landing run scores a day as it arrives, so this usually "
    "skips, saying why).",
)
def nightly_scoring(context: dg.ScheduleEvaluationContext, warehouse: WarehouseResource):
    day = (context.scheduled_execution_time - timedelta(days=1)).date().isoformat()
    selection, notes = [], []
    for spec in SPECS.values():
        if manifests.current(warehouse.home_path, spec.name) is None:
            continue
        features = _built(context.instance, dg.AssetKey(spec.table.split(".")), day)
        monitored = _built(context.instance, key("monitoring", spec, "monitor"), day)
        if features is None:
            notes.append(f"{spec.name}: {spec.table} {day} not built")
        elif monitored is not None and monitored >= features:
            notes.append(f"{spec.name}: {day} already scored")
        else:
            selection += scoring_keys(spec)
    if not selection:
        return dg.SkipReason(
            f"nothing to score for {day}: " + ("; ".join(notes) or "no promoted model yet")
        )
    return dg.RunRequest(
        run_key=f"score:{day}", partition_key=day, asset_selection=selection,
        tags={"unified_assets/trigger": "nightly_scoring"},
    )
