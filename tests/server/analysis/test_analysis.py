"""From per-user sums to the report: effects found, none invented, problems surfaced."""

from __future__ import annotations

from datetime import UTC, datetime

import msgspec
import numpy as np
import pytest

from bench.aa_population import PopulationSpec, columns_at, simulate_population, users_at
from server.analysis.analysis import AnalysisSpec, analyse_experiment, look_points
from server.analysis.catalogue import METRICS, metric_inputs
from server.analysis.comparison import compare_arms
from server.analysis.moments import ArmMoments, moment_columns
from server.analysis.report import MetricResult, Report, decode_report, encode_report
from server.analysis.report_markdown import render_markdown
from server.store.records import UserMetrics

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
SPEC = AnalysisSpec(experiment="ml_scanning", arms=("control", "treatment"), weights=(0.5, 0.5))


def simulated(n_users: int = 3000, treated_share: float = 0.5, seed: int = 4) -> list[UserMetrics]:
    pop = simulate_population(PopulationSpec(n_users=n_users, n_days=7, seed=seed))
    rng = np.random.default_rng(seed)
    labels = np.where(rng.random(n_users) < treated_share, "treatment", "control")
    return users_at(pop, 6, list(labels))


def fewer_empties(users: list[UserMetrics], keep: float) -> list[UserMetrics]:
    return [
        msgspec.structs.replace(u, n_empty_scans=round(u.n_empty_scans * keep))
        if u.arm == "treatment"
        else u
        for u in users
    ]


def metric(report: Report, key: str) -> MetricResult:
    return next(m for m in report.treatments[0].metrics if m.key == key)


def test_report_covers_every_metric_criterion_and_arm() -> None:
    """Nine metrics, four criteria, both arms counted; the JSON decodes back to the same report."""
    users = simulated()
    report = analyse_experiment(users, SPEC, now=NOW)
    assert [a.users for a in report.arms] == report.srm.counts
    assert sum(report.srm.counts) == len(users)
    assert [m.key for m in report.treatments[0].metrics] == [m.key for m in METRICS]
    assert len(report.treatments[0].criteria) == 4
    assert all(
        m.p_value is not None and m.seq_p_value is not None for m in report.treatments[0].metrics
    )
    assert decode_report(encode_report(report)) == report


def test_report_numbers_are_the_aa_fast_path_numbers() -> None:
    """Per-user structs and the matrix path (labels @ columns) give the same p-values."""
    pop = simulate_population(PopulationSpec(n_users=2000, n_days=5, seed=8))
    labels = np.where(np.random.default_rng(8).random(2000) < 0.5, "treatment", "control")
    report = analyse_experiment(users_at(pop, 4, list(labels)), SPEC, now=NOW)
    cols = columns_at(pop, 4)
    for m in METRICS:
        inputs = metric_inputs(m, cols)
        table = moment_columns(
            inputs.m, inputs.d, inputs.x, valid=inputs.valid & (cols.n_sessions > 0)
        )
        treated = ArmMoments.from_sums((labels == "treatment").astype(float) @ table)
        control = ArmMoments.from_sums(table.sum(axis=0)).minus(treated)
        fast = compare_arms(control, treated, m.kind, alpha=0.05, cuped=inputs.x is not None)
        slow = metric(report, m.key)
        assert slow.p_value == pytest.approx(float(fast.difference.p_value), rel=1e-9)
        assert slow.seq_p_value == pytest.approx(float(fast.seq_p_value), rel=1e-9)


def test_a_large_reduction_in_empty_scans_is_found_and_meets_the_target() -> None:
    """Treatment keeps half its empty scans: lift about -50%, significant, criterion met."""
    report = analyse_experiment(fewer_empties(simulated(), 0.5), SPEC, now=NOW)
    empty = metric(report, "empty_scan_rate")
    assert empty.rel_diff == pytest.approx(-0.5, abs=0.05)
    assert empty.p_value is not None
    assert empty.p_value < 1e-10
    assert empty.seq_significant
    assert empty.cuped is not None
    assert empty.cuped.variance_reduction > 0
    checklist = {c.metric: c for c in report.treatments[0].criteria}
    assert checklist["empty_scan_rate"].met
    assert not checklist["satisfaction"].met


def test_no_effect_meets_no_criterion() -> None:
    """Identical arms: nothing on the plan's checklist is met."""
    report = analyse_experiment(simulated(), SPEC, now=NOW)
    assert not any(c.met for c in report.treatments[0].criteria)


def test_an_effect_at_the_target_but_not_significant_is_not_met() -> None:
    """Three users per arm: a -50% estimate is noise, so the criterion stays unmet."""
    rates = {"control": [5, 1, 9], "treatment": [2, 1, 4]}
    users = [
        UserMetrics(user_id=f"{arm}{i}", arm=arm, n_sessions=1, n_scans=10, n_empty_scans=e)
        for arm, empties in rates.items()
        for i, e in enumerate(empties)
    ]
    report = analyse_experiment(users, SPEC, now=NOW)
    empty = next(c for c in report.treatments[0].criteria if c.metric == "empty_scan_rate")
    assert empty.measured is not None
    assert empty.measured <= -0.30
    assert not empty.significant
    assert not empty.met


def test_a_skewed_split_is_flagged_and_shown_before_the_results() -> None:
    """52/48 on 10,000 users trips the SRM flag; the Markdown says so before any metric."""
    users = [
        UserMetrics(
            user_id=f"u{i}", arm="control" if i < 5200 else "treatment", n_sessions=1, n_scans=2
        )
        for i in range(10_000)
    ]
    report = analyse_experiment(users, SPEC, now=NOW)
    assert report.srm.flagged
    assert report.srm.p_value == pytest.approx(6.3e-5, abs=5e-7)
    text = render_markdown(report)
    assert text.index("SAMPLE RATIO MISMATCH") < text.index("Success criteria")


def test_a_metric_one_arm_lacks_gets_a_note_instead_of_numbers() -> None:
    """Predictions logged for treatment only: no test, no p-value, a note saying why."""
    users = [
        UserMetrics(
            user_id=f"u{i}",
            arm="treatment" if i % 2 else "control",
            n_sessions=1,
            n_scans=3,
            n_predictions=3 if i % 2 else 0,
            prediction_abs_error_sum=float(i % 7) if i % 2 else 0.0,
        )
        for i in range(40)
    ]
    report = analyse_experiment(users, SPEC, now=NOW)
    err = metric(report, "prediction_abs_error")
    assert err.p_value is None
    assert err.test is None
    assert err.note is not None
    assert "0 control and 20 treatment" in err.note


def test_users_in_unknown_arms_are_left_out_with_a_warning() -> None:
    """A stray arm label is reported, not silently merged into an arm."""
    users = [*simulated(400), UserMetrics(user_id="x", arm="holdout", n_sessions=1, n_scans=1)]
    report = analyse_experiment(users, SPEC, now=NOW)
    assert sum(report.srm.counts) == len(users) - 1
    assert "holdout" in report.warnings[0]


def test_duplicate_users_are_refused() -> None:
    """The same user twice would count twice: an error naming the id."""
    u = UserMetrics(user_id="dup", arm="control", n_sessions=1, n_scans=1)
    with pytest.raises(ValueError, match="dup"):
        analyse_experiment([u, u], SPEC)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"arms": ("control",), "weights": (1.0,)}, "two distinct arms"),
        ({"arms": ("a", "b"), "weights": (1.0,)}, "one weight per arm"),
        ({"arms": ("a", "b"), "weights": (-1.0, 2.0)}, "weights must be"),
        ({"arms": ("a", "b"), "weights": (1.0, 1.0), "alpha": 0.0}, "alpha"),
    ],
)
def test_bad_specs_say_what_is_wrong(kwargs: dict[str, object], message: str) -> None:
    """Arms, weights and alpha are checked when the spec is built."""
    with pytest.raises(ValueError, match=message):
        AnalysisSpec(experiment="e", **kwargs)  # type: ignore[arg-type]


def test_daily_looks_accumulate_points_for_the_trend() -> None:
    """Look 0 then look 1: the second report carries both looks' points."""
    users = simulated(600)
    first = analyse_experiment(users, msgspec.structs.replace(SPEC, look=0), now=NOW)
    second = analyse_experiment(
        users, msgspec.structs.replace(SPEC, look=1), now=NOW, looks=first.looks
    )
    assert {p.look for p in second.looks} == {0, 1}
    assert look_points(second) == [p for p in second.looks if p.look == 1]
    assert look_points(analyse_experiment(users, SPEC, now=NOW)) == []
