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
each 90% interval covers between COVERAGE_BAND of the holdout outcomes, and one row costs
at most ONE_ROW_BUDGET_US in onnxruntime (median). Parity is checked at export: a graph
that does not reproduce scikit-learn is never written.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Final

import numpy as np
import numpy.typing as npt
import polars as pl
from scipy import stats

from server.domain.artifact import PairedDifference, RetrainComparison

__all__ = [
    "COVERAGE_BAND",
    "ONE_ROW_BUDGET_US",
    "RULE",
    "CompareError",
    "decide",
    "paired_difference",
]

# The default model costs ~36 us a row; 250 us leaves room for bigger challengers and a
# busy machine, and is still small next to the HTTP stack (~200 us a request).
ONE_ROW_BUDGET_US: Final = 250.0
# 90% intervals on a few hundred holdout rows: binomial noise alone is about +-2 points.
COVERAGE_BAND: Final = (0.85, 0.95)
RULE: Final = (
    "promote only if no metric is worse (95% interval of champion - challenger entirely "
    "below 0), at least one is better (interval entirely above 0), each 90% interval "
    f"covers {COVERAGE_BAND[0]:g}-{COVERAGE_BAND[1]:g} of holdout outcomes, and one row "
    f"costs <= {ONE_ROW_BUDGET_US:g} us"
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
    low, high = COVERAGE_BAND
    for name, value in checks.items():
        # champion_* figures are shown beside the challenger's, not judged.
        if name.startswith("champion_") or not name.endswith("coverage_90"):
            continue
        if not low <= value <= high:
            failed.append(f"{name} {value:.3f} outside {low:g}-{high:g}")
    one_row = checks.get("one_row_us", math.inf)
    if one_row > ONE_ROW_BUDGET_US:
        failed.append(f"one row costs {one_row:.0f} us, budget {ONE_ROW_BUDGET_US:g} us")
    verdict = "promote" if not failed else "keep the champion: " + "; ".join(failed)
    return RetrainComparison(
        champion=champion,
        rule=RULE,
        promote=not failed,
        reasons=[*reasons, verdict],
        differences=list(differences),
        checks=dict(checks),
    )
