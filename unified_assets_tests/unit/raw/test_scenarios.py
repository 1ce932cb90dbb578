"""Scenario files: each edit kind rewrites the landed file as written; a bad file is refused
whole, before anything runs, with an error naming its edit."""

import csv
import io
from datetime import date

import pytest

from unified_assets.lib.raw import landing, scenarios
from unified_assets_tests.support.planted import every_kind_scenario

DAY = date(2013, 1, 2)
GOOD = every_kind_scenario("every_kind", "2013-01-02", "2013-01-02")


def _rows(path):
    return list(csv.DictReader(io.StringIO(path.read_text())))


@pytest.fixture
def landed(tmp_path):
    landing.land(tmp_path, through=DAY, start=DAY)
    before = {t: _rows(landing.daily_file(tmp_path, t, DAY)) for t in ("flights", "weather")}
    return tmp_path, before


def _key(r):
    return r["carrier"], r["flight"], r["sched_dep_time"], r["origin"]


def test_each_edit_kind_rewrites_the_landed_file(landed):
    home, before = landed
    scenario = scenarios.parse(GOOD)
    done = scenarios.apply(scenario, home, DAY)
    flights = {_key(r): r for r in _rows(landing.daily_file(home, "flights", DAY))}
    old = {_key(r): r for r in before["flights"]}
    counted = {d["edit"]: d["rows"] for d in done}

    # drop: US is gone, and only US
    us = [k for k in old if k[0] == "US"]
    assert us and counted[3] == len(us) and not any(k[0] == "US" for k in flights)
    assert len(flights) == len(old) - len(us)
    # shift: EWR flights from 14:00 on are 35 minutes later, past midnight in hhmm
    shifted = [k for k, r in old.items() if r["origin"] == "EWR" and int(r["hour"]) >= 14
               and k[0] != "US"]
    assert shifted and counted[1] >= len(shifted)
    wrapped = 0
    for k in shifted:
        was, now = old[k], flights[k]
        if was["dep_delay"] != "NA":
            assert int(now["dep_delay"]) == int(was["dep_delay"]) + 35
            minutes = int(was["dep_time"]) // 100 * 60 + int(was["dep_time"]) % 100 + 35
            expected = (minutes % 1440) // 60 * 100 + minutes % 60 or 2400
            assert int(now["dep_time"]) == expected
            wrapped += minutes >= 1440
        if was["arr_delay"] != "NA" and k[0] != "B6":  # B6 lost its arrivals (edit 4)
            assert int(now["arr_delay"]) == int(was["arr_delay"]) + 35
    assert wrapped, "some shifted departure crosses midnight on this day"
    # set to NULL: B6 flights have no arrival
    assert all(r["arr_time"] == "NA" and r["arr_delay"] == "NA"
               for k, r in flights.items() if k[0] == "B6")
    # untouched rows are untouched
    calm = [k for k in flights if k[0] not in ("B6",) and k not in shifted]
    assert all(flights[k] == old[k] for k in calm)
    # set an expression: JFK temperatures are in Celsius, the other origins unchanged
    weather = _rows(landing.daily_file(home, "weather", DAY))
    for was, now in zip(before["weather"], weather, strict=True):
        if was["origin"] == "JFK" and was["temp"] != "NA":
            assert float(now["temp"]) == pytest.approx((float(was["temp"]) - 32) * 5 / 9)
        else:
            assert now == was
    assert [d["table"] for d in done].count("weather") == 1


def test_days_outside_the_scenario_are_left_alone(landed):
    home, before = landed
    scenario = scenarios.parse(GOOD.replace("start: 2013-01-02", "start: 2013-01-03")
                               .replace("end: 2013-01-02", "end: 2013-01-09"))
    assert scenarios.apply(scenario, home, DAY) == []
    assert _rows(landing.daily_file(home, "flights", DAY)) == before["flights"]


def test_the_scenario_is_named_by_its_bytes():
    a, b = scenarios.parse(GOOD), scenarios.parse(GOOD + "\n# a comment\n")
    assert len(a.sha256) == 64 and a.sha256 != b.sha256 and a.name == "every_kind"


EDIT = "name: bad\nstart: 2013-06-10\nedits:\n  - "


@pytest.mark.parametrize("text, error", [
    ("[1, 2]", "expected a mapping"),
    ("name: x\nstart: 2013-06-10\nedits: []\nextra: 1", "unknown key(s) ['extra']"),
    ("name: Bad Name\nstart: 2013-06-10\nedits: [{table: flights, drop: 'true'}]", "name must"),
    ("name: x\nedits: [{table: flights, drop: 'true'}]", "start"),
    ("name: x\nstart: June\nedits: [{table: flights, drop: 'true'}]", "not a day"),
    ("name: x\nstart: 2013-06-10\nend: 2013-06-01\nedits: [{table: flights, drop: 'true'}]",
     "is before start"),
    ("name: x\nstart: 2013-06-10\nedits: []", "non-empty list"),
    ("name: x\nstart: 2013-06-10\nedits: :\n  -", "not YAML"),
    (EDIT + "{table: planes, drop: 'true'}", "edit 1: table must be one of"),
    (EDIT + "{table: flights}", "edit 1 (flights): exactly one of"),
    (EDIT + "{table: flights, drop: 'true', shift_minutes: 5}", "exactly one of"),
    (EDIT + "{table: flights, drop: 'true', colour: red}", "unknown key(s) ['colour']"),
    (EDIT + "{table: weather, shift_minutes: 5}", "applies to flights only"),
    (EDIT + "{table: flights, shift_minutes: 0}", "whole number of minutes"),
    (EDIT + "{table: flights, shift_minutes: 2.5}", "whole number of minutes"),
    (EDIT + "{table: flights, shift_minutes: 5000}", "under a day"),
    (EDIT + "{table: flights, set: {}}", "set must map columns"),
    (EDIT + "{table: flights, set: {colour: '1'}}", "unknown column(s) ['colour']"),
    (EDIT + "{table: flights, set: {dep_delay: ''}}", "set dep_delay: empty"),
    (EDIT + "{table: flights, where: \"origin = 'EWR'\", set: {dep_delay: 'nope + 1'}}",
     "edit 1 (flights: set dep_delay = nope + 1 where origin = 'EWR')"),
    (EDIT + "{table: flights, where: 'origin ===', shift_minutes: 5}", "Parser Error"),
    (EDIT + "{table: weather, drop: 'colour = 1'}", "edit 1 (weather: drop colour = 1)"),
    (EDIT + "{table: flights, drop: 'true'}\n  - {table: flights, where: 'x', drop: 'true'}",
     "edit 2 (flights: drop true where x)"),
])
def test_a_bad_file_is_refused_naming_its_edit(text, error):
    with pytest.raises(scenarios.ScenarioError) as refused:
        scenarios.parse(text, "bad.yaml")
    assert error in str(refused.value) and str(refused.value).startswith("bad.yaml: ")


def test_an_unreadable_file_is_refused(tmp_path):
    with pytest.raises(scenarios.ScenarioError, match="cannot read"):
        scenarios.load(tmp_path / "missing.yaml")


def test_every_shipped_scenario_loads():
    shipped = [scenarios.load(p) for p in sorted(scenarios.SHIPPED.glob("*.yaml"))]
    assert len(shipped) >= 5 and len({s.name for s in shipped}) == len(shipped)
