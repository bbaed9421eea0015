"""train.compare: user-level paired intervals and the promotion rule."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import pytest
from scipy import stats

from train.compare import (
    CompareError,
    coverage_difference,
    decide,
    decide_recalibration,
    latency_budget_us,
    paired_difference,
)

GOOD_CHECKS = {
    "result_count_coverage_90": 0.9,
    "duration_s_coverage_90": 0.9,
    "one_row_us": 30.0,
    "champion_one_row_us": 30.0,
}


Losses = tuple[list[str], npt.NDArray[np.float64], npt.NDArray[np.float64]]


def _losses(shift: float, users: int = 40, per_user: int = 5, seed: int = 0) -> Losses:
    """Per-row losses where the challenger errs `shift` less, 5 rows per user."""
    rng = np.random.default_rng(seed)
    ids = [f"u{i}" for i in range(users) for _ in range(per_user)]
    champion = rng.exponential(2.0, users * per_user)
    challenger = champion - shift + rng.normal(0, 0.5, users * per_user)
    return ids, champion, challenger


def test_the_interval_is_a_t_interval_over_user_means() -> None:
    """Equal to scipy's t interval of the per-user mean differences."""
    ids, a, b = _losses(0.3)
    d = paired_difference("m", ids, a, b)
    per_user = (a - b).reshape(40, 5).mean(axis=1)
    lo, hi = stats.t.interval(0.95, 39, loc=per_user.mean(), scale=stats.sem(per_user))
    assert (d.lower, d.upper) == pytest.approx((lo, hi))
    assert d.users == 40
    assert d.rows == 200
    assert d.verdict == "better"


def test_verdicts_follow_the_interval() -> None:
    """Clearly worse is 'worse'; a zero shift is 'no difference'."""
    assert paired_difference("m", *_losses(-0.5)).verdict == "worse"
    assert paired_difference("m", *_losses(0.0, seed=3)).verdict == "no difference"


def test_one_user_cannot_give_an_interval() -> None:
    """A single holdout user is refused with the count needed."""
    with pytest.raises(CompareError, match="1 holdout user"):
        paired_difference("m", ["u"] * 3, np.ones(3), np.zeros(3))


def test_promote_needs_one_better_and_none_worse() -> None:
    """Better + no difference promotes; adding a worse metric keeps the champion."""
    better = paired_difference("a", *_losses(0.5))
    same = paired_difference("b", *_losses(0.0, seed=3))
    worse = paired_difference("c", *_losses(-0.5))
    assert decide("v1", [better, same], GOOD_CHECKS).promote
    refused = decide("v1", [better, worse], GOOD_CHECKS)
    assert not refused.promote
    assert "worse on c" in refused.reasons[-1]
    assert not decide("v1", [same], GOOD_CHECKS).promote


def test_coverage_and_latency_gate_a_better_challenger() -> None:
    """Coverage outside 0.85-0.95 or a row over the budget refuses even a winner."""
    better = [paired_difference("a", *_losses(0.5))]
    low = decide("v1", better, {**GOOD_CHECKS, "duration_s_coverage_90": 0.7})
    assert not low.promote
    assert "duration_s_coverage_90 0.700 outside" in low.reasons[-1]
    slow = decide("v1", better, {**GOOD_CHECKS, "one_row_us": latency_budget_us(30.0) + 0.1})
    assert not slow.promote
    assert "one row costs 35.1 us, budget 35.0 us" in slow.reasons[-1]
    assert decide("v1", better, {**GOOD_CHECKS, "one_row_us": 34.9}).promote
    unmeasured = {k: v for k, v in GOOD_CHECKS.items() if k != "champion_one_row_us"}
    assert not decide("v1", better, unmeasured).promote  # no champion figure, no budget
    champion_figures = {**GOOD_CHECKS, "champion_result_count_coverage_90": 0.5}
    assert decide("v1", better, champion_figures).promote  # the champion is not judged


def _covered(rate: float, users: int = 60, per_user: int = 10, seed: int = 0) -> Losses:
    """0/1 coverage per row at `rate`, the same rows for champion and challenger."""
    rng = np.random.default_rng(seed)
    ids = [f"u{u}" for u in range(users) for _ in range(per_user)]
    u = rng.random(users * per_user)
    return ids, (u < 0.7).astype(np.float64), (u < rate).astype(np.float64)


def test_a_coverage_moved_toward_090_is_better_and_past_it_worse() -> None:
    """Champion at 0.70: a challenger at 0.90 is closer (better), one at 0.70 is no
    different; the other way round, 0.90 -> 0.70 moved away (worse)."""
    assert coverage_difference("t", *_covered(0.9)).verdict == "better"
    assert coverage_difference("t", *_covered(0.7)).verdict == "no difference"
    ids, champion, challenger = _covered(0.9)
    away = coverage_difference("t", ids, challenger, champion)  # 0.90 -> 0.70
    assert away.verdict == "worse"
    assert away.champion > away.challenger


def _recal_checks(**extra: float) -> dict[str, float]:
    return {**GOOD_CHECKS, "point_max_abs_change": 0.0, **extra}


def test_the_recalibration_rule() -> None:
    """Promoted when coverage moves to 0.90 with identical points; refused when a point
    output changed, coverage stays out of the band, or nothing moved closer."""
    same = paired_difference("p_empty Brier", *_losses(0.0))
    fixed = coverage_difference("duration_s", *_covered(0.9))
    ok = decide_recalibration("v1", [same, fixed], _recal_checks())
    assert ok.promote, ok.reasons
    assert ok.rule.startswith("promote a recalibration only if")
    moved = decide_recalibration("v1", [same, fixed], _recal_checks(point_max_abs_change=0.5))
    assert "point outputs changed" in moved.reasons[-1]
    nothing = coverage_difference("duration_s", *_covered(0.7))
    idle = decide_recalibration("v1", [same, nothing], _recal_checks())
    assert "no coverage moved closer" in idle.reasons[-1]
    short = coverage_difference("duration_s", *_covered(0.8))
    low = decide_recalibration("v1", [same, short], _recal_checks())
    assert not low.promote
    assert "duration_s coverage_90 0.775 outside 0.85-0.95" in low.reasons[-1]
