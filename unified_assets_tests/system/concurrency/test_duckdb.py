"""DuckDB under concurrency: separate runs writing different days of the same tables at once.

DuckDB lets one process write a file, or several read it, never both at the same time. These
tests start real `dagster asset materialize` processes side by side, as a backfill launched as
separate runs or two engineers clicking "Materialize" would, with a reader polling the
warehouse read-only as the UI or a notebook does, and check that every run succeeds and that no
row is lost or doubled.
"""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
import textwrap
import time
from datetime import date, datetime
from pathlib import Path

import dagster as dg
import pytest

from unified_assets.defs.partitions import daily
from unified_assets.lib.core import config, database
from unified_assets.lib.raw import ingest, landing
from unified_assets.lib.sources import SOURCES
from unified_assets.lib.warehouse import transforms
from unified_assets_tests.support.programs import REPO
from unified_assets_tests.support.reads import data_rows, query, scalar
from unified_assets_tests.support.runs import POOL_LIMIT_1, run

DAYS = [date(2013, 1, d) for d in range(1, 5)]
ROWS_JAN = (842, 943)  # flights on 2013-01-01 and 2013-01-02
DAILY = ("raw/flights", "raw/weather", "warehouse/fct_flights", "warehouse/fct_weather_hourly")
FLIGHTS = ("raw/flights", "warehouse/fct_flights")
REFERENCE = ("raw/planes", "raw/airports", "raw/airlines", "warehouse/dim_carrier",
             "warehouse/dim_airport", "warehouse/dim_plane")
WAITING = "waiting up to"  # the warning lib/core/database.py logs when it starts to wait
POOL_BLOCKED = "Step blocked by limit for pool duckdb"  # Dagster's engine event

# Holds the warehouse open for writing, like a long write or a notebook, until told to stop.
HOLDER = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    from unified_assets.lib.core import database

    conn = database.connect(Path(sys.argv[1]), read_only=sys.argv[2] == "read")
    print("holding", flush=True)
    sys.stdin.readline()
    conn.close()
    """
)

# Polls the warehouse read-only, as the UI or a notebook would, until a stop file appears;
# prints, per read, the rows of raw.flights and warehouse.fct_flights per day.
READER = textwrap.dedent(
    """
    import json, sys, time
    from pathlib import Path
    from unified_assets.lib.core import database

    db_file, stop = Path(sys.argv[1]), Path(sys.argv[2])
    while True:
        last = stop.exists()  # one more read after the stop file appears, then stop
        conn = database.connect(db_file, read_only=True, timeout_s=120)
        try:
            seen = {}
            for table, day in (("raw.flights", "partition_date"),
                               ("warehouse.fct_flights", "flight_date")):
                if database.table_exists(conn, table):
                    rows = conn.execute(
                        f"SELECT {day}::VARCHAR, count(*) FROM {table} GROUP BY 1").fetchall()
                    seen[table] = dict(rows)
        finally:
            conn.close()
        print(json.dumps(seen), flush=True)
        if last:
            break
        time.sleep(0.1)
    """
)


# One day's flights written as a run's steps write them (raw replaced, then curated, in one
# transaction), one command at a time from stdin so a test can force the order of two writers:
#   read   open read-only, count the daily audit rows, close (state a writer could go stale on)
#   write  open for writing (waiting for the lock), BEGIN, replace and curate the day
#   commit COMMIT and close: only now may another process open the file
STEPPED_WRITER = textwrap.dedent(
    """
    import sys
    from datetime import date, datetime, timedelta
    from pathlib import Path
    from unified_assets.lib.core import config
    from unified_assets.lib.raw import ingest
    from unified_assets.lib.raw import landing
    from unified_assets.lib.warehouse import transforms
    from unified_assets.lib.core import database
    from unified_assets.lib.sources import SOURCES

    home, day = Path(sys.argv[1]), date.fromisoformat(sys.argv[2])
    db_file, end = config.warehouse_path(home), day + timedelta(days=1)
    for command in sys.stdin:
        command = command.strip()
        if command == "read":
            conn = database.connect(db_file, read_only=True)
            n = conn.execute("SELECT count(*) FROM warehouse.ingest_audit "
                             "WHERE partition_date IS NOT NULL").fetchone()[0]
            conn.close()
            print("read", n, flush=True)
        elif command == "write":
            conn = database.connect(db_file)
            conn.execute("BEGIN TRANSACTION")
            source = ingest.inspect_file(landing.daily_file(home, "flights", day),
                                         home / "scratch", conn)
            ingest.replace_daily(conn, "flights", [(source, day)], day, end, datetime.now())
            totals = transforms.curate(conn, SOURCES["flights"].curation, datetime.now(), day, end)
            print("written", totals["rows_in"], flush=True)
        elif command == "commit":
            conn.execute("COMMIT")
            conn.close()
            print("committed", flush=True)
    """
)


def python(*args: str, env: dict, **kwargs) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, *args], env=env, cwd=REPO, text=True, **kwargs)


def materialize_args(day: date, selection=DAILY) -> list[str]:
    return ["-m", "dagster", "asset", "materialize", "-m", "unified_assets.definitions",
            "--select", ",".join(selection), "--partition", str(day)]


def wait_for(condition, what: str, timeout_s: float = 180) -> None:
    """Poll until `condition()` holds; fail the test (not hang) after `timeout_s`."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.2)


def diagnosis(home: Path, audit: list[tuple], logs: dict) -> dict:
    """What a missing or extra audit row needs to be explained: the audit, the curated facts
    per day, and, per run, its log lines about the warehouse (lock waits, curation totals,
    step outcomes), in order."""
    facts = query(home, "SELECT flight_date::VARCHAR, count(*) FROM warehouse.fct_flights "
                        "GROUP BY 1 ORDER BY 1")
    marks = (WAITING, "warehouse.fct_", "STEP_SUCCESS", "STEP_FAILURE", "rolled back")
    runs = {
        str(day): [line[:300] for line in err.read_text().splitlines()
                   if any(m in line for m in marks)]
        for day, (_, err) in logs.items()
    }
    return {"audit": audit, "fct_flights_per_day": facts, "runs": runs}


@pytest.fixture
def four_days(home) -> Path:
    """Jan 1-4 landed, reference tables and dimensions built; no daily partition built yet."""
    landing.land(home, through=DAYS[-1])
    assert run(home, None, None, selection=[dg.AssetKey.from_user_string(k) for k in REFERENCE],
               ).success
    return home


def env_for(home: Path, dagster_home: Path) -> dict[str, str]:
    dagster_home.mkdir(parents=True, exist_ok=True)
    return dict(os.environ, UNIFIED_ASSETS_HOME=str(home), DAGSTER_HOME=str(dagster_home),
                UNIFIED_ASSETS_LOCK_TIMEOUT_S="120")


@pytest.mark.parametrize(
    ("pool", "selection", "days"),
    # With the pool, a blocked step polls for a slot with a backoff of up to 15 s: three days
    # of flights only, to keep the test short.
    [("lock wait only", DAILY, DAYS), ("duckdb pool limited to 1", FLIGHTS, DAYS[:3])],
    ids=["lock-wait", "pool"],
)
def test_parallel_runs_write_different_days_of_the_same_tables(
    four_days, tmp_path, monkeypatch, pool, selection, days
):
    """A backfill as four separate runs, one day each, at the same time, on the same tables,
    with a reader polling read-only throughout: every run succeeds, every row lands once."""
    home = four_days
    dagster_home = tmp_path / "dagster_home"
    env = env_for(home, dagster_home)
    if pool != "lock wait only":
        (dagster_home / "dagster.yaml").write_text(POOL_LIMIT_1)
    monkeypatch.setenv("DAGSTER_HOME", str(dagster_home))
    with dg.DagsterInstance.get():  # created once: runs racing to create it fail (see README)
        pass
    db_file = config.warehouse_path(home)
    logs = {day: (tmp_path / f"run-{day}.out", tmp_path / f"run-{day}.err") for day in days}
    stop = tmp_path / "stop-reading"
    procs: list[subprocess.Popen] = []
    try:
        # A writer holds the file first, so every run below really meets the lock.
        holder = python("-c", HOLDER, str(db_file), "write", env=env,
                        stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        procs.append(holder)
        assert holder.stdout.readline().strip() == "holding"
        reader = python("-c", READER, str(db_file), str(stop), env=env,
                        stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        procs.append(reader)
        writers = {}
        for day, (out, err) in logs.items():
            with out.open("w") as o, err.open("w") as e:
                writers[day] = python(*materialize_args(day, selection), env=env, stdout=o,
                                      stderr=e)
            procs.append(writers[day])

        def all_waiting() -> bool:
            ended = {d: p.returncode for d, p in writers.items() if p.poll() is not None}
            assert not ended, {d: logs[d][1].read_text()[-3000:] for d in ended}
            texts = [err.read_text() for _, err in logs.values()]
            on_lock = sum(WAITING in t for t in texts)
            on_pool = sum(POOL_BLOCKED in t and WAITING not in t for t in texts)
            if pool == "lock wait only":
                return on_lock == len(days)
            return on_lock >= 1 and on_lock + on_pool == len(days)

        wait_for(all_waiting, "every run to wait for the warehouse (lock or pool)")
        holder.communicate("release\n", timeout=30)
        codes = {day: proc.wait(timeout=300) for day, proc in writers.items()}
        stop.touch()
        reads, reader_err = reader.communicate(timeout=150)
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()

    failed = {d: logs[d][1].read_text()[-3000:] for d, code in codes.items() if code != 0}
    assert not failed, failed
    assert reader.returncode == 0, reader_err[-3000:]

    # Every day's rows exactly once: raw equals its landing file, curated rows conserve them.
    expected = {str(day): data_rows(landing.daily_file(home, "flights", day)) for day in days}
    raw = dict(query(home, "SELECT partition_date::VARCHAR, count(*) FROM raw.flights "
                           "GROUP BY 1"))
    assert raw == expected
    if "raw/weather" in selection:
        weather = dict(query(home, "SELECT partition_date::VARCHAR, count(*) FROM raw.weather "
                                   "GROUP BY 1"))
        assert weather == {str(d): data_rows(landing.daily_file(home, "weather", d))
                           for d in days}
        assert scalar(home, "SELECT count(*) - count(DISTINCT (origin, time_hour_utc)) "
                            "FROM warehouse.fct_weather_hourly") == 0
    audit = query(home, "SELECT table_name, partition_date::VARCHAR, rows_in, curated, "
                        "quarantined, duplicates FROM warehouse.ingest_audit "
                        "WHERE partition_date IS NOT NULL ORDER BY 1, 2")
    curated_tables = [k for k in selection if k.startswith("warehouse/")]
    # one row per table and day, no more; if not, the message has the whole audit, the curated
    # rows per day and each run's own log of what its curation steps wrote and when
    assert len(audit) == len(curated_tables) * len(days), diagnosis(home, audit, logs)
    for table, day, rows_in, curated, quarantined, duplicates in audit:
        assert rows_in == curated + quarantined + duplicates, (table, day)
        if table == "warehouse.fct_flights":
            assert rows_in == expected[day]
    curated = dict(query(home, "SELECT flight_date::VARCHAR, count(*) FROM "
                               "warehouse.fct_flights GROUP BY 1"))
    assert curated == {day: c for t, day, _, c, _, _ in audit if t == "warehouse.fct_flights"}
    assert set(curated) == set(expected) and min(curated.values()) > 0
    assert scalar(home, "SELECT count(*) - count(DISTINCT (flight_date, carrier, flight, "
                        "origin, sched_dep_ts)) FROM warehouse.fct_flights") == 0

    # The reader never saw half a day: each read shows a day's rows all or none.
    polls = [json.loads(line) for line in reads.splitlines()]
    assert len(polls) >= 2
    for seen in polls:
        assert all(raw[d] == n for d, n in seen.get("raw.flights", {}).items()), seen
        assert all(curated[d] == n for d, n in seen.get("warehouse.fct_flights", {}).items())
    assert polls[-1]["raw.flights"] == raw  # and its last read, after the runs, sees them all

    # Dagster recorded every day of every table as materialized, each day by its own run.
    with dg.DagsterInstance.get() as instance:
        records = instance.get_run_records()
        assert len(records) == len(days)
        assert {r.dagster_run.status for r in records} == {dg.DagsterRunStatus.SUCCESS}
        keys = [str(d) for d in days]
        for key in selection:
            status = instance.get_status_by_partition(dg.AssetKey.from_user_string(key), keys,
                                                      daily)
            assert status == dict.fromkeys(keys, dg.AssetPartitionStatus.MATERIALIZED), key


def test_a_writer_that_read_stale_state_and_waited_for_the_lock_loses_no_write(home, tmp_path):
    """The interleaving suspected of losing an audit row, forced step by step: B reads the
    audit, A opens the file and writes day 1, B asks to write day 2 and must wait, A commits,
    then B writes. B's read is stale by then, but no write depends on it: each write reopens
    the file under its lock and replaces only its own days. Both days survive, conserved."""
    db_file = config.warehouse_path(home)
    conn = database.connect(db_file)
    database.ensure_schemas(conn)
    conn.execute(ingest.ddl("flights", partitioned=True))
    # empty tables
    transforms.curate(conn, SOURCES["flights"].curation, datetime.now(), DAYS[0], DAYS[0])
    conn.close()
    env = dict(os.environ)
    err_b = tmp_path / "b.err"
    a = python("-c", STEPPED_WRITER, str(home), str(DAYS[0]), env=env,
               stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    with err_b.open("w") as err:
        b = python("-c", STEPPED_WRITER, str(home), str(DAYS[1]), env=env,
                   stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=err)

    def say(proc: subprocess.Popen, command: str) -> None:
        proc.stdin.write(command + "\n")
        proc.stdin.flush()

    def answer(proc: subprocess.Popen) -> str:
        return proc.stdout.readline().strip()

    try:
        say(b, "read")
        assert answer(b) == "read 0"  # B's view: no day audited yet
        say(a, "write")
        assert answer(a) == f"written {ROWS_JAN[0]}"  # A holds the file, uncommitted
        say(b, "write")
        wait_for(lambda: WAITING in err_b.read_text(), "B to wait for A's lock", 60)
        # While A's write is open, nobody else gets in: not B, not a reader.
        with pytest.raises(database.WarehouseLockedError):
            database.connect(db_file, read_only=True, timeout_s=0)
        say(a, "commit")
        assert answer(a) == "committed"
        assert answer(b) == f"written {ROWS_JAN[1]}"
        say(b, "commit")
        assert answer(b) == "committed"
    finally:
        for proc in (a, b):
            proc.stdin.close()
            proc.wait(timeout=60)
            proc.stdout.close()
    audit = query(home, "SELECT partition_date, rows_in, curated, quarantined, duplicates "
                        "FROM warehouse.ingest_audit WHERE partition_date IS NOT NULL "
                        "ORDER BY 1")
    assert audit == [(DAYS[0], ROWS_JAN[0], ROWS_JAN[0], 0, 0),
                     (DAYS[1], ROWS_JAN[1], ROWS_JAN[1], 0, 0)], audit
    facts = query(home, "SELECT flight_date, count(*) FROM warehouse.fct_flights GROUP BY 1 "
                        "ORDER BY 1")
    assert facts == [(DAYS[0], ROWS_JAN[0]), (DAYS[1], ROWS_JAN[1])]


def test_a_run_blocked_past_its_lock_timeout_fails_with_the_holder_named(four_days, tmp_path):
    """A notebook keeps a read-only connection open: the run gives up after its timeout with an
    error naming that process, instead of hanging; nothing is written."""
    home = four_days
    env = env_for(home, tmp_path / "dagster_home") | {"UNIFIED_ASSETS_LOCK_TIMEOUT_S": "2"}
    db_file = config.warehouse_path(home)
    notebook = python("-c", HOLDER, str(db_file), "read", env=env,
                      stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    try:
        assert notebook.stdout.readline().strip() == "holding"
        blocked = subprocess.run([sys.executable, *materialize_args(DAYS[0], ["raw/flights"])],
                                 env=env, cwd=REPO,
                                 capture_output=True, text=True, timeout=300)
        # Readers share the file: a second reader is not blocked by the notebook.
        conn = database.connect(db_file, read_only=True, timeout_s=0)
        conn.close()
    finally:
        notebook.communicate("release\n", timeout=30)
    assert blocked.returncode != 0
    assert "WarehouseLockedError" in blocked.stderr
    assert f"it is locked by PID {notebook.pid} (" in blocked.stderr
    assert "lock timeout 2 s" in blocked.stderr
    assert "UNIFIED_ASSETS_LOCK_TIMEOUT_S" in blocked.stderr
    assert scalar(home, "SELECT count(*) FROM information_schema.tables "
                        "WHERE table_name = 'flights' AND table_schema = 'raw'") == 0


def test_a_reader_waits_for_a_writer_then_gives_up_clearly(tmp_path):
    db_file = tmp_path / "unified_assets.duckdb"
    env = dict(os.environ)
    writer = python("-c", HOLDER, str(db_file), "write", env=env,
                    stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    try:
        assert writer.stdout.readline().strip() == "holding"
        with pytest.raises(database.WarehouseLockedError,
                           match=rf"\(read\): it is locked by PID {writer.pid} \("):
            database.connect(db_file, read_only=True, timeout_s=0.5)
    finally:
        writer.communicate("release\n", timeout=30)
    conn = database.connect(db_file, read_only=True, timeout_s=30)
    conn.close()


def test_a_held_warehouse_is_opened_once_for_the_block_then_released(tmp_path):
    """The replay holds the file for its sequential work: every connect in the block shares
    one connection (reads see writes), other processes wait, and the block's end lets them in."""
    db_file = tmp_path / "unified_assets.duckdb"
    reader = [sys.executable, "-c", "import sys; from pathlib import Path; "
              "from unified_assets.lib.core import database; database.connect(Path(sys.argv[1]), "
              "read_only=True, timeout_s=0.3).close()", str(db_file)]
    with database.held(db_file):
        conn = database.connect(db_file)
        conn.execute("CREATE TABLE main.t AS SELECT 1 AS x")
        conn.close()
        again = database.connect(db_file, read_only=True)
        assert again.execute("SELECT x FROM main.t").fetchall() == [(1,)]
        again.close()
        blocked = subprocess.run(reader, cwd=REPO, capture_output=True, text=True, timeout=120)
        assert blocked.returncode != 0 and "WarehouseLockedError" in blocked.stderr
    released = subprocess.run(reader, cwd=REPO, capture_output=True, text=True, timeout=120)
    assert released.returncode == 0, released.stderr


def test_only_the_resource_opens_the_warehouse():
    """No module of the platform opens DuckDB on its own: assets and sensors go through
    WarehouseResource, the reports that open the file directly open it read-only, and only the
    replay holds it open across runs, all through lib/core/database.py, whose lock wait then
    applies to every open."""
    package = REPO / "unified_assets"
    opened: dict[str, set[str]] = {
        "duckdb.connect": set(), "database.connect": set(), "database.held": set()
    }
    writable = set()
    for path in package.rglob("*.py"):
        where = str(path.relative_to(package))
        for node in ast.walk(ast.parse(path.read_text())):
            # the resource's connect() takes no positional argument; these take the file
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.args:
                name = ast.unparse(node.func)
                if name in opened:
                    opened[name].add(where)
                    read_only = any(k.arg == "read_only" and ast.unparse(k.value) == "True"
                                    for k in node.keywords)
                    if name == "database.connect" and not read_only:
                        writable.add(where)
    assert opened["duckdb.connect"] == {"lib/core/database.py"}
    assert writable == {"defs/resources.py"}
    assert opened["database.held"] == {"replay.py"}  # one process, sequential work


SLEEPING_HOLDER = textwrap.dedent(
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
    db_file = tmp_path / "unified_assets.duckdb"
    holder = subprocess.Popen([sys.executable, "-c", SLEEPING_HOLDER, str(db_file), "4"],
                              stdout=subprocess.PIPE, text=True)
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
        holder.stdout.close()
    assert holder.returncode == 0
