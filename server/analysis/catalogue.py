"""What the experiment measures and what the plan promised.

Each metric says how to build, from the per-user columns, the numerator M, denominator D
and pre-experiment covariate X that the statistics work on (moments.py), and which way is
better. The plan's success criteria name a metric and a target change; the metrics they
name are the plan's primary metrics, the others secondary.

Every metric is counted over all users exposed to the experiment. A metric whose
denominator is itself an outcome (ratings, scans, sessions that reached a result) is a
ratio of sums over those users, sum M / sum D with the delta method, never a mean of
per-user means over the users who happen to have a denominator: who rates or who gets a
result is itself affected by the treatment, and averaging only over them would compare
groups the treatment selected. GrowthBook treats such metrics the same way.
"""

from __future__ import annotations

import enum
from typing import Final

import msgspec
import numpy as np

from server.analysis.kinds import MetricKind
from server.analysis.moments import BoolArray, FloatArray
from server.analysis.user_metrics import UserColumns

__all__ = [
    "METRICS",
    "PLAN_CRITERIA",
    "MetricDef",
    "MetricGroup",
    "MetricInputs",
    "SuccessCriterion",
    "Unit",
    "metric_formula",
    "metric_inputs",
    "primary_metrics",
]


class MetricGroup(enum.StrEnum):
    """The plan's three questions."""

    EFFICIENCY = "efficiency"
    QUALITY = "quality"
    ENGAGEMENT = "engagement"


class Unit(enum.StrEnum):
    """How a value is printed."""

    SHARE = "share"  # 0-1, printed as a percentage
    SECONDS = "s"
    RATING = "rating"
    NUMBER = "number"


class MetricDef(msgspec.Struct, frozen=True, kw_only=True):
    """One metric: which columns form it and which direction is an improvement."""

    key: str
    label: str
    group: MetricGroup
    kind: MetricKind
    numerator: str
    # RATIO: sum numerator / sum denominator over all exposed users. MEAN and PROPORTION
    # have none: the numerator is the per-user value (a count, a 0/1 flag).
    denominator: str | None = None
    direction: int = 1  # +1 higher is better, -1 lower is better, 0 neither
    unit: Unit = Unit.NUMBER
    # Pre-experiment (numerator, denominator) giving the same metric before exposure.
    covariate: tuple[str, str] | None = None

    def __post_init__(self) -> None:
        if (self.kind is MetricKind.RATIO) != (self.denominator is not None):
            raise ValueError(
                f"metric {self.key!r}: a {self.kind.value} metric "
                + (
                    "needs a denominator column"
                    if self.kind is MetricKind.RATIO
                    else f"takes no denominator (got {self.denominator!r}); a per-user value "
                    "over a per-user count is a ratio metric"
                )
            )


class SuccessCriterion(msgspec.Struct, frozen=True, kw_only=True):
    """A promise of the plan: the metric moves by target (relative share or absolute units)."""

    key: str
    label: str
    metric: str
    target: float  # -0.30 with relative=True: a 30% decrease
    relative: bool = True


METRICS: Final[tuple[MetricDef, ...]] = (
    MetricDef(
        key="time_to_first_result_s",
        label="Time to first result",
        group=MetricGroup.EFFICIENCY,
        kind=MetricKind.RATIO,
        numerator="time_to_first_result_s_sum",
        denominator="n_time_to_first_result",
        direction=-1,
        unit=Unit.SECONDS,
    ),
    MetricDef(
        key="empty_scan_rate",
        label="Empty-scan rate",
        group=MetricGroup.EFFICIENCY,
        kind=MetricKind.RATIO,
        numerator="n_empty_scans",
        denominator="n_scans",
        direction=-1,
        unit=Unit.SHARE,
        covariate=("pre_n_empty_scans", "pre_n_scans"),
    ),
    MetricDef(
        key="scan_time_per_session_s",
        label="Scan time per session",
        group=MetricGroup.EFFICIENCY,
        kind=MetricKind.RATIO,
        numerator="total_scan_time_s",
        denominator="n_sessions",
        direction=-1,
        unit=Unit.SECONDS,
        covariate=("pre_total_scan_time_s", "pre_n_sessions"),
    ),
    MetricDef(
        key="desired_range_share",
        label="Scans in the desired range",
        group=MetricGroup.QUALITY,
        kind=MetricKind.RATIO,
        numerator="n_scans_in_desired_range",
        denominator="n_scans",
        direction=1,
        unit=Unit.SHARE,
    ),
    MetricDef(
        key="prediction_abs_error",
        label="Prediction error (results)",
        group=MetricGroup.QUALITY,
        kind=MetricKind.RATIO,
        numerator="prediction_abs_error_sum",
        denominator="n_predictions",
        direction=-1,
    ),
    MetricDef(
        key="satisfaction",
        label="Satisfaction (1-5)",
        group=MetricGroup.QUALITY,
        kind=MetricKind.RATIO,
        numerator="satisfaction_sum",
        denominator="n_satisfaction",
        direction=1,
        unit=Unit.RATING,
    ),
    MetricDef(
        key="scans_per_session",
        label="Scans per session",
        group=MetricGroup.ENGAGEMENT,
        kind=MetricKind.RATIO,
        numerator="n_scans",
        denominator="n_sessions",
        direction=0,  # fewer re-scans is good, more exploring is too
        covariate=("pre_n_scans", "pre_n_sessions"),
    ),
    MetricDef(
        key="return_rate",
        label="Return rate",
        group=MetricGroup.ENGAGEMENT,
        kind=MetricKind.PROPORTION,
        numerator="returned",
        direction=1,
        unit=Unit.SHARE,
    ),
    MetricDef(
        key="feature_adoption",
        label="Suggestion adoption",
        group=MetricGroup.ENGAGEMENT,
        kind=MetricKind.PROPORTION,
        numerator="adopted_suggestion",
        direction=1,
        unit=Unit.SHARE,
    ),
)

PLAN_CRITERIA: Final[tuple[SuccessCriterion, ...]] = (
    SuccessCriterion(
        key="empty_scans", label="Empty scans -30%", metric="empty_scan_rate", target=-0.30
    ),
    SuccessCriterion(
        key="parameter_selection",
        label="Parameter selection +20%",
        metric="desired_range_share",
        target=0.20,
    ),
    SuccessCriterion(
        key="satisfaction", label="Satisfaction +15%", metric="satisfaction", target=0.15
    ),
    SuccessCriterion(
        key="time_saved",
        label="Time saved: 5 min per session",
        metric="scan_time_per_session_s",
        target=-300.0,
        relative=False,
    ),
)


class MetricInputs(msgspec.Struct, frozen=True, kw_only=True):
    """Per-user M, D, X for one metric; `valid` marks the users it is defined for."""

    m: FloatArray
    d: FloatArray
    valid: BoolArray
    x: FloatArray | None  # None: no user has the covariate (or the metric has none)
    covariate_coverage: float  # share of valid users with a real (not imputed) covariate


def primary_metrics(criteria: tuple[SuccessCriterion, ...]) -> tuple[str, ...]:
    """The metrics the plan's criteria name, in the criteria's order, each once."""
    return tuple(dict.fromkeys(c.metric for c in criteria))


def metric_formula(metric: MetricDef) -> str:
    """How the metric is computed, in words a reader can check against the data."""
    if metric.kind is MetricKind.PROPORTION:
        return f"share of exposed users with {metric.numerator}"
    if metric.kind is MetricKind.MEAN:
        return f"mean of {metric.numerator} over exposed users"
    return (
        f"sum of {metric.numerator} / sum of {metric.denominator} over all exposed users "
        f"(ratio, delta method: {metric.denominator} is an outcome, not a count of users)"
    )


def metric_inputs(metric: MetricDef, columns: UserColumns) -> MetricInputs:
    """Build M, D and X for every user; every user with a value counts (valid=True).

    A ratio's users with a zero denominator (no ratings yet) stay in with M = D = 0: they
    add nothing to the sums but are part of the arm, as assignment made them.
    """
    num = columns.column(metric.numerator)
    valid = np.isfinite(num)
    if metric.denominator is None:
        m, d = num, np.ones_like(num)
    else:
        den = columns.column(metric.denominator)
        valid &= np.isfinite(den)
        m, d = num, den
    x, coverage = _covariate(metric, columns, valid)
    return MetricInputs(m=m, d=d, valid=valid, x=x, covariate_coverage=coverage)


def _covariate(
    metric: MetricDef, columns: UserColumns, valid: BoolArray
) -> tuple[FloatArray | None, float]:
    if metric.covariate is None:
        return None, 0.0
    pre_num, pre_den = (columns.column(name) for name in metric.covariate)
    with np.errstate(divide="ignore", invalid="ignore"):
        x = pre_num / pre_den
    known = valid & np.isfinite(x) & (pre_den > 0.0)
    n_valid = int(valid.sum())
    if not known.any() or n_valid == 0:
        return None, 0.0
    # Users without history get the mean: they are neither adjusted nor bias theta, and the
    # mean is over both arms, which the assignment cannot influence.
    filled = np.where(known, x, float(x[known].mean()))
    return np.asarray(filled, dtype=np.float64), float(known.sum()) / n_valid
