"""The command line as CI uses it: land, materialize by group, status, bad dates."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from unified_assets_tests.support.reads import scalar

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
    )


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


@pytest.mark.parametrize("bad", ["2013-13-01", "yesterday"])
def test_cli_rejects_bad_dates(tmp_path, bad):
    out = sh([str(BIN / "unified-assets"), "land", "--through", bad], tmp_path)
    assert out.returncode == 2 and "is not a date" in out.stderr


