"""deployment: the gate in front of every model, and the manifest a deployment system acts on."""

import dagster as dg
import numpy as np

from unified_assets.defs.checks import utc_now
from unified_assets.defs.models.assets import (
    key,
    load_model,
    read_snapshot,
    trained_candidate,
)
from unified_assets.defs.partitions import single_run
from unified_assets.defs.resources import WarehouseResource
from unified_assets.lib import artifacts, candidates, features, gates, manifests, training
from unified_assets.lib.models import ModelSpec

GATE_NAMES = ("metric_floor", "champion", "amdr", "slice_gap", "smoke_test")
_GATE_TEXT = {
    "metric_floor": "The primary metric on the test window is at or beyond its floor.",
    "champion": "Not worse than the current champion, on the same window, beyond a tolerance.",
    "amdr": "AMDR = min(input DQ, FEE, V_val) at or above its threshold (KPIS.md).",
    "slice_gap": "The worst carrier or origin slice is within its allowed gap.",
    "smoke_test": "The saved artifact reloads (sha256 verified) and scores a sample identically.",
}


def smoke_test(home, model_ref: dict, evaluation: dict, spec: ModelSpec, test) -> tuple[bool, str]:
    """Reload the artifact from the store and score the evaluation's sample again."""
    try:
        booster = load_model(home, model_ref["sha256"])
    except (artifacts.ArtifactIntegrityError, FileNotFoundError) as exc:
        return False, f"artifact did not reload: {exc}"
    rows = evaluation["smoke_rows"]
    again = training.predict(booster, spec, test.iloc[rows])
    expected = np.array(evaluation["smoke_predictions"])
    if len(again) != len(expected) or not np.allclose(again, expected, rtol=0, atol=1e-12):
        return False, f"reloaded model scores {len(rows)} sample rows differently"
    return True, f"reloaded {model_ref['sha256'][:12]} and scored {len(rows)} rows identically"


def manifest_asset(spec: ModelSpec) -> dg.AssetsDefinition:
    asset_key = key("deployment", spec, "manifest")
    specs = [
        dg.AssetCheckSpec(name, asset=asset_key, blocking=True, description=_GATE_TEXT[name])
        for name in GATE_NAMES
    ]

    @dg.asset(
        key=asset_key,
        group_name="deployment",
        deps=[key("models", spec, "evaluation")],
        check_specs=specs,
        kinds={"json"},
        backfill_policy=single_run,
        description=f"The deployment decision for {spec.name}: promoted or rejected, with every "
        "gate's value and threshold; a rejected challenger never replaces the champion.",
    )
    def manifest(context: dg.AssetExecutionContext, warehouse: WarehouseResource):
        home = warehouse.home_path
        datasets, model_ref = trained_candidate(home, spec)
        evaluation = candidates.read(home, spec.name, "evaluation")
        if evaluation["model_sha256"] != model_ref["sha256"]:
            raise dg.Failure(
                f"{spec.name}: the evaluation is of {evaluation['model_sha256'][:12]}"
                f", the model is {model_ref['sha256'][:12]}: evaluate it first"
            )
        # FEE's recorded rule: registered features of the table that the spec lists and that
        # carry non-zero gain in the trained model, over all the table's registered features.
        registered = {f.name for f in features.features_of(spec.table)}
        generated = len(registered)
        selected = [f for f in model_ref["selected_features"] if f in registered]
        fee = gates.fee(len(selected), generated)
        input_dq = datasets["input_dq_min"]
        amdr = gates.amdr(input_dq if input_dq is not None else 0.0, fee, evaluation["v_val"])
        test = read_snapshot(datasets["splits"]["test"])
        smoke_ok, smoke_detail = smoke_test(home, model_ref, evaluation, spec, test)
        champion = evaluation["champion"]
        results = gates.evaluate(
            spec.gates, evaluation["primary"], champion["primary"] if champion else None,
            amdr, evaluation["worst_slice_gap"], smoke_ok, smoke_detail,
        )  # fmt: skip
        if champion and champion["primary"] is None:
            # A champion exists but could not be scored on this window: no comparison is no
            # pass. The challenger waits until it can be compared.
            results = [
                r if r.name != "champion" else gates.GateResult(
                    "champion", False, None, spec.gates.champion_tolerance, "comparable",
                    f"champion {champion['version'][:12]} could not be scored: {champion['note']}",
                )
                for r in results
            ]  # fmt: skip
        status, reasons = gates.decide(results)
        previous = manifests.current(home, spec.name)
        meta = artifacts.load_metadata(home, model_ref["sha256"])
        document = {
            "model": spec.name,
            "version": model_ref["sha256"],
            "status": status,
            "reasons": reasons,
            "task": spec.task,
            "decided_at": str(utc_now()),
            "artifact": {
                "sha256": model_ref["sha256"],
                "path": model_ref["path"],
                "format": "lightgbm-text",
            },  # fmt: skip
            "features": {
                "names": list(spec.features),
                "categorical": list(spec.categorical),
                "dtypes": meta.get("dtypes", {}),
                "table": spec.table,
                "residual_of": spec.residual_of,
            },
            "label": spec.label,
            "threshold": evaluation["threshold"],
            "metrics": {
                k: v
                for k, v in evaluation.items()
                if k
                in (
                    "primary_metric",
                    "primary",
                    "valid_primary",
                    "valid_baseline",
                    "v_val",
                    "worst_slice",
                    "worst_slice_gap",
                )
            }
            | {"test": {k: v for k, v in evaluation["metrics"].items() if k != "calibration"}},
            "gates": [r.as_dict() for r in results],
            "amdr": {
                "value": amdr,
                "input_dq": input_dq,
                "input_dq_by_table": datasets["input_dq"],
                "fee": fee,
                "selected_features": len(selected),
                "generated_features": generated,
                "v_val": evaluation["v_val"],
                "dq_weights": vars(warehouse.settings.quality()),
            },  # fmt: skip
            "lineage": datasets["lineage"]
            | {
                "datasets": {n: r["sha256"] for n, r in datasets["splits"].items()},
                "assets": [
                    k.to_user_string()
                    for k in (
                        key("models", spec, "training_set"),
                        key("models", spec, "model"),
                        key("models", spec, "evaluation"),
                    )
                ],
            },  # fmt: skip
            "windows": {n: r["window"] for n, r in datasets["splits"].items()},
            "code_version": meta.get("code_version"),
            "trained_at": meta.get("trained_at"),
            "previous_champion": previous["version"] if previous else None,
            "champion_primary": champion["primary"] if champion else None,
        }
        path = manifests.record(home, spec.name, document)
        context.log.info(f"{spec.name}: {status} {model_ref['sha256'][:12]} ({path.name})")
        return dg.MaterializeResult(
            metadata={
                "status": status,
                "version": model_ref["sha256"],
                "amdr": amdr,
                "fee": fee,
                "history_file": str(path),
                "reasons": dg.MetadataValue.json(reasons),
            },  # fmt: skip
            check_results=[
                dg.AssetCheckResult(
                    check_name=r.name,
                    passed=r.passed,
                    metadata={
                        "value": r.value,
                        "threshold": r.threshold,
                        "comparison": r.comparison,
                        "detail": r.detail,
                    },
                )  # fmt: skip
                for r in results
            ],
        )

    return manifest
