"""serving: batch predictions from the promoted manifest, each row stamped with its model."""

import dataclasses

import dagster as dg
import pandas as pd

from unified_assets.defs.checks import utc_now, window
from unified_assets.defs.models.assets import key, load_model
from unified_assets.defs.partitions import daily, single_run
from unified_assets.defs.resources import WarehouseResource
from unified_assets.lib.core import artifacts, cluster
from unified_assets.lib.core.database import transaction
from unified_assets.lib.deployment import manifests
from unified_assets.lib.models import training
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
    def predictions(context: dg.AssetExecutionContext, warehouse: WarehouseResource):
        home = warehouse.home_path
        current = manifests.current(home, spec.name)
        if current is None:
            raise dg.Failure(
                f"{spec.name}: no promoted manifest in "
                f"{manifests.current_path(home, spec.name)}: nothing to score with"
            )
        booster = load_model(home, current["artifact"]["sha256"])  # refuses a tampered file
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
                       f"{spec.date_column} < $e")  # fmt: skip
            order = f"ORDER BY {', '.join(spec.key)}"
            if on_cluster(warehouse, spec, conn, rows_in, start, end):
                out, where = score_on_cluster(
                    context, warehouse, served, current, conn,
                    f"SELECT {', '.join(columns)} {rows_in} {order}",
                    f"SELECT {', '.join(spec.key)} {rows_in} {order}", {"s": start, "e": end},
                )  # fmt: skip
            else:
                frame = conn.execute(f"SELECT {', '.join(columns)} {rows_in} {order}",
                                     {"s": start, "e": end}).df()  # fmt: skip
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
                         f"{spec.date_column} < $e", {"s": start, "e": end})  # fmt: skip
            conn.execute(f"INSERT INTO {table} BY NAME SELECT * FROM _scored")
            conn.unregister("_scored")
        return dg.MaterializeResult(
            metadata={"dagster/row_count": len(out), "model_version": current["version"],
                      "mean_prediction": float(out["prediction"].mean()) if len(out) else None}
            | ({"cluster": dg.MetadataValue.json(where)} if where is not None else {})
        )  # fmt: skip

    return predictions


def on_cluster(warehouse: WarehouseResource, spec: ModelSpec, conn, rows_in: str, start,
               end) -> bool:  # fmt: skip
    """Whether the run's window is scored on the settings' Dask cluster: one is configured
    and the window has at least the spec's distributed-training threshold of rows (the rule
    the evaluation's test window follows)."""
    settings = warehouse.settings
    threshold = cluster.training_rows(spec, settings.value("dask_training_rows"))
    if not settings.value("dask_cluster") or not threshold:
        return False
    count = conn.execute(f"SELECT count(*) {rows_in}", {"s": start, "e": end}).fetchall()
    return count[0][0] >= threshold


def score_on_cluster(context: dg.AssetExecutionContext, warehouse: WarehouseResource,
                     served: ModelSpec, current: dict, conn, rows_sql: str, keys_sql: str,
                     params: dict) -> tuple[pd.DataFrame, dict]:  # fmt: skip
    """The window's rows (`rows_sql`) scored slice by slice on the cluster, the same numbers
    as in this process, beside their keys (`keys_sql`, in the same order) read here. A
    cluster that cannot be reached or a lost worker fails the step before anything is
    written."""
    home = warehouse.home_path
    text = artifacts.load_model_text(home, current["artifact"]["sha256"])
    try:
        with cluster.connect(warehouse.settings.value("dask_cluster")) as client:
            predictions, where = cluster.score_query(client, served, text, conn, rows_sql,
                                                     params, artifacts.artifacts_root(home)
                                                     / SCORING)  # fmt: skip
    except (cluster.ClusterUnreachable, cluster.DistributedTrainingFailed) as exc:
        raise dg.Failure(str(exc)) from exc
    out = conn.execute(keys_sql, params).df()
    out["prediction"] = predictions
    context.log.info(f"{served.name}: {len(out)} rows scored on the Dask cluster ({where})")
    return out, where
