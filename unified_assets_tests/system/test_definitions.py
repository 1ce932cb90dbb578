"""The code location's definitions, loaded and read without running anything: the layers, the
checks each layer carries, the policies every asset shares."""

import dagster as dg


def test_definitions_follow_the_layers():
    from unified_assets.definitions import defs

    graph = defs.resolve_asset_graph()
    groups = {graph.get(k).group_name for k in graph.get_all_asset_keys()}
    assert groups == {"raw", "warehouse", "marts", "features", "models", "deployment", "serving",
                      "monitoring"}
    landing = {k for k in graph.get_all_asset_keys() if not graph.get(k).is_executable}
    # the graph starts at the landing files (external assets, written by upstream systems)
    assert {k.to_user_string() for k in landing} == {
        "landing/flights", "landing/weather", "landing/reference"}
    assert graph.get(dg.AssetKey(["raw", "flights"])).parent_keys == {
        dg.AssetKey(["landing", "flights"])}
    for key in graph.get_all_asset_keys() - landing:
        node = graph.get(key)
        assert key.path[0] == node.group_name  # key prefix = group = DuckDB schema
        checks = {c.name for c in graph.asset_check_keys if c.asset_key == key}
        assert node.backfill_policy == dg.BackfillPolicy.single_run()
        if node.group_name in ("raw", "warehouse", "marts"):
            assert {"schema", "quality"} <= checks
            assert graph.get_check_spec(dg.AssetCheckKey(key, "schema")).blocking
    fact = dg.AssetKey(["warehouse", "fct_flights"])
    assert {"conservation", "quarantine_share", "referential_integrity"} <= {
        c.name for c in graph.asset_check_keys if c.asset_key == fact
    }


def test_every_asset_on_the_warehouse_is_in_the_duckdb_pool():
    from unified_assets.definitions import defs

    outside = []
    for asset in defs.assets:
        if not isinstance(asset, dg.AssetsDefinition):
            continue
        kinds = set().union(*(spec.kinds for spec in asset.specs))
        if "duckdb" in kinds and asset.op.pool != "duckdb":
            outside.append(asset.key.to_user_string())
    for check in defs.asset_checks or []:
        if "warehouse" in check.required_resource_keys and check.op.pool != "duckdb":
            outside.append(str(check.check_keys))
    assert not outside
