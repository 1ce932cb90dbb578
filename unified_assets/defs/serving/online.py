"""Online serving in the graph: the online store the service reads, and the parity check that
re-scores a sample of the latest batch day through the service's own code path (the service's
logged traffic is monitored in defs/monitoring/online.py)."""

from datetime import timedelta

import dagster as dg
import numpy as np
import pandas as pd

from unified_assets.defs.jobs import ONLINE_STORE, key, online_refresh, schedule_status
from unified_assets.defs.partitions import single_run
from unified_assets.defs.resources import WarehouseResource
from unified_assets.lib.core.database import table_exists
from unified_assets.lib.features import catalog
from unified_assets.lib.features.tables import BUILDER_READS, FLIGHT_FEATURES, ORIGIN_DAILY
from unified_assets.lib.models.specs import SPECS, ModelSpec
from unified_assets.lib.serving import online_export, online_store
from unified_assets.online.service import (
    FORECAST_HORIZON_DAYS,
    RequestError,
    Service,
    ServiceConfig,
)

PARITY_SAMPLE_ROWS = 300
PARITY_TOLERANCE = 1e-9


@dg.asset(
    key=ONLINE_STORE,
    group_name="serving",
    # What the export reads (the feature tables' inputs, each lookup's table), and the batch
    # predictions its parity is checked against.
    deps=sorted({dg.AssetKey(t.split(".")) for t in (
        *catalog.source_tables(FLIGHT_FEATURES), *BUILDER_READS[FLIGHT_FEATURES],
        *catalog.source_tables(ORIGIN_DAILY), ORIGIN_DAILY)}, key=str)
    + [key("serving", s, "predictions") for s in SPECS.values()],
    check_specs=[dg.AssetCheckSpec(
        "online_parity", asset=ONLINE_STORE, blocking=True,
        description="Before the new store is served: for every model, a sample of its latest "
        "batch day re-scored through the online service's code path (the new store, the served "
        f"model) equals the batch predictions of the same version within {PARITY_TOLERANCE:g}. "
        "A store that does not is not published; the service keeps the last one.",
    )],
    backfill_policy=single_run,
    kinds={"duckdb", "parquet"},
    pool="duckdb",
)
def online_store_asset(context: dg.AssetExecutionContext, warehouse: WarehouseResource):
    """What the prediction service computes features from: every flight's schedule and outcome
    times, delay rates per carrier, origin and route for every day, weather, planes, calendar,
    each lookup feature's rows and the forecaster's rows, exported with the feature SQL to
    online/, and published (the service follows) once it reproduces the batch predictions."""
    home = warehouse.home_path
    with warehouse.connect(read_only=True) as conn:
        pointer = online_export.stage(conn, home)
        samples = {spec.name: _batch_sample(conn, spec) if table_exists(
            conn, f"serving.{spec.name}_predictions") else pd.DataFrame()
            for spec in SPECS.values()}
    check = online_parity(home, warehouse.settings.lead_minutes(), pointer, samples)
    if check.passed:
        online_export.publish(home, pointer)
        context.log.info(f"online store {pointer['folder']} published: {pointer['rows']}")
    else:
        online_export.discard(home, pointer)
        context.log.error(f"online store {pointer['folder']} not published: parity failed")
    return dg.MaterializeResult(metadata={
        "folder": pointer["folder"], "published": check.passed, "first_day": pointer["first_day"],
        "last_day": pointer["last_day"], **{f"rows_{k}": v for k, v in pointer["rows"].items()},
    }, check_results=[check])


def _batch_sample(conn, spec: ModelSpec) -> pd.DataFrame:
    """A repeatable sample of the latest scored day of the spec's batch predictions, with the
    schedule fields a client would send."""
    table = f"serving.{spec.name}_predictions"
    if spec.task == "forecast":
        sql = (f"SELECT origin, feature_date, prediction, model_version FROM {table} "
               f"WHERE feature_date = (SELECT max(feature_date) FROM {table}) "
               f"AND prediction IS NOT NULL ORDER BY origin")
    else:
        sql = (f"SELECT p.carrier, p.flight, p.origin, f.dest, p.sched_dep_ts, f.tailnum, "
               f"p.flight_date, p.prediction, p.model_version FROM {table} p "
               f"JOIN features.flight_features f USING (flight_date, carrier, flight, origin, "
               f"sched_dep_ts) WHERE p.flight_date = (SELECT max(flight_date) FROM {table}) "
               f"ORDER BY hash(p.carrier, p.flight, p.sched_dep_ts) "
               f"LIMIT {PARITY_SAMPLE_ROWS}")
    return conn.execute(sql).df()


def parity(service: Service, spec: ModelSpec, sample: pd.DataFrame) -> dict:
    """Re-score the batch rows through the service; compare with their batch predictions."""
    served = service.model(spec.name)
    same = sample[sample["model_version"] == served.version]
    if spec.task == "forecast":
        forecasts = [(r.origin, (pd.Timestamp(r.feature_date) + timedelta(
            days=FORECAST_HORIZON_DAYS)).date()) for r in same.itertuples()]
        result = service.predict(spec.name, forecasts=forecasts) if forecasts else None
    else:
        flights = [online_store.FlightRequest(
            r.carrier, int(r.flight), r.origin, r.dest,
            pd.Timestamp(r.sched_dep_ts).to_pydatetime(),
            None if pd.isna(r.tailnum) else r.tailnum) for r in same.itertuples()]
        result = service.predict(spec.name, flights=flights) if flights else None
    online = np.array([p["prediction"] for p in result["predictions"]]) if result else np.array([])
    gap = float(np.max(np.abs(online - same["prediction"].to_numpy(float)))) if len(same) else None
    return {"rows": len(same), "other_version_rows": len(sample) - len(same),
            "version": served.version, "max_abs_gap": gap}


def model_parity(service: Service, spec: ModelSpec, sample: pd.DataFrame) -> tuple[bool, dict]:
    """One model's verdict: passed, and what was found (a model not served, a store that
    does not cover the batch day, a gap)."""
    if service.registry.get(spec.name) is None:
        refused = service.registry.states[spec.name].refused
        return refused is None, {"note": refused or "no promoted model"}
    if sample.empty:
        return True, {"note": "no batch predictions yet"}
    try:
        found = parity(service, spec, sample)
    except RequestError as exc:  # e.g. the store was exported before the batch day
        return False, {"note": str(exc)}
    if found["rows"] == 0:  # the day was scored by another version: nothing to compare
        return True, found
    return found["max_abs_gap"] <= PARITY_TOLERANCE, found


def online_parity(home, lead_minutes: int, pointer: dict, samples: dict[str, pd.DataFrame]
                  ) -> dg.AssetCheckResult:
    """The staged store's verdict: each model's batch sample re-scored through the service's
    code path over the staged store."""
    service = Service(ServiceConfig(home, lead_minutes, log_requests=False))
    service.registry.refresh()
    try:
        service.store = online_store.load(home, pointer)
    except (OSError, ValueError, KeyError) as exc:
        return dg.AssetCheckResult(check_name="online_parity", passed=False,
                                   metadata={"reason": f"the staged store did not load: {exc}"})
    names = [f.name for f in catalog.features_of(FLIGHT_FEATURES)]
    missing = online_store.uncovered(service.store, names, lead_minutes)
    if missing:  # never a silent null online: declare it as a lookup, or compute it online
        return dg.AssetCheckResult(check_name="online_parity", passed=False, metadata={
            "reason": f"features the online path does not compute: {', '.join(missing)}"})
    verdicts = {spec.name: model_parity(service, spec, samples[spec.name])
                for spec in SPECS.values()}
    gaps = [v[1]["max_abs_gap"] for v in verdicts.values() if v[1].get("max_abs_gap") is not None]
    return dg.AssetCheckResult(
        check_name="online_parity",
        passed=all(ok for ok, _ in verdicts.values()),
        metadata={"max_abs_gap": max(gaps) if gaps else None,
                  "models": dg.MetadataValue.json({n: {"passed": ok} | found
                                                   for n, (ok, found) in verdicts.items()})},
    )


@dg.schedule(
    name="online_refresh",
    job=online_refresh,
    cron_schedule="30 4 * * *",
    default_status=schedule_status(),
    description="At 04:30, after the nightly scoring: the online store the prediction service "
    "reads, refreshed with yesterday's flights, and its parity with batch.",
)
def online_refresh_schedule(context: dg.ScheduleEvaluationContext, warehouse: WarehouseResource):
    try:
        with warehouse.connect(read_only=True, timeout_s=10) as conn:
            landed = table_exists(conn, "warehouse.fct_flights")
    except RuntimeError as exc:
        return dg.SkipReason(f"warehouse busy: {exc}")
    if not landed:
        return dg.SkipReason("no flights in the warehouse yet: nothing to serve")
    return dg.RunRequest(run_key=f"online_refresh:{context.scheduled_execution_time:%Y-%m-%d}")


defs = dg.Definitions(
    assets=[online_store_asset], schedules=[online_refresh_schedule],
)
