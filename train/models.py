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
same arithmetic in ONNX, and parity compares the two. It is `post_process` of the seven
models' raw outputs (`raw_outputs`); a recalibration runs the same `post_process` on the
raw outputs of a champion's graph, and `calibrate_intervals` is the one calibration step
both `fit_models` and a recalibration use.
"""

from __future__ import annotations

from typing import Any, Final

import msgspec
import numpy as np
import numpy.typing as npt
from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor

from server.domain.artifact import MODEL_OUTPUTS
from train.censored import fit_censored_log
from train.conformal import GroupKey, Interval, calibrate_interval
from train.data import Dataset

__all__ = [
    "DURATION_MAX_S",
    "DURATION_MIN_S",
    "PLATT_EPS",
    "Boosting",
    "FittedModels",
    "ModelSettings",
    "PlattScaling",
    "RawOutputs",
    "calibrate_intervals",
    "fit_models",
    "fit_point_models",
    "post_process",
    "predict_outputs",
    "raw_outputs",
]

Floats = npt.NDArray[np.float64]

# Durations are clipped into the range a ScanOutcome can hold (> 0, at most an hour), and
# below the longest duration seen in training (the scanner's timeout, see train.censored).
DURATION_MIN_S: Final = 0.001
DURATION_MAX_S: Final = 3600.0
# float32 holds 1 - 1e-6 apart from 1, so the graph's logit stays finite.
PLATT_EPS: Final = 1e-6


class Boosting(msgspec.Struct, frozen=True, kw_only=True):
    """Hyper-parameters of one HistGradientBoosting model."""

    max_iter: int
    learning_rate: float
    max_depth: int | None = 3
    max_leaf_nodes: int | None = None
    min_samples_leaf: int = 20
    l2_regularization: float = 0.0

    def estimator_args(self) -> dict[str, Any]:
        return {
            "max_iter": self.max_iter,
            "learning_rate": self.learning_rate,
            "max_depth": self.max_depth,
            "max_leaf_nodes": self.max_leaf_nodes,
            "min_samples_leaf": self.min_samples_leaf,
            "l2_regularization": self.l2_regularization,
        }


class ModelSettings(msgspec.Struct, frozen=True, kw_only=True):
    """Hyper-parameters of the boosted models (training.QUICK_MODELS: tiny ones).

    Serving cost sets the budget: onnxruntime walks every tree of every model for every
    row, ~20 ns per depth-3 tree (one row, one thread), so the tree counts are the fewest
    that keep each target with a margin. Figures below are means over three seeded splits
    of the default data (`just generate`), against the 1,000-round models they replace;
    the README ("Training and export") has the latency they buy.
    """

    # The count model is the one that needs rounds. Depth 3 stays: the log of a scan's mean
    # count is close to a sum of one term per filter (each keeps a share of what is left),
    # which shallow trees fit with the least variance (depth 4-5 at the same serving cost:
    # 1.08-1.09x the oracle MAE). 300 rounds at 0.2: 1.073x (1,000 at 0.1: 1.070x, 250 at
    # 0.2 without the leaf size and L2 penalty: 1.089x, 400: 1.068x but 2.5 µs a row more).
    count: Boosting = Boosting(
        max_iter=300, learning_rate=0.2, min_samples_leaf=50, l2_regularization=10.0
    )
    # Log duration is nearly additive and smooth: 100 rounds, 1.027x (1,000 rounds: 1.033x).
    duration: Boosting = Boosting(max_iter=100, learning_rate=0.2)
    # Depth 4, 150 rounds: on users never seen, depth-3 trees leave p_empty under-confident
    # (expected calibration error in grouped CV on 60,000 scans: 0.024; 0.1 x 200 rounds:
    # 0.039; larger leaves and L2: 0.027; depth 4: 0.017, and 0.0155 with 150 rounds;
    # depth 5: 0.016 with ROC AUC down to 0.943).
    empty: Boosting = Boosting(max_iter=150, learning_rate=0.3, max_depth=4)
    # The quantile models only need to be roughly right: conformal calibration fixes their
    # coverage. 50 depth-3 rounds give intervals as narrow as 300 rounds of 15-leaf trees.
    quantile: Boosting = Boosting(max_iter=50, learning_rate=0.3)
    alpha: float = 0.10  # 1 - interval coverage
    interval_groups: int = 3  # Mondrian groups of the conformal calibration
    # The groups split on the point prediction: on the raw upper quantile, the third of
    # scans with the largest predicted count was covered 86.7% of the time on unseen users
    # (grouped CV, 60,000 scans); on the point, 89.2 / 90.0 / 89.2% by tercile.
    interval_key: GroupKey = "point"
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


class RawOutputs(msgspec.Struct, frozen=True, kw_only=True):
    """The seven models' outputs on the scale the graph's trees give them, float64 [n]:
    log mean count, the count quantiles on log(count + U(0, 1)), log median duration,
    its quantiles on log duration, and the classifier's P(empty)."""

    log_count: Floats
    count_lo: Floats
    count_hi: Floats
    log_duration: Floats
    duration_lo: Floats
    duration_hi: Floats
    p_empty: Floats


class PlattScaling(msgspec.Struct, frozen=True, kw_only=True):
    """p -> sigmoid(a * logit(p) + b), p clipped into [PLATT_EPS, 1 - PLATT_EPS] first.

    The p_empty calibration of a recalibration (`just retrain --recalibrate-only`): two
    parameters stay stable on a few hundred outcomes, where isotonic steps would not.
    a = 1, b = 0 is the identity.
    """

    a: float
    b: float

    def apply(self, p: Floats) -> Floats:
        q = np.clip(np.asarray(p, dtype=np.float64), PLATT_EPS, 1.0 - PLATT_EPS)
        z = self.a * np.log(q / (1.0 - q)) + self.b
        return np.asarray(1.0 / (1.0 + np.exp(-z)), dtype=np.float64)


def _regressor(boosting: Boosting, seed: int, **loss: Any) -> HistGradientBoostingRegressor:
    return HistGradientBoostingRegressor(
        **loss,
        **boosting.estimator_args(),
        # A fixed number of rounds: early stopping would carve its own split out of the
        # data, and the tree count (the serving cost) would move from version to version.
        early_stopping=False,
        random_state=seed,
    )


def _quantile(settings: ModelSettings, quantile: float) -> HistGradientBoostingRegressor:
    return _regressor(settings.quantile, settings.seed, loss="quantile", quantile=quantile)


def fit_point_models(
    data: Dataset, settings: ModelSettings
) -> tuple[HistGradientBoostingRegressor, HistGradientBoostingRegressor, float]:
    """The mean-count (Poisson) and censored log-duration regressors, and the duration cap."""
    count = _regressor(settings.count, settings.seed, loss="poisson")
    count.fit(data.features, data.result_count)
    duration, cap = fit_censored_log(
        lambda: _regressor(settings.duration, settings.seed, loss="squared_error"),
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
        **settings.empty.estimator_args(),
        early_stopping=False,
        random_state=settings.seed,
    ).fit(both.features, both.empty)
    raw = RawOutputs(
        log_count=np.log(count_mean.predict(calibration.features)),
        count_lo=count_lo.predict(calibration.features),
        count_hi=count_hi.predict(calibration.features),
        log_duration=duration_mean.predict(calibration.features),
        duration_lo=duration_lo.predict(calibration.features),
        duration_hi=duration_hi.predict(calibration.features),
        p_empty=np.zeros(len(calibration)),  # not calibrated here: see PlattScaling
    )
    count_interval, duration_interval = calibrate_intervals(
        raw, calibration.result_count, calibration.duration_s, settings
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


def calibrate_intervals(
    raw: RawOutputs,
    result_count: npt.ArrayLike,
    duration_s: npt.ArrayLike,
    settings: ModelSettings,
) -> tuple[Interval, Interval]:
    """Both targets' conformal widenings (train.conformal) from raw outputs and outcomes.

    `just train` calls it on the calibration split with the scikit-learn models' raw
    outputs; `just retrain --recalibrate-only` on recent outcomes with the raw outputs of
    the champion's graph, so both refit the widenings with exactly this code.
    """
    counts = np.asarray(result_count, dtype=np.float64)
    log_duration = np.log(np.asarray(duration_s, dtype=np.float64))
    on_point = settings.interval_key == "point"
    count_interval = calibrate_interval(
        raw.count_lo,
        raw.count_hi,
        np.log1p(counts),
        _log_or_minus_inf(counts),
        settings.alpha,
        settings.interval_groups,
        raw_point=raw.log_count if on_point else None,
    )
    duration_interval = calibrate_interval(
        raw.duration_lo,
        raw.duration_hi,
        log_duration,
        log_duration,
        settings.alpha,
        settings.interval_groups,
        raw_point=raw.log_duration if on_point else None,
    )
    return count_interval, duration_interval


def raw_outputs(models: FittedModels, features: npt.NDArray[np.float32]) -> RawOutputs:
    """The seven models' outputs before any post-processing (the graph's tree outputs)."""
    x = np.asarray(features, dtype=np.float32)
    return RawOutputs(
        log_count=np.log(models.count_mean.predict(x)),
        count_lo=models.count_lo.predict(x),
        count_hi=models.count_hi.predict(x),
        log_duration=models.duration_mean.predict(x),
        duration_lo=models.duration_lo.predict(x),
        duration_hi=models.duration_hi.predict(x),
        p_empty=models.empty.predict_proba(x)[:, 1].astype(np.float64),
    )


def post_process(
    raw: RawOutputs,
    features: npt.NDArray[np.float32],
    count_interval: Interval,
    duration_interval: Interval,
    duration_cap_s: float,
    platt: PlattScaling | None = None,
) -> dict[str, Floats]:
    """Every graph output (MODEL_OUTPUTS) from the raw outputs, in numpy.

    Counts are clipped to [0, universe size] (feature column 0), durations to
    [DURATION_MIN_S, duration_cap_s], and each interval is stretched to hold its point
    prediction, since independently fitted quantiles can cross it. `platt` (a
    recalibration) maps p_empty; without it p_empty is the classifier's probability.
    """
    size = np.asarray(features, dtype=np.float32)[:, 0].astype(np.float64)
    count = np.clip(np.exp(raw.log_count), 0.0, size)
    lo, hi = count_interval.apply(raw.count_lo, raw.count_hi, raw.log_count)
    count_lo = np.clip(np.exp(lo) - 1.0, 0.0, size)
    count_hi = np.clip(np.exp(hi), 0.0, size)
    cap = duration_cap_s
    duration = np.clip(np.exp(raw.log_duration), DURATION_MIN_S, cap)
    lo, hi = duration_interval.apply(raw.duration_lo, raw.duration_hi, raw.log_duration)
    duration_lo = np.clip(np.exp(lo), DURATION_MIN_S, cap)
    duration_hi = np.clip(np.exp(hi), DURATION_MIN_S, cap)
    p_empty = np.asarray(raw.p_empty, dtype=np.float64)
    outputs = {
        "result_count": count,
        "result_count_lo": np.minimum(count_lo, count),
        "result_count_hi": np.maximum(count_hi, count),
        "duration_s": duration,
        "duration_s_lo": np.minimum(duration_lo, duration),
        "duration_s_hi": np.maximum(duration_hi, duration),
        "p_empty": p_empty if platt is None else platt.apply(p_empty),
    }
    assert tuple(outputs) == MODEL_OUTPUTS  # the graph and this reference share one order
    return outputs


def predict_outputs(models: FittedModels, features: npt.NDArray[np.float32]) -> dict[str, Floats]:
    """Every graph output (MODEL_OUTPUTS) from the scikit-learn models (see post_process)."""
    return post_process(
        raw_outputs(models, features),
        features,
        models.count_interval,
        models.duration_interval,
        models.duration_cap_s,
    )
