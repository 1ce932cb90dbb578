"""The deployment gate: KPIs (docs/kpis.md) and the five gates a challenger must pass.

Pure functions, no I/O. The primary metric is AUC for classifiers (higher is better) and MAE
for regressors and forecasters (lower is better); `Gates.higher_is_better` says which. The
champion gate reads a `compare.Comparison` of challenger and champion on the same rows.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

from unified_assets.lib.deployment.compare import Comparison

CLASSIFIER_TASKS = ("binary",)
ERROR_TASKS = ("regression", "forecast")
GATE_NAMES = ("metric_floor", "champion", "amdr", "slice_gap", "smoke_test")

# Slack for differences of floats (0.72 - 0.01 is not exactly 0.71), so a boundary passes.
_EPS = 1e-12


def amdr(dq: float, fee: float, v_val: float) -> float:
    """Deployment readiness: min(DQ, FEE, V_val); NaN when any input is NaN."""
    values = [float(dq), float(fee), float(v_val)]
    if any(math.isnan(v) for v in values):
        return math.nan
    return min(values)


def fee(selected: int, generated: int) -> float:
    """Feature engineering efficiency: selected / generated features."""
    if generated <= 0:
        raise ValueError(f"FEE needs at least one generated feature, got generated={generated}")
    if not 0 <= selected <= generated:
        raise ValueError(f"selected={selected} must be within 0..generated={generated}")
    return selected / generated


def v_val(task: str, primary_metric: float, baseline_error: float | None = None) -> float:
    """Validation performance on 0..1: AUC for "binary"; skill vs. the naive baseline else.

    For "regression" and "forecast" the primary metric is the model's error (MAE) and the
    value is max(0, 1 - error / baseline_error).
    """
    if task in CLASSIFIER_TASKS:
        return float(primary_metric)
    if task in ERROR_TASKS:
        if baseline_error is None or not baseline_error > 0:
            raise ValueError(
                f"V_val for a {task} model needs a positive baseline_error, got {baseline_error}"
            )
        return max(0.0, 1.0 - float(primary_metric) / float(baseline_error))
    raise ValueError(f"unknown task {task!r}; expected one of {CLASSIFIER_TASKS + ERROR_TASKS}")


@dataclass(frozen=True)
class GateResult:
    name: str
    passed: bool
    value: float | None
    threshold: float | None
    comparison: str
    detail: str

    def as_dict(self) -> dict:
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class Gates:
    """A spec's thresholds. `champion_tolerance` is the non-inferiority margin, in the primary
    metric's units: the challenger replaces the champion unless, at `champion_confidence`
    (one-sided), it may be worse than the champion by more than the margin."""

    metric_floor: float
    champion_tolerance: float
    amdr_threshold: float
    max_slice_gap: float
    higher_is_better: bool
    champion_confidence: float = 0.95

    def __post_init__(self):
        if not self.champion_tolerance >= 0:
            raise ValueError(f"champion_tolerance (the margin) must be >= 0, "
                             f"not {self.champion_tolerance}")
        if not 0.5 < self.champion_confidence < 1:
            raise ValueError(f"champion_confidence must be within (0.5, 1), "
                             f"not {self.champion_confidence}")


def _fmt(value: float | None) -> str:
    return "none" if value is None else f"{value:.4f}"


def _metric_floor(gates: Gates, primary: float, champion: Comparison | None = None
                  ) -> GateResult:
    """The primary metric at or beyond its floor; or, in a window where the serving champion,
    scored on the same rows, misses the floor too, passed: the floor then says nothing about
    which of the two to serve, and the champion gate decides (a hard fortnight, such as July's
    delays, would otherwise keep every challenger out and the champion ageing)."""

    def meets(value: float) -> bool:
        floor = gates.metric_floor
        return value >= floor if gates.higher_is_better else value <= floor

    comparison = ">=" if gates.higher_is_better else "<="
    passed = meets(primary)
    detail = (f"primary metric {_fmt(primary)} {'meets' if passed else 'misses'} the floor "
              f"({comparison} {_fmt(gates.metric_floor)})")
    if not passed and champion is not None and not meets(champion.champion):
        passed = not math.isnan(champion.champion)
        detail += (f"; so does the champion on the same {champion.n:,} rows "
                   f"({_fmt(champion.champion)}): the champion gate decides between them")
    return GateResult("metric_floor", bool(passed), primary, gates.metric_floor, comparison,
                      detail)


def _signed(value: float) -> str:
    return f"{value:+.4f}"


def _champion(gates: Gates, champion: Comparison | None) -> GateResult:
    """Promote unless the challenger may be worse than the champion by more than the margin:
    passed when the one-sided lower confidence bound of (challenger - champion, positive =
    better) is at least -margin. Its value is that bound, its threshold -margin."""
    margin = gates.champion_tolerance
    if champion is None:
        return GateResult("champion", True, None, -margin, ">=",
                          "no champion: nothing to compare against")
    if not (math.isclose(champion.margin, margin, abs_tol=_EPS)
            and math.isclose(champion.confidence, gates.champion_confidence)):
        return GateResult(
            "champion", False, None, -margin, "comparable",
            f"the evaluation compared at margin {_fmt(champion.margin)} and confidence "
            f"{champion.confidence:.0%}, the gate asks for {_fmt(margin)} at "
            f"{gates.champion_confidence:.0%}: evaluate again",
        )
    lower = champion.lower
    passed = lower >= -margin - _EPS  # NaN: not shown, not passed
    how = ("DeLong" if champion.method == "delong" else
           f"paired bootstrap, {champion.replicates} replicates")
    if champion.p_value is not None:
        how += f", p={champion.p_value:.4f}"
    verdict = ("not worse beyond the margin" if passed else
               "may be worse by more than the margin: the champion stays")
    detail = (
        f"challenger {champion.metric.upper()} {_fmt(champion.challenger)} vs champion "
        f"{_fmt(champion.champion)} on the same {champion.n:,} rows: difference "
        f"{_signed(champion.difference)} (positive: challenger better), "
        f"{2 * champion.confidence - 1:.0%} interval "
        f"{_signed(lower)}..{_signed(champion.upper)} (width {_fmt(champion.width)}; {how}); "
        f"lower bound at {champion.confidence:.0%} {_signed(lower)} "
        f"{'>=' if passed else '<'} -margin {_signed(-margin)}: {verdict}"
    )
    if not champion.enough_rows:
        detail += (f"; only {champion.n:,} rows, fewer than the {champion.min_rows:,} a "
                   "decision needs: the interval is wide, the test window too short to tell")
    return GateResult("champion", bool(passed), lower, -margin, ">=", detail)


def evaluate(
    gates: Gates,
    primary: float,
    champion: Comparison | None,
    amdr_value: float,
    slice_gap: float,
    smoke_ok: bool,
    smoke_detail: str = "",
) -> list[GateResult]:
    """The five gates, in order: metric_floor, champion, amdr, slice_gap, smoke_test.

    `champion` is the comparison with the current champion on the same rows (None: no
    champion). A NaN value fails its gate (every comparison with NaN is false).
    """
    amdr_ok = amdr_value >= gates.amdr_threshold
    gap_ok = slice_gap <= gates.max_slice_gap
    return [
        _metric_floor(gates, primary, champion),
        _champion(gates, champion),
        GateResult(
            "amdr",
            bool(amdr_ok),
            amdr_value,
            gates.amdr_threshold,
            ">=",
            f"AMDR {_fmt(amdr_value)} {'meets' if amdr_ok else 'is below'} the threshold "
            f"{_fmt(gates.amdr_threshold)}",
        ),
        GateResult(
            "slice_gap",
            bool(gap_ok),
            slice_gap,
            gates.max_slice_gap,
            "<=",
            f"worst slice gap {_fmt(slice_gap)} {'within' if gap_ok else 'exceeds'} the "
            f"maximum {_fmt(gates.max_slice_gap)}",
        ),
        GateResult(
            "smoke_test",
            bool(smoke_ok),
            None,
            None,
            "is true",
            smoke_detail or ("smoke test passed" if smoke_ok else "smoke test failed"),
        ),
    ]


def decide(results: list[GateResult]) -> tuple[str, list[str]]:
    """("promoted", []) when every gate passed, else ("rejected", the failed gates' reasons).

    No results at all is a rejection: a decision needs evidence.
    """
    if not results:
        return "rejected", ["no gates were evaluated"]
    reasons = [f"{r.name}: {r.detail}" for r in results if not r.passed]
    return ("rejected", reasons) if reasons else ("promoted", [])
