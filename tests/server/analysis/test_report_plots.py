"""The report's plots."""

from __future__ import annotations

from datetime import UTC, datetime

import msgspec

from server.analysis.analysis import AnalysisSpec, analyse_experiment
from server.analysis.report_plots import forest_plot_svg, lift_over_looks_svg, srm_plot_svg
from server.store.records import UserMetrics

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
SPEC = AnalysisSpec(experiment="e", arms=("control", "treatment"), weights=(0.5, 0.5))


def users() -> list[UserMetrics]:
    return [
        UserMetrics(
            user_id=f"u{i}",
            arm="treatment" if i % 2 else "control",
            n_sessions=1 + i % 3,
            n_scans=10,
            n_empty_scans=(i * 7) % 5 if i % 2 else (i * 7) % 9,
            n_satisfaction=1,
            satisfaction_sum=float(1 + i % 5),
            returned=bool(i % 3),
        )
        for i in range(200)
    ]


def test_forest_plot_labels_every_metric_with_a_lift() -> None:
    """One row per metric that has a relative lift; metrics without one are left out."""
    report = analyse_experiment(users(), SPEC, now=NOW)
    svg = forest_plot_svg(report.treatments[0], report.control)
    assert svg.startswith("<svg")
    assert "Empty-scan rate" in svg
    assert "Satisfaction (1-5)" in svg
    # No user has predictions: that metric has no lift, so no row.
    assert "Prediction error" not in svg


def test_srm_plot_names_the_arms_and_the_verdict() -> None:
    """Bars per arm with the p-value in the title."""
    svg = srm_plot_svg(analyse_experiment(users(), SPEC, now=NOW))
    assert "control" in svg
    assert "treatment" in svg
    assert "(ok)" in svg


def test_lift_plot_needs_two_looks() -> None:
    """One look is no trend (None); two looks draw the plan's metrics."""
    first = analyse_experiment(users(), msgspec.structs.replace(SPEC, look=0), now=NOW)
    assert lift_over_looks_svg(first, "treatment") is None
    second = analyse_experiment(
        users(), msgspec.structs.replace(SPEC, look=1), now=NOW, looks=first.looks
    )
    svg = lift_over_looks_svg(second, "treatment")
    assert svg is not None
    assert "empty_scan_rate" in svg
