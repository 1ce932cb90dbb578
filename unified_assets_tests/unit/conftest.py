"""Fixtures of the unit tier: the two small warehouses of support/small_warehouse.py."""

from __future__ import annotations

import multiprocessing.process
import shutil
import subprocess
from pathlib import Path

import pytest

from unified_assets.lib.core import database
from unified_assets_tests.support.small_warehouse import build_curated_window, fill_hand_built


@pytest.fixture
def hand(tmp_path):
    """The hand-built warehouse (support/small_warehouse.py `fill_hand_built`), open."""
    conn = database.connect(tmp_path / "unified_assets.duckdb")
    fill_hand_built(conn)
    yield conn
    conn.close()


@pytest.fixture(scope="session")
def real_template(tmp_path_factory) -> Path:
    """Jan 1-10 2013 landed, ingested and curated once, with dim_date."""
    return build_curated_window(tmp_path_factory.mktemp("features-real"))


@pytest.fixture
def real(real_template, tmp_path):
    """A copy of the real Jan 1-10 warehouse, open for writing."""
    path = tmp_path / "unified_assets.duckdb"
    shutil.copy(real_template, path)
    conn = database.connect(path)
    yield conn
    conn.close()


# The one program a unit test may start: `git rev-parse HEAD`, the code version a model records
# (lib/core/artifacts.py), a read that returns at once.
ALLOWED_PROGRAMS = {"git"}


@pytest.fixture(autouse=True)
def no_other_process(monkeypatch):
    """A unit test starts no other process (no run, no server, no worker): those are system/."""
    popen = subprocess.Popen.__init__

    def checked(self, args, *rest, **kwargs):
        program = args[0] if isinstance(args, list | tuple) else str(args).split()[0]
        if Path(str(program)).name not in ALLOWED_PROGRAMS:
            raise AssertionError(f"a unit test started a process ({args!r}): move it to system/")
        popen(self, args, *rest, **kwargs)

    def refused(self, *args, **kwargs):
        raise AssertionError("a unit test started a process: move it to system/")

    monkeypatch.setattr(subprocess.Popen, "__init__", checked)
    monkeypatch.setattr(multiprocessing.process.BaseProcess, "start", refused)
