"""How a build of a window of days trains each model (lib/models/specs.py `training_plan`)."""

from datetime import date

from unified_assets.lib.models.specs import SPECS, training_plan

CLASSIFIER, FORECASTER = SPECS["delay_classifier"], SPECS["departures_forecaster"]


def test_the_whole_year_keeps_the_fixed_windows():
    for spec in SPECS.values():
        assert training_plan(spec, date(2013, 1, 1), date(2013, 12, 31))[0] == ""


def test_a_quarter_trains_as_of_its_last_labelled_day():
    as_of, why = training_plan(CLASSIFIER, date(2013, 1, 1), date(2013, 3, 31))
    assert as_of == "2013-03-30"  # outcomes known a day later
    assert why == ("as of 2013-03-30: trains on the days before 2013-03-03, validates on "
                   "2013-03-03..2013-03-16, tests on 2013-03-17..2013-03-30")
    assert training_plan(FORECASTER, date(2013, 1, 1), date(2013, 3, 31))[0] == "2013-03-24"


def test_a_window_too_short_says_what_it_needs():
    # 30 days is the classifier's least: one training day, 14 + 14, and a day for the labels.
    assert training_plan(CLASSIFIER, date(2013, 4, 1), date(2013, 4, 30))[0] == "2013-04-29"
    as_of, why = training_plan(CLASSIFIER, date(2013, 4, 1), date(2013, 4, 29))
    assert as_of is None
    assert why == ("2013-04-01..2013-04-29 is too short for it: at least 30 days (a training "
                   "day, 14 validation and 14 test days, then 1 for their labels)")
    # The forecaster's labels come a week later: January alone is too short for it.
    assert training_plan(FORECASTER, date(2013, 1, 1), date(2013, 1, 31))[0] is None
    assert training_plan(FORECASTER, date(2013, 1, 1), date(2013, 2, 5))[0] == "2013-01-29"
