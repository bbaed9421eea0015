"""How good the models are on data they never saw: errors, intervals, calibration, importances.

Every metric is a plain float keyed by name so that it can go into the manifest as-is
(`metrics[target][name]`); a metric that is undefined on the data (no expectations in real
history, a single class in the test split) is left out rather than written as NaN.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import msgspec
import numpy as np
import numpy.typing as npt
from sklearn.inspection import permutation_importance
from sklearn.metrics import brier_score_loss, log_loss, r2_score, roc_auc_score

from server.domain.artifact import CalibrationBin, confidence_score
from server.domain.features import FEATURE_NAMES
from train.data import Dataset
from train.models import FittedModels, ModelSettings, fit_point_models

__all__ = [
    "IMPORTANCE_ROWS",
    "LearningPoint",
    "calibration_table",
    "classifier_metrics",
    "confidence_metrics",
    "expected_calibration_error",
    "learning_curve",
    "learning_curve_sizes",
    "permutation_importances",
    "population_metrics",
    "regression_metrics",
    "tercile_coverage",
]

Floats = npt.NDArray[np.float64]
Outputs = dict[str, Floats]
IMPORTANCE_ROWS = 2000


class LearningPoint(msgspec.Struct, frozen=True, kw_only=True):
    """Test MAE of the point models fitted on all scans of `users` training users."""

    users: int
    rows: int
    result_count_mae: float
    duration_s_mae: float


def tercile_coverage(covered: npt.NDArray[np.bool_], point: Floats) -> dict[str, float]:
    """Interval coverage in each third of the rows by predicted value (1 = smallest).

    Ties are broken by row order, so a pile of equal predictions (many scans predicted
    empty) still splits into three equal thirds.
    """
    if point.size < 3:
        return {}
    rank = np.argsort(np.argsort(point, kind="stable"), kind="stable")
    third = rank * 3 // point.size
    return {f"coverage_90_tercile_{t + 1}": float(covered[third == t].mean()) for t in range(3)}


def regression_metrics(
    y: Floats, point: Floats, lo: Floats, hi: Floats, expected: Floats
) -> dict[str, float]:
    """MAE, RMSE, R2, 90% interval coverage (overall and per tercile of the prediction) and
    width, and the oracle MAE when known."""
    err = point - y
    covered = (lo <= y) & (y <= hi)
    metrics = {
        "mae": float(np.mean(np.abs(err))),
        "rmse": float(np.sqrt(np.mean(err**2))),
        "coverage_90": float(np.mean(covered)),
        **tercile_coverage(covered, point),
        "mean_width_90": float(np.mean(hi - lo)),
        "rows": float(y.size),
    }
    if y.size > 1 and np.ptp(y) > 0:
        metrics["r2"] = float(r2_score(y, point))
    known = ~np.isnan(expected)
    if known.any():
        oracle = float(np.mean(np.abs(expected[known] - y[known])))
        metrics["oracle_mae"] = oracle
        if oracle > 0:
            # Compared on the same rows as the oracle, so real history mixed in cannot skew it.
            metrics["mae_over_oracle"] = float(np.mean(np.abs(err[known]))) / oracle
    return metrics


def calibration_table(
    empty: npt.NDArray[np.int64], p: Floats, bins: int = 10
) -> list[CalibrationBin]:
    """Reliability of p_empty: equal-width probability bins, empty bins left out."""
    edges = np.round(np.linspace(0.0, 1.0, bins + 1), 10)  # 0.3, not 0.30000000000000004
    which = np.clip(np.digitize(p, edges[1:-1]), 0, bins - 1)
    table = []
    for b in range(bins):
        mask = which == b
        if mask.any():
            table.append(
                CalibrationBin(
                    lower=float(edges[b]),
                    upper=float(edges[b + 1]),
                    count=int(mask.sum()),
                    mean_predicted=float(p[mask].mean()),
                    observed_rate=float(empty[mask].mean()),
                )
            )
    return table


def expected_calibration_error(empty: npt.NDArray[np.int64], p: Floats, bins: int = 10) -> float:
    """ECE: the row-weighted mean |mean predicted - observed rate| over equal-width bins."""
    table = calibration_table(empty, p, bins)
    return sum(b.count * abs(b.mean_predicted - b.observed_rate) for b in table) / p.size


def classifier_metrics(empty: npt.NDArray[np.int64], p: Floats) -> dict[str, float]:
    """ROC AUC (when both classes occur), Brier score, ECE, log loss and the base rate."""
    metrics = {
        "brier": float(brier_score_loss(empty, p)),
        "ece": float(expected_calibration_error(empty, p)),
        "base_rate": float(empty.mean()),
        "mean_p_empty": float(p.mean()),
        "rows": float(empty.size),
    }
    if 0 < empty.sum() < empty.size:
        metrics["roc_auc"] = float(roc_auc_score(empty, p))
        metrics["log_loss"] = float(log_loss(empty, np.clip(p, 1e-6, 1 - 1e-6)))
    return metrics


def population_metrics(outputs: Outputs, data: Dataset) -> dict[str, dict[str, float]]:
    """Every metric of the graph outputs on one population of scans, keyed by target."""
    return {
        "result_count": regression_metrics(
            data.result_count,
            outputs["result_count"],
            outputs["result_count_lo"],
            outputs["result_count_hi"],
            data.expected_result_count,
        ),
        "duration_s": regression_metrics(
            data.duration_s,
            outputs["duration_s"],
            outputs["duration_s_lo"],
            outputs["duration_s_hi"],
            data.expected_duration_s,
        ),
        "empty": classifier_metrics(data.empty, outputs["p_empty"]),
    }


def confidence_metrics(outputs: Outputs, data: Dataset) -> dict[str, float]:
    """The confidence score's spread, and whether confident predictions are really better."""
    conf = np.array(
        [
            confidence_score(*row)
            for row in zip(
                outputs["result_count"],
                outputs["result_count_lo"],
                outputs["result_count_hi"],
                outputs["duration_s"],
                outputs["duration_s_lo"],
                outputs["duration_s_hi"],
                strict=True,
            )
        ]
    )
    rel_err = np.abs(outputs["duration_s"] - data.duration_s) / data.duration_s
    count_err = np.abs(outputs["result_count"] - data.result_count)
    sure = conf >= np.median(conf)
    metrics = {
        "mean": float(conf.mean()),
        "p10": float(np.quantile(conf, 0.1)),
        "p90": float(np.quantile(conf, 0.9)),
    }
    if sure.any() and (~sure).any():
        metrics["result_count_mae_confident_half"] = float(count_err[sure].mean())
        metrics["result_count_mae_unsure_half"] = float(count_err[~sure].mean())
        metrics["duration_rel_err_confident_half"] = float(rel_err[sure].mean())
        metrics["duration_rel_err_unsure_half"] = float(rel_err[~sure].mean())
    return metrics


def _mae_scorer(transform: Callable[[Floats], Floats]) -> Callable[[Any, Any, Any], float]:
    def score(estimator: Any, x: Any, y: Any) -> float:
        return -float(np.mean(np.abs(transform(estimator.predict(x)) - y)))

    return score


def permutation_importances(
    models: FittedModels, test: Dataset, *, repeats: int, seed: int
) -> dict[str, dict[str, float]]:
    """Mean score drop when each feature is shuffled: MAE increase (in the target's unit)
    for the regressors, ROC AUC drop for the classifier."""
    jobs: list[tuple[str, Any, Floats | npt.NDArray[np.int64], Any]] = [
        ("result_count", models.count_mean, test.result_count, _mae_scorer(lambda v: v)),
        (
            "duration_s",
            models.duration_mean,
            test.duration_s,
            _mae_scorer(lambda v: np.minimum(np.exp(v), models.duration_cap_s)),
        ),
        ("empty", models.empty, test.empty, "roc_auc"),
    ]
    out: dict[str, dict[str, float]] = {}
    for target, model, y, scoring in jobs:
        if target == "empty" and not 0 < test.empty.sum() < len(test):
            continue
        result = permutation_importance(
            model,
            test.features,
            y,
            scoring=scoring,
            n_repeats=repeats,
            random_state=seed,
            # A 2,000-row sample ranks features as well as 4,000 and halves the cost
            # (the slowest step of `just train`: 31 features x repeats x 3 models).
            max_samples=min(len(test), IMPORTANCE_ROWS),
        )
        out[target] = {
            name: float(v) for name, v in zip(FEATURE_NAMES, result.importances_mean, strict=True)
        }
    return out


def learning_curve_sizes(n_users: int, start: int = 5) -> list[int]:
    """Numbers of training users from `start` doubling up to all of them."""
    sizes = []
    size = start
    while size < n_users:
        sizes.append(size)
        size *= 2
    return [*sizes, n_users]


def learning_curve(
    train: Dataset, test: Dataset, settings: ModelSettings, sizes: Sequence[int], *, seed: int
) -> list[LearningPoint]:
    """Test MAE of the point models versus the number of training users.

    By users, not rows: a new user brings new saved scans, while more rows of the same
    users are mostly re-runs of scans the model has seen. The users come in a seeded
    order, and each size keeps the users of the smaller ones.
    """
    users = np.unique(train.users)
    order = users[np.random.default_rng(seed).permutation(users.size)]
    points = []
    for k in sizes:
        subset = train.take(np.flatnonzero(np.isin(train.users, order[:k])))
        count, duration, cap = fit_point_models(subset, settings)
        durations = np.minimum(np.exp(duration.predict(test.features)), cap)
        points.append(
            LearningPoint(
                users=min(k, users.size),
                rows=len(subset),
                result_count_mae=float(
                    np.mean(np.abs(count.predict(test.features) - test.result_count))
                ),
                duration_s_mae=float(np.mean(np.abs(durations - test.duration_s))),
            )
        )
    return points
