"""Champion against challenger on the same rows, and the rule that decides a promotion.

    paired_difference(metric, users, champion_loss, challenger_loss) -> PairedDifference
    decide(champion, differences, checks) -> RetrainComparison

Each metric is a per-row loss (absolute error for result_count and duration_s, squared
error of p_empty against the 0/1 outcome: the Brier score). The difference is champion
minus challenger, so a positive difference means the challenger errs less. A user's scans
are correlated, so the unit is the user: each user's mean difference is one observation
and the 95% interval is Student's t over users (scipy.stats.t). Fewer than 2 users cannot
give an interval and are refused.

The promotion rule (RULE): the challenger is promoted only when no metric is worse (the
interval's upper bound is below 0), at least one is better (the lower bound is above 0),
each 90% interval's holdout coverage is consistent with COVERAGE_BAND (its 95% interval
over users, coverage_interval, reaches into the band), and one row is not slower than
the champion's by more than LATENCY_SLACK plus LATENCY_FLOOR_US
(onnxruntime, the two graphs measured in interleaved rounds on the same holdout rows, so
the machine's load falls on both). Parity is checked at export: a graph that does not
reproduce scikit-learn is never written.

The recalibration rule (RECALIBRATION_RULE, `just retrain --recalibrate-only`): the
point outputs (result_count, duration_s) are identical on every holdout row, p_empty's
Brier score is not worse, each 90% interval's holdout coverage is consistent with
COVERAGE_BAND (as above), no target's coverage moved away from 0.90 and at least one
moved closer (or the Brier score is better), and the same latency rule. A coverage moved
when the 95% interval over users of the paired coverage difference excludes 0.

Why coverage is judged by an interval and not by its point figure: a holdout is a few
hundred outcomes of a few dozen users, so the share covered is itself an estimate (on
182 outcomes of 76 users its 95% interval is about +-0.045), and a challenger's
widenings, fitted where recent outcomes are weighted up, rest on few effective rows and
move between runs of the same code. In five runs the end-to-end loop test (recent weight
1000) read 0.835, 0.857, 0.912 (twice) and 0.918 for the challenger's result_count
coverage on the same holdout with the same point predictions; the point figure against
the band refused the first, a challenger that won on both MAEs. The rule refuses what
the holdout shows to be outside the band at 95%: on a holdout of that size, intervals
that truly cover 0.75 or 0.995 are refused at least 80% of the time and ones that cover
0.90 almost never (tests/train/test_compare.py); intervals covering 0.80 pass about two
times in three, which is what the probation after a promotion (the same band, judged
once 1,000 outcomes are labelled by default) is there to catch.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Final

import msgspec
import numpy as np
import numpy.typing as npt
import polars as pl
from scipy import stats

from server.domain.artifact import PairedDifference, RetrainComparison

__all__ = [
    "COVERAGE_BAND",
    "COVERAGE_TARGET",
    "LATENCY_FLOOR_US",
    "LATENCY_SLACK",
    "RECALIBRATION_RULE",
    "RULE",
    "CompareError",
    "coverage_difference",
    "coverage_interval",
    "decide",
    "decide_recalibration",
    "latency_budget_us",
    "paired_difference",
]

# A challenger trained with the same settings has the same trees (fixed rounds), so it
# should cost what the champion costs. Interleaved rounds of the two on a machine loaded
# by other jobs differ by a few percent (measured: README "Model lifecycle"); 10% more
# is a real regression (4 us a row on the default model). The floor keeps tiny models,
# whose cost is mostly onnxruntime's fixed ~10 us a run, from failing on noise.
LATENCY_SLACK: Final = 0.10
LATENCY_FLOOR_US: Final = 2.0
COVERAGE_TARGET: Final = 0.90
# 90% intervals on a few hundred holdout rows: binomial noise alone is about +-2 points.
COVERAGE_BAND: Final = (0.85, 0.95)
_COVERED: Final = (
    f"each 90% interval's holdout coverage is consistent with {COVERAGE_BAND[0]:g}-"
    f"{COVERAGE_BAND[1]:g} (its 95% interval over users reaches into the band)"
)
RULE: Final = (
    "promote only if no metric is worse (95% interval of champion - challenger entirely "
    f"below 0), at least one is better (interval entirely above 0), {_COVERED}, and one row "
    f"costs at most {1 + LATENCY_SLACK:g}x the champion's + {LATENCY_FLOOR_US:g} us "
    "(interleaved rounds)"
)
RECALIBRATION_RULE: Final = (
    "promote a recalibration only if result_count and duration_s are identical on every "
    "holdout row, p_empty Brier is not worse (95% interval of champion - challenger not "
    f"entirely below 0), {_COVERED}, no coverage moved away from {COVERAGE_TARGET:g} and one moved "
    "closer or Brier is better (a move: the 95% interval over users of the paired coverage "
    f"difference excludes 0), and one row costs at most {1 + LATENCY_SLACK:g}x the "
    f"champion's + {LATENCY_FLOOR_US:g} us (interleaved rounds)"
)


class CompareError(Exception):
    """The holdout cannot support a comparison; the message says how much is needed."""


def paired_difference(
    metric: str,
    users: Sequence[str],
    champion_loss: npt.NDArray[np.float64],
    challenger_loss: npt.NDArray[np.float64],
    confidence: float = 0.95,
) -> PairedDifference:
    """Mean losses and the user-level t-interval of their difference."""
    frame = pl.DataFrame(
        {"user": list(users), "d": np.asarray(champion_loss) - np.asarray(challenger_loss)}
    )
    per_user = frame.group_by("user").agg(pl.col("d").mean())["d"].to_numpy()
    n = len(per_user)
    if n < 2:
        raise CompareError(f"{metric}: {n} holdout user(s): expected at least 2 for an interval")
    mean = float(per_user.mean())
    sem = float(per_user.std(ddof=1)) / math.sqrt(n)
    half = float(stats.t.ppf(0.5 + confidence / 2, df=n - 1)) * sem
    lower, upper = mean - half, mean + half
    verdict = "better" if lower > 0 else "worse" if upper < 0 else "no difference"
    return PairedDifference(
        metric=metric,
        champion=float(np.mean(champion_loss)),
        challenger=float(np.mean(challenger_loss)),
        difference=float(np.mean(champion_loss) - np.mean(challenger_loss)),
        lower=lower,
        upper=upper,
        users=n,
        rows=len(frame),
        verdict=verdict,
    )


def coverage_interval(
    users: Sequence[str], covered: npt.NDArray[np.float64], confidence: float = 0.95
) -> tuple[float, float, float]:
    """The share of rows covered (0/1 per row) and its `confidence` interval with the user
    as the cluster: the cluster-robust (CR1) standard error of a mean, sqrt(G / (G - 1) *
    sum over users of (their rows' sum of covered - share)^2) / rows, with Student's t on
    G - 1 degrees of freedom, G the number of users. Centred on the row share, which is
    the figure shown; clipped to [0, 1]."""
    frame = pl.DataFrame({"user": list(users), "c": np.asarray(covered, dtype=np.float64)})
    rows = len(frame)
    if rows == 0:
        raise CompareError("coverage: no holdout rows")
    share = float(frame["c"].to_numpy().mean())
    per_user = frame.group_by("user").agg((pl.col("c") - share).sum())["c"].to_numpy()
    g = len(per_user)
    if g < 2:
        raise CompareError(f"coverage: {g} holdout user(s): expected at least 2 for an interval")
    se = math.sqrt(g / (g - 1) * float(np.sum(per_user**2))) / rows
    half = float(stats.t.ppf(0.5 + confidence / 2, df=g - 1)) * se
    return share, max(0.0, share - half), min(1.0, share + half)


def _coverage_band(checks: Mapping[str, float]) -> list[str]:
    """The challenger's `<target>_coverage_90` checks against COVERAGE_BAND, by their
    `_lower` and `_upper` bounds (the point figure itself when a bound is missing)."""
    low, high = COVERAGE_BAND
    failed = []
    for name, value in checks.items():
        # champion_* figures are shown beside the challenger's, not judged.
        if name.startswith("champion_") or not name.endswith("coverage_90"):
            continue
        lower = checks.get(f"{name}_lower", value)
        upper = checks.get(f"{name}_upper", value)
        if upper < low or lower > high:
            failed.append(
                f"{name} {value:.3f} (95% [{lower:.3f}, {upper:.3f}]) outside {low:g}-{high:g}"
            )
    return failed


def latency_budget_us(champion_us: float) -> float:
    """The most one row of a challenger may cost, given the champion's (same rounds)."""
    return champion_us * (1.0 + LATENCY_SLACK) + LATENCY_FLOOR_US


def _latency(checks: Mapping[str, float]) -> list[str]:
    if "one_row_us" not in checks or "champion_one_row_us" not in checks:
        return ["one-row latency not measured for both"]
    one_row = checks["one_row_us"]
    budget = latency_budget_us(checks["champion_one_row_us"])
    if one_row <= budget:
        return []
    rule = f"the champion's x {1 + LATENCY_SLACK:g} + {LATENCY_FLOOR_US:g} us"
    return [f"one row costs {one_row:.1f} us, budget {budget:.1f} us ({rule})"]


def coverage_difference(
    target: str,
    users: Sequence[str],
    champion_covered: npt.NDArray[np.float64],
    challenger_covered: npt.NDArray[np.float64],
) -> PairedDifference:
    """Coverage of champion and challenger (0/1 per row) with the user-level 95% interval
    of champion - challenger; the verdict says whether the challenger moved toward 0.90
    ("better"), away from it ("worse"), or not measurably ("no difference")."""
    d = paired_difference(f"{target} coverage_90", users, champion_covered, challenger_covered)
    moved = d.lower > 0 or d.upper < 0
    closer = abs(d.challenger - COVERAGE_TARGET) < abs(d.champion - COVERAGE_TARGET)
    verdict = "no difference" if not moved else "better" if closer else "worse"
    return msgspec.structs.replace(d, verdict=verdict)


def decide_recalibration(
    champion: str,
    differences: Sequence[PairedDifference],
    checks: Mapping[str, float],
) -> RetrainComparison:
    """Apply RECALIBRATION_RULE. `differences` holds the point MAEs, p_empty Brier and the
    coverage differences (coverage_difference); `checks` the challenger's coverage, the
    largest point-output change ("point_max_abs_change") and both one-row costs."""
    reasons = []
    for d in differences:
        interval = f"[{d.lower:+.4g}, {d.upper:+.4g}]"
        figures = f"{d.champion:.4g} -> {d.challenger:.4g}, diff {d.difference:+.4g} {interval}"
        reasons.append(f"{d.metric}: {d.verdict} ({figures})")
    failed = []
    change = checks.get("point_max_abs_change", math.inf)
    if change != 0.0:
        failed.append(f"point outputs changed (largest change {change:.3g})")
    brier = [d for d in differences if d.metric == "p_empty Brier"]
    coverage = [d for d in differences if d.metric.endswith("coverage_90")]
    if any(d.verdict == "worse" for d in brier):
        failed.append("worse on p_empty Brier")
    away = [d.metric for d in coverage if d.verdict == "worse"]
    if away:
        failed.append(f"{', '.join(away)} moved away from {COVERAGE_TARGET:g}")
    if not any(d.verdict == "better" for d in (*coverage, *brier)):
        failed.append(f"no coverage moved closer to {COVERAGE_TARGET:g} and Brier is no better")
    failed += _coverage_band(checks)
    failed += _latency(checks)
    verdict = "promote" if not failed else "keep the champion: " + "; ".join(failed)
    return RetrainComparison(
        champion=champion,
        rule=RECALIBRATION_RULE,
        promote=not failed,
        reasons=[*reasons, verdict],
        differences=list(differences),
        checks=dict(checks),
    )


def decide(
    champion: str, differences: Sequence[PairedDifference], checks: Mapping[str, float]
) -> RetrainComparison:
    """Apply RULE to the differences and the challenger's coverage and latency checks."""
    reasons = []
    for d in differences:
        interval = f"[{d.lower:+.4g}, {d.upper:+.4g}]"
        figures = f"{d.champion:.4g} -> {d.challenger:.4g}, diff {d.difference:+.4g} {interval}"
        reasons.append(f"{d.metric}: {d.verdict} ({figures})")
    worse = [d.metric for d in differences if d.verdict == "worse"]
    better = [d.metric for d in differences if d.verdict == "better"]
    failed = []
    if worse:
        failed.append(f"worse on {', '.join(worse)}")
    if not better:
        failed.append("better on no metric")
    failed += _coverage_band(checks)
    failed += _latency(checks)
    verdict = "promote" if not failed else "keep the champion: " + "; ".join(failed)
    return RetrainComparison(
        champion=champion,
        rule=RULE,
        promote=not failed,
        reasons=[*reasons, verdict],
        differences=list(differences),
        checks=dict(checks),
    )
