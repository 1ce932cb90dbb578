"""Champion against challenger, decided with statistics: is the challenger not worse than the
champion beyond a margin, at a stated confidence, on the same rows?

A good classifier's AUC moves by several points between two fortnights, so two point values
compared with a tolerance decide little. Both models are scored on the same rows, so the
comparison is paired: the rows' difficulty cancels, and what is left is the difference between
the models. Plain numpy and scipy, no Dagster.

- `delong`: DeLong's test for two correlated AUCs on the same rows (DeLong, DeLong &
  Clarke-Pearson 1988), computed from midranks in O(n log n) as Sun & Xu (2014) describe.
- `paired_bootstrap`: a percentile bootstrap of the metric difference; each replicate draws
  one set of row indices and scores both models on it. For the named metrics a replicate is
  O(n) array work on row counts, with no sorting (about 1 s for 1,000 replicates of 100k rows).
- `non_inferiority`: the decision the champion gate uses: DeLong for a classifier, the paired
  bootstrap of MAE otherwise.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

BINARY = "binary"
TASK_METRIC = {"binary": "auc", "regression": "mae", "forecast": "mae"}
MIN_ROWS = {"binary": 2_000, "regression": 2_000, "forecast": 28}
"""Fewer rows than this (flights; origin-days for the forecaster) give an interval too wide to
tell a small loss from none: the decision is still made, and the gate says so."""

REPLICATES = 1_000
MAX_REPLICATES = 10_000
SEED = 0
_HIGHER_IS_BETTER = {"auc": True, "mae": False, "rmse": False, "brier": False}
_CHUNK_CELLS = 1 << 22  # row indices drawn at once (replicates x rows): 32 MB of int64
_EPS = 1e-12  # slack for float differences at the boundary (0.72 - 0.01 is not 0.71)


# -- DeLong ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class DeLong:
    """AUC of `a` and of `b` on the same rows, their difference a - b, its standard error, and
    the two-sided p-value of "the two AUCs are equal"."""

    auc_a: float
    auc_b: float
    difference: float
    se: float
    z: float
    p_value: float
    positives: int
    negatives: int


def _midranks(x: np.ndarray) -> np.ndarray:
    """Ranks 1..n, tied values sharing the mean of their ranks."""
    _, inverse, counts = np.unique(x, return_inverse=True, return_counts=True)
    ends = np.cumsum(counts)
    return (ends - (counts - 1) / 2.0)[inverse]


def _binary_labels(y) -> np.ndarray:
    y = np.asarray(y, dtype=float)
    if not np.isin(y, (0.0, 1.0)).all():
        raise ValueError("AUC needs labels that are 0 or 1 (no missing values)")
    return y == 1.0


def _scores(y: np.ndarray, *scores) -> list[np.ndarray]:
    out = [np.asarray(s, dtype=float) for s in scores]
    for s in out:
        if s.shape != y.shape:
            raise ValueError(f"scores of shape {s.shape} for labels of shape {y.shape}")
        if not np.isfinite(s).all():
            raise ValueError(f"{int((~np.isfinite(s)).sum())} scores are missing or infinite")
    return out


def delong(y, a, b) -> DeLong:
    """DeLong's test of AUC(a) = AUC(b), both scored on the rows of `y` (0/1)."""
    positive = _binary_labels(y)
    a, b = _scores(positive, a, b)
    m, n = int(positive.sum()), int((~positive).sum())
    if m < 2 or n < 2:
        raise ValueError(f"DeLong needs at least two rows of each class, got {m} positive and "
                         f"{n} negative")
    aucs, v10, v01 = [], [], []
    for score in (a, b):
        overall = _midranks(score)
        among_pos = _midranks(score[positive])
        among_neg = _midranks(score[~positive])
        # For a positive: negatives ranked below it (half for a tie), over all negatives;
        # for a negative: positives ranked above it, over all positives.
        v10.append((overall[positive] - among_pos) / n)
        v01.append(1.0 - (overall[~positive] - among_neg) / m)
        aucs.append(float((overall[positive].sum() - m * (m + 1) / 2) / (m * n)))
    variance = np.var(v10[0] - v10[1], ddof=1) / m + np.var(v01[0] - v01[1], ddof=1) / n
    se = math.sqrt(max(float(variance), 0.0))
    difference = aucs[0] - aucs[1]
    if se > 0:
        z = difference / se
        from scipy import stats  # here, not at import: the service reads gates, never tests

        p = float(2 * stats.norm.sf(abs(z)))
    else:  # identical rankings (or every row ranked the same way by both)
        z = 0.0 if difference == 0 else math.copysign(math.inf, difference)
        p = 1.0 if difference == 0 else 0.0
    return DeLong(aucs[0], aucs[1], difference, se, z, p, m, n)


# -- paired bootstrap --------------------------------------------------------------------------
@dataclass(frozen=True)
class Interval:
    """A paired bootstrap of `metric`: both models' values, their difference oriented so that
    positive means the challenger is better, and the one-sided bounds at `confidence` (so
    [lower, upper] is the two-sided interval at 2 * confidence - 1)."""

    metric: str
    challenger: float
    champion: float
    difference: float
    lower: float
    upper: float
    confidence: float
    replicates: int
    valid_replicates: int
    seed: int


class _WeightedAuc:
    """AUC of one model's scores with each row counted as often as a resample drew it. The
    negatives are sorted by score once; a positive then wins against the negatives' count
    strictly below its score and half of the count tied with it, read from one cumulative sum:
    O(n) a replicate, no sorting, integer arithmetic (so the value is exact)."""

    def __init__(self, positive: np.ndarray, score: np.ndarray):
        negatives = np.flatnonzero(~positive)
        self.negatives = negatives[np.argsort(score[negatives], kind="stable")]
        ranked = score[self.negatives]
        self.positives = np.flatnonzero(positive)
        self.below = np.searchsorted(ranked, score[self.positives], side="left")
        self.up_to = np.searchsorted(ranked, score[self.positives], side="right")

    def __call__(self, counts: np.ndarray) -> float:
        cumulative = np.zeros(len(self.negatives) + 1, dtype=np.int64)
        np.cumsum(counts[self.negatives], out=cumulative[1:])
        pos = counts[self.positives]
        twice_wins = int((pos * (cumulative[self.below] + cumulative[self.up_to])).sum())
        drawn = int(pos.sum()) * int(cumulative[-1])
        return twice_wins / (2.0 * drawn) if drawn else math.nan


def _scorer(metric: str | Callable, y: np.ndarray, preds: list[np.ndarray]
            ) -> Callable[[np.ndarray], np.ndarray]:
    """row indices (replicates x n) -> the metric of each model on them (replicates x 2)."""
    if callable(metric):
        return lambda idx: np.array([[metric(y[i], p[i]) for p in preds] for i in idx], float)
    if metric == "auc":
        positive = _binary_labels(y)
        aucs = [_WeightedAuc(positive, p) for p in preds]

        def by_auc(idx: np.ndarray) -> np.ndarray:
            # one replicate at a time: its row counts and cumulative sums stay in cache
            out = np.empty((len(idx), len(aucs)))
            for r, rows in enumerate(idx):
                counts = np.bincount(rows, minlength=len(y))
                out[r] = [auc(counts) for auc in aucs]
            return out

        return by_auc
    if metric in ("mae", "rmse", "brier"):
        losses = np.column_stack([np.abs(y - p) if metric == "mae" else (y - p) ** 2
                                  for p in preds])

        def by_loss(idx: np.ndarray) -> np.ndarray:
            # a replicate's mean loss: its row counts against the rows' losses, both models
            mean = np.array([np.bincount(rows, minlength=len(y)) @ losses for rows in idx])
            mean /= idx.shape[1]
            return np.sqrt(mean) if metric == "rmse" else mean

        return by_loss
    raise ValueError(f"no vectorized metric {metric!r}; expected one of "
                     f"{sorted(_HIGHER_IS_BETTER)} or a callable")


def paired_bootstrap(y, challenger, champion, metric: str | Callable = "mae", *,
                     confidence: float = 0.95, replicates: int = REPLICATES, seed: int = SEED,
                     higher_is_better: bool | None = None) -> Interval:
    """Percentile bootstrap of the metric difference between two models on the same rows.

    Each replicate draws n row indices with replacement, once, and both models are scored on
    those rows. `metric` is "auc", "mae", "rmse" or "brier" (computed from the replicate's row
    counts in O(n) array work), or a callable `metric(y, pred) -> float` evaluated on each
    replicate's rows, for which `higher_is_better` must be given. Replicates where the metric
    is undefined (an AUC resample with one class) are dropped and counted. The same seed gives
    the same interval.
    """
    _check_confidence(confidence)
    if not 1 <= replicates <= MAX_REPLICATES:
        raise ValueError(f"replicates must be within 1..{MAX_REPLICATES}, not {replicates}")
    y = np.asarray(y, dtype=float)
    if y.ndim != 1 or len(y) == 0:
        raise ValueError("a bootstrap needs a non-empty one-dimensional label array")
    if not np.isfinite(y).all():
        raise ValueError(f"{int((~np.isfinite(y)).sum())} labels are missing or infinite")
    preds = _scores(y, challenger, champion)
    if callable(metric):
        if higher_is_better is None:
            raise ValueError("a callable metric needs higher_is_better")
        name = getattr(metric, "__name__", "metric")
    else:
        name = metric
        if higher_is_better is None:
            higher_is_better = _HIGHER_IS_BETTER.get(metric, False)
    score = _scorer(metric, y, preds)
    n = len(y)
    observed = score(np.arange(n)[None, :])[0]
    sign = 1.0 if higher_is_better else -1.0
    rng = np.random.default_rng(seed)
    chunk = max(1, min(replicates, _CHUNK_CELLS // n))
    diffs = []
    for start in range(0, replicates, chunk):
        idx = rng.integers(0, n, size=(min(chunk, replicates - start), n))
        per_model = score(idx)
        diffs.append(sign * (per_model[:, 0] - per_model[:, 1]))
    diff = np.concatenate(diffs)
    diff = diff[np.isfinite(diff)]
    if len(diff):
        lower, upper = np.quantile(diff, [1 - confidence, confidence])
    else:
        lower = upper = math.nan
    return Interval(name, float(observed[0]), float(observed[1]),
                    float(sign * (observed[0] - observed[1])), float(lower), float(upper),
                    confidence, replicates, int(len(diff)), seed)


# -- the decision ------------------------------------------------------------------------------
@dataclass(frozen=True)
class Comparison:
    """Is the challenger not worse than the champion beyond `margin`, at `confidence`?

    `difference` is the challenger's metric minus the champion's, oriented so that positive
    means the challenger is better (for MAE: champion's minus challenger's). `lower` and
    `upper` are its one-sided bounds at `confidence`; `promote` is lower >= -margin. For
    DeLong, `p_value` is the one-sided p-value of "the challenger is worse by the margin or
    more" (promote exactly when it is at most 1 - confidence); the bootstrap gives none.
    """

    task: str
    method: str  # "delong" | "paired_bootstrap"
    metric: str  # "auc" | "mae"
    n: int
    challenger: float
    champion: float
    difference: float
    lower: float
    upper: float
    width: float
    confidence: float
    margin: float
    promote: bool
    p_value: float | None
    se: float | None
    replicates: int | None
    seed: int | None
    min_rows: int
    enough_rows: bool

    def as_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: dict) -> Comparison:
        """From `as_dict()`'s output (a hand-off's JSON); unknown keys are ignored."""
        names = {f.name for f in dataclasses.fields(cls)}
        missing = names - set(values)
        if missing:
            raise ValueError(f"a comparison lacks {', '.join(sorted(missing))}")
        return cls(**{k: v for k, v in values.items() if k in names})


def _check_confidence(confidence: float) -> None:
    if not 0.5 < confidence < 1:
        raise ValueError(f"a one-sided confidence must be within (0.5, 1), not {confidence}")


def cannot_compare(task: str, y, *predictions) -> str | None:
    """Why the rows of `y` (and the models' `predictions` on them) cannot decide between two
    models of `task`, or None when they can."""
    y = np.asarray(y, dtype=float)
    if task not in TASK_METRIC:
        raise ValueError(f"unknown task {task!r}; expected one of {sorted(TASK_METRIC)}")
    if len(y) < 2:
        return f"{len(y)} test rows"
    for pred in predictions:
        missing = int((~np.isfinite(np.asarray(pred, dtype=float))).sum())
        if missing:
            return f"no prediction for {missing} of the {len(y)} test rows"
    if task == BINARY:
        positives, negatives = int((y == 1).sum()), int((y == 0).sum())
        if positives < 2 or negatives < 2:
            return (f"the test rows have {positives} positive and {negatives} negative labels: "
                    "AUC needs at least two of each")
    return None


def non_inferiority(task: str, y, challenger, champion, margin: float,
                    confidence: float = 0.95, *, replicates: int = REPLICATES,
                    seed: int = SEED) -> Comparison:
    """Challenger against champion on the same rows: promote when the one-sided lower
    confidence bound of (challenger - champion, positive = better) is at least -margin.

    A classifier ("binary") is compared by AUC with DeLong's test; a regressor or forecaster
    by MAE with the paired bootstrap (`replicates`, `seed`). `margin` is in the metric's units.
    """
    if not margin >= 0:
        raise ValueError(f"the non-inferiority margin must be >= 0, not {margin}")
    _check_confidence(confidence)
    reason = cannot_compare(task, y)
    if reason:
        raise ValueError(f"cannot compare two {task} models: {reason}")
    n = len(np.asarray(y))
    p_value = se = None
    if task == BINARY:
        test = delong(y, challenger, champion)
        from scipy import stats

        z = float(stats.norm.ppf(confidence))
        se, difference = test.se, test.difference
        lower, upper = difference - z * se, difference + z * se
        if se > 0:
            p_value = float(stats.norm.sf((difference + margin) / se))
        else:
            p_value = 0.0 if difference >= -margin else 1.0
        values, method, rep, used_seed = (test.auc_a, test.auc_b), "delong", None, None
    else:
        interval = paired_bootstrap(y, challenger, champion, "mae", confidence=confidence,
                                    replicates=replicates, seed=seed)
        difference, lower, upper = interval.difference, interval.lower, interval.upper
        values, method = (interval.challenger, interval.champion), "paired_bootstrap"
        rep, used_seed = replicates, seed
    min_rows = MIN_ROWS[task]
    return Comparison(
        task=task, method=method, metric=TASK_METRIC[task], n=n, challenger=float(values[0]),
        champion=float(values[1]), difference=float(difference), lower=float(lower),
        upper=float(upper), width=float(upper - lower), confidence=confidence,
        margin=float(margin), promote=bool(lower >= -margin - _EPS), p_value=p_value, se=se,
        replicates=rep, seed=used_seed, min_rows=min_rows, enough_rows=n >= min_rows,
    )
