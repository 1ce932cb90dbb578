"""The pandera schemas' own row checks (lib/quality/checks.py), on small hand-made frames."""

import pandas as pd

from unified_assets.lib.quality import checks


def _hours(speeds: list[float], origin: str = "JFK", start: str = "2013-02-26 05:00",
           step_hours: int = 1) -> pd.DataFrame:
    hours = pd.date_range(start, periods=len(speeds), freq=f"{step_hours}h")
    return pd.DataFrame({"origin": origin, "time_hour_utc": hours,
                         "wind_speed_mph": pd.array(speeds, dtype="Float64")})


def test_a_stuck_anemometer_is_six_equal_nonzero_hours_in_a_row():
    stuck = _hours([5.75, 9.2, 9.2, 9.2, 9.2, 9.2, 9.2, 4.6])
    assert list(checks.wind_not_stuck(stuck)) == [True] + [False] * 6 + [True]
    assert checks.wind_not_stuck(_hours([9.2] * 5 + [4.6])).all()  # five hours: weather
    assert checks.wind_not_stuck(_hours([0.0] * 12)).all()  # calm hours repeat 0 naturally
    assert checks.wind_not_stuck(_hours([9.2] * 6, step_hours=2)).all()  # a gap is no run
    two = pd.concat([_hours([9.2] * 3), _hours([9.2] * 3, origin="LGA")], ignore_index=True)
    assert checks.wind_not_stuck(two).all()  # runs do not cross origins
    shuffled = stuck.sample(frac=1, random_state=3)  # order of the rows does not matter
    assert (checks.wind_not_stuck(shuffled).sort_index() == checks.wind_not_stuck(stuck)).all()


def _flights(carrier: str, departed: int, without_arrival: int, day: str = "2013-06-17"):
    return pd.DataFrame({
        "flight_date": pd.Timestamp(day), "carrier": carrier,
        "dep_ts": [pd.Timestamp(day)] * departed,
        "arr_delay_min": pd.array([None] * without_arrival + [5] * (departed - without_arrival),
                                  dtype="Int64"),
    })


def test_a_carrier_day_that_lost_its_outcomes_is_not_a_few_diversions():
    lost = _flights("B6", 40, 30)
    assert (~checks.outcomes_reported(lost)).sum() == 30  # the rows without an arrival
    assert checks.outcomes_reported(_flights("B6", 40, 20)).all()  # half: storms do this
    assert checks.outcomes_reported(_flights("OO", 10, 10)).all()  # too few flights to say
    both = pd.concat([lost, _flights("UA", 40, 1), _flights("B6", 40, 1, "2013-06-18")],
                     ignore_index=True)
    flagged = ~checks.outcomes_reported(both)
    assert flagged.sum() == 30 and flagged[:40].sum() == 30  # per carrier and day
