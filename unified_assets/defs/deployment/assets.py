"""deployment: the gate in front of every model, and the manifest a deployment system acts on.

The manifest step takes the model's three hand-offs (training set, model, evaluation) as
inputs; lib/deployment/manifests.py assembles the decision from them.
"""

import dagster as dg
import numpy as np

from unified_assets.defs.checks import utc_now
from unified_assets.defs.jobs import handoff_ins, key
from unified_assets.defs.partitions import single_run
from unified_assets.defs.resources import WarehouseResource, same_candidate
from unified_assets.lib.core import artifacts
from unified_assets.lib.deployment import manifests
from unified_assets.lib.deployment.announce import announce
from unified_assets.lib.deployment.gates import GATE_NAMES
from unified_assets.lib.features import catalog
from unified_assets.lib.models import training
from unified_assets.lib.models.handoffs import Evaluation, ModelRef, TrainingSet
from unified_assets.lib.models.specs import ModelSpec
from unified_assets.lib.monitoring import alerts

_GATE_TEXT = {
    "metric_floor": "The primary metric on the test window is at or beyond its floor, or the "
    "serving champion misses it on the same rows too (then the champion gate decides).",
    "champion": "Not worse than the current champion beyond the margin, at the stated "
    "confidence, both scored on the same rows (DeLong's test of AUC; a paired bootstrap of MAE).",
    "amdr": "AMDR = min(input DQ, FEE, V_val) at or above its threshold (docs/kpis.md).",
    "slice_gap": "The worst carrier or origin slice is within its allowed gap.",
    "smoke_test": "The saved artifact reloads (sha256 verified) and scores a sample identically.",
}


def smoke_test(home, model_ref: ModelRef, evaluation: Evaluation, spec: ModelSpec,
               test) -> tuple[bool, str]:
    """Reload the artifact from the store and score the evaluation's sample again."""
    try:
        booster = artifacts.load_model(home, model_ref.sha256)
    except (artifacts.ArtifactIntegrityError, FileNotFoundError) as exc:
        return False, f"artifact did not reload: {exc}"
    rows = evaluation.smoke_rows
    again = training.predict(booster, spec, test.iloc[rows])
    expected = np.array(evaluation.smoke_predictions)
    if len(again) != len(expected) or not np.allclose(again, expected, rtol=0, atol=1e-12):
        return False, f"reloaded model scores {len(rows)} sample rows differently"
    return True, f"reloaded {model_ref.sha256[:12]} and scored {len(rows)} rows identically"


def manifest_asset(spec: ModelSpec) -> dg.AssetsDefinition:
    asset_key = key("deployment", spec, "manifest")
    # Not blocking: a rejection is a decision the manifest records (the champion keeps
    # serving), not a failed run; the other models' scoring and the shared steps go on.
    specs = [
        dg.AssetCheckSpec(name, asset=asset_key, blocking=False, description=_GATE_TEXT[name])
        for name in GATE_NAMES
    ]
    chain = [key("models", spec, step) for step in ("training_set", "model", "evaluation")]

    @dg.asset(
        key=asset_key,
        group_name="deployment",
        ins=handoff_ins(spec, "training_set", "model", "evaluation"),
        check_specs=specs,
        kinds={"json"},
        backfill_policy=single_run,
        description=f"The deployment decision for {spec.name}: promoted or rejected, with every "
        "gate's value and threshold; a rejected challenger never replaces the champion.",
    )
    def manifest(
        context: dg.AssetExecutionContext,
        warehouse: WarehouseResource,
        training_set: TrainingSet,
        model: ModelRef,
        evaluation: Evaluation,
    ):
        home = warehouse.home_path
        same_candidate(spec, training_set, model, evaluation)
        test = training_set.splits["test"].read()
        document, results = manifests.assemble(
            spec, training_set, model, evaluation,
            registered={f.name for f in catalog.features_of(spec.table)},
            smoke=smoke_test(home, model, evaluation, spec, test),
            model_metadata=artifacts.load_metadata(home, model.sha256),
            previous=manifests.current(home, spec.name),
            dq_weights=vars(warehouse.settings.quality()),
            assets=[k.to_user_string() for k in chain],
            decided_at=str(utc_now()),
        )
        path = manifests.record(home, spec.name, document)
        status = document["status"]
        compared = document["champion_comparison"]
        context.log.info(f"{spec.name}: {status} {model.sha256[:12]} ({path.name})")
        if status != "promoted":
            context.log.warning(f"{spec.name}: challenger {status}, "
                                f"{'; '.join(document['reasons'])}; the champion stays")
        settings = warehouse.settings
        told = announce(home, spec.name, alerts.decision(spec.name, document, path.name),
                        settings.alert_channels(), settings.tracking(),
                        model.sha256 if status == "promoted" else None)
        if "mlflow_warning" in told:
            context.log.warning(f"{spec.name}: {told['mlflow_warning']}")
        if told.get("alert") == "pending":
            context.log.warning(f"{spec.name}: the alert of this decision is not delivered yet; "
                                "the deliver_alerts sensor tries again")
        return dg.MaterializeResult(
            metadata={
                "status": status,
                "version": model.sha256,
                "amdr": document["amdr"]["value"],
                "fee": document["amdr"]["fee"],
                "history_file": str(path),
                "reasons": dg.MetadataValue.json(document["reasons"]),
                "champion_comparison": dg.MetadataValue.json(compared or {}),
            } | told,
            check_results=[
                dg.AssetCheckResult(
                    check_name=r.name,
                    passed=r.passed,
                    severity=dg.AssetCheckSeverity.WARN,
                    metadata={
                        "value": r.value,
                        "threshold": r.threshold,
                        "comparison": r.comparison,
                        "detail": r.detail,
                    }
                    | ({"champion_comparison": dg.MetadataValue.json(compared)}
                       if r.name == "champion" and compared else {}),
                )
                for r in results
            ],
        )

    return manifest
