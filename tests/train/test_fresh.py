"""The fresh population: other seeds' users, scored under prefixed groups."""

from __future__ import annotations

import numpy as np

from train.fresh import fresh_metrics, fresh_population
from train.targets import FRESH_PREFIX


def test_population_is_every_seed_with_users_kept_apart() -> None:
    """Two seeds of 300 scans: 600 rows, user ids prefixed by seed, the same each time."""
    data = fresh_population((5, 6), 300)
    assert len(data) == 600
    assert all(u.startswith(("seed5-", "seed6-")) for u in data.users.tolist())
    assert not set(data.users[:300].tolist()) & set(data.users[300:].tolist())
    assert np.array_equal(data.features, fresh_population((5, 6), 300).features)


def test_metrics_are_prefixed_and_an_oracle_scores_one() -> None:
    """Predicting the noiseless expectations gives MAE / oracle = 1 under fresh_ groups."""
    data = fresh_population((5,), 400)

    def oracle(x: np.ndarray) -> dict[str, np.ndarray]:
        assert np.array_equal(x, data.features)
        count, duration = data.expected_result_count, data.expected_duration_s
        return {
            "result_count": count,
            "result_count_lo": count * 0,
            "result_count_hi": count * 10 + 10,
            "duration_s": duration,
            "duration_s_lo": duration / 2,
            "duration_s_hi": duration * 2,
            "p_empty": np.exp(-count),
        }

    metrics = fresh_metrics(oracle, (5,), 400)
    assert set(metrics) == {
        f"{FRESH_PREFIX}{g}" for g in ("result_count", "duration_s", "empty", "population")
    }
    assert metrics["fresh_result_count"]["mae_over_oracle"] == 1.0
    assert metrics["fresh_duration_s"]["mae_over_oracle"] == 1.0
    assert metrics["fresh_population"]["rows"] == 400.0
    assert metrics["fresh_population"]["seed_1"] == 5.0
