"""The landing sensor, ticked with a context against a temporary Dagster instance."""

from datetime import date

import dagster as dg

from unified_assets.defs.jobs import REFERENCE_ASSETS
from unified_assets.lib.core import files
from unified_assets.lib.raw import landing
from unified_assets_tests.support.runs import run, tick


def test_landing_sensor_requests_each_landed_day_once(home, defs, instance):
    # an empty warehouse: the dimensions first, the days only once they exist
    requests, _, cursor = tick(defs, "landing_sensor", home, instance)
    assert [(r.job_name, r.partition_key) for r in requests] == [("ingest_reference", None)]
    assert run(home, None, None, dg.AssetSelection.assets(*REFERENCE_ASSETS)).success
    requests, _, cursor = tick(defs, "landing_sensor", home, instance, cursor)
    assert [(r.job_name, r.partition_key) for r in requests] == [
        ("ingest_daily", "2013-01-01"), ("ingest_daily", "2013-01-02"),
        ("ingest_daily", "2013-01-03")]
    keys = {r.partition_key: r.run_key for r in requests}
    sha = files.sha256_file(landing.daily_file(home, "flights", date(2013, 1, 2)))
    assert keys["2013-01-02"].startswith(f"ingest:2013-01-02:{sha[:12]}:")
    assert requests[0].tags["unified_assets/files"] == "flights/2013-01-01,weather/2013-01-01"

    # the same files again: nothing to do
    requests, result, cursor = tick(defs, "landing_sensor", home, instance, cursor)
    assert requests == [] and "no new or changed file" in result.skip_message

    # a corrected file for one day: exactly that partition, under a new run key
    path = landing.daily_file(home, "weather", date(2013, 1, 2))
    path.write_text("".join(path.read_text().splitlines(keepends=True)[:-1]))
    requests, _, cursor = tick(defs, "landing_sensor", home, instance, cursor)
    assert [r.partition_key for r in requests] == ["2013-01-02"]
    assert requests[0].run_key != keys["2013-01-02"]

    # a day is requested only once both its files are there
    flights4 = landing.landing_root(home) / "flights" / "2013-01-04.csv"
    flights4.write_bytes(landing.daily_file(home, "flights", date(2013, 1, 3)).read_bytes())
    requests, result, cursor = tick(defs, "landing_sensor", home, instance, cursor)
    assert requests == [] and "incomplete" in result.skip_message
    landing.land(home, through=date(2013, 1, 4), start=date(2013, 1, 4))
    requests, _, cursor = tick(defs, "landing_sensor", home, instance, cursor)
    assert [r.partition_key for r in requests] == ["2013-01-04"]


def test_landing_sensor_does_not_ingest_again_what_raw_holds(built, defs, instance):
    home = built  # Jan 1-3 built (conftest.py)
    requests, result, _ = tick(defs, "landing_sensor", home, instance)
    assert requests == [] and "already ingested" in result.skip_message
