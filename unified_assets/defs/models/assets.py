"""models: for each model spec, its training set, its trained model and its evaluation.

`build_model_assets(spec)` (in defs/factory.py) calls these builders; nothing here is
model-specific. Each step returns its hand-off (a JSON document) to the hand-off IO manager
and takes the step before it as an input, so the lineage graph is the data flow and the event
log records which materialization each step read.
"""

import dataclasses
import hashlib
import io
import time
from datetime import date
from pathlib import Path

import dagster as dg
import lightgbm as lgb
import pandas as pd

from unified_assets.defs.checks import utc_now
from unified_assets.defs.models.io_manager import HANDOFF_IO_MANAGER
from unified_assets.defs.partitions import single_run
from unified_assets.defs.resources import WarehouseResource
from unified_assets.lib.core import artifacts, cluster
from unified_assets.lib.core.artifacts import ArtifactIntegrityError
from unified_assets.lib.deployment import compare, gates, manifests
from unified_assets.lib.features.features import FEATURE_SOURCES
from unified_assets.lib.models import evaluation, training
from unified_assets.lib.models.specs import ModelSpec, Rolling
from unified_assets.lib.monitoring import drift, estimation
from unified_assets.lib.quality import validation

SPLITS = ("train", "valid", "test")


def key(layer: str, spec: ModelSpec, suffix: str) -> dg.AssetKey:
    return dg.AssetKey([layer, f"{spec.name}_{suffix}"])


def read_snapshot(ref: dict) -> pd.DataFrame:
    """A dataset snapshot, refused unless its bytes still hash to the recorded sha256."""
    data = Path(ref["path"]).read_bytes()
    actual = hashlib.sha256(data).hexdigest()
    if actual != ref["sha256"]:
        raise ArtifactIntegrityError(
            f"dataset {ref['path']} changed: sha256 {actual}, expected {ref['sha256']}"
        )
    return pd.read_parquet(io.BytesIO(data))


def load_model(home: Path, sha256: str) -> lgb.Booster:
    """A model from the artifact store, verified by sha256 (never unpickled)."""
    return lgb.Booster(model_str=artifacts.load_model_text(home, sha256))


def landing_version(conn, start: date, end: date) -> dict:
    """The landing files behind the training window: count and one hash over their hashes."""
    shas = [
        r[0]
        for r in conn.execute(
            "SELECT DISTINCT _source_sha256 FROM raw.flights WHERE partition_date >= $s AND "
            "partition_date < $e UNION SELECT DISTINCT _source_sha256 FROM raw.weather WHERE "
            "partition_date >= $s AND partition_date < $e ORDER BY 1",
            {"s": start, "e": end},
        ).fetchall()
    ]
    digest = hashlib.sha256("\n".join(shas).encode()).hexdigest()
    return {"landing_files": len(shas), "landing_version": digest}


def same_candidate(spec: ModelSpec, training_set: dict, model: dict,
                   evaluation: dict | None = None) -> None:  # fmt: skip
    """Refuse a model whose training set was replaced after it was trained (the model would
    not be the one those datasets describe), and an evaluation of another model."""
    try:
        manifests.check_same_candidate(spec.name, training_set, model, evaluation)
    except manifests.StaleHandoff as exc:
        raise dg.Failure(str(exc)) from exc


def handoff(spec: ModelSpec, *steps: str) -> dict[str, dg.AssetIn]:
    """The inputs of a step: the hand-offs of the model's earlier steps, by name."""
    return {step: dg.AssetIn(key("models", spec, step)) for step in steps}


class TrainingWindow(dg.Config):
    """Empty `as_of`: the spec's fixed windows. A retraining sets it to the last day whose
    labels are known, and the windows trail back from that day: `rolling_days`
    ("train,valid,test" days), else the settings' `rolling_days`, else the spec's."""

    as_of: str = ""
    rolling_days: str = ""


class Search(dg.Config):
    """Trials of the parameter search; 0: the settings' `search_budget`, else the spec's."""

    budget: int = 0


def training_set_asset(spec: ModelSpec) -> dg.AssetsDefinition:
    @dg.asset(
        key=key("models", spec, "training_set"),
        group_name="models",
        deps=[dg.AssetKey(spec.table.split("."))],
        kinds={"duckdb", "parquet"},
        pool="duckdb",
        backfill_policy=single_run,
        io_manager_key=HANDOFF_IO_MANAGER,
        description=f"Train/validation/test snapshots of {spec.table} for {spec.name}, "
        "split by time, content-addressed Parquet.",
    )
    def training_set(
        context: dg.AssetExecutionContext, config: TrainingWindow, warehouse: WarehouseResource
    ) -> dg.Output[dict]:
        home = warehouse.home_path
        try:
            as_of = date.fromisoformat(config.as_of) if config.as_of else None
            rolling = warehouse.settings.rolling(config.rolling_days) or spec.rolling
            windows = spec.windows(as_of, rolling)
        except ValueError as exc:
            raise dg.Failure(f"{spec.name}: as_of={config.as_of!r}: {exc}") from exc
        with warehouse.connect() as conn:
            frames = {name: training.load_split(conn, spec, w) for name, w in windows.items()}
            input_dq = {t: validation.window_dq(conn, t, *windows["train"])
                        for t in FEATURE_SOURCES[spec.table]}  # fmt: skip
            lineage = landing_version(conn, windows["train"][0], windows["test"][1])
        empty = [name for name, frame in frames.items() if frame.empty]
        if empty:
            raise dg.Failure(
                f"{spec.name}: no labelled rows in {spec.table} for the {', '.join(empty)} "
                f"window(s) {[str(windows[n]) for n in empty]}: build those days first"
            )
        refs = {}
        for name, frame in frames.items():
            path, sha = artifacts.snapshot_frame(home, frame, f"{spec.name}-{name}")
            refs[name] = {"path": str(path), "sha256": sha, "rows": len(frame),
                          "window": [str(d) for d in windows[name]]}  # fmt: skip
        known = [v for v in input_dq.values() if v is not None]
        datasets = {
            "splits": refs,
            "input_dq": input_dq,
            "input_dq_min": min(known) if known else None,
            "lineage": lineage | {"feature_table": spec.table,
                                  "inputs": list(FEATURE_SOURCES[spec.table])},
            "as_of": config.as_of or None,
            # Recency weighting applies to a retraining's windows, not to the fixed ones.
            "half_life_days": rolling.half_life_days if as_of else 0,
            "created_at": str(utc_now()),
        }  # fmt: skip
        return dg.Output(
            datasets,
            metadata={f"{n}_rows": r["rows"] for n, r in refs.items()}
            | {f"{n}_sha256": r["sha256"] for n, r in refs.items()}
            | {"input_dq": dg.MetadataValue.json(input_dq), "as_of": config.as_of or "fixed"}
            | lineage
        )

    return training_set


def model_asset(spec: ModelSpec) -> dg.AssetsDefinition:
    @dg.asset(
        key=key("models", spec, "model"),
        group_name="models",
        ins=handoff(spec, "training_set"),
        kinds={"lightgbm"},
        backfill_policy=single_run,
        io_manager_key=HANDOFF_IO_MANAGER,
        description=f"{spec.description} LightGBM, early-stopped on the validation window, "
        "best of a seeded search; saved by sha256 in LightGBM's text format.",
    )
    def model(
        context: dg.AssetExecutionContext,
        config: Search,
        warehouse: WarehouseResource,
        training_set: dict,
    ) -> dg.Output[dict]:
        home = warehouse.home_path
        where = None
        if warehouse.settings.value("dask_cluster"):
            frames, trained, seconds, where = train_on_cluster(context, warehouse, spec,
                                                               training_set, config.budget)
        else:
            frames = {n: read_snapshot(training_set["splits"][n]) for n in ("train", "valid")}
            started = time.perf_counter()
            budget = warehouse.settings.budget(spec, config.budget)
            weights = Rolling(half_life_days=training_set.get("half_life_days", 0)).weights(
                frames["train"][spec.date_column],
                date.fromisoformat(training_set["splits"]["train"]["window"][1]))  # fmt: skip
            trained = training.train(spec, frames["train"], frames["valid"], budget=budget,
                                     weights=weights)  # fmt: skip
            seconds = time.perf_counter() - started
        selected = training.selected_features(trained.booster)
        x = training.matrix(spec, frames["train"])
        # What the model was trained on, for drift monitoring: the training rows' features,
        # the thresholds learned from their weeks, and the saved model's predictions on the
        # validation window.
        saved = lgb.Booster(model_str=trained.model_text())
        reference, drift_sample = drift.build_reference(
            frames["train"], list(spec.features), list(spec.categorical),
            training.predict(saved, spec, frames["valid"]), frames["train"][spec.date_column],
            warehouse.settings.drift_policy().window_days,
        )  # fmt: skip
        metadata = {
            "model": spec.name,
            "task": spec.task,
            "params": trained.params,
            "best_iteration": trained.best_iteration,
            "valid_score": trained.valid_score,
            "features": list(spec.features),
            "categorical": list(spec.categorical),
            "residual_of": spec.residual_of,
            "dtypes": {c: str(t) for c, t in x.dtypes.items()},
            "selected_features": selected,
            "windows": {n: r["window"] for n, r in training_set["splits"].items()},
            "rows": {n: r["rows"] for n, r in training_set["splits"].items()},
            "datasets": manifests.dataset_hashes(training_set),
            "lineage": training_set["lineage"],
            "trials": trained.trials,
            "training_seconds": round(seconds, 3),
            "code_version": artifacts.code_version(),
            "libraries": artifacts.library_versions(),
            "trained_at": str(utc_now()),
        }
        if where is not None:  # trained on a Dask cluster: how (absent from a local training)
            metadata["cluster"] = where
        ref = artifacts.save_model(home, trained.model_text(), metadata)
        if drift_sample is not None:  # the multivariate signal's reference rows
            path, sha = artifacts.snapshot_frame(home, drift_sample, f"{spec.name}-drift-sample")
            reference["sample"] = {"file": f"{artifacts.DATASETS}/{path.name}", "sha256": sha}
        artifacts.save_reference(home, ref.sha256, reference)
        # What the label-free performance estimate needs (lib/monitoring/estimation.py): the stored
        # model's scores on the validation window, calibrated; nothing for a regressor.
        estimation.save_estimator(home, ref.sha256, estimation.fit_estimator(
            spec.task, training.label(spec, frames["valid"]),
            training.predict(load_model(home, ref.sha256), spec, frames["valid"]),
        ))  # fmt: skip
        handed = {
            "sha256": ref.sha256, "path": str(ref.model_path), "selected_features": selected,
            "best_iteration": trained.best_iteration, "training_seconds": round(seconds, 3),
            "datasets": manifests.dataset_hashes(training_set),
        }  # fmt: skip
        context.log.info(f"{spec.name}: model {ref.sha256[:12]} after {len(trained.trials)} trials")
        return dg.Output(
            handed,
            metadata={
                "sha256": ref.sha256,
                "artifact": str(ref.model_path),
                "best_iteration": trained.best_iteration,
                "valid_score": trained.valid_score,
                "trials": dg.MetadataValue.md(
                    pd.DataFrame(trained.trials).to_markdown(index=False)
                ),
                "selected_features": len(selected),
                "training_seconds": round(seconds, 3),
            }
            | ({"cluster": dg.MetadataValue.json(where)} if where is not None else {})
        )

    return model


def train_on_cluster(context: dg.AssetExecutionContext, warehouse: WarehouseResource,
                     spec: ModelSpec, training_set: dict, run_budget: int
                     ) -> tuple[dict, training.Trained, float, dict]:  # fmt: skip
    """The model step's training on the settings' Dask cluster: the search as tasks, and
    lightgbm.dask above the spec's row threshold. Returns the frames the rest of the step
    reads (the training rows bounded to a sample above the threshold: no process here holds
    them all), the model, its seconds and what ran where. A cluster that cannot be reached or
    a worker lost mid-training fails the step: nothing is saved, nothing promoted."""
    settings = warehouse.settings
    splits = training_set["splits"]
    threshold = cluster.training_rows(spec, settings.value("dask_training_rows"))
    started = time.perf_counter()
    try:
        with cluster.connect(settings.value("dask_cluster")) as client:
            trained, where = cluster.train(
                client, spec, splits["train"], splits["valid"],
                budget=settings.budget(spec, run_budget),
                half_life_days=training_set.get("half_life_days", 0),
                end=date.fromisoformat(splits["train"]["window"][1]), min_rows=threshold,
            )  # fmt: skip
    except (cluster.ClusterUnreachable, cluster.DistributedTrainingFailed) as exc:
        raise dg.Failure(str(exc)) from exc
    seconds = time.perf_counter() - started
    context.log.info(f"{spec.name}: trained on the Dask cluster ({where})")
    frames = {"train": cluster.read_sample(splits["train"], cluster.SEARCH_ROWS),
              "valid": read_snapshot(splits["valid"])}  # fmt: skip
    return frames, trained, seconds, where


def evaluation_asset(spec: ModelSpec) -> dg.AssetsDefinition:
    @dg.asset(
        key=key("models", spec, "evaluation"),
        group_name="models",
        ins=handoff(spec, "training_set", "model"),
        kinds={"lightgbm"},
        backfill_policy=single_run,
        io_manager_key=HANDOFF_IO_MANAGER,
        description=f"{spec.name} on its test window, against a naive baseline and the current "
        "champion, with slice metrics.",
    )
    def model_evaluation(
        context: dg.AssetExecutionContext,
        warehouse: WarehouseResource,
        training_set: dict,
        model: dict,
    ) -> dg.Output[dict]:
        home = warehouse.home_path
        same_candidate(spec, training_set, model)
        frames = {n: read_snapshot(training_set["splits"][n]) for n in SPLITS}
        booster = load_model(home, model["sha256"])
        y = {n: training.label(spec, f) for n, f in frames.items()}
        pred = {"valid": training.predict(booster, spec, frames["valid"])}
        setting = warehouse.settings.value("dask_cluster")
        rows = cluster.training_rows(spec, warehouse.settings.value("dask_training_rows"))
        if setting and rows and len(frames["test"]) >= rows:
            # A long test window is scored slice by slice on the cluster, as a long window
            # of predictions would be: the same numbers (the smoke-test gate re-scores its
            # rows here and compares).
            try:
                with cluster.connect(setting) as client:
                    pred["test"] = cluster.score(client, spec, artifacts.load_model_text(
                        home, model["sha256"]), training_set["splits"]["test"])  # fmt: skip
            except (cluster.ClusterUnreachable, cluster.DistributedTrainingFailed) as exc:
                raise dg.Failure(str(exc)) from exc
            context.log.info(f"{spec.name}: test window scored on the Dask cluster")
        else:
            pred["test"] = training.predict(booster, spec, frames["test"])
        base = {n: training.baseline(spec, frames["train"], frames[n]) for n in ("valid", "test")}
        threshold = None
        if spec.task == "binary":
            threshold = evaluation.best_f1_threshold(y["valid"], pred["valid"])
        metrics = evaluation.metrics(spec.task, y["test"], pred["test"], base["test"], threshold)
        valid_primary = evaluation.primary(spec.task, y["valid"], pred["valid"])
        valid_baseline = evaluation.primary(spec.task, y["valid"], base["valid"])
        v_val = gates.v_val(spec.task, valid_primary,
                            None if spec.task == "binary" else valid_baseline)  # fmt: skip
        primary = evaluation.primary(spec.task, y["test"], pred["test"])
        champion = champion_score(home, spec, frames["test"], y["test"], pred["test"])
        scored = frames["test"].assign(prediction=pred["test"])
        slice_rows, gap, worst = evaluation.slices(spec.task, scored, spec.slice_columns,
                                                   spec.label)  # fmt: skip
        sample = list(range(min(200, len(frames["test"]))))
        result = {
            "model_sha256": model["sha256"],
            "primary_metric": "auc" if spec.task == "binary" else "mae",
            "primary": primary,
            "metrics": metrics,
            "valid_primary": valid_primary,
            "valid_baseline": valid_baseline,
            "v_val": v_val,
            "threshold": threshold,
            "champion": champion,
            "slices": slice_rows,
            "worst_slice": worst,
            "worst_slice_gap": gap,
            "smoke_rows": sample,
            "smoke_predictions": [float(p) for p in pred["test"][sample]],
            "evaluated_at": str(utc_now()),
        }
        shown = {k: v for k, v in metrics.items() if k != "calibration"}
        meta = {
            "primary": primary, "v_val": v_val, "worst_slice": worst,
            "worst_slice_gap": gap, "metrics": dg.MetadataValue.json(shown),
            "champion": dg.MetadataValue.json(champion or {}),
        }  # fmt: skip
        if champion and champion.get("comparison"):
            meta |= comparison_metadata(champion["comparison"])
        if "calibration" in metrics:
            meta["calibration"] = dg.MetadataValue.md(
                pd.DataFrame(metrics["calibration"]).to_markdown(index=False)
            )
        return dg.Output(result, metadata=meta)

    return model_evaluation


def champion_score(home: Path, spec: ModelSpec, test: pd.DataFrame, y,
                   challenger) -> dict | None:  # fmt: skip
    """The promoted model scored on the challenger's test window, and the two compared on those
    same rows (`challenger`: the challenger's predictions), or None without a champion."""
    current = manifests.current(home, spec.name)
    if current is None:
        return None
    served = current.get("features", {})
    champion_spec = dataclasses.replace(spec, residual_of=served.get("residual_of"))
    features = tuple(served.get("names", spec.features))
    if features != spec.features:
        missing = [f for f in features if f not in test.columns]
        if missing:
            return {"version": current["version"], "primary": None,
                    "note": f"champion features not in the test set: {missing}"}  # fmt: skip
        champion_spec = dataclasses.replace(champion_spec, features=features)
    base = champion_spec.residual_of
    if base and base not in test.columns:
        return {"version": current["version"], "primary": None,
                "note": f"champion's residual base {base} is not in the test set"}  # fmt: skip
    booster = load_model(home, current["artifact"]["sha256"])
    pred = training.predict(booster, champion_spec, test)
    reason = compare.cannot_compare(spec.task, y, challenger, pred)
    if reason:
        return {"version": current["version"], "primary": None, "note": reason}
    comparison = compare.non_inferiority(
        spec.task, y, challenger, pred, margin=spec.gates.champion_tolerance,
        confidence=spec.gates.champion_confidence,
    )  # fmt: skip
    return {"version": current["version"], "primary": evaluation.primary(spec.task, y, pred),
            "comparison": comparison.as_dict()}  # fmt: skip


def comparison_metadata(comparison: dict) -> dict:
    """The champion comparison as metadata: the decision's numbers, and the whole block."""
    return {
        "champion_method": comparison["method"],
        "champion_difference": comparison["difference"],
        "champion_lower_bound": comparison["lower"],
        "champion_margin": comparison["margin"],
        "champion_confidence": comparison["confidence"],
        "champion_interval_width": comparison["width"],
        "champion_rows": comparison["n"],
        "champion_decision": "promote" if comparison["promote"] else "keep the champion",
        "champion_comparison": dg.MetadataValue.json(comparison),
    }
