"""train.compare: user-level paired intervals and the promotion rule."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import pytest
from scipy import stats

from train.compare import (
    CompareError,
    coverage_difference,
    coverage_interval,
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
    assert "duration_s_coverage_90 0.700 (95% [0.700, 0.700]) outside" in low.reasons[-1]
    slow = decide("v1", better, {**GOOD_CHECKS, "one_row_us": latency_budget_us(30.0) + 0.1})
    assert not slow.promote
    assert "one row costs 35.1 us, budget 35.0 us" in slow.reasons[-1]
    assert decide("v1", better, {**GOOD_CHECKS, "one_row_us": 34.9}).promote
    unmeasured = {k: v for k, v in GOOD_CHECKS.items() if k != "champion_one_row_us"}
    assert not decide("v1", better, unmeasured).promote  # no champion figure, no budget
    champion_figures = {**GOOD_CHECKS, "champion_result_count_coverage_90": 0.5}
    assert decide("v1", better, champion_figures).promote  # the champion is not judged


def test_coverage_is_judged_by_its_interval_over_users() -> None:
    """A point figure below the band whose 95% interval reaches into it promotes; one
    whose whole interval lies outside the band (below or above) refuses."""
    better = [paired_difference("a", *_losses(0.5))]
    name = "result_count_coverage_90"

    def bounds(point: float, lower: float, upper: float) -> dict[str, float]:
        return {**GOOD_CHECKS, name: point, f"{name}_lower": lower, f"{name}_upper": upper}

    assert decide("v1", better, bounds(0.835, 0.79, 0.88)).promote
    below = decide("v1", better, bounds(0.78, 0.72, 0.84))
    assert not below.promote
    assert f"{name} 0.780 (95% [0.720, 0.840]) outside 0.85-0.95" in below.reasons[-1]
    assert not decide("v1", better, bounds(0.99, 0.96, 1.0)).promote
    # The champion's own bounds are shown, not judged.
    champion = {**GOOD_CHECKS, f"champion_{name}": 0.5, f"champion_{name}_upper": 0.6}
    assert decide("v1", better, champion).promote


def test_the_coverage_interval_with_one_row_per_user_is_the_t_interval() -> None:
    """With every user contributing one row the cluster-robust interval is Student's t
    interval of the 0/1 mean, as scipy gives it."""
    rng = np.random.default_rng(4)
    covered = (rng.random(120) < 0.85).astype(np.float64)
    share, lower, upper = coverage_interval([f"u{i}" for i in range(120)], covered)
    lo, hi = stats.t.interval(0.95, 119, loc=covered.mean(), scale=stats.sem(covered))
    assert share == pytest.approx(covered.mean())
    assert (lower, upper) == pytest.approx((lo, hi))


def test_correlated_users_widen_the_coverage_interval() -> None:
    """The same 0/1 rows read as 40 users of 5 identical rows give a wider interval than
    as 200 independent users: a user's scans are not independent evidence."""
    rng = np.random.default_rng(5)
    per_user = np.repeat((rng.random(40) < 0.9).astype(np.float64), 5)
    _, lo_clustered, hi_clustered = coverage_interval([f"u{i // 5}" for i in range(200)], per_user)
    _, lo_rows, hi_rows = coverage_interval([f"u{i}" for i in range(200)], per_user)
    assert hi_clustered - lo_clustered > 1.8 * (hi_rows - lo_rows)
    with pytest.raises(CompareError, match="1 holdout user"):
        coverage_interval(["u"] * 3, np.ones(3))


def _refused(rate: float, draws: int = 400, users: int = 76, seed: int = 0) -> float:
    """The share of simulated holdouts (`users` users of 1-4 rows, 2.4 a user on average
    as in the loop test's 182 outcomes of 76 users) on which a model whose intervals
    truly cover `rate` is refused by the coverage part of RULE."""
    rng = np.random.default_rng(seed)
    better = [paired_difference("a", *_losses(0.5))]
    refused = 0
    for _ in range(draws):
        sizes = rng.integers(1, 5, users)
        ids = [f"u{u}" for u, k in enumerate(sizes) for _ in range(k)]
        covered = (rng.random(len(ids)) < rate).astype(np.float64)
        share, lower, upper = coverage_interval(ids, covered)
        checks = {
            **GOOD_CHECKS,
            "result_count_coverage_90": share,
            "result_count_coverage_90_lower": lower,
            "result_count_coverage_90_upper": upper,
        }
        refused += not decide("v1", better, checks).promote
    return refused / draws


def test_the_coverage_rule_refuses_what_the_holdout_shows_outside_the_band() -> None:
    """On a holdout the loop test's size, well-calibrated intervals (0.90) are almost never
    refused, while intervals covering 0.75 or 0.995 are refused most of the time."""
    assert _refused(0.90) <= 0.01
    assert _refused(0.75) >= 0.8
    assert _refused(0.995) >= 0.8


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
    checks = _recal_checks(duration_s_coverage_90=short.challenger)
    low = decide_recalibration("v1", [same, short], checks)
    assert not low.promote
    assert (
        "duration_s_coverage_90 0.775 (95% [0.775, 0.775]) outside 0.85-0.95" in (low.reasons[-1])
    )
