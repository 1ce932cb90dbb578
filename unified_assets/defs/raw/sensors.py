"""The landing sensor: new or changed files in the landing zone start ingestion of exactly
their partitions."""

import json

import dagster as dg

from unified_assets.defs.jobs import (
    DAILY_ASSETS,
    ingest_daily,
    ingest_reference,
    scoring_keys,
    sensor_status,
)
from unified_assets.defs.resources import WarehouseResource
from unified_assets.lib.core.database import table_exists
from unified_assets.lib.core.files import sha256_file
from unified_assets.lib.deployment import manifests
from unified_assets.lib.models.specs import SPECS
from unified_assets.lib.raw import landing


def scoring_assets(home) -> list[dg.AssetKey]:
    """Predictions and monitoring of every model that has a promoted manifest."""
    return [k for spec in SPECS.values() if manifests.current(home, spec.name) is not None
            for k in scoring_keys(spec)]


MAX_DAYS_PER_TICK = 31  # a backlog is ingested a month per tick, oldest first


def _ingested(warehouse: WarehouseResource) -> dict[str, str]:
    """File name -> sha256 of what raw holds, for telling a new file from one already in."""
    if not warehouse.database.exists():
        return {}
    found = {}
    with warehouse.connect(read_only=True, timeout_s=10) as conn:
        for table in landing.DAILY_TABLES:
            if table_exists(conn, f"raw.{table}"):
                for day, sha in conn.execute(
                    f"SELECT partition_date, any_value(_source_sha256) FROM raw.{table} "
                    "GROUP BY 1"
                ).fetchall():
                    found[f"{table}/{day.isoformat()}"] = sha
        for table in landing.REFERENCE_TABLES:
            if table_exists(conn, f"raw.{table}"):
                rows = conn.execute(f"SELECT any_value(_source_sha256) FROM raw.{table}").fetchall()
                if rows and rows[0][0]:
                    found[f"reference/{table}"] = rows[0][0]
    return found


@dg.sensor(
    jobs=[ingest_daily, ingest_reference],
    minimum_interval_seconds=30,
    default_status=sensor_status(),
    description="Watches the landing zone. A day whose flights and weather files are both there "
    "and differ from what raw holds is ingested, scored by every promoted model and monitored "
    "in one run of its partition (run key: the files' hashes, so the same bytes are never "
    "ingested twice); changed reference files rebuild the dimensions first.",
)
def landing_sensor(context: dg.SensorEvaluationContext, warehouse: WarehouseResource):
    home = warehouse.home_path
    seen = json.loads(context.cursor) if context.cursor else {}
    files = landing.landed_files(home)
    stamps = {name: landing.file_stamp(path) for name, path in files.items()}
    changed = sorted(n for n in files if seen.get(n) != stamps[n])
    if not changed:
        return dg.SkipReason(f"no new or changed file among {len(files)} landed")
    try:
        ingested = _ingested(warehouse)
    except RuntimeError as exc:  # a run holds the warehouse: look again next tick
        return dg.SkipReason(f"warehouse busy: {exc}")
    shas = {name: sha256_file(files[name]) for name in changed}
    requests, done = [], set()
    reference = [n for n in changed if n.startswith("reference/")]
    if reference:
        done.update(reference)
        fresh = [n for n in reference if ingested.get(n) != shas[n]]
        if fresh:
            digest = "-".join(shas[n][:12] for n in fresh)
            requests.append(dg.RunRequest(
                run_key=f"reference:{digest}", job_name=ingest_reference.name,
                tags={"unified_assets/trigger": "landing", "unified_assets/files": ",".join(fresh)},
            ))
    days = sorted({n.split("/", 1)[1] for n in changed if not n.startswith("reference/")})
    scoring = scoring_assets(home)  # the promoted models, read once for the whole tick
    if requests and not any(n.startswith("reference/") for n in ingested):
        # No dimensions yet: the days wait for the reference run, which could otherwise run
        # beside them (a queue without limits) and leave fct_flights without its dimensions.
        days = []
    for day in days:
        names = [f"{table}/{day}" for table in landing.DAILY_TABLES]
        if any(n not in files for n in names):
            continue  # wait for the day's other file
        for n in names:
            if n not in shas:
                shas[n] = sha256_file(files[n])
        done.update(n for n in names if n in changed)
        if all(ingested.get(n) == shas[n] for n in names):
            continue
        if len(requests) >= MAX_DAYS_PER_TICK:
            done.difference_update(names)
            break
        requests.append(dg.RunRequest(
            run_key=f"ingest:{day}:" + ":".join(shas[n][:12] for n in names),
            job_name=ingest_daily.name, partition_key=day,
            asset_selection=[*DAILY_ASSETS, *scoring],
            tags={"unified_assets/trigger": "landing", "unified_assets/files": ",".join(names)},
        ))
    context.update_cursor(json.dumps(seen | {n: stamps[n] for n in done}, sort_keys=True))
    if not requests:
        return dg.SkipReason(f"{len(done)} changed file(s), all already ingested or incomplete")
    return requests
