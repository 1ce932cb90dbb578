"""The thresholds of the drift judgement, in one place: the settings resource's
`drift_window_days` and the rules' fixed lines."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class DriftPolicy:
    """When a feature, the predictions, or a whole scored day count as drifted.

    A day is judged on the trailing `window_days` scored days ending with it: one day's flights
    share their weather, their weekday and their delay rates, so a single day looks drifted
    against any multi-week reference; a week of them does not, unless something moved.

    Learned thresholds (`calibrated` rule): a feature alarms when its PSI or its share of values
    outside the training range lies beyond its threshold; the day drifts when the multivariate
    AUC lies beyond its threshold, or at least `alarm_share` of the watched features alarm, or
    the predictions' PSI reaches `prediction_psi`. Without them (`fixed` rule: older profiles,
    short references), a feature drifts when its PSI reaches `psi_threshold` (and KS rejects at
    `ks_alpha` for a number), and the day when `feature_share` of them drift or the predictions'
    PSI reaches `prediction_psi`.
    """

    window_days: int = 7  # the settings resource's drift_window_days
    psi_threshold: float = 0.2  # fixed rule: the usual "significant shift" line for PSI
    ks_alpha: float = 0.01  # fixed rule: a numeric feature drifts only if KS also rejects
    # Fixed rule: a day drifts if half the watched features drift (a week of per-origin delay
    # rates always looks shifted against a 90-day reference, so a quarter would fire weekly)
    feature_share: float = 0.5
    # Calibrated rule: each feature alarms on a few % of held-out weeks, and weather features
    # move together; a fifth of them at once is more than the training weeks did.
    alarm_share: float = 0.2
    prediction_psi: float = 0.2  # either rule: the predictions' PSI reaching this

    def __post_init__(self):
        if self.window_days < 1:
            raise ValueError(f"the drift window must be at least one day, not {self.window_days}")
