"""The nightly scoring schedule, ticked with a context against a temporary Dagster instance."""

from datetime import UTC, datetime

import dagster as dg

from unified_assets_tests.support.runs import resources_for


def test_nightly_scoring_waits_for_a_model_and_its_features(home, defs, instance):
    schedule = defs.resolve_schedule_def("nightly_scoring")
    resources = resources_for(home)
    at = datetime(2013, 1, 3, 4, tzinfo=UTC)
    with dg.build_schedule_context(instance=instance, scheduled_execution_time=at,
                                   resources=resources) as context:
        result = schedule(context)
    assert isinstance(result, dg.SkipReason) and "no promoted model yet" in result.skip_message
