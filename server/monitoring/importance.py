"""Feature-importance drift: permutation importances on recent outcomes vs the manifest's.

Training stores, per target, the mean score drop when each feature is shuffled (MAE
increase for result_count and duration_s, ROC AUC drop for empty). Here the same is
measured with the served ONNX graph on recent labelled outcomes, and the two rankings
are compared by nDCG, as SageMaker Clarify does: the features ordered by their recent
importance, each worth its training importance (negatives count as 0),
DCG = sum_i rel_i / log2(i + 1), divided by the DCG of the training order. 1 is the same
ranking; below 0.9 is a violation. The nDCG of a version is the mean over its targets.

It is CPU work (features x repeats model runs on up to a few thousand rows): the monitor
runs it on a schedule, by the one worker holding the lease, in a thread.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Final

import numpy as np
import numpy.typing as npt

from server.domain.artifact import MODEL_OUTPUTS
from server.domain.features import FEATURE_NAMES

__all__ = ["NDCG_THRESHOLD", "ndcg", "permutation_importances", "roc_auc"]

NDCG_THRESHOLD: Final = 0.9
_COUNT: Final = MODEL_OUTPUTS.index("result_count")
_DURATION: Final = MODEL_OUTPUTS.index("duration_s")
_P_EMPTY: Final = MODEL_OUTPUTS.index("p_empty")

Floats = npt.NDArray[np.float64]
Run = Callable[[npt.NDArray[np.float32]], Sequence[npt.NDArray[np.float32]]]


def roc_auc(y: npt.NDArray[np.bool_], score: Floats) -> float | None:
    """ROC AUC by the rank-sum formula (tied scores get their mean rank); None for one class."""
    positives = int(y.sum())
    negatives = len(y) - positives
    if positives == 0 or negatives == 0:
        return None
    order = np.argsort(score, kind="mergesort")
    ranks = np.empty(len(score))
    ranks[order] = np.arange(1, len(score) + 1)
    # Mean rank for ties.
    _, inverse, counts = np.unique(score, return_inverse=True, return_counts=True)
    sums = np.bincount(inverse, weights=ranks)
    ranks = (sums / counts)[inverse]
    return float((ranks[y].sum() - positives * (positives + 1) / 2) / (positives * negatives))


def _scores(
    outputs: Sequence[npt.NDArray[np.float32]],
    count: Floats,
    duration: Floats,
    empty: npt.NDArray[np.bool_],
) -> dict[str, float | None]:
    return {
        "result_count": -float(np.mean(np.abs(outputs[_COUNT] - count))),
        "duration_s": -float(np.mean(np.abs(outputs[_DURATION] - duration))),
        "empty": roc_auc(empty, np.asarray(outputs[_P_EMPTY], dtype=np.float64)),
    }


def permutation_importances(
    run: Run,
    features: npt.NDArray[np.float32],
    result_count: Floats,
    duration_s: Floats,
    *,
    repeats: int = 3,
    seed: int = 0,
) -> dict[str, dict[str, float]]:
    """target -> feature -> mean score drop when that feature's column is shuffled."""
    rng = np.random.default_rng(seed)
    empty = result_count == 0
    base = _scores(run(features), result_count, duration_s, empty)
    out: dict[str, dict[str, float]] = {t: {} for t, s in base.items() if s is not None}
    for j, name in enumerate(FEATURE_NAMES):
        drops: dict[str, list[float]] = {t: [] for t in out}
        for _ in range(repeats):
            shuffled = features.copy()
            shuffled[:, j] = rng.permutation(shuffled[:, j])
            scores = _scores(run(shuffled), result_count, duration_s, empty)
            for target in out:
                before, after = base[target], scores[target]
                if before is not None and after is not None:
                    drops[target].append(before - after)
        for target, values in drops.items():
            out[target][name] = float(np.mean(values)) if values else 0.0
    return out


def ndcg(baseline: Mapping[str, float], current: Mapping[str, float]) -> float | None:
    """nDCG of the `current` ranking with the `baseline` importances as relevance."""
    names = [n for n in baseline if n in current]
    relevance = {n: max(baseline[n], 0.0) for n in names}
    ideal = sorted(relevance.values(), reverse=True)
    best = sum(r / math.log2(i + 2) for i, r in enumerate(ideal))
    if best <= 0:
        return None
    ranked = sorted(names, key=lambda n: current[n], reverse=True)
    return sum(relevance[n] / math.log2(i + 2) for i, n in enumerate(ranked)) / best
