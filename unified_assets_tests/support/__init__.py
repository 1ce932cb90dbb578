"""What the tests share, outside the installed package: runs of the graph (runs.py, the system
tier's), read-only reads of a home (reads.py), planted bad data (planted.py), the system
programs some tests need (programs.py), a window built without Dagster (offline.py), a
throw-away PostgreSQL server (postgres.py), and the entry points that tests start in other
processes (killpoint.py, train_small.py, dask_job.py). The benches import offline.py and
postgres.py from here; they run from the repository."""
