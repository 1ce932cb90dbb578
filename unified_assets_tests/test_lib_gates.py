"""The deployment gate: KPI math, each gate at its boundary in both directions, the decision."""

from __future__ import annotations

import dataclasses
import math

import pytest

from unified_assets.lib import gates as g

AUC = g.Gates(
    metric_floor=0.65,
    champion_tolerance=0.01,
    amdr_threshold=0.5,
    max_slice_gap=0.1,
    higher_is_better=True,
)
MAE = dataclasses.replace(AUC, metric_floor=20.0, champion_tolerance=0.5, higher_is_better=False)


def run(gates: g.Gates, **overrides) -> dict[str, g.GateResult]:
    passing = {
        "primary": 0.75 if gates.higher_is_better else 10.0,
        "champion_primary": None,
        "amdr_value": 0.9,
        "slice_gap": 0.0,
        "smoke_ok": True,
    }
    results = g.evaluate(gates, **(passing | overrides))
    assert [r.name for r in results] == list(g.GATE_NAMES)
    return {r.name: r for r in results}


def test_kpi_math():
    assert g.amdr(0.9, 0.4, 0.7) == 0.4
    assert g.amdr(0.3, 0.4, 0.7) == 0.3
    assert math.isnan(g.amdr(0.9, math.nan, 0.7))
    assert g.fee(3, 12) == 0.25
    assert g.fee(0, 5) == 0.0
    with pytest.raises(ValueError):
        g.fee(1, 0)
    with pytest.raises(ValueError):
        g.fee(6, 5)
    assert g.v_val("binary", 0.72) == 0.72
    assert g.v_val("regression", 6.0, baseline_error=8.0) == pytest.approx(0.25)
    assert g.v_val("forecast", 2.0, baseline_error=8.0) == pytest.approx(0.75)
    assert g.v_val("regression", 10.0, baseline_error=8.0) == 0.0  # worse than naive: clipped
    with pytest.raises(ValueError):
        g.v_val("regression", 6.0)
    with pytest.raises(ValueError):
        g.v_val("forecast", 6.0, baseline_error=0.0)
    with pytest.raises(ValueError):
        g.v_val("ranking", 0.5)


@pytest.mark.parametrize(
    ("gates", "at", "past"),
    [(AUC, 0.65, 0.6499), (MAE, 20.0, 20.01)],
    ids=["higher_is_better", "lower_is_better"],
)
def test_metric_floor_boundary(gates, at, past):
    passed = run(gates, primary=at)["metric_floor"]
    assert passed.passed and passed.value == at and passed.threshold == gates.metric_floor
    assert passed.comparison == (">=" if gates.higher_is_better else "<=")
    assert not run(gates, primary=past)["metric_floor"].passed
    assert not run(gates, primary=math.nan)["metric_floor"].passed


@pytest.mark.parametrize(
    ("gates", "champion", "at_tolerance", "past_tolerance", "better"),
    [
        (AUC, 0.72, 0.71, 0.7099, 0.80),
        (MAE, 12.0, 12.5, 12.51, 11.0),
    ],
    ids=["higher_is_better", "lower_is_better"],
)
def test_champion_boundary(gates, champion, at_tolerance, past_tolerance, better):
    at = run(gates, primary=at_tolerance, champion_primary=champion)["champion"]
    assert at.passed and "worse by" in at.detail
    assert at.value == pytest.approx(gates.champion_tolerance)
    past = run(gates, primary=past_tolerance, champion_primary=champion)["champion"]
    assert not past.passed and "worse by" in past.detail
    good = run(gates, primary=better, champion_primary=champion)["champion"]
    assert good.passed and "better by" in good.detail and good.value < 0


def test_champion_passes_without_a_champion():
    for gates in (AUC, MAE):
        result = run(gates, champion_primary=None)["champion"]
        assert result.passed and result.value is None and "no champion" in result.detail


@pytest.mark.parametrize("gates", [AUC, MAE], ids=["higher_is_better", "lower_is_better"])
def test_amdr_slice_gap_and_smoke_boundaries(gates):
    assert run(gates, amdr_value=0.5)["amdr"].passed
    assert not run(gates, amdr_value=0.4999)["amdr"].passed
    assert not run(gates, amdr_value=math.nan)["amdr"].passed
    assert run(gates, slice_gap=0.1)["slice_gap"].passed
    assert not run(gates, slice_gap=0.1001)["slice_gap"].passed
    assert run(gates, smoke_ok=True)["smoke_test"].passed
    failed = g.evaluate(gates, 0.75 if gates.higher_is_better else 10.0, None, 0.9, 0.0, False,
                        "predict() returned NaN")  # fmt: skip
    assert not failed[-1].passed and failed[-1].detail == "predict() returned NaN"


def test_decide():
    assert g.decide(list(run(AUC).values())) == ("promoted", [])
    results = run(AUC, primary=0.6, slice_gap=0.3)
    status, reasons = g.decide(list(results.values()))
    assert status == "rejected"
    assert len(reasons) == 2
    assert reasons[0].startswith("metric_floor: ") and "0.6000" in reasons[0]
    assert reasons[1].startswith("slice_gap: ") and "0.3000" in reasons[1]
    assert g.decide([]) == ("rejected", ["no gates were evaluated"])


def test_results_serialise_to_plain_dicts():
    result = run(AUC)["amdr"]
    assert result.as_dict() == dataclasses.asdict(result)
    assert set(result.as_dict()) == {
        "name",
        "passed",
        "value",
        "threshold",
        "comparison",
        "detail",
    }
