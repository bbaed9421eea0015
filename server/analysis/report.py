"""The experiment report: one msgspec struct, JSON for machines.

The JSON (msgspec) is what GET /v1/experiments/{name}/report returns;
`report_markdown.render_markdown` and `report_html.render_html` render the same struct, so
the three never disagree. The sample-ratio check comes first everywhere: when it fails, the
comparisons below it are between groups that differ in more than the treatment.

Intervals are [low, high]; a value the data cannot give (an arm without users, a relative
lift over a zero baseline) is None, and the metric carries a note saying why.
"""

from __future__ import annotations

from datetime import datetime

import msgspec

from server.analysis.catalogue import MetricGroup, Unit
from server.analysis.kinds import MetricKind, StatTest
from server.domain.scan import WireStruct

__all__ = [
    "ArmSummary",
    "CriterionResult",
    "CupedSummary",
    "Interval",
    "LookPoint",
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
    test: StatTest | None = None
    control_value: float | None = None
    treatment_value: float | None = None
    abs_diff: float | None = None
    abs_ci: Interval | None = None
    rel_diff: float | None = None
    rel_ci: Interval | None = None
    p_value: float | None = None
    significant: bool = False
    seq_abs_ci: Interval | None = None
    seq_rel_ci: Interval | None = None
    seq_p_value: float | None = None
    seq_significant: bool = False
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
    significant: bool = False  # fixed-horizon p < alpha
    seq_significant: bool = False  # always-valid p < alpha
    met: bool = False  # significant, in the target's direction, and the estimate reaches it


class TreatmentResult(WireStruct, frozen=True):
    """One treatment arm against the control."""

    arm: str
    metrics: list[MetricResult]
    criteria: list[CriterionResult]


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
