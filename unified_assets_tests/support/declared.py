"""Run in a subprocess over a copy of the package to which a test added a source declaration
and a lookup feature declaration (system/features/test_declarations.py): builds the graph with
them over a home and prints, as JSON, what a user would look at. Usage: declared.py HOME."""

from __future__ import annotations

import json
import sys
import warnings
from datetime import datetime
from pathlib import Path

warnings.simplefilter("ignore")

import dagster as dg  # noqa: E402

import unified_assets  # noqa: E402
from unified_assets.definitions import defs  # noqa: E402
from unified_assets.lib.core import config, database  # noqa: E402
from unified_assets.lib.features import catalog  # noqa: E402
from unified_assets.lib.serving import online_export, online_store  # noqa: E402
from unified_assets_tests.support.runs import resources_for, tick  # noqa: E402

home = Path(sys.argv[1])
graph = defs.resolve_asset_graph()
new = [dg.AssetKey(["raw", "holidays"]), dg.AssetKey(["warehouse", "dim_holiday"])]
checks = sorted(f"{k.asset_key.to_user_string()}:{k.name}" for k in graph.asset_check_keys
                if k.asset_key in new)
deps = sorted(k.to_user_string()
              for k in graph.get(dg.AssetKey(["features", "flight_features"])).parent_keys)
selection = dg.AssetSelection.assets(*new, ["features", "flight_features"])
with dg.DagsterInstance.ephemeral() as instance:
    requests, _, _ = tick(defs, "landing_sensor", home, instance)  # before it is ingested
    result = dg.materialize(
        list(defs.assets), selection=selection, resources=resources_for(home), instance=instance,
        tags={"dagster/asset_partition_range_start": "2013-01-01",
              "dagster/asset_partition_range_end": "2013-01-03"}, raise_on_error=False)
conn = database.connect(config.warehouse_path(home), read_only=True)
batch = conn.execute(
    "SELECT flight_date, carrier, flight, origin, dest, tailnum, sched_dep_ts, is_holiday "
    "FROM features.flight_features ORDER BY ALL").fetchall()
pointer = online_export.stage(conn, home)
conn.close()
store = online_store.load(home, pointer)
requests_online = [online_store.FlightRequest(c, f, o, d, s, t)
                   for _, c, f, o, d, t, s, _ in batch[::50]]
online = [r.values["is_holiday"]
          for r in online_store.flight_features(store, requests_online, 120)]
names = [f.name for f in catalog.features_of("features.flight_features")]
sys.stdout.write(json.dumps({
    "package": unified_assets.__file__,
    "success": result.success,
    "checks": checks,
    "flight_features_deps": deps,
    "registered": "is_holiday" in catalog.REGISTRY,
    "batch_by_day": {str(d): sorted({h for day, *_, h in batch if day == d})
                     for d in sorted({r[0] for r in batch})},
    "online": online,
    "batch_sampled": [r[-1] for r in batch[::50]],
    "uncovered": online_store.uncovered(store, [*names, "computed_nowhere"], 120),
    "sensor_files": [r.tags.get("unified_assets/files") for r in requests],
    "at": datetime.now().isoformat(),
}) + "\n")
