"""The pandera schemas' own row checks (lib/quality/schemas.py), on small hand-made frames."""

import pandas as pd

from unified_assets.lib.quality import schemas


def _hours(speeds: list[float], origin: str = "JFK", start: str = "2013-02-26 05:00",
           step_hours: int = 1) -> pd.DataFrame:
    hours = pd.date_range(start, periods=len(speeds), freq=f"{step_hours}h")
    return pd.DataFrame({"origin": origin, "time_hour_utc": hours,
                         "wind_speed_mph": pd.array(speeds, dtype="Float64")})


def test_a_stuck_anemometer_is_six_equal_nonzero_hours_in_a_row():
    stuck = _hours([5.75, 9.2, 9.2, 9.2, 9.2, 9.2, 9.2, 4.6])
    assert list(schemas.wind_not_stuck(stuck)) == [True] + [False] * 6 + [True]
    assert schemas.wind_not_stuck(_hours([9.2] * 5 + [4.6])).all()  # five hours: weather
    assert schemas.wind_not_stuck(_hours([0.0] * 12)).all()  # calm hours repeat 0 naturally
    assert schemas.wind_not_stuck(_hours([9.2] * 6, step_hours=2)).all()  # a gap is no run
    two = pd.concat([_hours([9.2] * 3), _hours([9.2] * 3, origin="LGA")], ignore_index=True)
    assert schemas.wind_not_stuck(two).all()  # runs do not cross origins
    shuffled = stuck.sample(frac=1, random_state=3)  # order of the rows does not matter
    assert (schemas.wind_not_stuck(shuffled).sort_index() == schemas.wind_not_stuck(stuck)).all()
