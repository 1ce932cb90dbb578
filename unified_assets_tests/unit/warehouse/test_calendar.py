from datetime import date

from unified_assets.lib.warehouse import calendar


def test_2013_holidays():
    holidays = calendar.us_federal_holidays(2013)
    assert holidays[date(2013, 11, 28)] == "Thanksgiving Day"
    assert holidays[date(2013, 5, 27)] == "Memorial Day"
    assert holidays[date(2013, 1, 21)] == "Martin Luther King Jr. Day"
    assert holidays[date(2013, 9, 2)] == "Labor Day"
    assert len(holidays) == 10


def test_weekend_holiday_is_observed_on_a_weekday():
    # 2010-12-25 was a Saturday: observed Friday the 24th
    assert calendar.us_federal_holidays(2010)[date(2010, 12, 24)] == "Christmas Day"


def test_calendar_days_to_nearest_holiday():
    frame = calendar.calendar(date(2013, 12, 20), date(2013, 12, 31))
    assert len(frame) == 12
    by_day = dict(zip(frame["date"].dt.date, frame["days_to_nearest_holiday"], strict=True))
    assert by_day[date(2013, 12, 25)] == 0
    assert by_day[date(2013, 12, 31)] == 1  # New Year's Day 2014
    assert by_day[date(2013, 12, 20)] == 5


def test_daylight_saving_days_have_23_and_25_hours():
    assert calendar.local_day_hours(date(2013, 3, 10)) == 23
    assert calendar.local_day_hours(date(2013, 11, 3)) == 25
    assert calendar.local_day_hours(date(2013, 6, 1)) == 24
    frame = calendar.weather_hours(date(2013, 3, 9), date(2013, 3, 12))
    assert frame["hours"].tolist() == [24, 23, 24]
