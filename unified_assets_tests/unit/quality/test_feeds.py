"""A training set's questions to the data checks: which days came from a broken feed (left
out), and which lost their outcomes (named)."""

from datetime import date

from unified_assets.lib.features.tables import FLIGHTS, WEATHER
from unified_assets.lib.quality import feeds

SPAN = date(2013, 1, 1), date(2013, 1, 11)


def test_the_calm_days_have_nothing_to_leave_out(real):
    assert feeds.training_exclusions(real, (FLIGHTS, WEATHER), *SPAN) == ({}, {})


def test_a_day_in_celsius_is_left_out_and_a_day_without_outcomes_is_named(real):
    real.execute(f"UPDATE {WEATHER} SET temp_f = (temp_f - 32) * 5 / 9 "
                 "WHERE origin = 'JFK' AND weather_date = '2013-01-05'")
    real.execute(f"UPDATE {FLIGHTS} SET arr_delay_min = NULL, arr_ts = NULL "
                 "WHERE carrier = 'B6' AND flight_date = '2013-01-06' AND dep_ts IS NOT NULL")
    broken, gaps = feeds.training_exclusions(real, (FLIGHTS, WEATHER), *SPAN)
    assert list(broken) == ["2013-01-05"] and "warn_dewpoint_above_temp" in broken["2013-01-05"]
    assert list(gaps) == ["2013-01-06"] and "warn_outcomes_missing" in gaps["2013-01-06"]
    # the drift monitor's question (any broken-feed row) sees the same day
    assert set(feeds.feed_faults(real, (WEATHER,), *SPAN)) == {date(2013, 1, 5)}


def test_a_few_odd_hours_are_not_a_broken_day(real):
    """Fewer than BROKEN_DAY_ROWS failing rows is the real data's own noise: kept."""
    real.execute(f"UPDATE {WEATHER} SET temp_f = (temp_f - 32) * 5 / 9 WHERE origin = 'JFK' "
                 "AND weather_date = '2013-01-05' AND local_hour < 3")
    assert feeds.training_exclusions(real, (WEATHER,), *SPAN) == ({}, {})
    assert date(2013, 1, 5) in feeds.feed_faults(real, (WEATHER,), *SPAN)
