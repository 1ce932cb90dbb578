"""The ML half through materialize(): features -> training set -> model -> evaluation -> gated
manifest -> predictions, on four real weeks of January 2013 with small windows."""

import dataclasses
import hashlib
import json
import shutil
from datetime import date
from pathlib import Path

import dagster as dg
import numpy as np
import pytest

from unified_assets.definitions import build_defs
from unified_assets.defs.factory import build_model_assets
from unified_assets.defs.jobs import key
from unified_assets.defs.monitoring.sensors import retrain_request
from unified_assets.defs.resources import HANDOFF_SHA256, load_handoff, load_latest
from unified_assets.defs.settings import Settings
from unified_assets.lib.core import artifacts
from unified_assets.lib.deployment import manifests
from unified_assets.lib.deployment.gates import Gates
from unified_assets.lib.features import catalog, flight_table
from unified_assets.lib.models import specs
from unified_assets.lib.models.handoffs import ModelRef, as_json
from unified_assets_tests.support.planted import plant_leak, planted_leak_feature
from unified_assets_tests.support.reads import query
from unified_assets_tests.support.runs import (
    check_outcomes,
    data_and_feature_assets,
    small,
    train_and_deploy,
)
from unified_assets_tests.support.runs import run_assets as run

END = "2013-01-28"  # the last day of `featured` (conftest.py)
CLASSIFIER = small(specs.DELAY_CLASSIFIER)
CHAIN = ("training_set", "model", "evaluation", "manifest")


def steps(home: Path, spec: specs.ModelSpec, *names: str, instance: dg.DagsterInstance):
    """Materialize some steps of the spec's chain (training set, model, evaluation, manifest)
    as one run on `instance`: a step reads its inputs from the instance's event log, so runs
    that hand results to one another share the instance."""
    chain = build_model_assets(spec)
    by_name = dict(zip(CHAIN, chain[:4], strict=True))
    selection = [by_name[name].key for name in names]
    return run(home, data_and_feature_assets() + chain, selection=selection, instance=instance)


def materialization(result: dg.ExecuteInProcessResult, asset_key: dg.AssetKey) -> dict:
    """The metadata values of the run's materialization of `asset_key`."""
    event = next(e.event_specific_data.materialization
                 for e in result.get_asset_materialization_events()
                 if e.event_specific_data.materialization.asset_key == asset_key)
    return {name: entry.value for name, entry in event.metadata.items()}


def step_error(result: dg.ExecuteInProcessResult, step: str) -> str:
    """The error (with its causes) that failed `step` of the run."""
    return next(str(e.event_specific_data.error) for e in result.all_events
                if e.is_step_failure and e.step_key == step)


def serve(home: Path, spec: specs.ModelSpec, start="2013-01-22", end=END):
    chain = build_model_assets(spec)
    return run(home, data_and_feature_assets() + chain, selection=[chain[4].key],
               start=start, end=end)


# `featured` (conftest.py): a copy of Jan 1-28 built up to the feature tables.


@pytest.fixture(scope="module")
def deployed_template(tmp_path_factory, featured_template) -> Path:
    """`featured` with the small classifier trained, gated and promoted, once for the module."""
    home = tmp_path_factory.mktemp("deployed") / "home"
    shutil.copytree(featured_template, home)
    assert train_and_deploy(home, CLASSIFIER).success
    return home


@pytest.fixture
def deployed(tmp_path, deployed_template) -> Path:
    """A copy of the home where the small classifier is the promoted champion."""
    target = tmp_path / "home"
    shutil.copytree(deployed_template, target)
    return target


def test_features_are_point_in_time_on_real_days(featured):
    rows = query(
        featured,
        "SELECT count(*), count(*) FILTER (WHERE weather_as_of > cutoff_utc OR rates_as_of > "
        "cutoff_utc OR inbound_as_of > cutoff_utc), count(prev_arr_delay_min), "
        "count(carrier_late_rate_7d) FROM features.flight_features",
    )[0]
    assert rows[0] == scalar_flights(featured) and rows[1] == 0
    assert rows[2] > 0 and rows[3] > 0  # the history features are really there
    registry = query(featured, "SELECT count(*) FROM features.feature_registry")[0][0]
    assert registry == len(catalog.REGISTRY)


def scalar_flights(home: Path) -> int:
    return query(home, "SELECT count(*) FROM warehouse.fct_flights")[0][0]


def test_classifier_from_spec_to_predictions(featured):
    result = train_and_deploy(featured, CLASSIFIER)
    assert result.success
    gates = {name: ok for (asset, name), ok in check_outcomes(result).items()
             if asset.startswith("deployment/")}
    assert gates == dict.fromkeys(("metric_floor", "champion", "amdr", "slice_gap",
                                   "smoke_test"), True)
    current = manifests.current(featured, "delay_classifier")
    sha = current["version"]
    assert current["status"] == "promoted" and current["previous_champion"] is None
    assert current["artifact"]["sha256"] == sha and len(sha) == 64
    model_file = featured / "artifacts" / "models" / f"{sha}.txt"
    assert model_file.read_text().startswith("tree")  # LightGBM's text format, no pickle
    meta = artifacts.load_metadata(featured, sha)
    assert meta["best_iteration"] >= 1 and len(meta["trials"]) == 2
    assert set(meta["datasets"]) == {"train", "valid", "test"}
    assert {g["name"] for g in current["gates"]} == {"metric_floor", "champion", "amdr",
                                                    "slice_gap", "smoke_test"}
    assert all("value" in g and "threshold" in g for g in current["gates"])
    amdr = current["amdr"]
    assert amdr["value"] == min(amdr["input_dq"], amdr["fee"], amdr["v_val"])
    assert 0 < amdr["fee"] <= 1 and amdr["generated_features"] == len(
        catalog.features_of("features.flight_features"))
    assert current["lineage"]["landing_files"] == 56  # 28 days of flights and of weather
    test = current["metrics"]["test"]
    assert 0.55 < test["auc"] < 0.85 and test["auc"] > test["baseline_auc"]

    served = serve(featured, CLASSIFIER)
    assert served.success
    rows = query(
        featured,
        "SELECT count(*), count(DISTINCT model_version), min(model_version), "
        "min(prediction), max(prediction) FROM serving.delay_classifier_predictions",
    )[0]
    expected = query(featured, "SELECT count(*) FROM features.flight_features "
                     "WHERE flight_date >= '2013-01-22'")[0][0]
    assert rows[0] == expected and rows[1] == 1 and rows[2] == sha
    assert 0 <= rows[3] <= rows[4] <= 1


def test_same_inputs_give_the_same_artifact(deployed):
    """Trained again on the same inputs (the first training made `deployed`)."""
    first = manifests.current(deployed, "delay_classifier")["version"]
    again = train_and_deploy(deployed, CLASSIFIER)
    assert again.success
    assert materialization(again, key("models", CLASSIFIER, "model"))["sha256"] == first
    # deterministic and immutable: one model file, however often it is trained
    assert len(list((deployed / "artifacts" / "models").glob("*.txt"))) == 1


def test_a_worse_challenger_is_rejected_and_the_champion_stays(featured, instance):
    assert steps(featured, CLASSIFIER, *CHAIN, instance=instance).success
    champion = manifests.current(featured, "delay_classifier")
    assert champion["champion_comparison"] is None  # the first model had none to beat
    # the challenger learns from shuffled labels: a training set whose train split is shuffled
    # is recorded as the training set's newest materialization, and the chain goes on from it
    training_set = key("models", CLASSIFIER, "training_set")
    datasets = load_latest(instance, featured, training_set)
    train = datasets.splits["train"].read()
    rng = np.random.default_rng(7)
    train["is_late_15"] = rng.permutation(train["is_late_15"].to_numpy())
    path, sha = artifacts.snapshot_frame(featured, train, "delay_classifier-train-shuffled")
    datasets.splits["train"] = dataclasses.replace(datasets.splits["train"], path=str(path),
                                                   sha256=sha)
    _, handoff_sha = artifacts.save_handoff(featured, training_set.path, as_json(datasets))
    instance.report_runless_asset_event(
        dg.AssetMaterialization(training_set, metadata={HANDOFF_SHA256: handoff_sha})
    )
    result = steps(featured, CLASSIFIER, "model", "evaluation", "manifest", instance=instance)
    assert materialization(result, key("models", CLASSIFIER, "model"))["sha256"] != \
        champion["version"]
    assert result.success  # a rejection is a decision, not a failed run
    outcomes = check_outcomes(result)
    assert outcomes[("deployment/delay_classifier_manifest", "champion")] is False
    assert manifests.current(featured, "delay_classifier") == champion
    decisions = [h["status"] for h in manifests.history(featured, "delay_classifier")]
    assert decisions == ["promoted", "rejected"]
    rejected = manifests.history(featured, "delay_classifier")[-1]
    assert rejected["previous_champion"] == champion["version"]
    assert any(reason.startswith("champion") for reason in rejected["reasons"])
    # decided with statistics, on the challenger's test window scored by both models
    compared = rejected["champion_comparison"]
    margin = CLASSIFIER.gates.champion_tolerance
    assert (compared["method"], compared["metric"], compared["confidence"]) == ("delong", "auc",
                                                                                 0.95)
    assert compared["n"] == datasets.splits["test"].rows and compared["enough_rows"]
    assert compared["margin"] == margin and not compared["promote"]
    assert compared["lower"] < compared["difference"] < compared["upper"]
    assert compared["lower"] < -margin and 0 < compared["width"] < 0.2
    assert compared["champion"] == pytest.approx(rejected["champion_primary"])
    assert compared["challenger"] == pytest.approx(rejected["metrics"]["primary"])
    gate = next(g for g in rejected["gates"] if g["name"] == "champion")
    assert (gate["value"], gate["threshold"]) == (compared["lower"], -margin)
    evaluated = materialization(result, key("models", CLASSIFIER, "evaluation"))
    assert evaluated["champion_lower_bound"] == compared["lower"]
    assert evaluated["champion_decision"] == "keep the champion"


def test_a_training_set_replaced_after_training_is_refused(featured, instance):
    assert steps(featured, CLASSIFIER, *CHAIN, instance=instance).success
    history = manifests.history(featured, "delay_classifier")
    # a new training set (a day later start), the model not trained again
    later = dataclasses.replace(
        CLASSIFIER, train=(date(2013, 1, 2), date(2013, 1, 15)),
        gates=dataclasses.replace(CLASSIFIER.gates, champion_tolerance=1.0),
    )
    assert steps(featured, later, "training_set", instance=instance).success
    evaluated = steps(featured, CLASSIFIER, "evaluation", instance=instance)
    assert not evaluated.success
    error = step_error(evaluated, "models__delay_classifier_evaluation")
    assert "the training set changed after model" in error and "train it again" in error
    decided = steps(featured, CLASSIFIER, "manifest", instance=instance)
    assert not decided.success
    assert "train it again" in step_error(decided, "deployment__delay_classifier_manifest")
    assert manifests.history(featured, "delay_classifier") == history  # nothing decided
    # trained again on it, the chain goes through (a loose champion gate: not the point here)
    again = steps(featured, later, "model", "evaluation", "manifest", instance=instance)
    assert again.success
    retrained = materialization(again, key("models", later, "model"))["sha256"]
    assert manifests.current(featured, "delay_classifier")["version"] == retrained


def test_a_step_reads_only_a_recorded_and_intact_handoff(featured, instance):
    result = steps(featured, CLASSIFIER, "model", instance=instance)
    assert not result.success
    error = step_error(result, "models__delay_classifier_model")
    assert "materialize models/delay_classifier_training_set first" in error
    built = steps(featured, CLASSIFIER, "training_set", instance=instance)
    assert built.success
    path = Path(materialization(built, key("models", CLASSIFIER, "training_set"))["handoff_path"])
    path.write_text(path.read_text().replace('"rows": ', '"rows": 1', 1))  # tampered
    result = steps(featured, CLASSIFIER, "model", instance=instance)
    assert not result.success
    assert "failed its integrity check" in step_error(result, "models__delay_classifier_model")


def test_the_event_log_records_each_handoff_of_a_retraining(featured, instance):
    """A retraining run as the sensor requests it: each step's hand-off is on its
    materialization, and each step read exactly the materialization before it."""
    spec = specs.DELAY_CLASSIFIER
    settings = Settings(home=str(featured), lock_timeout_s=10, search_budget=1,
                        rolling_days="14,7,6")
    request = retrain_request(spec, date(2013, 1, 27), "test", {})
    job = build_defs(settings).resolve_job_def(f"retrain_{spec.name}")
    result = job.execute_in_process(instance=instance, run_config=request.run_config,
                                    tags=request.tags, raise_on_error=False)
    keys = {step: key("models", spec, step) for step in CHAIN[:3]}
    recorded = {step: materialization(result, k) for step, k in keys.items()}
    handoffs = {}
    for step, meta in recorded.items():
        sha = meta[HANDOFF_SHA256]
        path = Path(meta["handoff_path"])
        assert path == artifacts.handoff_path(featured, keys[step].path, sha)
        assert hashlib.sha256(path.read_bytes()).hexdigest() == sha  # content-addressed
        handoffs[step] = load_handoff(featured, keys[step], sha)
    model_sha = recorded["model"]["sha256"]
    assert isinstance(handoffs["model"], ModelRef) and handoffs["model"].sha256 == model_sha
    assert handoffs["model"].datasets == {
        n: recorded["training_set"][f"{n}_sha256"] for n in ("train", "valid", "test")
    }
    assert handoffs["training_set"].as_of == "2013-01-27"
    assert handoffs["evaluation"].model_sha256 == model_sha
    # each input was loaded from exactly the upstream materialization of this run
    loads = {(e.step_key, e.event_specific_data.input_name):
             {n: m.value for n, m in e.event_specific_data.metadata.items()}
             for e in result.all_events if e.event_type == dg.DagsterEventType.LOADED_INPUT}
    steps_read = {
        ("models__delay_classifier_model", "training_set"): "training_set",
        ("models__delay_classifier_evaluation", "training_set"): "training_set",
        ("models__delay_classifier_evaluation", "model"): "model",
        ("deployment__delay_classifier_manifest", "training_set"): "training_set",
        ("deployment__delay_classifier_manifest", "model"): "model",
        ("deployment__delay_classifier_manifest", "evaluation"): "evaluation",
    }
    assert set(loads) == set(steps_read)
    for load, step in steps_read.items():
        assert loads[load][HANDOFF_SHA256] == recorded[step][HANDOFF_SHA256], load
        assert loads[load]["run_id"] == result.run_id
    decision = manifests.history(featured, spec.name)[-1]  # promoted or rejected, recorded
    assert decision["version"] == model_sha
    assert decision["lineage"]["datasets"] == handoffs["model"].datasets


def test_rollback_restores_the_previous_champion(deployed, monkeypatch, capsys):
    from unified_assets import cli

    featured = deployed  # the first champion is promoted there
    first = manifests.current(featured, "delay_classifier")["version"]
    # a second, different model that the gate lets through
    other = dataclasses.replace(
        CLASSIFIER,
        params=CLASSIFIER.params | {"bagging_fraction": 0.6},  # outside the search space
        gates=dataclasses.replace(CLASSIFIER.gates, champion_tolerance=1.0),
    )
    assert train_and_deploy(featured, other).success
    second = manifests.current(featured, "delay_classifier")["version"]
    assert second != first
    monkeypatch.setenv("UNIFIED_ASSETS_HOME", str(featured))
    assert cli.main(["rollback", "delay_classifier", "--reason", "test"]) == 0
    assert "restored" in capsys.readouterr().out
    current = manifests.current(featured, "delay_classifier")
    assert current["version"] == first and current["rolled_back_from"] == second
    assert [h["status"] for h in manifests.history(featured, "delay_classifier")][-1] == \
        "rolled_back"
    assert cli.main(["rollback", "no_such_model"]) == 1


def test_a_tampered_artifact_is_refused_at_scoring(deployed):
    featured = deployed  # the small classifier is the champion there
    sha = manifests.current(featured, "delay_classifier")["version"]
    model_file = featured / "artifacts" / "models" / f"{sha}.txt"
    model_file.write_text(model_file.read_text().replace("tree", "tree ", 1))
    result = serve(featured, CLASSIFIER)
    assert not result.success
    error = str(next(e for e in result.all_events if e.is_step_failure).event_specific_data.error)
    assert "sha256" in error and sha in error
    tables = query(featured, "SELECT table_name FROM information_schema.tables WHERE "
                   "table_schema = 'serving'")
    assert tables == []


def test_a_planted_leak_is_caught_and_nothing_is_deployed(featured, monkeypatch):
    real = flight_table.build_flight_features

    def leaky(conn, start, end, lead):
        rows = real(conn, start, end, lead)
        plant_leak(conn)
        return rows

    monkeypatch.setattr(flight_table, "build_flight_features", leaky)
    monkeypatch.setitem(catalog.REGISTRY, "leaky_arrival_delay", planted_leak_feature())
    spec = dataclasses.replace(CLASSIFIER,
                               features=(*CLASSIFIER.features, "leaky_arrival_delay"))
    chain = build_model_assets(spec)
    flight_features = dg.AssetKey(["features", "flight_features"])
    result = run(featured, data_and_feature_assets() + chain,
                 selection=[flight_features], start="2013-01-01", end=END)
    assert not result.success
    assert check_outcomes(result)[("features/flight_features", "leakage")] is False
    leak = next(e for e in result.get_asset_check_evaluations() if e.check_name == "leakage")
    assert leak.metadata["leaking"].value["leaky_arrival_delay"] > 1000
    # the write was rolled back: the table has no leaky column, and no model is deployed
    columns = {c for (c,) in query(featured, "SELECT column_name FROM information_schema.columns "
                                   "WHERE table_name = 'flight_features'")}
    assert "leaky_arrival_delay" not in columns
    assert manifests.current(featured, "delay_classifier") is None


def test_all_three_shipped_specs_build_and_a_fourth_takes_only_its_spec(featured):
    for spec in (small(specs.ARRIVAL_DELAY_REGRESSOR), small(specs.DEPARTURES_FORECASTER)):
        result = train_and_deploy(featured, spec)
        assert result.success, spec.name
        current = manifests.current(featured, spec.name)
        assert current["metrics"]["test"]["baseline_mae"] > 0
    fourth = small(specs.DELAY_CLASSIFIER, name="cancellation_classifier", label="is_cancelled",
                   description="Will the flight be cancelled?",
                   gates=Gates(0.5, 0.05, 0.0, 1.0, True))
    result = train_and_deploy(featured, fourth)
    assert {a.to_user_string() for a in materialized_keys(result)} >= {
        "models/cancellation_classifier_model",
        "deployment/cancellation_classifier_manifest",
    }
    assert manifests.history(featured, "cancellation_classifier")
    # Planes are unknown mostly for cancelled flights: their missing values tell the label.
    (leak,) = [e for e in result.get_asset_check_evaluations()
               if e.check_name == "missingness_leak"]
    assert not leak.passed and leak.severity == dg.AssetCheckSeverity.WARN
    named = leak.metadata["features"].value.split(", ")
    assert {"seats", "plane_age_years"} <= set(named), named


def materialized_keys(result):
    return {e.event_specific_data.materialization.asset_key
            for e in result.get_asset_materialization_events()}


def test_manifest_is_valid_json_on_disk(deployed):
    path = manifests.current_path(deployed, "delay_classifier")
    document = json.loads(path.read_text())
    assert document["model"] == "delay_classifier" and document["features"]["names"]
    assert not list(path.parent.glob("*.tmp*"))  # written atomically, nothing left half-done


def test_a_rejected_model_does_not_stop_the_shared_steps(featured):
    """A fourth model whose first challenger the gates reject: the run succeeds, the decision is
    recorded, its days are marked not scored, and the scorecard is built in the same run."""
    fourth = small(specs.DELAY_CLASSIFIER, name="cancellation_classifier", label="is_cancelled",
                   gates=dataclasses.replace(CLASSIFIER.gates, metric_floor=0.999))
    chain = build_model_assets(fourth)
    scorecard = dg.AssetKey(["monitoring", "kpi_scorecard"])
    selection = [*(a.key for a in chain), scorecard]
    result = run(featured, data_and_feature_assets() + all_assets_but_models() + chain,
                 selection=selection, start="2013-01-27", end="2013-01-28")
    assert result.success
    assert check_outcomes(result)[("deployment/cancellation_classifier_manifest",
                                   "metric_floor")] is False
    assert [h["status"] for h in manifests.history(featured, fourth.name)] == ["rejected"]
    assert manifests.current(featured, fourth.name) is None
    done = {a.to_user_string() for a in materialized_keys(result)}
    assert {"serving/cancellation_classifier_predictions", "monitoring/kpi_scorecard"} <= done
    predictions = materialization(result, key("serving", fourth, "predictions"))
    assert predictions["promoted"] == "none" and predictions["dagster/row_count"] == 0


def all_assets_but_models():
    """The code location's assets outside the model chains (the scorecard among them)."""
    from unified_assets.definitions import defs

    return [a for a in defs.assets if isinstance(a, dg.AssetsDefinition)
            and next(iter(a.keys)).path[0] in ("monitoring", "serving")
            and next(iter(a.keys)).path[-1] in ("kpi_scorecard", "online_store")]
