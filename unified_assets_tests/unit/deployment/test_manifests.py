"""Deployment manifests: current.json, an append-only history, rollback, and assembling a
decision from a candidate's hand-offs (no Dagster)."""

from __future__ import annotations

import dataclasses
import math

import pytest

from unified_assets.lib.deployment import compare, manifests
from unified_assets.lib.models import specs
from unified_assets.lib.models.handoffs import Evaluation, ModelRef, TrainingSet, from_json

MODEL = "late_arrival"


def manifest(version: str, status: str = "promoted", **extra) -> dict:
    return {"model": MODEL, "version": version, "status": status, **extra}


def history_bytes(home) -> dict[str, bytes]:
    folder = manifests.history_dir(home, MODEL)
    return {p.name: p.read_bytes() for p in folder.iterdir()}


def test_promoted_then_rejected(tmp_path):
    assert not manifests.last_rejected(tmp_path, MODEL)
    first = manifests.record(tmp_path, MODEL, manifest("a" * 64, auc=0.71))
    assert not manifests.last_rejected(tmp_path, MODEL)
    second = manifests.record(tmp_path, MODEL, manifest("b" * 64, "rejected", auc=0.60))
    assert manifests.last_rejected(tmp_path, MODEL)  # the retraining sensor retries sooner
    assert first.name < second.name
    assert first.name.endswith(f"-promoted-{'a' * 12}.json")
    assert second.name.endswith(f"-rejected-{'b' * 12}.json")
    now = manifests.current(tmp_path, MODEL)
    assert now["version"] == "a" * 64 and now["auc"] == 0.71
    entries = manifests.history(tmp_path, MODEL)
    assert [(e["version"], e["status"]) for e in entries] == [
        ("a" * 64, "promoted"),
        ("b" * 64, "rejected"),
    ]
    assert [e["_file"] for e in entries] == [first.name, second.name]


def test_nothing_promoted_means_no_current(tmp_path):
    assert manifests.current(tmp_path, MODEL) is None
    assert manifests.history(tmp_path, MODEL) == []
    manifests.record(tmp_path, MODEL, manifest("v1", "rejected"))
    assert manifests.current(tmp_path, MODEL) is None


def test_history_files_are_never_modified(tmp_path):
    manifests.record(tmp_path, MODEL, manifest("v1"))
    manifests.record(tmp_path, MODEL, manifest("v2", "rejected"))
    before = history_bytes(tmp_path)
    # Same version and status again, in quick succession: new files, old ones untouched.
    for _ in range(3):
        manifests.record(tmp_path, MODEL, manifest("v2", "rejected"))
    manifests.record(tmp_path, MODEL, manifest("v3"))
    manifests.rollback(tmp_path, MODEL)
    after = history_bytes(tmp_path)
    assert len(after) == len(before) + 5
    assert {name: after[name] for name in before} == before
    names = [e["_file"] for e in manifests.history(tmp_path, MODEL)]
    assert names == sorted(names) and len(set(names)) == len(names)


def test_a_history_entry_is_never_replaced_even_with_the_same_name(tmp_path, monkeypatch):
    fixed = manifests.stamp_after(tmp_path, MODEL)
    monkeypatch.setattr(manifests, "stamp_after", lambda home, model: fixed)
    first = manifests.record(tmp_path, MODEL, manifest("v1", "rejected", run=1))
    before = first.read_bytes()
    with pytest.raises(RuntimeError, match="could not create"):
        manifests.record(tmp_path, MODEL, manifest("v1", "rejected", run=2))
    assert first.read_bytes() == before
    assert [e["run"] for e in manifests.history(tmp_path, MODEL)] == [1]


def test_rollback_restores_the_previous_promoted_version(tmp_path):
    manifests.record(tmp_path, MODEL, manifest("v1", auc=0.70))
    manifests.record(tmp_path, MODEL, manifest("v9", "rejected"))
    manifests.record(tmp_path, MODEL, manifest("v2", auc=0.72))
    restored = manifests.rollback(tmp_path, MODEL, reason="drift alarm")
    now = manifests.current(tmp_path, MODEL)
    assert now == restored
    assert now["version"] == "v1" and now["auc"] == 0.70 and now["status"] == "promoted"
    assert now["restored_by_rollback"] is True
    assert now["rolled_back_from"] == "v2"
    assert now["rollback_reason"] == "drift alarm" and now["rolled_back_at"]
    event = manifests.history(tmp_path, MODEL)[-1]
    assert event["status"] == "rolled_back"
    assert (event["from_version"], event["to_version"]) == ("v2", "v1")
    assert event["reason"] == "drift alarm" and event["rolled_back_at"]
    assert len(manifests.history(tmp_path, MODEL)) == 4
    assert not manifests.last_rejected(tmp_path, MODEL)  # a rollback is not a decision


def test_a_rolled_back_version_is_not_restored_by_the_next_rollback(tmp_path):
    for version in ("v1", "v2", "v3"):
        manifests.record(tmp_path, MODEL, manifest(version))
    assert manifests.rollback(tmp_path, MODEL)["version"] == "v2"
    assert manifests.rollback(tmp_path, MODEL)["version"] == "v1"
    with pytest.raises(ValueError, match="no promoted version earlier"):
        manifests.rollback(tmp_path, MODEL)


def test_rollback_skips_repromotions_of_the_same_version(tmp_path):
    for version in ("v1", "v2", "v2"):
        manifests.record(tmp_path, MODEL, manifest(version))
    assert manifests.rollback(tmp_path, MODEL)["version"] == "v1"


def test_a_version_withdrawn_earlier_stays_withdrawn_after_a_later_promotion(tmp_path):
    # promote A, promote B, roll back (A), promote C, roll back: A again, never B
    for version in ("A", "B"):
        manifests.record(tmp_path, MODEL, manifest(version))
    assert manifests.rollback(tmp_path, MODEL)["version"] == "A"
    manifests.record(tmp_path, MODEL, manifest("C"))
    assert manifests.rollback(tmp_path, MODEL)["version"] == "A"
    assert manifests.current(tmp_path, MODEL)["version"] == "A"
    with pytest.raises(ValueError, match="no promoted version earlier"):
        manifests.rollback(tmp_path, MODEL)


def test_rollback_needs_an_earlier_promoted_version(tmp_path):
    with pytest.raises(ValueError, match="no current"):
        manifests.rollback(tmp_path, MODEL)
    manifests.record(tmp_path, MODEL, manifest("v1"))
    manifests.record(tmp_path, MODEL, manifest("v2", "rejected"))
    before = history_bytes(tmp_path)
    with pytest.raises(ValueError, match="no promoted version earlier"):
        manifests.rollback(tmp_path, MODEL)
    assert history_bytes(tmp_path) == before
    assert manifests.current(tmp_path, MODEL)["version"] == "v1"


@pytest.mark.parametrize(
    "bad",
    [
        {"version": "v1", "status": "promoted"},
        {"model": MODEL, "status": "promoted"},
        {"model": MODEL, "version": "v1"},
        {"model": MODEL, "version": "v1", "status": "rolled_back"},
        {"model": MODEL, "version": "", "status": "promoted"},
        {"model": "other", "version": "v1", "status": "promoted"},
        ["not", "a", "dict"],
    ],
)
def test_invalid_manifest_is_refused(tmp_path, bad):
    with pytest.raises(ValueError):
        manifests.record(tmp_path, MODEL, bad)
    assert manifests.history(tmp_path, MODEL) == []
    assert manifests.current(tmp_path, MODEL) is None


def test_model_name_cannot_escape_the_deployments_folder(tmp_path):
    with pytest.raises(ValueError):
        manifests.record(tmp_path, "../x", {"model": "../x", "version": "v", "status": "promoted"})


# -- assembling a decision from the hand-offs ------------------------------------------------
SPEC = dataclasses.replace(
    specs.DELAY_CLASSIFIER, name=MODEL, features=("temp_f", "carrier", "distance_mi"),
    categorical=("carrier",),
    gates=dataclasses.replace(specs.DELAY_CLASSIFIER.gates, metric_floor=0.6,
                              champion_tolerance=0.01, amdr_threshold=0.5, max_slice_gap=0.2),
)
REGISTERED = {"temp_f", "carrier", "distance_mi", "wind_speed_mph"}
ASSETS = [f"models/{MODEL}_training_set", f"models/{MODEL}_model", f"models/{MODEL}_evaluation"]
DATASETS = {"train": "a" * 64, "valid": "b" * 64, "test": "c" * 64}


def training_set(**changes) -> TrainingSet:
    splits = {name: {"path": f"/a/{name}.parquet", "sha256": sha, "rows": 100,
                     "window": ["2013-01-01", "2013-01-15"]} for name, sha in DATASETS.items()}
    return from_json(TrainingSet, {
        "splits": splits, "input_dq": {"warehouse.fct_flights": 0.97, "warehouse.w": 0.9},
        "input_dq_min": 0.9, "lineage": {"landing_files": 4, "landing_version": "l" * 64},
        "as_of": None, "created_at": "2013-01-29"} | changes)


def model(**changes) -> ModelRef:
    return from_json(ModelRef, {
        "sha256": "m" * 64, "path": "/a/m.txt", "best_iteration": 12,
        "selected_features": ["temp_f", "carrier", "not_registered"],
        "training_seconds": 1.5, "datasets": dict(DATASETS)} | changes)


def evaluation(**changes) -> Evaluation:
    return from_json(Evaluation, {
        "model_sha256": "m" * 64, "primary_metric": "auc", "primary": 0.7,
        "metrics": {"auc": 0.7, "baseline_auc": 0.6, "calibration": [{"bin": 1}]},
        "valid_primary": 0.69, "valid_baseline": 0.6, "v_val": 0.69, "threshold": 0.3,
        "champion": None, "slices": [], "worst_slice": "carrier=AA", "worst_slice_gap": 0.1,
        "smoke_rows": [0], "smoke_predictions": [0.2]} | changes)


def decide(ts=None, m=None, ev=None, smoke=(True, "ok"), previous=None):
    return manifests.assemble(
        SPEC, ts or training_set(), m or model(), ev or evaluation(), registered=REGISTERED,
        smoke=smoke, model_metadata={"dtypes": {"temp_f": "float64"}, "code_version": "abc",
                                     "trained_at": "2013-01-29T00:00:00"},
        previous=previous, dq_weights={"alpha": 1.0}, assets=ASSETS, decided_at="now",
    )


def test_fee_counts_only_registered_features_of_the_table():
    fee = manifests.feature_efficiency(["temp_f", "carrier", "not_registered"], REGISTERED)
    assert fee == {"fee": 0.5, "selected": 2, "generated": 4}


def test_amdr_is_the_minimum_and_an_unknown_input_dq_counts_as_zero():
    assert manifests.readiness(training_set(), 0.5, evaluation()) == 0.5
    assert manifests.readiness(training_set(), 0.95, evaluation()) == 0.69
    assert manifests.readiness(training_set(input_dq_min=0.4), 0.95, evaluation()) == 0.4
    assert manifests.readiness(training_set(input_dq_min=None), 0.95, evaluation()) == 0.0
    assert math.isnan(manifests.readiness(training_set(), 0.5, evaluation(v_val=math.nan)))


def test_a_candidate_that_passes_every_gate_is_promoted_with_its_evidence():
    document, results = decide(previous={"version": "p" * 64})
    assert [r.name for r in results] == list(manifests.gates.GATE_NAMES)
    assert all(r.passed for r in results)
    assert document["status"] == "promoted" and document["reasons"] == []
    assert document["version"] == document["artifact"]["sha256"] == "m" * 64
    assert document["amdr"] == {
        "value": 0.5, "input_dq": 0.9, "input_dq_by_table": training_set().input_dq,
        "fee": 0.5, "selected_features": 2, "generated_features": 4, "v_val": 0.69,
        "dq_weights": {"alpha": 1.0},
    }
    assert document["metrics"]["test"] == {"auc": 0.7, "baseline_auc": 0.6}  # no calibration
    assert document["metrics"]["v_val"] == 0.69 and "slices" not in document["metrics"]
    assert document["lineage"]["datasets"] == DATASETS
    assert document["lineage"]["assets"] == ASSETS and document["lineage"]["landing_files"] == 4
    assert document["features"]["names"] == list(SPEC.features)
    assert document["features"]["dtypes"] == {"temp_f": "float64"}
    assert document["previous_champion"] == "p" * 64 and document["champion_primary"] is None
    assert document["champion_comparison"] is None
    assert document["code_version"] == "abc" and document["threshold"] == 0.3


def test_failed_gates_reject_with_their_reasons_and_the_record_keeps_them(tmp_path):
    document, results = decide(ev=evaluation(primary=0.55, worst_slice_gap=0.5),
                               smoke=(False, "reloaded model scores 1 sample rows differently"))
    failed = {r.name for r in results if not r.passed}
    assert failed == {"metric_floor", "slice_gap", "smoke_test"}
    assert document["status"] == "rejected"
    assert [reason.split(":")[0] for reason in document["reasons"]] == [
        "metric_floor", "slice_gap", "smoke_test"]
    manifests.record(tmp_path, MODEL, document)
    assert manifests.current(tmp_path, MODEL) is None
    assert manifests.history(tmp_path, MODEL)[-1]["reasons"] == document["reasons"]


def test_amdr_below_its_threshold_rejects():
    document, results = decide(ts=training_set(input_dq_min=None))
    assert document["amdr"]["value"] == 0.0 and document["status"] == "rejected"
    assert [r.name for r in results if not r.passed] == ["amdr"]


def compared(lower: float, **changes) -> dict:
    """A champion scored and compared on the challenger's rows, as the evaluation hands it on."""
    comparison = dict(
        task="binary", method="delong", metric="auc", n=6_000, challenger=0.7, champion=0.75,
        difference=-0.05, lower=lower, upper=-0.03, width=-0.03 - lower, confidence=0.95,
        margin=0.01, promote=lower >= -0.01, p_value=0.9, se=0.01, replicates=None, seed=None,
        min_rows=2_000, enough_rows=True,
    ) | changes
    return {"version": "c" * 64, "primary": 0.75, "comparison": comparison}


def test_a_champion_that_could_not_be_scored_is_no_pass():
    unscored = {"version": "c" * 64, "primary": None, "note": "champion features not in the test"}
    document, results = decide(ev=evaluation(champion=unscored))
    champion = next(r for r in results if r.name == "champion")
    assert not champion.passed and champion.comparison == "comparable"
    assert "could not be scored" in champion.detail and document["status"] == "rejected"
    assert champion.threshold == -0.01 and document["champion_comparison"] is None
    # scored, but handed on without a comparison on the same rows: no pass either
    uncompared = {"version": "c" * 64, "primary": 0.65}
    document, results = decide(ev=evaluation(champion=uncompared))
    champion = next(r for r in results if r.name == "champion")
    assert not champion.passed and "evaluate again" in champion.detail
    assert document["status"] == "rejected"


def test_the_champion_gate_decides_on_the_interval_and_the_manifest_keeps_it(tmp_path):
    beaten = compared(lower=-0.07)
    document, results = decide(ev=evaluation(champion=beaten), previous={"version": "c" * 64})
    champion = next(r for r in results if r.name == "champion")
    assert not champion.passed and champion.value == -0.07 and champion.threshold == -0.01
    assert document["status"] == "rejected" and document["champion_primary"] == 0.75
    assert document["reasons"][0].startswith("champion: challenger AUC 0.7000 vs champion")
    block = document["champion_comparison"]
    assert block == beaten["comparison"] and not compare.Comparison.from_dict(block).promote
    assert (block["method"], block["n"], block["margin"], block["confidence"]) == (
        "delong", 6_000, 0.01, 0.95)
    gate = next(g for g in document["gates"] if g["name"] == "champion")
    assert (gate["value"], gate["threshold"], gate["comparison"]) == (-0.07, -0.01, ">=")
    manifests.record(tmp_path, MODEL, document)
    assert manifests.history(tmp_path, MODEL)[-1]["champion_comparison"] == block
    # a worse point value, but within the margin at the stated confidence: promoted
    close = compared(lower=-0.008, difference=-0.002, challenger=0.748)
    document, _ = decide(ev=evaluation(champion=close), previous={"version": "c" * 64})
    assert document["status"] == "promoted" and document["champion_comparison"]["lower"] == -0.008


def test_a_model_trained_on_other_datasets_is_refused():
    replaced = training_set()
    replaced.splits["train"] = dataclasses.replace(replaced.splits["train"], sha256="x" * 64)
    with pytest.raises(manifests.StaleHandoff, match="training set changed after model mmmm"):
        decide(ts=replaced)
    with pytest.raises(manifests.StaleHandoff, match="train it again"):
        manifests.check_same_candidate(MODEL, replaced, model())
    manifests.check_same_candidate(MODEL, training_set(), model())  # the same candidate


def test_an_evaluation_of_another_model_is_refused():
    with pytest.raises(manifests.StaleHandoff, match="evaluate it first"):
        decide(ev=evaluation(model_sha256="o" * 64))
