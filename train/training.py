"""One training run: split, fit, calibrate, evaluate. Pure computation, no files, no printing.

The split is by user and deterministic for a seed: a seeded permutation of the users is
cut into test, calibration and train users, so no user has scans in two splits. About 80%
of scans re-run one of the user's saved scans; a split by row puts those repeats on both
sides and measures the model on near-copies of its training rows, while the next user of
a scanner is one the model never saw. The test split is touched only by evaluation.
Everything the export step needs (fitted models, metrics, the rows for parity and
reference distributions) is in `TrainResult`.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import msgspec
import numpy as np
from threadpoolctl import threadpool_limits

from server.domain.artifact import CalibrationBin, TrainingData
from train.data import Dataset
from train.evaluate import (
    LearningPoint,
    calibration_table,
    confidence_metrics,
    learning_curve,
    learning_curve_sizes,
    permutation_importances,
    population_metrics,
)
from train.fresh import fresh_metrics
from train.models import Boosting, FittedModels, ModelSettings, fit_models, predict_outputs

__all__ = [
    "MIN_ROWS",
    "MIN_USERS",
    "QUICK_MODELS",
    "FitSettings",
    "Splits",
    "TrainError",
    "TrainResult",
    "split_dataset",
    "train_models",
]

# Below this a split would hold a handful of rows and its metrics would mean nothing.
MIN_ROWS = 60
# Each split needs users of its own.
MIN_USERS = 3
# Few, coarse rounds: a real model in a second, for tests and fixtures.
QUICK_MODELS = ModelSettings(
    count=Boosting(max_iter=40, learning_rate=0.25),
    duration=Boosting(max_iter=40, learning_rate=0.25),
    empty=Boosting(max_iter=40, learning_rate=0.25),
    quantile=Boosting(max_iter=30, learning_rate=0.4),
)


class TrainError(Exception):
    """Training cannot run on this data; the message names the problem."""


class FitSettings(msgspec.Struct, frozen=True, kw_only=True):
    """What a training run does. `quick` skips the costly extras (curve, importances)."""

    seed: int = 0
    calibration_share: float = 0.2
    test_share: float = 0.2
    importance_repeats: int = 3
    learning_curve: bool = True
    importances: bool = True
    # Score on a fresh population too (train.fresh: history of other seeds, ~1 s).
    fresh: bool = True
    # OpenMP threads for the boosting. One is the default: depth-3 trees on tens of
    # thousands of rows leave little to split, and OpenMP's barriers cost more than they
    # save (measured, 1,000 rounds on 16,000 rows: 1 thread 2.1 CPU-s / 4 s wall, 2 threads
    # 12.8 CPU-s / 23 s wall on a busy 2-core machine).
    threads: int | None = 1
    models: ModelSettings = ModelSettings()

    @classmethod
    def quick(cls, seed: int = 0) -> FitSettings:
        return cls(
            seed=seed,
            learning_curve=False,
            importances=False,
            fresh=False,
            models=msgspec.structs.replace(QUICK_MODELS, seed=seed),
        )


class Splits(msgspec.Struct, frozen=True, kw_only=True):
    """Disjoint train / calibration / test subsets of one dataset."""

    train: Dataset
    calibration: Dataset
    test: Dataset


class TrainResult(msgspec.Struct, frozen=True, kw_only=True):
    """Everything one run produced; the export step turns it into a model version."""

    models: FittedModels
    settings: FitSettings
    training_data: TrainingData
    splits: Splits
    test_outputs: dict[str, np.ndarray]  # predict_outputs on the test split
    metrics: dict[str, dict[str, float]]
    calibration: list[CalibrationBin]
    importances: dict[str, dict[str, float]]
    learning_curve: list[LearningPoint]


def split_dataset(data: Dataset, settings: FitSettings) -> Splits:
    """Users in a seeded order, cut into test, calibration and train users.

    Users are taken in turn until each held-out split has its share of the rows; every
    scan of a user lands in the same split.
    """
    n = len(data)
    if n < MIN_ROWS:
        raise TrainError(f"{n} records is too few to train: expected at least {MIN_ROWS}")
    users, row_user = np.unique(data.users, return_inverse=True)
    if users.size < MIN_USERS:
        raise TrainError(
            f"{users.size} users is too few to split by user: expected at least {MIN_USERS}"
        )
    order = np.random.default_rng(settings.seed).permutation(users.size)
    sizes = np.bincount(row_user, minlength=users.size)[order]
    rows_before = np.cumsum(sizes) - sizes
    n_test = n * settings.test_share
    n_held = n_test + n * settings.calibration_share
    # A user goes to the first split whose quota the rows before them have not yet filled;
    # the first user always goes to test, and the last one at least to train.
    split_of_rank = np.where(rows_before < n_test, 0, np.where(rows_before < n_held, 1, 2))
    split_of_rank[0] = 0
    split_of_rank[-1] = 2
    if not (split_of_rank == 1).any():
        split_of_rank[1] = 1
    split_of_user = np.empty(users.size, dtype=np.int64)
    split_of_user[order] = split_of_rank
    split = split_of_user[row_user]
    return Splits(
        train=data.take(np.flatnonzero(split == 2)),
        calibration=data.take(np.flatnonzero(split == 1)),
        test=data.take(np.flatnonzero(split == 0)),
    )


def train_models(
    data: Dataset,
    training_data: TrainingData,
    settings: FitSettings,
    on_step: Callable[[str], None] = lambda _: None,
) -> TrainResult:
    """Split, fit all models, calibrate the intervals and evaluate on the test split.

    `on_step` is called with a short label before each stage (for progress display).
    """
    with threadpool_limits(limits=settings.threads, user_api="openmp"):
        return _train(data, training_data, settings, on_step)


def _train(
    data: Dataset,
    training_data: TrainingData,
    settings: FitSettings,
    on_step: Callable[[str], None],
) -> TrainResult:
    started = time.perf_counter()
    on_step("split")
    splits = split_dataset(data, settings)
    on_step("fit models")
    models = fit_models(splits.train, splits.calibration, settings.models)
    fitted = time.perf_counter()
    on_step("evaluate")
    test = splits.test
    out = predict_outputs(models, test.features)
    metrics = {
        **population_metrics(out, test),
        "confidence": confidence_metrics(out, test),
    }
    if settings.fresh:
        on_step("fresh population")
        metrics.update(fresh_metrics(lambda x: predict_outputs(models, x)))
    importances: dict[str, dict[str, float]] = {}
    evaluated = time.perf_counter()
    if settings.importances:
        on_step("permutation importances")
        importances = permutation_importances(
            models, test, repeats=settings.importance_repeats, seed=settings.seed
        )
    curve: list[LearningPoint] = []
    explained = time.perf_counter()
    if settings.learning_curve:
        on_step("learning curve")
        pool = splits.train.concat(splits.calibration)
        n_users = np.unique(pool.users).size
        curve = learning_curve(
            pool, test, settings.models, learning_curve_sizes(n_users), seed=settings.seed
        )
    done = time.perf_counter()
    metrics["training"] = {
        "seconds": done - started,
        "fit_seconds": fitted - started,
        "evaluate_seconds": evaluated - fitted,
        "importances_seconds": explained - evaluated,
        "learning_curve_seconds": done - explained,
        "rows_train": float(len(splits.train)),
        "rows_calibration": float(len(splits.calibration)),
        "rows_test": float(len(test)),
        "users_train": float(np.unique(splits.train.users).size),
        "users_calibration": float(np.unique(splits.calibration.users).size),
        "users_test": float(np.unique(test.users).size),
        "duration_cap_s": models.duration_cap_s,
    }
    return TrainResult(
        models=models,
        settings=settings,
        training_data=training_data,
        splits=splits,
        test_outputs=out,
        metrics=metrics,
        calibration=calibration_table(test.empty, out["p_empty"]),
        importances=importances,
        learning_curve=curve,
    )
