"""Online accuracy figures from sufficient statistics equal the same figures from raw rows."""

from __future__ import annotations

import numpy as np
import pytest

from server.monitoring.accuracy import group_figures, merge_sums, not_enough, report_groups
from server.store.monitoring import AccuracySums, CalibrationSums


def _sums(y: np.ndarray, yhat: np.ndarray, p: np.ndarray, arm: str) -> AccuracySums:
    empty = (y == 0).astype(float)
    bins = np.minimum((p * 10).astype(int), 9)
    return AccuracySums(
        version="v1",
        arm=arm,
        n=len(y),
        count_abs_err=float(np.abs(y - yhat).sum()),
        count_sq_err=float(((y - yhat) ** 2).sum()),
        count_sum=float(y.sum()),
        count_sum_sq=float((y**2).sum()),
        count_covered=int(((y >= yhat - 5) & (y <= yhat + 5)).sum()),
        duration_abs_err=float(np.abs(y - yhat).sum()),
        duration_sq_err=float(((y - yhat) ** 2).sum()),
        duration_sum=float(y.sum()),
        duration_sum_sq=float((y**2).sum()),
        duration_covered=0,
        brier_sum=float(((p - empty) ** 2).sum()),
        calibration=tuple(
            CalibrationSums(
                bin=int(b),
                n=int((bins == b).sum()),
                sum_p=float(p[bins == b].sum()),
                sum_empty=int(empty[bins == b].sum()),
            )
            for b in np.unique(bins)
        ),
    )


def test_merged_arms_give_the_figures_of_all_rows() -> None:
    """MAE, R2, coverage, Brier and ECE of two merged arms equal those computed on all rows."""
    rng = np.random.default_rng(0)
    y = rng.poisson(8, 400).astype(float)
    yhat = y + rng.normal(0, 3, 400)
    p = rng.uniform(0, 1, 400)
    merged = merge_sums(
        [_sums(y[:150], yhat[:150], p[:150], "a"), _sums(y[150:], yhat[150:], p[150:], "b")]
    )
    assert merged is not None
    g = group_figures(merged, {"result_count": {"mae": 2.0}}, min_labelled=30)
    empty = (y == 0).astype(float)
    assert g.result_count.mae == pytest.approx(np.abs(y - yhat).mean())
    assert g.result_count.r2 == pytest.approx(
        1 - ((y - yhat) ** 2).sum() / ((y - y.mean()) ** 2).sum()
    )
    assert g.result_count.coverage == pytest.approx(((y >= yhat - 5) & (y <= yhat + 5)).mean())
    assert g.result_count.training_mae == 2.0
    assert g.p_empty.brier == pytest.approx(((p - empty) ** 2).mean())
    bins = np.minimum((p * 10).astype(int), 9)
    ece = sum(
        (bins == b).mean() * abs(p[bins == b].mean() - empty[bins == b].mean())
        for b in range(10)
        if (bins == b).any()
    )
    assert g.p_empty.ece == pytest.approx(ece)


def test_too_few_outcomes_show_a_note_instead_of_figures() -> None:
    """Below min_labelled every figure is None and the note says n."""
    y = np.array([1.0, 2.0, 3.0])
    g = group_figures(_sums(y, y, np.array([0.1, 0.2, 0.3]), "a"), {}, min_labelled=30)
    assert (g.result_count.mae, g.p_empty.brier) == (None, None)
    assert g.result_count.note == g.p_empty.note == not_enough(3) == "not enough data (n = 3)"


def test_report_lists_all_arms_first_then_each_arm() -> None:
    """Per version: the "all" group, then one group per arm."""
    y = np.arange(40, dtype=float)
    rows = [_sums(y, y, np.full(40, 0.5), "control"), _sums(y, y, np.full(40, 0.5), "treatment")]
    groups = report_groups(rows, {}, min_labelled=30)
    assert [(g.version, g.arm, g.labelled) for g in groups] == [
        ("v1", "all", 80),
        ("v1", "control", 40),
        ("v1", "treatment", 40),
    ]
