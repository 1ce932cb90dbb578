"""MLflow, for teams that already look at their models there (optional: `pip install .[mlflow]`).

Each training is an MLflow run (parameters, metrics, the Dagster run id, `as_of`, the artifact's
sha256, its training set as an input) whose LightGBM model is registered under the model's name;
the `champion` alias follows the platform's promotions and rollbacks. The platform's manifest
stays the source of truth: MLflow is told what happened, never asked what to serve, and a
tracking server that is down costs a warning, never a deployment. With no tracking URI set,
mlflow is never imported.
"""

from __future__ import annotations

import io
import logging
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager, redirect_stderr
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the frames come from the caller; reading the settings loads no pandas
    import pandas as pd


EXPERIMENT = "unified_assets"
CHAMPION = "champion"
SHA_TAG = "sha256"  # on a run and on a registered version: the platform's artifact
RUN_TAG = "dagster_run_id"
AS_OF_TAG = "as_of"
DIGEST_CHARS = 36


@dataclass(frozen=True)
class Tracking:
    """Where MLflow is: a tracking URI (`sqlite:///...`, `http://...`); empty means off."""

    uri: str = ""

    @property
    def enabled(self) -> bool:
        return bool(self.uri.strip())


@dataclass(frozen=True)
class Logged:
    """What MLflow holds of one model after a step: its run and its registered version."""

    run_id: str
    version: str

    def metadata(self) -> dict:
        return {"mlflow_run_id": self.run_id, "mlflow_version": self.version}


def attempt(tracking: Tracking, what: str, call: Callable[[], Logged | None]) -> dict:
    """`call` when tracking is on, as a step's metadata: the run and version it left, or
    `mlflow_warning` on any failure (server down, a bad URI); nothing when tracking is off.
    Nothing is raised: MLflow never fails a step."""
    if not tracking.enabled:
        return {}
    try:
        logged = call()
    except Exception as exc:  # any MLflow failure is a warning, by design
        return {"mlflow_warning": f"MLflow ({what}) failed; the platform's own records stand: "
                                  f"{type(exc).__name__}: {str(exc)[:300]}"}
    return logged.metadata() if logged else {}


@contextmanager
def _client(tracking: Tracking) -> Iterator:
    import mlflow

    logging.getLogger("mlflow").setLevel(logging.WARNING)  # schema migrations, "created ..."
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # MLflow's own notices are not the user's business
        mlflow.set_tracking_uri(tracking.uri)
        yield mlflow, mlflow.MlflowClient()


def _experiment_id(mlflow, client, uri: str) -> str:
    found = client.get_experiment_by_name(EXPERIMENT)
    if found is not None:
        return found.experiment_id
    # A local SQLite store keeps its artifacts beside the database, not in the working folder.
    location = None
    if uri.startswith("sqlite:///"):
        location = (Path(uri.removeprefix("sqlite:///")).parent / "mlartifacts").as_uri()
    return client.create_experiment(EXPERIMENT, artifact_location=location)


def _version_of(client, name: str, sha256: str):
    found = client.search_model_versions(f"name = '{name}' and tags.{SHA_TAG} = '{sha256}'")
    return max(found, key=lambda v: int(v.version)) if found else None


def _register(mlflow, client, name: str, sha256: str, model_text: str, run_id: str) -> str:
    """The registered version of this sha256: the existing one (a retry, a second training of
    the same bytes), else the model logged in `run_id` and registered now."""
    existing = _version_of(client, name, sha256)
    if existing is not None:
        return str(existing.version)
    import lightgbm as lgb

    with mlflow.start_run(run_id=run_id):
        info = mlflow.lightgbm.log_model(
            lgb.Booster(model_str=model_text), name="model",
            pip_requirements=[f"lightgbm=={lgb.__version__}"],
        )
    with redirect_stderr(io.StringIO()):  # "Successfully registered model ...", printed
        version = mlflow.register_model(info.model_uri, name, tags={SHA_TAG: sha256})
    return str(version.version)


def _dataset(mlflow, model: str, train: pd.DataFrame, path: str, sha256: str):
    """The training set as MLflow's dataset: the platform's snapshot by path and sha256 (MLflow
    takes digests of at most 36 characters: its first 36), the schema read off a few rows.
    (`mlflow.data.from_pandas` would profile the whole frame: 8 s for 218,000 rows.)"""
    from mlflow.data.dataset_source_registry import resolve_dataset_source
    from mlflow.data.meta_dataset import MetaDataset
    from mlflow.models import infer_signature

    schema = infer_signature(train.head(100)).inputs if len(train.columns) else None
    return MetaDataset(resolve_dataset_source(path or "unknown"), name=f"{model}-train",
                       digest=sha256[:DIGEST_CHARS], schema=schema)


def log_training(tracking: Tracking, *, model: str, sha256: str, model_text: str,
                 params: dict, metrics: dict, tags: dict, train: pd.DataFrame,
                 train_sha256: str, train_path: str) -> Logged:
    """One training as a run, its model registered under `model` (once per sha256)."""
    with _client(tracking) as (mlflow, client):
        experiment = _experiment_id(mlflow, client, tracking.uri)
        prior = client.search_runs(
            [experiment], f"tags.{SHA_TAG} = '{sha256}' and tags.{RUN_TAG} = "
            f"'{tags.get(RUN_TAG, '')}'", max_results=1)
        if prior:  # the same step again (a retry): the run it logged already
            run_id = prior[0].info.run_id
        else:
            run = client.create_run(experiment, run_name=f"{model}-{sha256[:12]}",
                                    tags={SHA_TAG: sha256, "model": model} | tags)
            run_id = run.info.run_id
            with mlflow.start_run(run_id=run_id):
                mlflow.log_params({k: str(v)[:500] for k, v in params.items()})
                mlflow.log_metrics({k: float(v) for k, v in metrics.items() if v is not None})
                mlflow.log_input(_dataset(mlflow, model, train, train_path, train_sha256),
                                 context="training",
                                 tags={SHA_TAG: train_sha256, "rows": str(len(train))})
        version = _register(mlflow, client, model, sha256, model_text, run_id)
        return Logged(run_id, version)


def log_evaluation(tracking: Tracking, *, model: str, sha256: str, metrics: dict
                   ) -> Logged | None:
    """The test-window metrics, added to the run that trained `sha256` (None: no such run,
    as for a model trained while tracking was off)."""
    with _client(tracking) as (mlflow, client):
        experiment = _experiment_id(mlflow, client, tracking.uri)
        runs = client.search_runs([experiment], f"tags.{SHA_TAG} = '{sha256}'", max_results=1)
        if not runs:
            return None
        run_id = runs[0].info.run_id
        for name, value in metrics.items():
            client.log_metric(run_id, f"test_{name}", float(value))
        version = _version_of(client, model, sha256)
        return Logged(run_id, str(version.version) if version else "")


def set_champion(tracking: Tracking, *, model: str, sha256: str,
                 model_text: Callable[[], str]) -> Logged:
    """Move the `champion` alias to the version registered for `sha256`; a model trained
    while MLflow was off or down is registered first, in a run of its own."""
    with _client(tracking) as (mlflow, client):
        version = _version_of(client, model, sha256)
        if version is None:
            experiment = _experiment_id(mlflow, client, tracking.uri)
            run = client.create_run(experiment, run_name=f"{model}-{sha256[:12]}",
                                    tags={SHA_TAG: sha256, "model": model,
                                          "registered_at_promotion": "true"})
            number = _register(mlflow, client, model, sha256, model_text(), run.info.run_id)
            client.set_terminated(run.info.run_id)
            run_id = run.info.run_id
        else:
            number, run_id = str(version.version), version.run_id
        client.set_registered_model_alias(model, CHAMPION, number)
        return Logged(run_id, number)
