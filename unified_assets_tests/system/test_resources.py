"""The settings resource: one place for every setting, defaults from the environment."""

from __future__ import annotations

import dagster as dg
import pytest

from unified_assets.defs.settings import Settings
from unified_assets.lib.core import config
from unified_assets.lib.models.specs import DELAY_CLASSIFIER, Rolling
from unified_assets.lib.monitoring.retraining import RetrainPolicy


def test_defaults_need_no_environment(monkeypatch):
    for name in Settings.model_fields:
        monkeypatch.delenv(f"UNIFIED_ASSETS_{name.upper()}", raising=False)
    settings = Settings.from_env()
    assert settings.home_path == config.default_home()
    assert settings.warehouse_path == config.default_home() / "unified_assets.duckdb"
    assert settings.quality() == config.QualitySettings()
    assert settings.lead_minutes() == 120
    assert settings.budget(DELAY_CLASSIFIER) == DELAY_CLASSIFIER.budget
    assert settings.rolling() is None
    assert settings.retrain_policy() == RetrainPolicy()  # the settings and lib agree
    assert settings.drift_policy().window_days == 7
    assert settings.automation is False


def test_environment_variables_override_each_kind_of_field(monkeypatch, tmp_path):
    monkeypatch.setenv("UNIFIED_ASSETS_HOME", str(tmp_path))
    monkeypatch.setenv("UNIFIED_ASSETS_DQ_ALPHA", "3")
    monkeypatch.setenv("UNIFIED_ASSETS_FEATURE_LEAD_MINUTES", " 45 ")
    monkeypatch.setenv("UNIFIED_ASSETS_ROLLING_DAYS", "14,7,7")
    monkeypatch.setenv("UNIFIED_ASSETS_AUTOMATION", "on")
    monkeypatch.setenv("UNIFIED_ASSETS_EV_PRIORITY", "delay_classifier=2")
    settings = Settings.from_env()
    # text and whole numbers stay EnvVars, so the UI's resource page names the variable
    assert isinstance(settings.home, dg.EnvVar)
    assert settings.home_path == tmp_path
    assert settings.quality().alpha == 3.0
    assert settings.lead_minutes() == 45
    assert settings.rolling() == Rolling(14, 7, 7)
    assert settings.rolling("30,7,7") == Rolling(30, 7, 7)  # a run's choice comes first
    assert settings.kpi_settings().priority == {"delay_classifier": 2.0}
    assert settings.automation is True
    # explicit values (the replay's, a test's) beat the environment
    assert Settings.from_env(home="/elsewhere").home_path.as_posix() == "/elsewhere"


def test_a_bad_value_names_its_variable(monkeypatch):
    monkeypatch.setenv("UNIFIED_ASSETS_DQ_BETA", "x")
    with pytest.raises(ValueError, match="UNIFIED_ASSETS_DQ_BETA='x'"):
        Settings.from_env()
    monkeypatch.delenv("UNIFIED_ASSETS_DQ_BETA")
    monkeypatch.setenv("UNIFIED_ASSETS_FEATURE_LEAD_MINUTES", "two hours")
    with pytest.raises(ValueError, match="UNIFIED_ASSETS_FEATURE_LEAD_MINUTES"):
        Settings.from_env()
    with pytest.raises(ValueError, match="must be >= 0"):
        Settings(feature_lead_minutes=-10).lead_minutes()
    monkeypatch.delenv("UNIFIED_ASSETS_FEATURE_LEAD_MINUTES")
    # alert channels are checked when the settings are read, not at the first alert
    monkeypatch.setenv("UNIFIED_ASSETS_ALERT_SMTP_HOST", "mail.example.com")
    with pytest.raises(ValueError, match="recipients"):
        Settings.from_env()
    monkeypatch.delenv("UNIFIED_ASSETS_ALERT_SMTP_HOST")
    monkeypatch.setenv("UNIFIED_ASSETS_ALERT_WEBHOOK_FORMAT", "teams")
    with pytest.raises(ValueError, match="format"):
        Settings.from_env()


def test_budget_comes_from_the_run_then_the_settings_then_the_spec():
    assert Settings(search_budget=2).budget(DELAY_CLASSIFIER, run_budget=5) == 5
    assert Settings(search_budget=2).budget(DELAY_CLASSIFIER) == 2
    assert Settings().budget(DELAY_CLASSIFIER) == DELAY_CLASSIFIER.budget


def test_the_settings_show_on_the_resource_page_with_their_values(tmp_path):
    """What a resource page shows comes from the resource's config schema: every field, typed."""
    from unified_assets.definitions import build_defs

    settings = Settings(home=str(tmp_path), search_budget=3)
    defs = build_defs(settings)
    assert defs.resources["settings"] is settings
    assert defs.resources["warehouse"].settings is settings
    shown = defs.get_repository_def().get_top_level_resources()["settings"]
    assert set(shown.config_schema.config_type.fields) == set(Settings.model_fields)
