"""The experiment report: one msgspec struct, JSON for machines.

The JSON (msgspec) is what GET /v1/experiments/{name}/report returns;
`report_markdown.render_markdown` and `report_html.render_html` render the same struct, so
the three never disagree. The sample-ratio check comes first everywhere: when it fails, the
comparisons below it are between groups that differ in more than the treatment.

Intervals are [low, high]; a value the data cannot give (an arm without users, a relative
lift over a zero baseline) is None, and the metric carries a note saying why.

Each metric's headline is its relative lift: `rel_diff`, `rel_ci` and `p_value` are one
Welch t-test, so p < alpha exactly when the CI excludes zero (likewise `abs_ci` with
`abs_p_value`, and the always-valid `seq_*` figures among themselves). `p_value_adjusted`
is the same p after the report's multiple-comparison correction over every metric and
treatment arm; `significant` is judged on it.
"""

from __future__ import annotations

from datetime import datetime

import msgspec

from server.analysis.adoption import AdoptionCriterion
from server.analysis.catalogue import MetricGroup, Unit
from server.analysis.kinds import Correction, MetricKind, StatTest
from server.domain.scan import WireStruct

__all__ = [
    "ArmSummary",
    "CriterionResult",
    "CupedSummary",
    "Interval",
    "LookPoint",
    "MetricDefinition",
    "MetricResult",
    "Report",
    "SrmCheck",
    "TreatmentResult",
    "decode_report",
    "encode_report",
]

Interval = tuple[float, float]


class ArmSummary(WireStruct, frozen=True):
    """Who is in an arm and how much they did."""

    name: str
    weight: float
    users: int
    sessions: int
    scans: int
    share: float  # observed share of users
    expected_share: float  # weight / sum of weights


class SrmCheck(WireStruct, frozen=True):
    """Chi-square goodness of fit of users per arm against the weights."""

    counts: list[int]
    expected: list[float]
    statistic: float
    p_value: float
    threshold: float
    flagged: bool


class CupedSummary(WireStruct, frozen=True):
    """How much the pre-experiment covariate helped."""

    covariate: str
    coverage: float  # share of users with a pre-experiment value
    theta: float
    variance_reduction: float  # 0.25 = the difference's variance shrank by a quarter


class MetricDefinition(WireStruct, frozen=True):
    """What a metric is, for the report's definitions table."""

    key: str
    label: str
    kind: MetricKind
    formula: str  # "sum of satisfaction_sum / sum of n_satisfaction over all exposed users ..."
    primary: bool  # named by the plan's success criteria
    covariate: str | None = None  # the pre-experiment metric CUPED adjusts with


class MetricResult(WireStruct, frozen=True):
    """Treatment vs control on one metric: fixed-horizon and always-valid."""

    key: str
    label: str
    group: MetricGroup
    kind: MetricKind
    unit: Unit
    direction: int
    n_control: int
    n_treatment: int
    primary: bool = False
    test: StatTest | None = None
    control_value: float | None = None
    treatment_value: float | None = None
    abs_diff: float | None = None
    abs_ci: Interval | None = None
    rel_diff: float | None = None
    rel_ci: Interval | None = None
    abs_p_value: float | None = None  # tests abs_ci's difference
    p_value: float | None = None  # tests rel_ci's lift (the headline)
    p_value_adjusted: float | None = None  # p_value after the report's correction
    significant: bool = False  # p_value_adjusted < alpha
    seq_abs_ci: Interval | None = None
    seq_rel_ci: Interval | None = None
    seq_abs_p_value: float | None = None
    seq_p_value: float | None = None
    seq_p_value_adjusted: float | None = None
    seq_significant: bool = False  # seq_p_value_adjusted < alpha
    cuped: CupedSummary | None = None
    note: str | None = None


class CriterionResult(WireStruct, frozen=True):
    """One line of the plan's checklist."""

    key: str
    label: str
    metric: str
    relative: bool
    target: float
    measured: float | None = None
    ci: Interval | None = None
    significant: bool = False  # the metric's adjusted fixed-horizon p < alpha
    seq_significant: bool = False  # the metric's adjusted always-valid p < alpha
    met: bool = False  # significant, in the target's direction, and the estimate reaches it


class TreatmentResult(WireStruct, frozen=True):
    """One treatment arm against the control."""

    arm: str
    metrics: list[MetricResult]
    criteria: list[CriterionResult]
    # The plan's adoption levels (server.analysis.adoption), filled from the store.
    adoption: list[AdoptionCriterion] = msgspec.field(default_factory=list)


class LookPoint(WireStruct, frozen=True):
    """One metric's relative lift at one daily look, for the cumulative plot."""

    look: int
    arm: str
    metric: str
    rel_diff: float | None = None
    rel_ci: Interval | None = None
    seq_rel_ci: Interval | None = None


class Report(WireStruct, frozen=True):
    """The whole report; SRM first, then one TreatmentResult per non-control arm."""

    experiment: str
    generated_at: datetime
    control: str
    alpha: float
    sequential_n_star: float
    srm: SrmCheck
    arms: list[ArmSummary]
    treatments: list[TreatmentResult]
    correction: Correction = Correction.HOLM
    definitions: list[MetricDefinition] = msgspec.field(default_factory=list)
    started_at: datetime | None = None
    look: int | None = None
    looks: list[LookPoint] = msgspec.field(default_factory=list)
    warnings: list[str] = msgspec.field(default_factory=list)


_ENCODER = msgspec.json.Encoder()
_DECODER = msgspec.json.Decoder(Report)


def encode_report(report: Report) -> bytes:
    """The report as JSON."""
    return _ENCODER.encode(report)


def decode_report(data: bytes | str) -> Report:
    """A report back from JSON (for tests, the dashboard and stored reports)."""
    return _DECODER.decode(data)
