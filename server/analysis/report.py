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
from typing import Annotated

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


def _doc(text: str) -> msgspec.Meta:
    """A field's description (meaning and unit), for the OpenAPI document."""
    return msgspec.Meta(description=text)


class ArmSummary(WireStruct, frozen=True):
    """Who is in an arm and how much they did."""

    name: Annotated[str, _doc("the arm's name")]
    weight: Annotated[float, _doc("the arm's configured share of covered users, share 0-1")]
    users: Annotated[int, _doc("users exposed to the arm, count")]
    sessions: Annotated[int, _doc("their sessions, count")]
    scans: Annotated[int, _doc("their scans, count")]
    share: Annotated[
        float, _doc("observed share of the experiment's users in the arm, share 0-1")
    ]  # observed share of users
    expected_share: Annotated[
        float, _doc("the arm's weight over the sum of weights, share 0-1")
    ]  # weight / sum of weights


class SrmCheck(WireStruct, frozen=True):
    """Chi-square goodness of fit of users per arm against the weights."""

    counts: Annotated[list[int], _doc("users per arm, in arm order, count")]
    expected: Annotated[list[float], _doc("users expected per arm from the weights, count")]
    statistic: Annotated[float, _doc("the chi-square statistic, unitless")]
    p_value: Annotated[float, _doc("the test's p-value, probability 0-1")]
    threshold: Annotated[float, _doc("the p-value below which a sample ratio mismatch is flagged")]
    flagged: Annotated[bool, _doc("whether the users per arm mismatch the weights")]


class CupedSummary(WireStruct, frozen=True):
    """How much the pre-experiment covariate helped."""

    covariate: Annotated[str, _doc("the pre-experiment metric used as covariate")]
    coverage: Annotated[
        float, _doc("share of users with a pre-experiment value, share 0-1")
    ]  # share of users with a pre-experiment value
    theta: Annotated[
        float, _doc("the CUPED adjustment coefficient, metric units per covariate unit")
    ]
    variance_reduction: Annotated[
        float, _doc("how much the difference's variance shrank, share 0-1 (0.25 = a quarter)")
    ]  # 0.25 = the difference's variance shrank by a quarter


class MetricDefinition(WireStruct, frozen=True):
    """What a metric is, for the report's definitions table."""

    key: Annotated[str, _doc("the metric's stable key")]
    label: Annotated[str, _doc("the metric's name in the report")]
    kind: Annotated[MetricKind, _doc("how the metric is aggregated (its statistical kind)")]
    formula: Annotated[
        str, _doc("how the metric is computed, in words")
    ]  # "sum of satisfaction_sum / sum of n_satisfaction over all exposed users ..."
    primary: Annotated[
        bool, _doc("whether the plan's success criteria name it")
    ]  # named by the plan's success criteria
    covariate: Annotated[
        str | None, _doc("the pre-experiment metric CUPED adjusts with; left out when none")
    ] = None  # the pre-experiment metric CUPED adjusts with


class MetricResult(WireStruct, frozen=True):
    """Treatment vs control on one metric: fixed-horizon and always-valid."""

    key: Annotated[str, _doc("the metric's stable key")]
    label: Annotated[str, _doc("the metric's name in the report")]
    group: Annotated[MetricGroup, _doc("the report section the metric belongs to")]
    kind: Annotated[MetricKind, _doc("how the metric is aggregated (its statistical kind)")]
    unit: Annotated[Unit, _doc("the unit of the metric's values")]
    direction: Annotated[int, _doc("1 when higher is better, -1 when lower is better")]
    n_control: Annotated[int, _doc("control users the metric is computed on, count")]
    n_treatment: Annotated[int, _doc("treatment users the metric is computed on, count")]
    primary: Annotated[bool, _doc("whether the plan's success criteria name it")] = False
    test: Annotated[StatTest | None, _doc("the statistical test used")] = None
    control_value: Annotated[
        float | None, _doc("the control arm's value, in the metric's unit")
    ] = None
    treatment_value: Annotated[
        float | None, _doc("the treatment arm's value, in the metric's unit")
    ] = None
    abs_diff: Annotated[float | None, _doc("treatment minus control, in the metric's unit")] = None
    abs_ci: Annotated[
        Interval | None, _doc("confidence interval of abs_diff, in the metric's unit")
    ] = None
    rel_diff: Annotated[
        float | None, _doc("relative lift (treatment over control minus 1), fraction (0.1 = +10%)")
    ] = None
    rel_ci: Annotated[Interval | None, _doc("confidence interval of rel_diff, fraction")] = None
    abs_p_value: Annotated[float | None, _doc("p-value of abs_diff, probability 0-1")] = (
        None  # tests abs_ci's difference
    )
    p_value: Annotated[
        float | None, _doc("p-value of rel_diff (the headline), probability 0-1")
    ] = None  # tests rel_ci's lift (the headline)
    p_value_adjusted: Annotated[
        float | None,
        _doc("p_value after the report's multiple-testing correction, probability 0-1"),
    ] = None  # p_value after the report's correction
    significant: Annotated[bool, _doc("whether p_value_adjusted is below alpha")] = (
        False  # p_value_adjusted < alpha
    )
    seq_abs_ci: Annotated[
        Interval | None,
        _doc("always-valid (sequential) confidence interval of abs_diff, in the metric's unit"),
    ] = None
    seq_rel_ci: Annotated[
        Interval | None, _doc("always-valid (sequential) confidence interval of rel_diff, fraction")
    ] = None
    seq_abs_p_value: Annotated[
        float | None, _doc("always-valid p-value of abs_diff, probability 0-1")
    ] = None
    seq_p_value: Annotated[
        float | None, _doc("always-valid p-value of rel_diff, probability 0-1")
    ] = None
    seq_p_value_adjusted: Annotated[
        float | None, _doc("seq_p_value after the report's correction, probability 0-1")
    ] = None
    seq_significant: Annotated[bool, _doc("whether seq_p_value_adjusted is below alpha")] = (
        False  # seq_p_value_adjusted < alpha
    )
    cuped: Annotated[
        CupedSummary | None, _doc("how much CUPED helped; left out when not applied")
    ] = None
    note: Annotated[str | None, _doc("why a figure is missing, in words; left out otherwise")] = (
        None
    )


class CriterionResult(WireStruct, frozen=True):
    """One line of the plan's checklist."""

    key: Annotated[str, _doc("the criterion's stable key")]
    label: Annotated[str, _doc("the criterion as the plan words it")]
    metric: Annotated[str, _doc("the key of the metric it is judged on")]
    relative: Annotated[
        bool, _doc("whether the target is a relative lift (else an absolute difference)")
    ]
    target: Annotated[
        float,
        _doc("the lift or difference the plan promises, fraction or metric unit (see relative)"),
    ]
    measured: Annotated[
        float | None, _doc("the estimate, in the same unit as target; null without data")
    ] = None
    ci: Annotated[Interval | None, _doc("confidence interval of the estimate, same unit")] = None
    significant: Annotated[
        bool, _doc("whether the metric's adjusted fixed-horizon p-value is below alpha")
    ] = False  # the metric's adjusted fixed-horizon p < alpha
    seq_significant: Annotated[
        bool, _doc("whether the metric's adjusted always-valid p-value is below alpha")
    ] = False  # the metric's adjusted always-valid p < alpha
    met: Annotated[
        bool, _doc("significant, in the target's direction, and the estimate reaches the target")
    ] = False  # significant, in the target's direction, and the estimate reaches it


class TreatmentResult(WireStruct, frozen=True):
    """One treatment arm against the control."""

    arm: Annotated[str, _doc("the treatment arm's name")]
    metrics: Annotated[list[MetricResult], _doc("every metric, treatment against control")]
    criteria: Annotated[list[CriterionResult], _doc("the plan's checklist")]
    # The plan's adoption levels (server.analysis.adoption), filled from the store.
    adoption: Annotated[
        list[AdoptionCriterion], _doc("the plan's adoption levels, from the store")
    ] = msgspec.field(default_factory=list)


class LookPoint(WireStruct, frozen=True):
    """One metric's relative lift at one daily look, for the cumulative plot."""

    look: Annotated[int, _doc("the daily look's number, counted from the experiment's start")]
    arm: Annotated[str, _doc("the treatment arm")]
    metric: Annotated[str, _doc("the metric's key")]
    rel_diff: Annotated[float | None, _doc("relative lift at that look, fraction (0.1 = +10%)")] = (
        None
    )
    rel_ci: Annotated[
        Interval | None, _doc("fixed-horizon confidence interval of rel_diff, fraction")
    ] = None
    seq_rel_ci: Annotated[
        Interval | None, _doc("always-valid confidence interval of rel_diff, fraction")
    ] = None


class Report(WireStruct, frozen=True):
    """The whole report; SRM first, then one TreatmentResult per non-control arm."""

    experiment: Annotated[str, _doc("the experiment's name")]
    generated_at: Annotated[datetime, _doc("when the report was made, UTC ISO-8601")]
    control: Annotated[str, _doc("the control arm's name")]
    alpha: Annotated[float, _doc("the significance level, probability 0-1")]
    sequential_n_star: Annotated[float, _doc("the always-valid test's tuning sample size, users")]
    srm: Annotated[SrmCheck, _doc("the sample ratio mismatch check")]
    arms: Annotated[list[ArmSummary], _doc("who is in each arm")]
    treatments: Annotated[list[TreatmentResult], _doc("each treatment arm against the control")]
    correction: Annotated[Correction, _doc("the multiple-testing correction applied")] = (
        Correction.HOLM
    )
    definitions: Annotated[list[MetricDefinition], _doc("what each metric is")] = msgspec.field(
        default_factory=list
    )
    started_at: Annotated[datetime | None, _doc("when the experiment started, UTC ISO-8601")] = None
    look: Annotated[int | None, _doc("the latest daily look's number")] = None
    looks: Annotated[list[LookPoint], _doc("every metric's lift at every daily look")] = (
        msgspec.field(default_factory=list)
    )
    warnings: Annotated[list[str], _doc("problems that limit the report, in words")] = (
        msgspec.field(default_factory=list)
    )


_ENCODER = msgspec.json.Encoder()
_DECODER = msgspec.json.Decoder(Report)


def encode_report(report: Report) -> bytes:
    """The report as JSON."""
    return _ENCODER.encode(report)


def decode_report(data: bytes | str) -> Report:
    """A report back from JSON (for tests, the dashboard and stored reports)."""
    return _DECODER.decode(data)
