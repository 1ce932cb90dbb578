"""serving: batch predictions from the promoted manifest, each row stamped with its model."""

import dataclasses

import dagster as dg

from unified_assets.defs.checks import utc_now, window
from unified_assets.defs.models.assets import key, load_model
from unified_assets.defs.partitions import daily, single_run
from unified_assets.defs.resources import WarehouseResource
from unified_assets.lib import manifests, training
from unified_assets.lib.models import ModelSpec
from unified_assets.lib.warehouse import transaction


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
        with warehouse.connect() as conn, transaction(conn):
            offset = [served.residual_of] if served.residual_of else []
            columns = list(dict.fromkeys([*spec.key, *served.features, *offset]))
            frame = conn.execute(
                f"SELECT {', '.join(columns)} FROM {spec.table} WHERE {spec.date_column} >= $s "
                f"AND {spec.date_column} < $e ORDER BY {', '.join(spec.key)}",
                {"s": start, "e": end},
            ).df()
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
        )  # fmt: skip

    return predictions
