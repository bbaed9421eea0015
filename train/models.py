"""The three models, their 90% intervals, and the post-processing the ONNX graph repeats.

    result count   HistGradientBoosting, Poisson loss (mean count; raw trees give its log)
                   + quantile 0.05 / 0.95 models on log1p(count), widened by CQR
    duration       HistGradientBoosting on log(duration) (exp gives the median: best for MAE)
                   + quantile 0.05 / 0.95 models on log(duration), widened by CQR
    empty          HistGradientBoostingClassifier, p_empty = P(class 1)

Intervals are conformalized quantile regression (Romano, Patterson, Candès 2019): the
quantile models are fitted on the training split, and on the calibration split the widening
is the finite-sample (1 - alpha) quantile of the conformity scores, on the scale the
quantile models were fitted on (`conformal_widening` says which nested family). The point
models and the classifier learn from train and calibration both.

`predict_outputs` is the numpy reference of every graph output: export/graph.py builds the
same arithmetic in ONNX, and parity compares the two.
"""

from __future__ import annotations

import math
from typing import Final

import msgspec
import numpy as np
import numpy.typing as npt
from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor

from server.domain.artifact import MODEL_OUTPUTS
from train.data import Dataset

__all__ = [
    "DURATION_MAX_S",
    "DURATION_MIN_S",
    "FittedModels",
    "ModelSettings",
    "conformal_widening",
    "fit_models",
    "fit_point_models",
    "predict_outputs",
    "widen",
]

Floats = npt.NDArray[np.float64]

# Durations are clipped into the range a ScanOutcome can hold (> 0, at most an hour).
DURATION_MIN_S: Final = 0.001
DURATION_MAX_S: Final = 3600.0


class ModelSettings(msgspec.Struct, frozen=True, kw_only=True):
    """Hyper-parameters shared by the boosted models; `quick` ones train in a blink."""

    # Shallow trees, many rounds: the log of a scan's mean count is close to a sum of one
    # term per filter (each filter keeps a share of what is left), which depth-3 trees fit
    # with far less variance than deep ones (measured: MAE 1.27x -> 1.11x the oracle).
    max_iter: int = 1000
    quantile_max_iter: int = 300
    learning_rate: float = 0.1
    max_depth: int = 3
    min_samples_leaf: int = 20
    alpha: float = 0.10  # 1 - interval coverage
    seed: int = 0


class FittedModels(msgspec.Struct, frozen=True, kw_only=True):
    """The fitted estimators and the CQR widenings (log1p scale for counts, log for durations)."""

    count_mean: HistGradientBoostingRegressor
    count_lo: HistGradientBoostingRegressor
    count_hi: HistGradientBoostingRegressor
    duration_mean: HistGradientBoostingRegressor
    duration_lo: HistGradientBoostingRegressor
    duration_hi: HistGradientBoostingRegressor
    empty: HistGradientBoostingClassifier
    count_widening: float
    duration_widening: float
    alpha: float


def _regressor(
    settings: ModelSettings, loss: str, quantile: float | None = None
) -> HistGradientBoostingRegressor:
    quantile_loss = loss == "quantile"
    return HistGradientBoostingRegressor(
        loss=loss,
        quantile=quantile,
        max_iter=settings.quantile_max_iter if quantile_loss else settings.max_iter,
        learning_rate=settings.learning_rate,
        max_depth=settings.max_depth,
        min_samples_leaf=settings.min_samples_leaf,
        # A fixed number of rounds: early stopping would carve its own split out of the data.
        early_stopping=False,
        random_state=settings.seed,
    )


def conformal_widening(lo: Floats, hi: Floats, y: Floats, alpha: float) -> float:
    """Split-conformal widening t of the nested intervals [lo - max(t, 0), hi + t].

    t is the ceil((n + 1)(1 - alpha)) / n empirical quantile of each row's smallest t
    that covers it. The upper end moves either way but the lower end only ever widens:
    with many empty scans the lower quantile sits at exactly 0 for a third of the rows, and
    the symmetric CQR score would tie there and over-cover (measured: 95% for 90%).
    """
    upper = y - hi
    lower = np.where(lo > y, lo - y, -np.inf)
    scores = np.maximum(upper, lower)
    n = scores.size
    level = min(1.0, math.ceil((n + 1) * (1.0 - alpha)) / n)
    return float(np.quantile(scores, level, method="higher"))


def widen(lo: Floats, hi: Floats, widening: float) -> tuple[Floats, Floats]:
    """The calibrated interval from the raw quantile predictions (see conformal_widening)."""
    return lo - max(widening, 0.0), hi + widening


def fit_point_models(
    data: Dataset, settings: ModelSettings
) -> tuple[HistGradientBoostingRegressor, HistGradientBoostingRegressor]:
    """The mean-count (Poisson) and log-duration regressors on `data`."""
    count = _regressor(settings, "poisson").fit(data.features, data.result_count)
    duration = _regressor(settings, "squared_error").fit(data.features, np.log(data.duration_s))
    return count, duration


def fit_models(train: Dataset, calibration: Dataset, settings: ModelSettings) -> FittedModels:
    """Fit all seven estimators and calibrate both intervals.

    CQR needs the quantile models blind to the calibration split; the point models and the
    classifier are not part of the interval, so they learn from train and calibration both.
    """
    x = train.features
    half = settings.alpha / 2.0
    log1p_count = np.log1p(train.result_count)
    log_duration = np.log(train.duration_s)
    count_lo = _regressor(settings, "quantile", half).fit(x, log1p_count)
    count_hi = _regressor(settings, "quantile", 1.0 - half).fit(x, log1p_count)
    duration_lo = _regressor(settings, "quantile", half).fit(x, log_duration)
    duration_hi = _regressor(settings, "quantile", 1.0 - half).fit(x, log_duration)
    both = train.concat(calibration)
    count_mean, duration_mean = fit_point_models(both, settings)
    empty = HistGradientBoostingClassifier(
        max_iter=settings.max_iter,
        learning_rate=settings.learning_rate,
        max_depth=settings.max_depth,
        min_samples_leaf=settings.min_samples_leaf,
        early_stopping=False,
        random_state=settings.seed,
    ).fit(both.features, both.empty)
    xc = calibration.features
    count_widening = conformal_widening(
        count_lo.predict(xc),
        count_hi.predict(xc),
        np.log1p(calibration.result_count),
        settings.alpha,
    )
    duration_widening = conformal_widening(
        duration_lo.predict(xc),
        duration_hi.predict(xc),
        np.log(calibration.duration_s),
        settings.alpha,
    )
    return FittedModels(
        count_mean=count_mean,
        count_lo=count_lo,
        count_hi=count_hi,
        duration_mean=duration_mean,
        duration_lo=duration_lo,
        duration_hi=duration_hi,
        empty=empty,
        count_widening=count_widening,
        duration_widening=duration_widening,
        alpha=settings.alpha,
    )


def predict_outputs(models: FittedModels, features: npt.NDArray[np.float32]) -> dict[str, Floats]:
    """Every graph output (MODEL_OUTPUTS) from the scikit-learn models, post-processed in numpy.

    Counts are clipped to [0, universe size] (feature column 0), durations to
    [DURATION_MIN_S, DURATION_MAX_S], and each interval is stretched to hold its point
    prediction, since independently fitted quantiles can cross it.
    """
    x = np.asarray(features, dtype=np.float32)
    size = x[:, 0].astype(np.float64)
    count = np.clip(models.count_mean.predict(x), 0.0, size)
    raw_lo, raw_hi = widen(
        models.count_lo.predict(x), models.count_hi.predict(x), models.count_widening
    )
    count_lo = np.clip(np.expm1(raw_lo), 0.0, size)
    count_hi = np.clip(np.expm1(raw_hi), 0.0, size)
    duration = np.clip(np.exp(models.duration_mean.predict(x)), DURATION_MIN_S, DURATION_MAX_S)
    raw_lo, raw_hi = widen(
        models.duration_lo.predict(x), models.duration_hi.predict(x), models.duration_widening
    )
    duration_lo = np.clip(np.exp(raw_lo), DURATION_MIN_S, DURATION_MAX_S)
    duration_hi = np.clip(np.exp(raw_hi), DURATION_MIN_S, DURATION_MAX_S)
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
