"""models: for each model spec, its training set, its trained model and its evaluation.

`build_model_assets(spec)` (in defs/factory.py) calls these builders; nothing here is
model-specific. Each step returns its hand-off (a typed record of lib/models/handoffs.py) to
the hand-off IO manager and takes the step before it as an input, so the lineage graph is the
data flow and the event log records which materialization each step read.
"""

from datetime import date

import dagster as dg
import lightgbm as lgb
import pandas as pd

from unified_assets.defs.checks import utc_now
from unified_assets.defs.jobs import handoff_ins, key
from unified_assets.defs.partitions import single_run
from unified_assets.defs.resources import (
    HANDOFF_IO_MANAGER,
    ComputeResource,
    WarehouseResource,
    same_candidate,
)
from unified_assets.lib.core import artifacts
from unified_assets.lib.deployment import gates
from unified_assets.lib.deployment.champion import champion_score
from unified_assets.lib.features import leakage
from unified_assets.lib.features.tables import FEATURE_SOURCES
from unified_assets.lib.models import dask_steps, evaluation, tracking, training
from unified_assets.lib.models.handoffs import Evaluation, ModelRef, Snapshot, TrainingSet
from unified_assets.lib.models.specs import ModelSpec
from unified_assets.lib.monitoring import drift, estimation
from unified_assets.lib.quality import feeds, validation
from unified_assets.lib.raw import ingest


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
        check_specs=[dg.AssetCheckSpec(
            "missingness_leak", asset=key("models", spec, "training_set"), blocking=False,
            description="Features whose nulls differ sharply with the label in the training "
            f"window (a null rate {leakage.MISSINGNESS_RATIO:g}x higher in one class, or a "
            f"label {leakage.MISSINGNESS_SHIFT_SD:g} sd apart where null): the model could "
            "learn the gap, not the value.",
        )],
    )
    def training_set(
        context: dg.AssetExecutionContext, config: TrainingWindow, warehouse: WarehouseResource
    ):
        home = warehouse.home_path
        try:
            as_of = date.fromisoformat(config.as_of) if config.as_of else None
            rolling = warehouse.settings.rolling(config.rolling_days) or spec.rolling
            windows = spec.windows(as_of, rolling)
        except ValueError as exc:
            raise dg.Failure(f"{spec.name}: as_of={config.as_of!r}: {exc}") from exc
        span = windows["train"][0], windows["test"][1]
        with warehouse.connect() as conn:
            frames = {name: training.load_split(conn, spec, w) for name, w in windows.items()}
            # Days a data check found a broken feed on are left out, whoever asked for this
            # training (sensor, schedule, a person): a model must not learn the fault.
            excluded, label_gaps = feeds.training_exclusions(
                conn, FEATURE_SOURCES[spec.table], *span)
            input_dq = {t: validation.window_dq(conn, t, *windows["train"])
                        for t in FEATURE_SOURCES[spec.table]}
            lineage = ingest.landing_version(conn, *span)
        if excluded:
            frames = {name: training.without_days(spec, frame, excluded)
                      for name, frame in frames.items()}
            context.log.warning(f"{spec.name}: broken-feed days left out: {excluded}")
        empty = [name for name, frame in frames.items() if frame.empty]
        if empty:
            raise dg.Failure(
                f"{spec.name}: no labelled rows in {spec.table} for the {', '.join(empty)} "
                f"window(s) {[str(windows[n]) for n in empty]}: build those days first"
            )
        refs = {}
        for name, frame in frames.items():
            path, sha = artifacts.snapshot_frame(home, frame, f"{spec.name}-{name}")
            refs[name] = Snapshot(path=str(path), sha256=sha, rows=len(frame),
                                  window=tuple(str(d) for d in windows[name]))
        known = [v for v in input_dq.values() if v is not None]
        datasets = TrainingSet(
            splits=refs,
            input_dq=input_dq,
            input_dq_min=min(known) if known else None,
            lineage=lineage | {"feature_table": spec.table,
                               "inputs": list(FEATURE_SOURCES[spec.table])},
            as_of=config.as_of or None,
            # Recency weighting applies to a retraining's windows, not to the fixed ones.
            half_life_days=rolling.half_life_days if as_of else 0,
            created_at=str(utc_now()),
            excluded_days=excluded,
            label_gaps=label_gaps,
        )
        leaks = leakage.missingness_leaks(frames["train"], list(spec.features), spec.label,
                                          binary=spec.task == "binary")
        if leaks:
            context.log.warning(f"{spec.name}: missing values that tell the label: "
                                f"{[leak.feature for leak in leaks]}")
        yield dg.Output(
            datasets,
            metadata={f"{n}_rows": r.rows for n, r in refs.items()}
            | {f"{n}_sha256": r.sha256 for n, r in refs.items()}
            | {"input_dq": dg.MetadataValue.json(input_dq), "as_of": config.as_of or "fixed",
               "excluded_days": dg.MetadataValue.json(excluded),
               "label_gaps": dg.MetadataValue.json(label_gaps)}
            | lineage
        )
        yield dg.AssetCheckResult(
            check_name="missingness_leak", passed=not leaks, severity=dg.AssetCheckSeverity.WARN,
            metadata={"features": ", ".join(leak.feature for leak in leaks) or "none",
                      "findings": dg.MetadataValue.json([leak.as_dict() for leak in leaks]),
                      "window": str(windows["train"])},
        )

    return training_set


def model_asset(spec: ModelSpec) -> dg.AssetsDefinition:
    @dg.asset(
        key=key("models", spec, "model"),
        group_name="models",
        ins=handoff_ins(spec, "training_set"),
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
        compute: ComputeResource,
        training_set: TrainingSet,
    ) -> dg.Output[ModelRef]:
        home = warehouse.home_path
        frames, trained, seconds, where = compute.train(context.log, spec, training_set,
                                                        config.budget)
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
        )
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
            "windows": {n: list(r.window) for n, r in training_set.splits.items()},
            "rows": {n: r.rows for n, r in training_set.splits.items()},
            "datasets": training_set.dataset_hashes(),
            "lineage": training_set.lineage,
            "excluded_days": training_set.excluded_days,
            "label_gaps": training_set.label_gaps,
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
            training.predict(artifacts.load_model(home, ref.sha256), spec, frames["valid"]),
        ))
        handed = ModelRef(
            sha256=ref.sha256, path=str(ref.model_path), selected_features=selected,
            best_iteration=trained.best_iteration, training_seconds=round(seconds, 3),
            datasets=training_set.dataset_hashes(),
        )
        context.log.info(f"{spec.name}: model {ref.sha256[:12]} after {len(trained.trials)} trials")
        settings = warehouse.settings
        mlflow = tracking.attempt(settings.tracking(), "training", lambda: tracking.log_training(
            settings.tracking(), model=spec.name, sha256=ref.sha256,
            model_text=trained.model_text(),
            params=trained.params | {"best_iteration": trained.best_iteration,
                                     "features": len(spec.features), "task": spec.task},
            metrics={"valid_score": trained.valid_score,
                     "training_seconds": round(seconds, 3)},
            tags={tracking.RUN_TAG: context.run.run_id,
                  tracking.AS_OF_TAG: training_set.as_of or "fixed"},
            train=frames["train"], train_sha256=training_set.splits["train"].sha256,
            train_path=training_set.splits["train"].path,
        ))
        if "mlflow_warning" in mlflow:
            context.log.warning(f"{spec.name}: {mlflow['mlflow_warning']}")
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
            | mlflow
        )

    return model


def evaluation_asset(spec: ModelSpec) -> dg.AssetsDefinition:
    @dg.asset(
        key=key("models", spec, "evaluation"),
        group_name="models",
        ins=handoff_ins(spec, "training_set", "model"),
        kinds={"lightgbm"},
        backfill_policy=single_run,
        io_manager_key=HANDOFF_IO_MANAGER,
        description=f"{spec.name} on its test window, against a naive baseline and the current "
        "champion, with slice metrics.",
    )
    def model_evaluation(
        context: dg.AssetExecutionContext,
        warehouse: WarehouseResource,
        compute: ComputeResource,
        training_set: TrainingSet,
        model: ModelRef,
    ) -> dg.Output[Evaluation]:
        home = warehouse.home_path
        same_candidate(spec, training_set, model)
        frames = training_set.read()
        booster = artifacts.load_model(home, model.sha256)
        y = {n: training.label(spec, f) for n, f in frames.items()}
        pred = {"valid": training.predict(booster, spec, frames["valid"])}
        if compute.on_cluster(spec, len(frames["test"])):
            # A long test window is scored slice by slice on the cluster, as a long window
            # of predictions would be: the same numbers (the smoke-test gate re-scores its
            # rows here and compares).
            with compute.client() as client:
                pred["test"] = dask_steps.score(client, spec, artifacts.load_model_text(
                    home, model.sha256), training_set.splits["test"])
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
                            None if spec.task == "binary" else valid_baseline)
        primary = evaluation.primary(spec.task, y["test"], pred["test"])
        champion = champion_score(home, spec, frames["test"], y["test"], pred["test"])
        scored = frames["test"].assign(prediction=pred["test"])
        slice_rows, gap, worst = evaluation.slices(spec.task, scored, spec.slice_columns,
                                                   spec.label)
        sample = list(range(min(200, len(frames["test"]))))
        result = Evaluation(
            model_sha256=model.sha256,
            primary_metric="auc" if spec.task == "binary" else "mae",
            primary=primary,
            metrics=metrics,
            valid_primary=valid_primary,
            valid_baseline=valid_baseline,
            v_val=v_val,
            threshold=threshold,
            champion=champion,
            slices=slice_rows,
            worst_slice=worst,
            worst_slice_gap=gap,
            smoke_rows=sample,
            smoke_predictions=[float(p) for p in pred["test"][sample]],
            evaluated_at=str(utc_now()),
        )
        shown = {k: v for k, v in metrics.items() if k != "calibration"}
        meta = {
            "primary": primary, "v_val": v_val, "worst_slice": worst,
            "worst_slice_gap": gap, "metrics": dg.MetadataValue.json(shown),
            "champion": dg.MetadataValue.json(champion or {}),
        }
        if champion and champion.get("comparison"):
            meta |= comparison_metadata(champion["comparison"])
        settings = warehouse.settings
        meta |= tracking.attempt(settings.tracking(), "evaluation", lambda: tracking.log_evaluation(
            settings.tracking(), model=spec.name, sha256=model.sha256,
            metrics={k: v for k, v in shown.items() if isinstance(v, int | float)}))
        if "mlflow_warning" in meta:
            context.log.warning(f"{spec.name}: {meta['mlflow_warning']}")
        if "calibration" in metrics:
            meta["calibration"] = dg.MetadataValue.md(
                pd.DataFrame(metrics["calibration"]).to_markdown(index=False)
            )
        return dg.Output(result, metadata=meta)

    return model_evaluation


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
