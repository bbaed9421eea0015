"""The three models, their 90% intervals, and the post-processing the ONNX graph repeats.

    result count   HistGradientBoosting, Poisson loss (mean count; raw trees give its log)
                   + quantile 0.05 / 0.95 models on log(count + U(0, 1)) (jittered counts)
    duration       HistGradientBoosting on log(duration) (exp gives the median: best for MAE),
                   fitted as censored at the timeout (train.censored), clipped at it
                   + quantile 0.05 / 0.95 models on log(duration)
    empty          HistGradientBoostingClassifier, p_empty = P(class 1)

The quantile models learn from the training split only, and train.conformal calibrates
their intervals on the calibration split. The point models and the classifier are no part
of an interval, so they learn from train and calibration both.

`predict_outputs` is the numpy reference of every graph output: export/graph.py builds the
same arithmetic in ONNX, and parity compares the two.
"""

from __future__ import annotations

from typing import Final

import msgspec
import numpy as np
import numpy.typing as npt
from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor

from server.domain.artifact import MODEL_OUTPUTS
from train.censored import fit_censored_log
from train.conformal import Interval, calibrate_interval
from train.data import Dataset

__all__ = [
    "DURATION_MAX_S",
    "DURATION_MIN_S",
    "FittedModels",
    "ModelSettings",
    "fit_models",
    "fit_point_models",
    "predict_outputs",
]

Floats = npt.NDArray[np.float64]

# Durations are clipped into the range a ScanOutcome can hold (> 0, at most an hour), and
# below the longest duration seen in training (the scanner's timeout, see train.censored).
DURATION_MIN_S: Final = 0.001
DURATION_MAX_S: Final = 3600.0


class ModelSettings(msgspec.Struct, frozen=True, kw_only=True):
    """Hyper-parameters of the boosted models (training.QUICK_MODELS: tiny ones)."""

    # Shallow trees, many rounds: the log of a scan's mean count is close to a sum of one
    # term per filter (each filter keeps a share of what is left), which depth-3 trees fit
    # with far less variance than deep ones (measured: MAE 1.27x -> 1.11x the oracle).
    max_iter: int = 1000
    learning_rate: float = 0.1
    max_depth: int = 3
    min_samples_leaf: int = 20
    # The quantile loss moves slowly (its gradient is a sign); fewer, larger steps on
    # leafier trees track the tails of big scans better (measured on the default data).
    quantile_max_iter: int = 300
    quantile_learning_rate: float = 0.2
    quantile_max_leaf_nodes: int = 15
    alpha: float = 0.10  # 1 - interval coverage
    interval_groups: int = 3  # Mondrian groups of the conformal calibration
    censored_rounds: int = 2  # EM steps for timed-out durations (measured: 2 is enough)
    seed: int = 0


class FittedModels(msgspec.Struct, frozen=True, kw_only=True):
    """The fitted estimators, the calibrated intervals and the duration cap."""

    count_mean: HistGradientBoostingRegressor
    count_lo: HistGradientBoostingRegressor
    count_hi: HistGradientBoostingRegressor
    duration_mean: HistGradientBoostingRegressor
    duration_lo: HistGradientBoostingRegressor
    duration_hi: HistGradientBoostingRegressor
    empty: HistGradientBoostingClassifier
    count_interval: Interval
    duration_interval: Interval
    duration_cap_s: float
    alpha: float


def _regressor(settings: ModelSettings, loss: str) -> HistGradientBoostingRegressor:
    return HistGradientBoostingRegressor(
        loss=loss,
        max_iter=settings.max_iter,
        learning_rate=settings.learning_rate,
        max_depth=settings.max_depth,
        min_samples_leaf=settings.min_samples_leaf,
        # A fixed number of rounds: early stopping would carve its own split out of the data.
        early_stopping=False,
        random_state=settings.seed,
    )


def _quantile(settings: ModelSettings, quantile: float) -> HistGradientBoostingRegressor:
    return HistGradientBoostingRegressor(
        loss="quantile",
        quantile=quantile,
        max_iter=settings.quantile_max_iter,
        learning_rate=settings.quantile_learning_rate,
        max_leaf_nodes=settings.quantile_max_leaf_nodes,
        min_samples_leaf=settings.min_samples_leaf,
        early_stopping=False,
        random_state=settings.seed,
    )


def fit_point_models(
    data: Dataset, settings: ModelSettings
) -> tuple[HistGradientBoostingRegressor, HistGradientBoostingRegressor, float]:
    """The mean-count (Poisson) and censored log-duration regressors, and the duration cap."""
    count = _regressor(settings, "poisson").fit(data.features, data.result_count)
    duration, cap = fit_censored_log(
        lambda: _regressor(settings, "squared_error"),
        data.features,
        data.duration_s,
        settings.censored_rounds,
    )
    return count, duration, min(cap, DURATION_MAX_S)


def _log_or_minus_inf(values: Floats) -> Floats:
    with np.errstate(divide="ignore"):
        return np.log(values)


def fit_models(train: Dataset, calibration: Dataset, settings: ModelSettings) -> FittedModels:
    """Fit all seven estimators and calibrate both intervals."""
    x = train.features
    half = settings.alpha / 2.0
    # Quantiles of a count are steps; jittering by U(0, 1) makes them continuous so the
    # quantile loss can move off the pile of zeros (without it the 5% model stays at 0).
    rng = np.random.default_rng(settings.seed)
    jittered = np.log(train.result_count + rng.uniform(size=len(train)))
    count_lo = _quantile(settings, half).fit(x, jittered)
    count_hi = _quantile(settings, 1.0 - half).fit(x, jittered)
    log_duration = np.log(train.duration_s)
    duration_lo = _quantile(settings, half).fit(x, log_duration)
    duration_hi = _quantile(settings, 1.0 - half).fit(x, log_duration)
    both = train.concat(calibration)
    count_mean, duration_mean, duration_cap = fit_point_models(both, settings)
    empty = HistGradientBoostingClassifier(
        max_iter=settings.max_iter,
        learning_rate=settings.learning_rate,
        max_depth=settings.max_depth,
        min_samples_leaf=settings.min_samples_leaf,
        early_stopping=False,
        random_state=settings.seed,
    ).fit(both.features, both.empty)
    xc, groups = calibration.features, settings.interval_groups
    count_interval = calibrate_interval(
        count_lo.predict(xc),
        count_hi.predict(xc),
        np.log1p(calibration.result_count),
        _log_or_minus_inf(calibration.result_count),
        settings.alpha,
        groups,
    )
    log_cal = np.log(calibration.duration_s)
    duration_interval = calibrate_interval(
        duration_lo.predict(xc), duration_hi.predict(xc), log_cal, log_cal, settings.alpha, groups
    )
    return FittedModels(
        count_mean=count_mean,
        count_lo=count_lo,
        count_hi=count_hi,
        duration_mean=duration_mean,
        duration_lo=duration_lo,
        duration_hi=duration_hi,
        empty=empty,
        count_interval=count_interval,
        duration_interval=duration_interval,
        duration_cap_s=duration_cap,
        alpha=settings.alpha,
    )


def predict_outputs(models: FittedModels, features: npt.NDArray[np.float32]) -> dict[str, Floats]:
    """Every graph output (MODEL_OUTPUTS) from the scikit-learn models, post-processed in numpy.

    Counts are clipped to [0, universe size] (feature column 0), durations to
    [DURATION_MIN_S, duration_cap_s], and each interval is stretched to hold its point
    prediction, since independently fitted quantiles can cross it.
    """
    x = np.asarray(features, dtype=np.float32)
    size = x[:, 0].astype(np.float64)
    count = np.clip(models.count_mean.predict(x), 0.0, size)
    raw_lo, raw_hi = models.count_interval.apply(
        models.count_lo.predict(x), models.count_hi.predict(x)
    )
    count_lo = np.clip(np.exp(raw_lo) - 1.0, 0.0, size)
    count_hi = np.clip(np.exp(raw_hi), 0.0, size)
    cap = models.duration_cap_s
    duration = np.clip(np.exp(models.duration_mean.predict(x)), DURATION_MIN_S, cap)
    raw_lo, raw_hi = models.duration_interval.apply(
        models.duration_lo.predict(x), models.duration_hi.predict(x)
    )
    duration_lo = np.clip(np.exp(raw_lo), DURATION_MIN_S, cap)
    duration_hi = np.clip(np.exp(raw_hi), DURATION_MIN_S, cap)
    outputs = {
        "result_count": count,
        "result_count_lo": np.minimum(count_lo, count),
        "result_count_hi": np.maximum(count_hi, count),
        "duration_s": duration,
        "duration_s_lo": np.minimum(duration_lo, duration),
        "duration_s_hi": np.maximum(duration_hi, duration),
        "p_empty": models.empty.predict_proba(x)[:, 1].astype(np.float64),
    }
    assert tuple(outputs) == MODEL_OUTPUTS  # the graph and this reference share one order
    return outputs
