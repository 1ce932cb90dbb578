"""KPI arithmetic of docs/kpis.md, on hand-made inputs."""

import pytest

from unified_assets.lib.monitoring import kpis


def test_rel_cicd_counts_crashes_and_rollbacks_not_rejections():
    decisions = [{"status": "promoted"}, {"status": "rejected"}, {"status": "rejected"},
                 {"status": "promoted"}, {"status": "rolled_back"}]
    failed = [{"job": "retrain_delay_classifier", "kind": "retrain"},
              {"job": "retrain_delay_classifier", "kind": "retrain", "gate_rejection": True},
              {"job": "ingest_daily", "kind": None}]
    rel = kpis.rel_cicd(decisions, failed)
    # attempts: 4 decisions + 1 crashed retraining; failures: the crash and the rollback
    assert rel == {"value": pytest.approx(1 - 2 / 5), "attempts": 5, "failures": 2,
                   "crashed_runs": 1, "rollbacks": 1}
    assert kpis.rel_cicd([{"status": "rejected"}], [])["value"] == 1.0
    assert kpis.rel_cicd([], [])["value"] is None


def test_enterprise_value_follows_its_formula():
    settings = kpis.KpiSettings(priority={"a": 2.0}, reference_rows_per_s=1000.0)
    models = [
        {"name": "a", "manifest": {"metrics": {"test": {"auc": 0.73, "baseline_auc": 0.57}}},
         "rows_per_s": 5000.0, "cost_s": 20.0},
        {"name": "b", "manifest": {"metrics": {"test": {"mae": 20.0, "skill": 0.2}}},
         "rows_per_s": 1000.0, "cost_s": 10.0},
        {"name": "c", "manifest": {"metrics": {"test": {}}}, "rows_per_s": 1.0, "cost_s": 1.0},
    ]
    ev = kpis.enterprise_value(models, settings)
    a = 2.0 * (0.73 - 0.57) * 5.0 / 20.0
    b = 1.0 * 0.2 * 1.0 / 10.0
    assert ev["value"] == pytest.approx(a + b)
    assert [m["model"] for m in ev["models"]] == ["a", "b"]  # c has no gain to count


def test_latency_sums_the_path_by_layer():
    steps = [{"layer": "raw", "seconds": 0.5}, {"layer": "raw", "seconds": 0.25},
             {"layer": "features", "seconds": 1.0}, {"layer": "marts", "seconds": 9.0}]
    result = kpis.latency(steps)
    assert result["by_layer_s"]["raw"] == 0.75 and result["by_layer_s"]["serving"] == 0.0
    assert result["total_s"] == 1.75  # marts are not on the path to a prediction


def test_priority_weights_are_parsed_per_model():
    parsed = kpis.KpiSettings.parse("delay_classifier=2, departures_forecaster=.5")
    assert parsed.priority == {"delay_classifier": 2.0, "departures_forecaster": 0.5}
    assert kpis.KpiSettings.parse().priority == {}
    with pytest.raises(ValueError, match="not model=weight"):
        kpis.KpiSettings.parse("delay_classifier")
    with pytest.raises(ValueError, match="must be positive"):
        kpis.KpiSettings.parse("", 0)
