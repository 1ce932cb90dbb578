"""The KPI scorecard: every KPI of docs/kpis.md, from the platform's own history."""

import dagster as dg
import pandas as pd

from unified_assets.defs.checks import utc_now
from unified_assets.defs.jobs import KPI_SCORECARD, key, schedule_status
from unified_assets.defs.jobs import kpi_scorecard as kpi_scorecard_job
from unified_assets.defs.partitions import single_run
from unified_assets.defs.resources import WarehouseResource
from unified_assets.lib.core import artifacts
from unified_assets.lib.core.database import transaction
from unified_assets.lib.deployment import manifests
from unified_assets.lib.models.specs import SPECS
from unified_assets.lib.monitoring import kpis, model_health, report

_STEP_EVENTS = {dg.DagsterEventType.STEP_START, dg.DagsterEventType.STEP_SUCCESS}


class RunSteps:
    """Step durations of runs from the instance's event log, read once per run."""

    def __init__(self, instance: dg.DagsterInstance):
        self.instance = instance
        self.cache: dict[str, dict[str, float]] = {}

    def seconds(self, run_id: str) -> dict[str, float]:
        if run_id not in self.cache:
            starts, spans = {}, {}
            for entry in self.instance.all_logs(run_id, of_type=_STEP_EVENTS):
                if entry.dagster_event_type == dg.DagsterEventType.STEP_START:
                    starts[entry.step_key] = entry.timestamp
                elif entry.step_key in starts:
                    spans[entry.step_key] = entry.timestamp - starts[entry.step_key]
            self.cache[run_id] = spans
        return self.cache[run_id]

    def partition_step(self, asset: dg.AssetKey, partition: str) -> dict | None:
        """Seconds the step that built `partition` of `asset` took (its share, in a range run)."""
        records = self.instance.fetch_materializations(
            dg.AssetRecordsFilter(asset_key=asset, asset_partitions=[partition]), limit=1
        ).records
        if not records:
            return None
        entry = records[0].event_log_entry
        run = self.instance.get_run_by_id(entry.run_id)
        span = self.seconds(entry.run_id).get(entry.step_key)
        if span is None or run is None:
            return None
        days = 1
        start = run.tags.get("dagster/asset_partition_range_start")
        end = run.tags.get("dagster/asset_partition_range_end")
        if start and end:
            days = (pd.Timestamp(end) - pd.Timestamp(start)).days + 1
        return {"layer": kpis.layer_of(asset.path), "asset": asset.to_user_string(),
                "seconds": span / days, "run_id": entry.run_id}


def _latest_partition(instance: dg.DagsterInstance, asset: dg.AssetKey) -> str | None:
    records = instance.fetch_materializations(asset, limit=1).records
    return records[0].partition_key if records else None


@dg.asset(
    key=KPI_SCORECARD,
    group_name="monitoring",
    # After every model's monitoring and manifest, so a build of the whole graph scores itself
    # last, with what it just built.
    deps=[key(layer, spec, suffix) for spec in SPECS.values()
          for layer, suffix in (("monitoring", "monitor"), ("deployment", "manifest"))],
    kinds={"duckdb", "markdown"},
    pool="duckdb",
    backfill_policy=single_run,
    description="The KPIs of docs/kpis.md over time: L_dp by layer, DQ, FEE, V_val, AMDR, Rel_cicd "
    "and EV, from the warehouse, the run history and the manifests. Written to "
    "reports/kpi_scorecard.md with a plot.",
)
def kpi_scorecard(context: dg.AssetExecutionContext, warehouse: WarehouseResource):
    home = warehouse.home_path
    instance = context.instance
    steps = RunSteps(instance)
    settings = warehouse.settings.kpi_settings()
    rows, latency, deployed, decisions = [], {}, [], []
    for spec in SPECS.values():
        decisions += manifests.history(home, spec.name)
        current = manifests.current(home, spec.name)
        if current is None:
            continue
        day = _latest_partition(instance, key("monitoring", spec, "monitor"))
        path = []
        if day:
            assets = [
                *(dg.AssetKey(["raw", t]) for t in ("flights", "weather")),
                dg.AssetKey(["warehouse", "fct_flights"]),
                dg.AssetKey(["warehouse", "fct_weather_hourly"]),
                dg.AssetKey(spec.table.split(".")),
                key("serving", spec, "predictions"), key("monitoring", spec, "monitor"),
            ]
            path = [s for s in (steps.partition_step(a, day) for a in assets) if s]
            latency[spec.name] = kpis.latency(path) | {"day": day}
        scoring = next((s for s in path if s["asset"].startswith("serving/")), None)
        scored_rows = _scored_rows(instance, key("serving", spec, "predictions"))
        training_s = artifacts.load_metadata(home, current["version"]).get("training_seconds", 0)
        cost = training_s + (scoring["seconds"] if scoring else 0.0)
        deployed.append({
            "name": spec.name, "manifest": current, "cost_s": cost,
            "rows_per_s": scored_rows / scoring["seconds"] if scoring and scored_rows else None,
        })
        amdr = current.get("amdr", {})
        rows.append({"model": spec.name, "version": current["version"][:12],
                     "FEE": amdr.get("fee"), "V_val": amdr.get("v_val"),
                     "input DQ": amdr.get("input_dq"), "AMDR": amdr.get("value"),
                     "L_dp s": latency.get(spec.name, {}).get("total_s")})
    rel = kpis.rel_cicd(decisions, model_health.failed_runs(home))
    ev = kpis.enterprise_value(deployed, settings)
    # A scheduled scorecard is dated by its schedule (so a replayed year reads as a year).
    scheduled = context.run.tags.get("dagster/scheduled_execution_time")
    now = pd.Timestamp(scheduled).tz_localize(None).to_pydatetime() if scheduled else utc_now()
    with warehouse.connect() as conn, transaction(conn):
        dq = model_health.dq_summary(conn)
        values = {"dq_min": dq["dq"].min() if not dq.empty else None,
                  "rel_cicd": rel["value"], "ev": ev["value"]}
        for r in rows:
            values |= {f"{r['model']}_{k.split()[0].lower()}": r[k]
                       for k in ("FEE", "V_val", "AMDR", "L_dp s")}
        for name, lat in latency.items():
            values |= {f"{name}_ldp_{layer}_s": s for layer, s in lat["by_layer_s"].items()}
        history = model_health.record_kpis(conn, values, now)
    markdown = report.scorecard_markdown(rows, latency, dq, rel, ev, now)
    out = report.write_scorecard(home, markdown, history)
    return dg.MaterializeResult(metadata={
        **{k: (float(v) if v is not None else None) for k, v in values.items()},
        "scorecard": dg.MetadataValue.md(markdown), "report": str(out),
    })


def _scored_rows(instance: dg.DagsterInstance, asset: dg.AssetKey) -> int:
    records = instance.fetch_materializations(asset, limit=1).records
    if not records:
        return 0
    meta = records[0].asset_materialization.metadata
    value = meta.get("dagster/row_count")
    return int(value.value) if value is not None else 0


@dg.schedule(job=kpi_scorecard_job, cron_schedule="0 6 * * 1", default_status=schedule_status(),
             description="Mondays at 06:00: the KPI scorecard.")
def weekly_scorecard(context: dg.ScheduleEvaluationContext):
    day = context.scheduled_execution_time.date().isoformat()
    return dg.RunRequest(run_key=f"kpi:{day}", tags={"unified_assets/trigger": "weekly_kpis"})
