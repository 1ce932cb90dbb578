"""The one entry point of the code location: every layer's definitions plus the resources."""

from pathlib import Path

import dagster as dg

from unified_assets.defs.factory import all_model_assets, all_model_automation
from unified_assets.defs.resources import build_resources
from unified_assets.defs.settings import Settings


def build_defs(settings: Settings) -> dg.Definitions:
    """The whole graph over one `Settings` (the replay builds its own)."""
    # One process runs a run's steps: the warehouse is one DuckDB file with one writer at a
    # time, and a step in-process costs no re-import of the code.
    return dg.Definitions.merge(
        dg.load_from_defs_folder(path_within_project=Path(__file__).parent),
        dg.Definitions(assets=all_model_assets(), resources=build_resources(settings),
                       executor=dg.in_process_executor),
        all_model_automation(),
    )


defs = build_defs(Settings.from_env())
