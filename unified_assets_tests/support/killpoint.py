"""Run a Python module with SIGKILL planted at one point of the platform's code (tests only).

    python -m unified_assets_tests.support.killpoint POINT MODULE [ARGS...]

wraps one library function, in this process only, so that the process sends itself SIGKILL
when it reaches POINT, then runs MODULE as `python -m MODULE ARGS...` would (for example
`dagster asset materialize ...`, whose in-process executor runs the steps right here). It is a
real SIGKILL of a real run at a real point; the product code carries no hook for it. Just
before the kill, `killpoint: POINT` is written to stderr so a test can tell the kill it
planted from any other death.
"""

from __future__ import annotations

import contextlib
import os
import runpy
import signal
import sys
from pathlib import Path


def die(point: str) -> None:
    sys.stderr.write(f"killpoint: {point}\n")
    sys.stderr.flush()
    os.kill(os.getpid(), signal.SIGKILL)


def after(module, name: str, point: str) -> None:
    """Kill right after `module.name` returns (its writes done, nothing committed yet)."""
    original = getattr(module, name)

    def wrapped(*args, **kwargs):
        result = original(*args, **kwargs)
        die(point)
        return result

    setattr(module, name, wrapped)


def plant(point: str) -> None:
    from unified_assets.lib.core import artifacts, database
    from unified_assets.lib.raw import ingest
    from unified_assets.lib.warehouse import transforms

    if point == "raw-uncommitted":  # the day's rows inserted into raw, not committed
        after(ingest, "replace_daily", point)
    elif point == "curated-uncommitted":  # curated, quarantined and audited, not committed
        after(transforms, "curate", point)
    elif point == "raw-committed":  # committed, before Dagster records the materialization
        original = database.transaction

        @contextlib.contextmanager
        def committed_then_killed(conn):
            with original(conn) as tx:
                yield tx
            die(point)

        database.transaction = committed_then_killed  # asset modules import it after this
    elif point == "training":  # inside LightGBM's boosting loop, at its fifth iteration
        import lightgbm

        train = lightgbm.train

        def killed_at_fifth(env):
            if env.iteration - env.begin_iteration == 4:
                die(point)

        def wrapped(*args, **kwargs):
            kwargs["callbacks"] = [*(kwargs.get("callbacks") or []), killed_at_fifth]
            return train(*args, **kwargs)

        lightgbm.train = wrapped
    elif point == "model-file":  # the metadata saved, the model's temp file not yet published
        publish = artifacts.publish_new

        def wrapped(tmp: Path, target: Path) -> bool:
            if target.suffix == ".txt" and target.parent.name == artifacts.MODELS:
                die(point)
            return publish(tmp, target)

        artifacts.publish_new = wrapped
    elif point == "current-json":  # current.json's new bytes in its temp file, not renamed
        replace = os.replace

        def wrapped(src, dst, *args, **kwargs):
            if Path(dst).name == "current.json":
                die(point)
            return replace(src, dst, *args, **kwargs)

        os.replace = wrapped
    else:
        raise SystemExit(f"unknown kill point {point!r}")


def main() -> None:
    point, module, *args = sys.argv[1:]
    plant(point)
    sys.argv = [module, *args]
    runpy.run_module(module, run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main()
