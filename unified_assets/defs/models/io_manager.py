"""How a model's steps hand their results to the next: through Dagster, so the event log and
the lineage graph show what each step read.

A step returns its hand-off (a JSON document); `HandoffIOManager` stores it in the
content-addressed artifact store (`artifacts/handoffs/<asset key path>/<sha256>.json`, never
rewritten) and records its sha256 and path on the asset's materialization. A downstream step
gets exactly the document the upstream asset's latest materialization names, verified by
sha256, and the load is recorded on its LOADED_INPUT event (and as an observation of the
upstream asset).
"""

from pathlib import Path

import dagster as dg

from unified_assets.defs.resources import Settings
from unified_assets.lib.core import artifacts

HANDOFF_IO_MANAGER = "handoff_io_manager"
SHA256 = "handoff_sha256"
PATH = "handoff_path"


class HandoffIOManager(dg.ConfigurableIOManager):
    """Hand-offs between a model's steps, content-addressed under the home folder."""

    settings: Settings

    def handle_output(self, context: dg.OutputContext, obj: dict) -> None:
        path, sha = artifacts.save_handoff(self.settings.home_path, context.asset_key.path, obj)
        context.add_output_metadata({SHA256: sha, PATH: dg.MetadataValue.path(str(path))})

    def load_input(self, context: dg.InputContext) -> dict:
        upstream = context.asset_key
        sha, origin = latest_handoff(context.instance, upstream)
        value = artifacts.load_handoff(self.settings.home_path, upstream.path, sha)
        context.add_input_metadata({SHA256: sha} | origin)
        return value


def latest_handoff(instance: dg.DagsterInstance, asset_key: dg.AssetKey) -> tuple[str, dict]:
    """The hand-off sha256 the asset's latest materialization recorded, and where it came
    from (run id and event storage id); a clear error when there is none."""
    name = asset_key.to_user_string()
    records = instance.fetch_materializations(asset_key, limit=1).records
    if not records:
        raise dg.Failure(f"{name} has never been materialized on this instance: "
                         f"materialize {name} first")  # fmt: skip
    record = records[0]
    entry = record.asset_materialization.metadata.get(SHA256)
    if entry is None:
        raise dg.Failure(f"the latest materialization of {name} (run {record.run_id}) records "
                         f"no hand-off: materialize {name} again")  # fmt: skip
    return entry.value, {"run_id": record.run_id, "storage_id": record.storage_id}


def load_latest(instance: dg.DagsterInstance, home: Path, asset_key: dg.AssetKey) -> dict:
    """The hand-off of the asset's latest materialization, as a downstream step receives it."""
    sha, _ = latest_handoff(instance, asset_key)
    return artifacts.load_handoff(home, asset_key.path, sha)
