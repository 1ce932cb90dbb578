"""monitoring: each model's health per scored day (drift, input DQ, realized performance and
its label-free estimate)."""

from functools import cache

import dagster as dg
import pandas as pd

from unified_assets.defs.checks import utc_now
from unified_assets.defs.jobs import key
from unified_assets.defs.partitions import daily, single_run
from unified_assets.defs.resources import WarehouseResource
from unified_assets.lib.core import artifacts
from unified_assets.lib.core.database import transaction
from unified_assets.lib.deployment import manifests
from unified_assets.lib.models.specs import ModelSpec
from unified_assets.lib.monitoring import drift_classifier, estimation, model_health


def monitor_asset(spec: ModelSpec) -> dg.AssetsDefinition:
    @dg.asset(
        key=key("monitoring", spec, "monitor"),
        group_name="monitoring",
        deps=[key("serving", spec, "predictions")],
        partitions_def=daily,
        backfill_policy=single_run,
        kinds={"duckdb"},
        pool="duckdb",
        description=f"{spec.name}'s health for a scored day: input and prediction drift of the "
        "trailing week against its training reference (per feature PSI and share outside the "
        "training range against thresholds learned from the training weeks, a classifier's "
        "AUC), broken-feed warnings, the day's input DQ, and realized performance of the "
        f"day whose outcomes became known ({spec.label_lag_days} day(s) later), and the "
        "label-free estimate of the scored day's metric where the model has an estimator. The "
        "retraining sensor reads this.",
    )
    def monitor(context: dg.AssetExecutionContext, warehouse: WarehouseResource):
        home = warehouse.home_path
        policy = warehouse.settings.drift_policy()

        @cache
        def reference_of(version: str) -> dict | None:
            """The version's drift reference, with its sample rows (sha256 verified)."""
            return artifacts.load_reference_with_sample(home, version, drift_classifier.SAMPLE)

        @cache
        def estimator_of(version: str) -> dict | None:
            return estimation.load_estimator(home, version)

        if manifests.current(home, spec.name) is None:
            context.log.warning(f"{spec.name}: no promoted model; nothing to monitor")
            return dg.MaterializeResult(metadata={"promoted": "none", "scored_rows": 0})
        start, end = context.partition_time_window
        with warehouse.connect() as conn, transaction(conn):
            measured = model_health.monitor_window(conn, spec, start.date(), end.date(),
                                                 reference_of, policy, utc_now(),
                                                 estimator_of)
        last = measured[-1]
        d, perf = last["drift"] or {}, last["performance"] or {}
        rows = [{"day": str(m["day"]), "version": (m["model_version"] or "")[:12],
                 "rows": m["scored_rows"],
                 "prediction_psi": (m["drift"] or {}).get("prediction_psi"),
                 "drifted_features": (m["drift"] or {}).get("drifted_features"),
                 "drift": (m["drift"] or {}).get("is_drift"),
                 "multivariate_auc": (m["drift"] or {}).get("multivariate_auc"),
                 "inputs_broken": (m["drift"] or {}).get("inputs_broken"),
                 "input_dq": m["input_dq"],
                 f"realized ({m['outcome_scored_day']})": (m["performance"] or {}).get("value"),
                 "estimated": (m["estimate"] or {}).get("value")}
                for m in measured[-31:]]
        latest = next((m for m in reversed(measured) if m["estimate"]), None)
        guess = {} if latest is None else latest["estimate"] | {"day": str(latest["day"])}
        return dg.MaterializeResult(
            metadata={
                "model_version": last["model_version"] or "",
                "scored_rows": last["scored_rows"],
                "prediction_psi": d.get("prediction_psi"),
                "drifted_share": d.get("drifted_share"),
                "is_drift": d.get("is_drift"),
                "top_features": ", ".join(d.get("top_features", [])),
                "drift_rule": d.get("rule", ""),
                "drift_reasons": "; ".join(d.get("reasons", [])),
                "alarmed_features": ", ".join(d.get("alarmed_features", [])),
                "multivariate_auc": d.get("multivariate_auc"),
                "multivariate_threshold": d.get("multivariate_threshold"),
                "inputs_broken": d.get("inputs_broken"),
                "input_faults": model_health.describe_faults(d.get("input_faults") or {}) or "",
                "feature_drift": dg.MetadataValue.md(feature_table(last["features"])),
                "input_dq": last["input_dq"],
                "realized_metric": perf.get("metric", ""),
                "realized_value": perf.get("value"),
                "realized_scored_day": str(last["outcome_scored_day"]),
                "estimated_metric": guess.get("metric", ""),
                "estimated_value": guess.get("value"),
                "estimated_day": guess.get("day", ""),
                "days": dg.MetadataValue.md(pd.DataFrame(rows).to_markdown(index=False)),
            }
        )

    return monitor


def feature_table(rows: list[dict]) -> str:
    """The last day's features: statistic, threshold, share outside the range, alarmed."""
    if not rows:
        return "no drift measured"
    table = pd.DataFrame(rows)[["feature", "statistic", "threshold", "outside_share",
                                "outside_threshold", "alarmed", "rule"]]
    return table.round(4).to_markdown(index=False)
