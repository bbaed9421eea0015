"""What the experiment measures and what the plan promised.

Each metric says how to build, from the per-user columns, the numerator M, denominator D
and pre-experiment covariate X that the statistics work on (moments.py), and which way is
better. The plan's success criteria name a metric and a target change.
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
    "metric_inputs",
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
    # MEAN: per-user mean numerator / denominator over users with a denominator (None: the
    # numerator itself). RATIO: sum numerator / sum denominator. PROPORTION: None.
    denominator: str | None = None
    direction: int = 1  # +1 higher is better, -1 lower is better, 0 neither
    unit: Unit = Unit.NUMBER
    # Pre-experiment (numerator, denominator) giving the same metric before exposure.
    covariate: tuple[str, str] | None = None


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
        kind=MetricKind.MEAN,
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
        kind=MetricKind.MEAN,
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


def metric_inputs(metric: MetricDef, columns: UserColumns) -> MetricInputs:
    """Build M, D and X for every user; users a metric does not apply to get valid=False."""
    num = columns.column(metric.numerator)
    ones = np.ones_like(num)
    if metric.kind is MetricKind.PROPORTION or metric.denominator is None:
        m, d, valid = num, ones, np.isfinite(num)
    else:
        den = columns.column(metric.denominator)
        valid = den > 0.0
        with np.errstate(divide="ignore", invalid="ignore"):
            m = np.where(valid, num / den, 0.0) if metric.kind is MetricKind.MEAN else num
        d = ones if metric.kind is MetricKind.MEAN else den
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
