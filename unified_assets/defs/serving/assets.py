"""serving: batch predictions from the promoted manifest, each row stamped with its model."""

import dataclasses

import dagster as dg
import pandas as pd

from unified_assets.defs.checks import utc_now, window
from unified_assets.defs.jobs import key
from unified_assets.defs.partitions import daily, single_run
from unified_assets.defs.resources import ComputeResource, WarehouseResource
from unified_assets.lib.core import artifacts
from unified_assets.lib.core.database import transaction
from unified_assets.lib.deployment import manifests
from unified_assets.lib.models import dask_steps, training
from unified_assets.lib.models.specs import ModelSpec

SCORING = "scoring"  # under the artifact store: a long window's rows while the cluster scores


def predictions_asset(spec: ModelSpec) -> dg.AssetsDefinition:
    table = f"serving.{spec.name}_predictions"

    @dg.asset(
        key=key("serving", spec, "predictions"),
        group_name="serving",
        deps=[key("deployment", spec, "manifest"), dg.AssetKey(spec.table.split("."))],
        partitions_def=daily,
        backfill_policy=single_run,
        kinds={"duckdb", "lightgbm"},
        pool="duckdb",
        description=f"{spec.name}'s daily predictions from the promoted model (sha256 verified "
        "before loading); each row carries the model version that scored it.",
    )
    def predictions(context: dg.AssetExecutionContext, warehouse: WarehouseResource,
                    compute: ComputeResource):
        home = warehouse.home_path
        current = manifests.current(home, spec.name)
        if current is None:  # never promoted (its first challenger rejected): nothing to score
            context.log.warning(f"{spec.name}: no promoted model; the day is not scored")
            return dg.MaterializeResult(metadata={"promoted": "none", "dagster/row_count": 0})
        # refuses a tampered file
        booster = artifacts.load_model(home, current["artifact"]["sha256"])
        # Score exactly as the promoted model was trained: its features, its residual base.
        served = dataclasses.replace(
            spec,
            features=tuple(current["features"]["names"]),
            residual_of=current["features"].get("residual_of"),
        )
        start, end = window(context)
        where = None
        with warehouse.connect() as conn, transaction(conn):
            offset = [served.residual_of] if served.residual_of else []
            columns = list(dict.fromkeys([*spec.key, *served.features, *offset]))
            rows_in = (f"FROM {spec.table} WHERE {spec.date_column} >= $s AND "
                       f"{spec.date_column} < $e")
            order = f"ORDER BY {', '.join(spec.key)}"
            if compute.cluster and compute.on_cluster(spec, conn.execute(
                    f"SELECT count(*) {rows_in}", {"s": start, "e": end}).fetchall()[0][0]):
                out, where = score_on_cluster(
                    context, warehouse, compute, served, current, conn,
                    f"SELECT {', '.join(columns)} {rows_in} {order}",
                    f"SELECT {', '.join(spec.key)} {rows_in} {order}", {"s": start, "e": end},
                )
            else:
                frame = conn.execute(f"SELECT {', '.join(columns)} {rows_in} {order}",
                                     {"s": start, "e": end}).df()
                out = frame[list(spec.key)].copy()
                out["prediction"] = training.predict(booster, served, frame)
            threshold = current.get("threshold")
            out["predicted_positive"] = (
                out["prediction"] >= threshold if threshold is not None else None
            )
            out["model_version"] = current["version"]
            out["scored_at"] = utc_now()
            conn.register("_scored", out)
            conn.execute(f"CREATE TABLE IF NOT EXISTS {table} AS SELECT * FROM _scored LIMIT 0")
            conn.execute(f"DELETE FROM {table} WHERE {spec.date_column} >= $s AND "
                         f"{spec.date_column} < $e", {"s": start, "e": end})
            conn.execute(f"INSERT INTO {table} BY NAME SELECT * FROM _scored")
            conn.unregister("_scored")
        return dg.MaterializeResult(
            metadata={"dagster/row_count": len(out), "model_version": current["version"],
                      "mean_prediction": float(out["prediction"].mean()) if len(out) else None}
            | ({"cluster": dg.MetadataValue.json(where)} if where is not None else {})
        )

    return predictions


def score_on_cluster(context: dg.AssetExecutionContext, warehouse: WarehouseResource,
                     compute: ComputeResource, served: ModelSpec, current: dict, conn,
                     rows_sql: str, keys_sql: str,
                     params: dict) -> tuple[pd.DataFrame, dict]:
    """The window's rows (`rows_sql`) scored slice by slice on the cluster, the same numbers
    as in this process, beside their keys (`keys_sql`, in the same order) read here. A
    cluster that cannot be reached or a lost worker fails the step before anything is
    written."""
    home = warehouse.home_path
    text = artifacts.load_model_text(home, current["artifact"]["sha256"])
    with compute.client() as client:
        predictions, where = dask_steps.score_query(client, served, text, conn, rows_sql,
                                                 params, artifacts.artifacts_root(home) / SCORING)
    out = conn.execute(keys_sql, params).df()
    out["prediction"] = predictions
    context.log.info(f"{served.name}: {len(out)} rows scored on the Dask cluster ({where})")
    return out, where
