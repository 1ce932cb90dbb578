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




def test_a_short_build_trains_as_of_its_last_labelled_day_and_leaves_out_what_it_cannot():
    """`unified-assets build`'s plan for the whole graph over a window shorter than the year."""
    import warnings
    from datetime import date

    import dagster as dg

    from unified_assets.cli import plan_models
    from unified_assets.definitions import defs

    graph = defs.resolve_asset_graph()
    everything = dg.AssetSelection.all().resolve(graph)
    select, ops, lines = plan_models(date(2013, 1, 1), date(2013, 3, 31))
    assert select == "*" and set(ops) == {f"models__{n}_training_set" for n in (
        "delay_classifier", "arrival_delay_regressor", "departures_forecaster")}
    assert ops["models__departures_forecaster_training_set"] == {"config": {"as_of": "2013-03-24"}}
    # January: the forecaster's labels come a week late, too late for its windows.
    select, ops, lines = plan_models(date(2013, 1, 1), date(2013, 1, 31))
    with warnings.catch_warnings():  # the selection parser warns that it is a beta feature
        warnings.simplefilter("ignore")
        chosen = dg.AssetSelection.from_string(select).resolve(graph)
    left = {k.to_user_string() for k in everything - chosen}
    assert left == {"models/departures_forecaster_training_set",
                    "models/departures_forecaster_model",
                    "models/departures_forecaster_evaluation",
                    "deployment/departures_forecaster_manifest",
                    "serving/departures_forecaster_predictions",
                    "monitoring/departures_forecaster_monitor"}
    assert "models__departures_forecaster_training_set" not in ops
    assert any(line.startswith("  departures_forecaster: not trained: 2013-01-01..2013-01-31 "
                               "is too short") for line in lines)
    # The whole year keeps every model's fixed windows: no run config.
    assert plan_models(date(2013, 1, 1), date(2013, 12, 31))[:2] == ("*", {})
