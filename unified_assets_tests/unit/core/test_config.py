"""The home folder's layout (lib/core/config.py)."""

import duckdb
import pytest

from unified_assets.lib.core import config, database


def test_a_home_with_the_old_file_name_gets_it_moved_once(tmp_path, caplog):
    old = tmp_path / "warehouse.duckdb"
    conn = duckdb.connect(str(old))
    conn.execute("CREATE SCHEMA warehouse")
    with pytest.raises(duckdb.BinderException, match="Ambiguous reference"):  # the old clash
        conn.execute("CREATE TABLE warehouse.fct_flights AS SELECT 1 AS x")
    conn.execute("CREATE TABLE warehouse.warehouse.fct_flights AS SELECT 1 AS x")
    conn.close()
    path = config.warehouse_path(tmp_path)
    assert path == tmp_path / "unified_assets.duckdb" and path.exists() and not old.exists()
    assert "moved the warehouse" in caplog.text
    # the schema `warehouse` is no longer ambiguous with the file's catalog
    conn = duckdb.connect(str(path), read_only=True)
    assert conn.execute("select count(*) from warehouse.fct_flights").fetchone()[0] == 1
    conn.close()
    conn = database.connect(path, read_only=True)
    assert conn.execute("select count(*) from warehouse.fct_flights").fetchone()[0] == 1
    conn.close()
