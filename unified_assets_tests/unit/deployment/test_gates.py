"""The deployment gate: KPI math, each gate at its boundary in both directions, the decision."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest

from unified_assets.lib.deployment import compare
from unified_assets.lib.deployment import gates as g

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
        "champion": None,
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


def comparison(gates: g.Gates, lower: float, difference: float | None = None, n: int = 5_000,
               **changes) -> compare.Comparison:
    """A comparison as `compare.non_inferiority` makes it, with the lower bound given."""
    difference = lower + 0.01 if difference is None else difference
    binary = gates.higher_is_better
    champion = 0.72 if binary else 12.0
    values = dict(
        task="binary" if binary else "regression",
        method="delong" if binary else "paired_bootstrap", metric="auc" if binary else "mae",
        n=n, challenger=champion + difference if binary else champion - difference,
        champion=champion, difference=difference, lower=lower, upper=2 * difference - lower,
        width=2 * (difference - lower), confidence=gates.champion_confidence,
        margin=gates.champion_tolerance, promote=lower >= -gates.champion_tolerance,
        p_value=0.04 if binary else None, se=0.006 if binary else None,
        replicates=None if binary else 1000, seed=None if binary else 0,
        min_rows=2_000, enough_rows=n >= 2_000,
    )
    return compare.Comparison(**(values | changes))


@pytest.mark.parametrize("gates", [AUC, MAE], ids=["higher_is_better", "lower_is_better"])
def test_a_window_where_the_champion_misses_the_floor_too_is_left_to_the_champion_gate(gates):
    """July's delays put every model past the regressor's floor: a challenger is not refused
    for a window in which the model serving now does no better; the champion gate decides."""
    hard = 0.60 if gates.higher_is_better else 31.0  # past the floor
    both = comparison(gates, -0.001, champion=0.59 if gates.higher_is_better else 33.0)
    passed = run(gates, primary=hard, champion=both)
    assert passed["metric_floor"].passed and "so does the champion" in passed["metric_floor"].detail
    assert passed["metric_floor"].value == hard and g.decide(list(passed.values()))[0] == "promoted"
    # the champion meets the floor on those rows: the floor holds
    sound = comparison(gates, -0.001, champion=0.70 if gates.higher_is_better else 15.0)
    assert not run(gates, primary=hard, champion=sound)["metric_floor"].passed
    # no champion (a first model): the floor holds
    assert not run(gates, primary=hard)["metric_floor"].passed
    # both past the floor but the challenger worse beyond the margin: the champion stays
    worse = comparison(gates, -10 * gates.champion_tolerance,
                       champion=0.59 if gates.higher_is_better else 33.0)
    results = run(gates, primary=hard, champion=worse)
    assert results["metric_floor"].passed and not results["champion"].passed
    assert g.decide(list(results.values()))[0] == "rejected"


@pytest.mark.parametrize("gates", [AUC, MAE], ids=["higher_is_better", "lower_is_better"])
def test_champion_boundary_is_the_lower_bound_against_minus_the_margin(gates):
    margin = gates.champion_tolerance
    at = run(gates, champion=comparison(gates, -margin))["champion"]
    assert at.passed and at.value == -margin and at.threshold == -margin
    assert at.comparison == ">=" and "not worse beyond the margin" in at.detail
    past = run(gates, champion=comparison(gates, -margin - 0.0001))["champion"]
    assert not past.passed and "the champion stays" in past.detail
    # the observed difference may be small; a lower bound below -margin still keeps the champion
    unsure = run(gates, champion=comparison(gates, -3 * margin, difference=0.0))["champion"]
    assert not unsure.passed and unsure.value == -3 * margin
    better = run(gates, champion=comparison(gates, 0.02))["champion"]
    assert better.passed and better.value == 0.02
    assert not run(gates, champion=comparison(gates, math.nan))["champion"].passed


def test_champion_detail_names_the_method_the_rows_and_the_interval():
    delong = run(AUC, champion=comparison(AUC, -0.02))["champion"]
    assert "challenger AUC 0.7100 vs champion 0.7200 on the same 5,000 rows" in delong.detail
    assert "difference -0.0100" in delong.detail and "DeLong, p=0.0400" in delong.detail
    assert "90% interval -0.0200..+0.0000" in delong.detail and "width 0.0200" in delong.detail
    assert "lower bound at 95% -0.0200 < -margin -0.0100" in delong.detail
    bootstrap = run(MAE, champion=comparison(MAE, 0.1))["champion"]
    assert "paired bootstrap, 1000 replicates" in bootstrap.detail and "MAE" in bootstrap.detail
    assert "fewer than" not in bootstrap.detail


@pytest.mark.parametrize("gates", [AUC, MAE], ids=["higher_is_better", "lower_is_better"])
def test_a_short_window_is_said_in_the_detail_and_the_interval_still_decides(gates):
    wide = run(gates, champion=comparison(gates, -5 * gates.champion_tolerance, n=900))
    assert not wide["champion"].passed
    assert "only 900 rows, fewer than the 2,000 a decision needs" in wide["champion"].detail
    sure = run(gates, champion=comparison(gates, 0.001, n=900))["champion"]
    assert sure.passed and "too short to tell" in sure.detail


def test_a_comparison_at_another_margin_or_confidence_is_not_used():
    other_margin = comparison(AUC, 0.05, margin=0.02)
    result = run(AUC, champion=other_margin)["champion"]
    assert not result.passed and result.comparison == "comparable"
    assert "evaluate again" in result.detail
    other_confidence = comparison(AUC, 0.05, confidence=0.9)
    assert not run(AUC, champion=other_confidence)["champion"].passed
    strict = dataclasses.replace(AUC, champion_confidence=0.99)
    assert run(strict, champion=comparison(strict, 0.05))["champion"].passed


def test_the_gate_decides_on_a_real_comparison():
    rng = np.random.default_rng(0)
    y = (rng.random(5_000) < 0.3).astype(float)
    good = y + rng.normal(0, 1, len(y))
    noise = rng.normal(0, 1, len(y))
    same = compare.non_inferiority("binary", y, good, good.copy(), AUC.champion_tolerance)
    assert run(AUC, champion=same)["champion"].passed
    worse = compare.non_inferiority("binary", y, noise, good, AUC.champion_tolerance)
    assert not run(AUC, champion=worse)["champion"].passed


def test_gate_settings_are_checked():
    assert AUC.champion_confidence == 0.95  # the default
    with pytest.raises(ValueError, match="champion_confidence"):
        dataclasses.replace(AUC, champion_confidence=1.0)
    with pytest.raises(ValueError, match="margin"):
        dataclasses.replace(AUC, champion_tolerance=-0.01)


def test_champion_passes_without_a_champion():
    for gates in (AUC, MAE):
        result = run(gates, champion=None)["champion"]
        assert result.passed and result.value is None and "no champion" in result.detail
        assert result.threshold == -gates.champion_tolerance


@pytest.mark.parametrize("gates", [AUC, MAE], ids=["higher_is_better", "lower_is_better"])
def test_amdr_slice_gap_and_smoke_boundaries(gates):
    assert run(gates, amdr_value=0.5)["amdr"].passed
    assert not run(gates, amdr_value=0.4999)["amdr"].passed
    assert not run(gates, amdr_value=math.nan)["amdr"].passed
    assert run(gates, slice_gap=0.1)["slice_gap"].passed
    assert not run(gates, slice_gap=0.1001)["slice_gap"].passed
    assert run(gates, smoke_ok=True)["smoke_test"].passed
    failed = g.evaluate(gates, 0.75 if gates.higher_is_better else 10.0, None, 0.9, 0.0, False,
                        "predict() returned NaN")
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
