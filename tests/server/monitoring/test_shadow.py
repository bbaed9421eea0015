"""The paired comparison: figures from the store's sums, the sequence, the verdicts."""

from __future__ import annotations

import numpy as np
import pytest

from server.analysis.sequential import sequence_half_width
from server.monitoring.shadow import compare, target_comparison
from server.store.shadow import ShadowSums


def _sums(champion_err: np.ndarray, shadow_err: np.ndarray) -> ShadowSums:
    d = shadow_err - champion_err
    n = len(d)
    return ShadowSums(
        champion="v1",
        shadow="v2",
        n=n,
        champion_count_abs_err=float(champion_err.sum()),
        shadow_count_abs_err=float(shadow_err.sum()),
        count_diff=float(d.sum()),
        count_diff_sq=float((d * d).sum()),
        champion_duration_abs_err=float(champion_err.sum()),
        shadow_duration_abs_err=float(champion_err.sum()),
        duration_diff=0.0,
        duration_diff_sq=0.0,
        champion_count_covered=n // 2,
        shadow_count_covered=n // 4,
        champion_duration_covered=n,
        shadow_duration_covered=n,
        champion_brier_sum=0.1 * n,
        shadow_brier_sum=0.2 * n,
    )


@pytest.mark.parametrize(
    ("shift", "verdict"), [(0.5, "worse"), (-0.5, "better"), (0.0, "undecided")]
)
def test_verdict_follows_the_sign_of_a_clear_difference(shift: float, verdict: str) -> None:
    """Shadow errors shifted up, down or not at all, over 2,000 noisy pairs."""
    rng = np.random.default_rng(3)
    champion = np.abs(rng.normal(5.0, 2.0, 2000))
    shadow = champion + shift + rng.normal(0.0, 1.0, 2000)
    result = compare(_sums(champion, shadow), min_pairs=30)
    assert result.result_count.verdict == verdict
    assert result.n == 2000
    assert result.result_count.champion_mae == pytest.approx(champion.mean())
    assert result.result_count.shadow_mae == pytest.approx(shadow.mean())
    assert result.result_count.champion_coverage == pytest.approx(0.5)
    assert result.shadow_brier == pytest.approx(0.2)
    # Identical duration errors on every pair: no spread, difference 0, undecided.
    assert result.duration_s.verdict == "undecided"
    assert result.duration_s.difference == 0.0


def test_the_interval_is_the_experiment_reports_confidence_sequence() -> None:
    """Mean difference +/- the half-width of server.analysis.sequential at alpha 0.05."""
    d = np.array([1.0, -0.5, 2.0, 0.5, 1.5, 0.0, 1.0, 2.5, -1.0, 1.0] * 10)
    t = target_comparison(
        "result_count", len(d), 0.0, float(d.sum()), float(d.sum()), float((d * d).sum()),
        min_pairs=30,
    )  # fmt: skip
    se = d.std(ddof=1) / np.sqrt(len(d))
    half = float(sequence_half_width(se, len(d), alpha=0.05))
    assert t.difference == pytest.approx(d.mean())
    assert t.lower == pytest.approx(d.mean() - half)
    assert t.upper == pytest.approx(d.mean() + half)
    # Wider than the fixed-n 95% interval: the price of looking at every n.
    assert half > 1.96 * se
    assert t.p_value is not None
    assert (t.p_value < 0.05) == (t.verdict != "undecided")


def test_too_few_pairs_give_no_figures() -> None:
    """Below the minimum the figures are None, with the monitoring's note."""
    errors = np.ones(10)
    result = compare(_sums(errors, errors + 1), min_pairs=30)
    assert result.result_count.verdict == "not enough data"
    assert result.result_count.difference is None
    assert result.champion_brier is None
    assert result.note == "not enough data (n = 10)"
