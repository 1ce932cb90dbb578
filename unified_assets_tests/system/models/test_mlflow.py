"""MLflow through the real steps, against a real SQLite tracking store and registry: each
training a run with its model registered; `champion` on the promoted version, moved by a
promotion and by `unified-assets rollback`; the model loaded by `models:/<name>@champion`
scores exactly as the platform's artifact; a tracking server that does not answer changes no
deployment."""

from __future__ import annotations

import numpy as np
import pandas as pd

from unified_assets import cli
from unified_assets.defs.jobs import key
from unified_assets.lib.core import artifacts
from unified_assets.lib.deployment import manifests
from unified_assets.lib.models import tracking, training
from unified_assets_tests.support.receivers import free_port
from unified_assets_tests.support.runs import train_and_deploy
from unified_assets_tests.support.train_small import spec as small_spec

MODEL = "delay_classifier"


def metadata(result, step: str) -> dict:
    asset_key = key("models" if step != "manifest" else "deployment", small_spec("champion"),
                    step)
    event = next(e.event_specific_data.materialization
                 for e in result.get_asset_materialization_events()
                 if e.event_specific_data.materialization.asset_key == asset_key)
    return {name: entry.value for name, entry in event.metadata.items()}


def test_promotions_and_rollbacks_move_the_champion_alias(featured, tmp_path, monkeypatch):
    import mlflow

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    first = train_and_deploy(featured, small_spec("champion"), mlflow_tracking_uri=uri)
    assert first.success
    champion = manifests.current(featured, MODEL)["version"]
    trained = metadata(first, "model")
    assert "mlflow_warning" not in trained, trained.get("mlflow_warning")
    assert trained["mlflow_version"] == "1"
    assert metadata(first, "manifest")["mlflow_version"] == "1"

    mlflow.set_tracking_uri(uri)
    client = mlflow.MlflowClient()
    version = client.get_model_version_by_alias(MODEL, tracking.CHAMPION)
    assert str(version.version) == "1" and version.tags[tracking.SHA_TAG] == champion
    run = client.get_run(trained["mlflow_run_id"])
    assert run.data.tags[tracking.RUN_TAG] == first.run_id
    assert run.data.tags[tracking.AS_OF_TAG] == "fixed"
    assert run.data.tags[tracking.SHA_TAG] == champion
    assert {"learning_rate", "num_leaves", "best_iteration"} <= set(run.data.params)
    assert {"valid_score", "training_seconds", "test_auc"} <= set(run.data.metrics)
    (dataset,) = run.inputs.dataset_inputs
    training_set = artifacts.load_metadata(featured, champion)["datasets"]["train"]
    assert dataset.dataset.digest == training_set[:tracking.DIGEST_CHARS]
    assert {t.key: t.value for t in dataset.tags}[tracking.SHA_TAG] == training_set
    # the registered model is the platform's, to the last digit, on the real test rows
    loaded = mlflow.lightgbm.load_model(f"models:/{MODEL}@{tracking.CHAMPION}")
    spec = small_spec("champion")
    test_sha = artifacts.load_metadata(featured, champion)["datasets"]["test"]
    (snapshot,) = (artifacts.artifacts_root(featured) / artifacts.DATASETS).glob(
        f"*-{test_sha}.parquet")
    test = pd.read_parquet(snapshot)
    platform = training.predict(artifacts.load_model(featured, champion), spec, test)
    assert len(test) > 1000
    assert np.array_equal(loaded.predict(training.matrix(spec, test)), platform)

    # a challenger promoted: the alias follows
    assert train_and_deploy(featured, small_spec("challenger"), mlflow_tracking_uri=uri).success
    challenger = manifests.current(featured, MODEL)["version"]
    assert challenger != champion
    assert client.get_model_version_by_alias(MODEL, tracking.CHAMPION).tags[
        tracking.SHA_TAG] == challenger
    # a rollback from the command line moves it back
    monkeypatch.setenv("UNIFIED_ASSETS_HOME", str(featured))
    monkeypatch.setenv("UNIFIED_ASSETS_MLFLOW_TRACKING_URI", uri)
    assert cli.main(["rollback", MODEL, "--reason", "test"]) == 0
    back = client.get_model_version_by_alias(MODEL, tracking.CHAMPION)
    assert str(back.version) == "1" and back.tags[tracking.SHA_TAG] == champion
    # a retried step registers nothing twice: the same run and version
    again = tracking.log_training(
        tracking.Tracking(uri), model=MODEL, sha256=champion,
        model_text=artifacts.load_model_text(featured, champion), params={}, metrics={},
        tags={tracking.RUN_TAG: first.run_id}, train=pd.DataFrame(),
        train_sha256=training_set, train_path="")
    assert again == tracking.Logged(trained["mlflow_run_id"], "1")
    assert len(client.search_model_versions(f"name = '{MODEL}'")) == 2


def test_a_tracking_server_that_does_not_answer_changes_no_deployment(featured):
    uri = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    result = train_and_deploy(featured, small_spec("champion"), mlflow_tracking_uri=uri)
    assert result.success
    current = manifests.current(featured, MODEL)
    assert current["status"] == "promoted"
    for step in ("model", "evaluation", "manifest"):
        told = metadata(result, step)
        assert "the platform's own records stand" in told["mlflow_warning"], step
        assert uri in told["mlflow_warning"], step
        assert "mlflow_version" not in told
