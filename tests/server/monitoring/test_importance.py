"""Importance drift: rank-sum AUC equals scikit-learn's, nDCG orders rankings, and a
shuffled feature that drives the model has the largest importance."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from server.domain.artifact import MODEL_OUTPUTS
from server.domain.features import FEATURE_NAMES, N_FEATURES
from server.monitoring.importance import ndcg, permutation_importances, roc_auc


def test_roc_auc_matches_scikit_learn_with_ties() -> None:
    """The rank-sum AUC, tied scores included, is scikit-learn's."""
    rng = np.random.default_rng(0)
    y = rng.random(500) < 0.3
    score = np.round(rng.random(500) + y * 0.3, 1)  # rounded: many ties
    assert roc_auc(y, score) == pytest.approx(roc_auc_score(y, score))
    assert roc_auc(np.zeros(5, dtype=bool), score[:5]) is None


def test_ndcg_is_one_for_the_same_ranking_and_low_for_a_reversed_one() -> None:
    """Same order: 1; reversed order of a steep ranking: below the 0.9 bar."""
    baseline = {"a": 8.0, "b": 4.0, "c": 1.0, "d": 0.5, "e": -0.2}
    assert ndcg(baseline, {"a": 5.0, "b": 3.0, "c": 2.0, "d": 1.0, "e": 0.0}) == pytest.approx(1.0)
    reversed_ = {"a": 0.0, "b": 1.0, "c": 2.0, "d": 3.0, "e": 4.0}
    assert ndcg(baseline, reversed_) < 0.9
    assert ndcg({"a": -1.0}, {"a": 1.0}) is None


def test_the_feature_the_model_uses_is_the_most_important() -> None:
    """A model that reads only volatility_index: shuffling it costs most, for every target."""
    j = FEATURE_NAMES.index("volatility_index")

    def run(features: np.ndarray) -> list[np.ndarray]:
        out = [np.zeros(len(features), dtype=np.float32) for _ in MODEL_OUTPUTS]
        out[MODEL_OUTPUTS.index("result_count")] = features[:, j] * 2
        out[MODEL_OUTPUTS.index("duration_s")] = features[:, j] / 10
        out[MODEL_OUTPUTS.index("p_empty")] = 1 / (1 + np.exp(features[:, j] - 20))
        return out

    rng = np.random.default_rng(1)
    features = rng.normal(20, 5, (400, N_FEATURES)).astype(np.float32)
    counts = np.maximum(np.round(features[:, j] * 2 - 30), 0).astype(np.float64)
    durations = (features[:, j] / 10).astype(np.float64)
    found = permutation_importances(run, features, counts, durations, repeats=2)
    for target in ("result_count", "duration_s", "empty"):
        assert max(found[target], key=found[target].__getitem__) == "volatility_index"
