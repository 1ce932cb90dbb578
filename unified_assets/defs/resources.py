"""The platform's resources, declared once: its warehouse, its compute, and the IO manager
that carries a model's hand-offs from step to step, each over the one `Settings`
(`defs/settings.py`), where configuration lives.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from pathlib import Path

import dagster as dg
import duckdb

from unified_assets.defs.settings import Settings
from unified_assets.lib.core import artifacts, cluster, database
from unified_assets.lib.deployment import manifests
from unified_assets.lib.models import dask_steps, handoffs, training
from unified_assets.lib.models.specs import ModelSpec, Rolling


class WarehouseResource(dg.ConfigurableResource):
    """The DuckDB warehouse in the home folder: every read and write of the platform goes here."""

    settings: Settings

    @property
    def home_path(self) -> Path:
        return self.settings.home_path

    @property
    def database(self) -> Path:
        return self.settings.warehouse_path

    @contextmanager
    def connect(
        self, read_only: bool = False, timeout_s: float | None = None
    ) -> Iterator[duckdb.DuckDBPyConnection]:
        """A connection to the warehouse, waiting (bounded) while another process writes.
        Sensors pass a short `timeout_s`: a busy warehouse means "try again next tick"."""
        conn = database.connect(
            self.database, read_only=read_only,
            timeout_s=timeout_s or self.settings.lock_timeout_s,
        )
        try:
            if not read_only:
                database.ensure_schemas(conn)
            yield conn
        finally:
            conn.close()


class ComputeResource(dg.ConfigurableResource):
    """Where the heavy model steps run: in the run's process, or on the settings' Dask cluster
    (`dask_cluster`). The model, evaluation and predictions steps ask it; none decides alone."""

    settings: Settings

    @property
    def cluster(self) -> str:
        return self.settings.value("dask_cluster")

    def on_cluster(self, spec: ModelSpec, rows: int) -> bool:
        """Whether `rows` rows of the spec are trained or scored on the cluster: one is
        configured and they reach the spec's distributed threshold (0: never)."""
        threshold = self.distributed_rows(spec)
        return bool(self.cluster) and bool(threshold) and rows >= threshold

    def distributed_rows(self, spec: ModelSpec) -> int:
        return dask_steps.training_rows(spec, self.settings.value("dask_training_rows"))

    @contextmanager
    def client(self):
        """A client of the cluster; one that cannot be reached, or a worker lost mid-task,
        fails the step before anything is saved."""
        try:
            with cluster.connect(self.cluster) as client:
                yield client
        except (cluster.ClusterUnreachable, cluster.DistributedTrainingFailed) as exc:
            raise dg.Failure(str(exc)) from exc

    def train(self, log, spec: ModelSpec, training_set: handoffs.TrainingSet,
              run_budget: int = 0) -> tuple[dict, training.Trained, float, dict | None]:
        """The model trained on its training set: the search, then the best trial's model.
        Returns the frames the rest of the step reads, the model, its seconds, and what ran
        where on a cluster (None in this process). On a cluster the search runs as tasks and
        lightgbm.dask trains above the spec's row threshold; the training rows come back as a
        sample there, since no process here holds them all."""
        budget = self.settings.budget(spec, run_budget)
        splits = training_set.splits
        end = date.fromisoformat(splits["train"].window[1])
        if not self.cluster:
            frames = training_set.read("train", "valid")
            started = time.perf_counter()
            weights = Rolling(half_life_days=training_set.half_life_days).weights(
                frames["train"][spec.date_column], end)
            trained = training.train(spec, frames["train"], frames["valid"], budget=budget,
                                     weights=weights)
            return frames, trained, time.perf_counter() - started, None
        started = time.perf_counter()
        with self.client() as client:
            trained, where = dask_steps.train(
                client, spec, splits["train"], splits["valid"], budget=budget,
                half_life_days=training_set.half_life_days, end=end,
                min_rows=self.distributed_rows(spec),
            )
        seconds = time.perf_counter() - started
        log.info(f"{spec.name}: trained on the Dask cluster ({where})")
        frames = {"train": cluster.read_sample(splits["train"].path, dask_steps.SEARCH_ROWS),
                  "valid": splits["valid"].read()}
        return frames, trained, seconds, where


# -- hand-offs between a model's steps --------------------------------------------------------
# A step returns its record (lib/models/handoffs.py); the IO manager stores it in the
# content-addressed artifact store (`artifacts/handoffs/<asset key path>/<sha256>.json`, never
# rewritten) and records its sha256 and path on the asset's materialization. A downstream step
# gets exactly the record the upstream asset's latest materialization names, verified by
# sha256, and the load is recorded on its LOADED_INPUT event.
HANDOFF_IO_MANAGER = "handoff_io_manager"
HANDOFF_SHA256 = "handoff_sha256"
HANDOFF_PATH = "handoff_path"


class HandoffIOManager(dg.ConfigurableIOManager):
    """Hand-offs between a model's steps, content-addressed under the home folder."""

    settings: Settings

    def handle_output(self, context: dg.OutputContext, obj: handoffs.Handoff) -> None:
        path, sha = artifacts.save_handoff(self.settings.home_path, context.asset_key.path,
                                           handoffs.as_json(obj))
        context.add_output_metadata({HANDOFF_SHA256: sha,
                                     HANDOFF_PATH: dg.MetadataValue.path(str(path))})

    def load_input(self, context: dg.InputContext) -> handoffs.Handoff:
        upstream = context.asset_key
        sha, origin = latest_handoff(context.instance, upstream)
        record = load_handoff(self.settings.home_path, upstream, sha)
        context.add_input_metadata({HANDOFF_SHA256: sha} | origin)
        return record


def load_handoff(home: Path, asset_key: dg.AssetKey, sha256: str) -> handoffs.Handoff:
    """A stored hand-off as its typed record (the kind follows the asset: `<model>_<step>`)."""
    kinds = [kind for step, kind in handoffs.HANDOFFS.items()
             if asset_key.path[-1].endswith(f"_{step}")]
    if len(kinds) != 1:
        raise dg.Failure(f"{asset_key.to_user_string()} hands off no known record")
    return handoffs.from_json(kinds[0], artifacts.load_handoff(home, asset_key.path, sha256))


def latest_handoff(instance: dg.DagsterInstance, asset_key: dg.AssetKey) -> tuple[str, dict]:
    """The hand-off sha256 the asset's latest materialization recorded, and where it came
    from (run id and event storage id); a clear error when there is none."""
    name = asset_key.to_user_string()
    records = instance.fetch_materializations(asset_key, limit=1).records
    if not records:
        raise dg.Failure(f"{name} has never been materialized on this instance: "
                         f"materialize {name} first")
    record = records[0]
    entry = record.asset_materialization.metadata.get(HANDOFF_SHA256)
    if entry is None:
        raise dg.Failure(f"the latest materialization of {name} (run {record.run_id}) records "
                         f"no hand-off: materialize {name} again")
    return entry.value, {"run_id": record.run_id, "storage_id": record.storage_id}


def load_latest(instance: dg.DagsterInstance, home: Path,
                asset_key: dg.AssetKey) -> handoffs.Handoff:
    """The hand-off of the asset's latest materialization, as a downstream step receives it."""
    sha, _ = latest_handoff(instance, asset_key)
    return load_handoff(home, asset_key, sha)


def same_candidate(spec: ModelSpec, training_set: handoffs.TrainingSet, model: handoffs.ModelRef,
                   evaluation: handoffs.Evaluation | None = None) -> None:
    """Refuse a model whose training set was replaced after it was trained (the model would
    not be the one those datasets describe), and an evaluation of another model."""
    try:
        manifests.check_same_candidate(spec.name, training_set, model, evaluation)
    except manifests.StaleHandoff as exc:
        raise dg.Failure(str(exc)) from exc


def build_resources(
    settings: Settings,
) -> dict[str, dg.ConfigurableResource | dg.ConfigurableIOManager]:
    """The code location's resources over one `Settings`, and the IO manager that carries a
    model's hand-offs from step to step (keyed, not the default `io_manager`)."""
    return {"settings": settings, "warehouse": WarehouseResource(settings=settings),
            "compute": ComputeResource(settings=settings),
            HANDOFF_IO_MANAGER: HandoffIOManager(settings=settings)}
