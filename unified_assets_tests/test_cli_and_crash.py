"""The command line as CI uses it, and a write killed mid-transaction."""

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from unified_assets_tests.helpers import query, run, scalar

BIN = Path(sys.executable).parent


def sh(args: list[str], home: Path) -> subprocess.CompletedProcess:
    env = dict(os.environ, UNIFIED_ASSETS_HOME=str(home), DAGSTER_HOME=str(home / "dagster_home"))
    (home / "dagster_home").mkdir(parents=True, exist_ok=True)
    return subprocess.run(args, env=env, capture_output=True, text=True, timeout=600)


def materialize(home: Path, select: str, days: str) -> subprocess.CompletedProcess:
    return sh(
        [str(BIN / "dagster"), "asset", "materialize", "-m", "unified_assets.definitions",
         "--select", select, "--partition-range", days],
        home,
    )  # fmt: skip


def test_land_then_materialize_by_group_as_ci_does(tmp_path):
    home = tmp_path / "home"
    landed = sh([str(BIN / "unified-assets"), "land", "--through", "2013-01-02"], home)
    assert landed.returncode == 0, landed.stderr
    assert "landed 7 files" in landed.stdout
    again = sh([str(BIN / "unified-assets"), "land", "--through", "2013-01-02"], home)
    assert "landed 0 files" in again.stdout and "7 already there" in again.stdout
    for group in ("raw", "warehouse", "marts"):
        done = materialize(home, f"group:{group}", "2013-01-01...2013-01-02")
        assert done.returncode == 0, done.stderr[-3000:]
    assert scalar(home, "SELECT count(*) FROM marts.route_monthly") > 0
    status = sh([str(BIN / "unified-assets"), "status"], home)
    assert "warehouse.fct_flights" in status.stdout and "1785" in status.stdout
    assert "flights whose tailnum the dimension does not know" in status.stdout

    # a planted bad file: a blocking check fails and the command exits non-zero
    path = home / "landing" / "flights" / "2013-01-02.csv"
    header, *rows = path.read_text().splitlines()
    path.write_text("\n".join([header] + [r.replace(",EWR,", ",E W R,") for r in rows]) + "\n")
    failed = materialize(home, "*", "2013-01-01...2013-01-02")
    assert failed.returncode != 0
    assert "quarantine_share" in failed.stderr + failed.stdout


KILLER = textwrap.dedent(
    """
    import os, signal, sys
    from datetime import date, datetime
    from pathlib import Path
    from unified_assets.lib.raw import ingest
    from unified_assets.lib.raw import landing
    from unified_assets.lib.core import database

    home = Path(sys.argv[1])
    conn = database.connect(home / "unified_assets.duckdb")
    day = date(2013, 1, 2)
    file = ingest.inspect_file(landing.daily_file(home, "flights", day), home, conn)
    with database.transaction(conn):
        ingest.replace_daily(conn, "flights", [(file, day)] * 3, day, date(2013, 1, 3),
                             datetime(2030, 1, 1))
        print("written, not committed", flush=True)
        os.kill(os.getpid(), signal.SIGKILL)
    """
)


def test_a_process_killed_mid_write_leaves_the_previous_state(home):
    assert run(home).success
    before = query(home, "SELECT count(*), max(_ingested_at) FROM raw.flights")
    killed = subprocess.run(
        [sys.executable, "-c", KILLER, str(home)], capture_output=True, text=True, timeout=120
    )
    assert killed.returncode == -9 and "written, not committed" in killed.stdout
    assert query(home, "SELECT count(*), max(_ingested_at) FROM raw.flights") == before
    # and the next run proceeds normally
    assert run(home, "2013-01-02", "2013-01-02", selection=["raw/flights"]).success
    assert scalar(home, "SELECT count(*) FROM raw.flights") == before[0][0]


@pytest.mark.parametrize("bad", ["2013-13-01", "yesterday"])
def test_cli_rejects_bad_dates(tmp_path, bad):
    out = sh([str(BIN / "unified-assets"), "land", "--through", bad], tmp_path)
    assert out.returncode == 2 and "is not a date" in out.stderr


HOLDER = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from unified_assets.lib.core import database

    conn = database.connect(Path(sys.argv[1]))
    print("holding", flush=True)
    time.sleep(float(sys.argv[2]))
    conn.close()
    """
)


def test_a_writer_waits_for_the_lock_then_gives_a_clear_error(tmp_path):
    from unified_assets.lib.core import database

    db_file = tmp_path / "unified_assets.duckdb"
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(db_file), "4"], stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout.readline().strip() == "holding"
        wrote = r"could not open .*unified_assets\.duckdb \(write\)"
        with pytest.raises(RuntimeError, match=wrote):
            database.connect(db_file, timeout_s=0.5)
        conn = database.connect(db_file, timeout_s=30)  # waits until the holder lets go
        conn.execute("CREATE TABLE t AS SELECT 1 AS x")
        conn.close()
    finally:
        holder.wait(timeout=30)
    assert holder.returncode == 0
