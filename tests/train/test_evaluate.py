"""Evaluation: coverage by tercile of the prediction, and the calibration error of p_empty."""

from __future__ import annotations

import numpy as np

from train.evaluate import expected_calibration_error, tercile_coverage


def test_terciles_follow_the_prediction_and_split_ties_evenly() -> None:
    """Rows ranked by prediction: the top third's misses show in tercile 3 only."""
    point = np.concatenate([np.zeros(300), np.arange(300.0) + 1])
    covered = np.ones(600, dtype=bool)
    covered[-100:] = False  # the 100 largest predictions miss
    out = tercile_coverage(covered, point)
    assert out == {
        "coverage_90_tercile_1": 1.0,
        "coverage_90_tercile_2": 1.0,
        "coverage_90_tercile_3": 0.5,
    }


def test_ece_is_zero_when_calibrated_and_the_gap_when_not() -> None:
    """Observed rates equal to predictions give 0; predicting 0.3 for a 0.1 rate gives 0.2."""
    p = np.full(1000, 0.35)
    empty = (np.arange(1000) < 350).astype(np.int64)
    assert expected_calibration_error(empty, p) < 1e-12
    biased = (np.arange(1000) < 150).astype(np.int64)
    assert abs(expected_calibration_error(biased, p) - 0.2) < 1e-12
