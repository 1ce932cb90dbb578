"""The drift monitor's backfill path, which judges windows in fresh interpreters
(lib/monitoring/drift_classifier.py): other processes, so not in the unit tier, where the rest
of the drift math is (unit/monitoring/test_drift.py)."""

from datetime import timedelta

from unified_assets.lib.monitoring import drift_classifier
from unified_assets.lib.monitoring.drift_policy import DriftPolicy
from unified_assets_tests.support.synthetic import FIRST, drift_reference, synthetic_days

POLICY = DriftPolicy()


def test_a_backfills_windows_judged_in_other_interpreters_give_the_same_values():
    """A year's monitoring runs the multivariate classifier of every window in two fresh
    interpreters: the values are those of one by one, in window order."""
    reference = drift_reference(synthetic_days(FIRST, 56, seed=1), POLICY)  # eight weeks
    later = synthetic_days(FIRST + timedelta(days=70), drift_classifier.PARALLEL_WINDOWS + 6,
                           seed=9, per_day=200)
    windows = [(200 * i, 200 * (i + 7)) for i in range(drift_classifier.PARALLEL_WINDOWS)]
    one_by_one = drift_classifier.multivariate_windows(reference, later, windows, POLICY, workers=1)
    spread = drift_classifier.multivariate_windows(reference, later, windows, POLICY, workers=2)
    assert spread == one_by_one
    assert one_by_one[0] == drift_classifier.multivariate(reference, later.iloc[:1400], POLICY)
    assert all(0.3 < auc < 1 and line == one_by_one[0][1] for auc, line in spread)
