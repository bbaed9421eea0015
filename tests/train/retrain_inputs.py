"""The comparison and data window a retrain report is written from, for the report tests."""

from __future__ import annotations

from server.domain.artifact import DataWindow, PairedDifference, RetrainComparison

__all__ = ["report_inputs"]


def report_inputs(mark: str = "") -> tuple[RetrainComparison, DataWindow]:
    """A promoting comparison of v1 (one better metric) and its window; `mark` is appended
    to every name the report shows (the metric, champion, rule, reasons, check, source)."""
    diff = PairedDifference(
        metric=f"result_count MAE{mark}",
        champion=9.0,
        challenger=7.0,
        difference=2.0,
        lower=1.0,
        upper=3.0,
        users=20,
        rows=100,
        verdict="better",
    )
    comparison = RetrainComparison(
        champion=f"v1{mark}",
        rule=f"the rule{mark}",
        promote=True,
        reasons=[f"result_count MAE: better{mark}", "promote"],
        differences=[diff],
        checks={f"one_row_us{mark}": 20.0},
    )
    window = DataWindow(
        source=f"sqlite:///x{mark}.db",
        rows=100,
        users=20,
        first_at="2026-01-01T00:00:00Z",
        last_at="2026-01-02T00:00:00Z",
        sha256="0" * 64,
        base_rows=500,
        recent_weight=4.0,
        holdout_rows=40,
        holdout_users=8,
    )
    return comparison, window
