"""From per-user sums to the experiment report.

    users --columns_from_users--> UserColumns --metric_inputs--> M, D, X per user
          --moment_columns, summed per arm--> ArmMoments --compare_arms--> Comparison
          --> MetricResult, CriterionResult --> Report (report.py)

The first arm is the control; every other arm is compared with it. Nothing here touches
the store or HTTP: the caller aggregates users and passes an AnalysisSpec built from the
experiment config.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from datetime import UTC, datetime

import msgspec
import numpy as np

from server.analysis.catalogue import (
    METRICS,
    PLAN_CRITERIA,
    MetricDef,
    SuccessCriterion,
    metric_inputs,
)
from server.analysis.comparison import Comparison, compare_arms
from server.analysis.moments import ArmMoments, BoolArray, moment_columns
from server.analysis.report import (
    ArmSummary,
    CriterionResult,
    CupedSummary,
    LookPoint,
    MetricResult,
    Report,
    SrmCheck,
    TreatmentResult,
)
from server.analysis.sequential import DEFAULT_N_STAR
from server.analysis.srm import DEFAULT_SRM_THRESHOLD, srm_test
from server.analysis.user_metrics import UserColumns, columns_from_users
from server.store.records import UserMetrics

__all__ = ["AnalysisSpec", "analyse_experiment", "look_points"]


class AnalysisSpec(msgspec.Struct, frozen=True, kw_only=True):
    """What to analyse and how: arms with their weights (first = control) and the settings."""

    experiment: str
    arms: tuple[str, ...]
    weights: tuple[float, ...]
    started_at: datetime | None = None
    look: int | None = None  # index of the daily look this report is, if counted
    alpha: float = 0.05
    srm_threshold: float = DEFAULT_SRM_THRESHOLD
    sequential_n_star: float = DEFAULT_N_STAR
    cuped: bool = True
    metrics: tuple[MetricDef, ...] = METRICS
    criteria: tuple[SuccessCriterion, ...] = PLAN_CRITERIA

    def __post_init__(self) -> None:
        if len(self.arms) < 2 or len(set(self.arms)) != len(self.arms):
            raise ValueError(f"need at least two distinct arms, got {list(self.arms)}")
        if len(self.weights) != len(self.arms):
            raise ValueError(
                f"need one weight per arm: {len(self.arms)} arms {list(self.arms)}, "
                f"{len(self.weights)} weights {list(self.weights)}"
            )
        if any(w < 0 or not math.isfinite(w) for w in self.weights) or not sum(self.weights) > 0:
            raise ValueError(f"weights must be >= 0 and not all 0, got {list(self.weights)}")
        if not 0.0 < self.alpha < 1.0:
            raise ValueError(f"alpha must be in (0, 1), got {self.alpha}")
        keys = {m.key for m in self.metrics}
        unknown = [c.metric for c in self.criteria if c.metric not in keys]
        if unknown:
            raise ValueError(f"criteria name unknown metrics {unknown}; metrics are {sorted(keys)}")


def _finite(value: object) -> float | None:
    x = float(np.asarray(value))
    return x if math.isfinite(x) else None


def _interval(low: object, high: object) -> tuple[float, float] | None:
    lo, hi = _finite(low), _finite(high)
    return None if lo is None or hi is None else (lo, hi)


def _metric_result(
    metric: MetricDef, cmp: Comparison, coverage: float, alpha: float
) -> MetricResult:
    d = cmp.difference
    n_c, n_t = int(cmp.control.n), int(cmp.treatment.n)
    base = MetricResult(
        key=metric.key,
        label=metric.label,
        group=metric.group,
        kind=metric.kind,
        unit=metric.unit,
        direction=metric.direction,
        n_control=n_c,
        n_treatment=n_t,
        control_value=_finite(cmp.control.mean),
        treatment_value=_finite(cmp.treatment.mean),
    )
    se = _finite(d.abs_se)
    if min(n_c, n_t) < 2:
        note = f"not enough data: {n_c} control and {n_t} treatment users have it"
        return msgspec.structs.replace(base, note=note)
    if se is None or se == 0.0:
        return msgspec.structs.replace(base, note="no variance: every user has the same value")
    p, seq_p = _finite(d.p_value), _finite(cmp.seq_p_value)
    cuped = None
    if cmp.cuped is not None and metric.covariate is not None:
        cuped = CupedSummary(
            covariate=f"{metric.covariate[0]} / {metric.covariate[1]}",
            coverage=coverage,
            theta=float(cmp.cuped.theta),
            variance_reduction=float(cmp.cuped.variance_reduction),
        )
    rel = _finite(d.rel_diff)
    return msgspec.structs.replace(
        base,
        test=d.test,
        abs_diff=_finite(d.abs_diff),
        abs_ci=_interval(d.abs_low, d.abs_high),
        rel_diff=rel,
        rel_ci=_interval(d.rel_low, d.rel_high),
        p_value=p,
        significant=p is not None and p < alpha,
        seq_abs_ci=_interval(cmp.seq_abs_low, cmp.seq_abs_high),
        seq_rel_ci=_interval(cmp.seq_rel_low, cmp.seq_rel_high),
        seq_p_value=seq_p,
        seq_significant=seq_p is not None and seq_p < alpha,
        cuped=cuped,
        note=None if rel is not None else "no relative lift: the control value is 0",
    )


def _criterion(c: SuccessCriterion, m: MetricResult) -> CriterionResult:
    measured = m.rel_diff if c.relative else m.abs_diff
    ci = m.rel_ci if c.relative else m.abs_ci
    # A criterion is met when the effect is real (significant) and its estimate reaches
    # the target on the target's side of zero.
    reaches = measured is not None and (
        measured <= c.target if c.target < 0 else measured >= c.target
    )
    return CriterionResult(
        key=c.key,
        label=c.label,
        metric=c.metric,
        relative=c.relative,
        target=c.target,
        measured=measured,
        ci=ci,
        significant=m.significant,
        seq_significant=m.seq_significant,
        met=m.significant and reaches,
    )


def _arm_moments(
    metric: MetricDef, columns: UserColumns, in_arm: Sequence[BoolArray]
) -> tuple[list[ArmMoments], float, bool]:
    inputs = metric_inputs(metric, columns)
    table = moment_columns(inputs.m, inputs.d, inputs.x, valid=inputs.valid)
    sums = [ArmMoments.from_sums(table[mask].sum(axis=0)) for mask in in_arm]
    return sums, inputs.covariate_coverage, inputs.x is not None


def analyse_experiment(
    users: Sequence[UserMetrics],
    spec: AnalysisSpec,
    *,
    now: datetime | None = None,
    looks: Sequence[LookPoint] = (),
) -> Report:
    """The report for these users; `looks` carries earlier looks' points for the trend plot."""
    ids = Counter(u.user_id for u in users)
    duplicated = [uid for uid, n in ids.items() if n > 1]
    if duplicated:
        raise ValueError(
            f"each user must appear once, got duplicates {sorted(duplicated)[:5]}"
            f"{' and more' if len(duplicated) > 5 else ''}"
        )
    warnings: list[str] = []
    stray = Counter(u.arm for u in users if u.arm not in spec.arms)
    if stray:
        warnings.append(
            f"{sum(stray.values())} users in arms outside the experiment's "
            f"{list(spec.arms)} were left out: {dict(stray)}"
        )
    kept = [u for u in users if u.arm in spec.arms]
    columns = columns_from_users(kept)
    labels = np.array([u.arm for u in kept], dtype=object)
    in_arm = [labels == arm for arm in spec.arms]
    counts = [int(mask.sum()) for mask in in_arm]

    srm = srm_test(counts, spec.weights)
    total_w = sum(spec.weights)
    arms = [
        ArmSummary(
            name=arm,
            weight=w,
            users=n,
            sessions=int(columns.n_sessions[mask].sum()),
            scans=int(columns.n_scans[mask].sum()),
            share=n / len(kept) if kept else 0.0,
            expected_share=w / total_w,
        )
        for arm, w, n, mask in zip(spec.arms, spec.weights, counts, in_arm, strict=True)
    ]
    srm_check = SrmCheck(
        counts=counts,
        expected=[float(e) for e in srm.expected],
        statistic=float(srm.statistic),
        p_value=float(srm.p_value),
        threshold=spec.srm_threshold,
        flagged=bool(srm.p_value < spec.srm_threshold),
    )

    results: dict[str, list[MetricResult]] = {arm: [] for arm in spec.arms[1:]}
    for metric in spec.metrics:
        sums, coverage, has_x = _arm_moments(metric, columns, in_arm)
        for i, arm in enumerate(spec.arms[1:], start=1):
            cmp = compare_arms(
                sums[0],
                sums[i],
                metric.kind,
                alpha=spec.alpha,
                n_star=spec.sequential_n_star,
                cuped=spec.cuped and has_x,
            )
            results[arm].append(_metric_result(metric, cmp, coverage, spec.alpha))

    treatments = []
    for arm, metrics in results.items():
        by_key = {m.key: m for m in metrics}
        criteria = [_criterion(c, by_key[c.metric]) for c in spec.criteria]
        treatments.append(TreatmentResult(arm=arm, metrics=metrics, criteria=criteria))
    report = Report(
        experiment=spec.experiment,
        generated_at=now or datetime.now(UTC),
        control=spec.arms[0],
        alpha=spec.alpha,
        sequential_n_star=spec.sequential_n_star,
        srm=srm_check,
        arms=arms,
        treatments=treatments,
        started_at=spec.started_at,
        look=spec.look,
        warnings=warnings,
    )
    if spec.look is None:
        return msgspec.structs.replace(report, looks=list(looks))
    return msgspec.structs.replace(report, looks=[*looks, *look_points(report)])


def look_points(report: Report) -> list[LookPoint]:
    """This report's relative lifts as points of the cumulative-lift plot (needs a look)."""
    if report.look is None:
        return []
    return [
        LookPoint(
            look=report.look,
            arm=t.arm,
            metric=m.key,
            rel_diff=m.rel_diff,
            rel_ci=m.rel_ci,
            seq_rel_ci=m.seq_rel_ci,
        )
        for t in report.treatments
        for m in t.metrics
    ]
