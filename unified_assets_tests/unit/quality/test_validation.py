"""pandera schemas split into blocking and warning failures; the DQ score (docs/kpis.md)."""

from datetime import date

import pandas as pd
import pytest

from unified_assets.lib.core import database
from unified_assets.lib.core.config import QualitySettings
from unified_assets.lib.quality import validation


def mart(**changes) -> pd.DataFrame:
    row = dict(
        month=pd.Timestamp("2013-01-01"), carrier="UA", origin="EWR", flights=10, cancelled=1,
        diverted=1, arrived=8, on_time_rate=0.75, mean_dep_delay_min=5.0,
        mean_arr_delay_min=3.0, p90_dep_delay_min=30.0, p90_arr_delay_min=40.0,
    )
    return pd.DataFrame([row | changes])


def test_clean_frame_passes():
    outcome = validation.validate("marts.carrier_origin_monthly", mart())
    assert outcome.rows == 1 and outcome.blocking.empty and outcome.warnings.empty


def test_blocking_failures_are_collected_lazily():
    frame = pd.concat([mart(on_time_rate=1.5), mart(arrived=3), mart(on_time_rate=-1)])
    outcome = validation.validate("marts.carrier_origin_monthly", frame.reset_index(drop=True))
    summary = validation.Validation.summary(outcome.blocking)
    assert summary["on_time_rate: in_range(0, 1)"] == 2
    assert any("outcomes_add_up" in k for k in summary)  # all failures, not the first
    assert "month+carrier+origin" not in summary
    assert any("multiple_fields_uniqueness" in k for k in summary)  # three rows, same key


def test_warnings_do_not_block():
    outcome = validation.validate(
        "marts.carrier_origin_monthly", mart(cancelled=10, diverted=0, arrived=0)
    )
    assert outcome.blocking.empty
    summary = validation.Validation.summary(outcome.warnings)
    assert any("warn_not_all_cancelled" in k for k in summary)


def test_missing_column_blocks():
    outcome = validation.validate("marts.carrier_origin_monthly", mart().drop(columns=["flights"]))
    assert not outcome.blocking.empty


def test_dq_score_weights():
    assert validation.dq_score(1.0, 0.5, 0.0, QualitySettings()) == pytest.approx(0.5)
    weights = QualitySettings(alpha=2, beta=1, gamma=1)
    assert validation.dq_score(1.0, 0.5, 0.0, weights) == pytest.approx(2.5 / 4)
    # nothing curated: C and A unmeasurable, the score is the validity alone
    assert validation.dq_score(None, None, 0.0, weights) == 0.0
    assert validation.dq_score(None, None, None, weights) is None


def test_dq_weights_must_be_usable():
    with pytest.raises(ValueError, match="not all zero"):
        QualitySettings(alpha=0, beta=0, gamma=0)
    with pytest.raises(ValueError, match="non-negative"):
        QualitySettings(alpha=-1)
    with pytest.raises(ValueError, match="quarantine share"):
        QualitySettings(max_quarantine_share=1.5)


def test_measure_completeness_accuracy_validity(tmp_path):
    conn = database.connect(tmp_path / "w.duckdb")
    database.ensure_schemas(conn)
    conn.execute(
        "CREATE TABLE marts.carrier_origin_monthly AS SELECT * FROM (VALUES "
        "(DATE '2013-01-01', 'UA', 'EWR', 10, 1, 1, 8, 0.5, 1.0, 2.0, 3.0, 4.0), "
        "(DATE '2013-01-01', 'AA', 'EWR', 10, 1, 1, 7, NULL, 1.0, NULL, 3.0, 4.0), "
        "(DATE '2013-02-01', 'AA', 'EWR', 10, 1, 1, 8, 1.5, 1.0, 2.0, 3.0, 4.0)) t(month, "
        "carrier, origin, flights, cancelled, diverted, arrived, on_time_rate, "
        "mean_dep_delay_min, mean_arr_delay_min, p90_dep_delay_min, p90_arr_delay_min)"
    )
    scores = validation.measure(
        conn, "marts.carrier_origin_monthly", date(2013, 1, 1), date(2013, 3, 1)
    ).set_index("partition_date")
    jan, feb = scores.loc[pd.Timestamp("2013-01-01")], scores.loc[pd.Timestamp("2013-02-01")]
    # January: 6 required cells, 4 present; one of two rows does not add up
    assert jan["rows"] == 2
    assert jan["completeness"] == pytest.approx(4 / 6)
    assert jan["accuracy"] == pytest.approx(0.5)
    assert jan["validity"] == pytest.approx(1.0)
    assert jan["dq"] == pytest.approx((4 / 6 + 0.5 + 1.0) / 3)
    # February: the on-time rate 1.5 is invalid
    assert feb["validity"] == pytest.approx(0.0)
    validation.record(conn, scores.reset_index(), "marts.carrier_origin_monthly",
                   date(2013, 1, 1), date(2013, 3, 1), pd.Timestamp("2026-01-01"),
                   QualitySettings())
    validation.record(conn, scores.reset_index(), "marts.carrier_origin_monthly",
                   date(2013, 1, 1), date(2013, 3, 1), pd.Timestamp("2026-01-01"),
                   QualitySettings())
    assert conn.execute("SELECT count(*) FROM monitoring.data_quality").fetchone()[0] == 2
