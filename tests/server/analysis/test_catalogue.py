"""The metric catalogue: how each metric's M, D and X come out of the user columns."""

from __future__ import annotations

import numpy as np
import pytest

from server.analysis.catalogue import METRICS, PLAN_CRITERIA, metric_inputs
from server.analysis.stats import MetricKind
from server.analysis.user_metrics import columns_from_users
from server.store.records import UserMetrics

BY_KEY = {m.key: m for m in METRICS}


def users() -> list[UserMetrics]:
    return [
        UserMetrics(
            user_id="a",
            arm="control",
            n_sessions=2,
            n_scans=10,
            n_empty_scans=4,
            n_satisfaction=2,
            satisfaction_sum=7.0,
            returned=True,
            pre_n_scans=20,
            pre_n_empty_scans=5,
            pre_n_sessions=4,
        ),
        UserMetrics(user_id="b", arm="control", n_sessions=1, n_scans=0),
        UserMetrics(
            user_id="c",
            arm="control",
            n_sessions=1,
            n_scans=4,
            n_empty_scans=1,
            pre_n_scans=0,
            pre_n_empty_scans=0,
        ),
    ]


def test_ratio_metrics_keep_sums_and_skip_users_without_a_denominator() -> None:
    """Empty-scan rate: M = empties, D = scans, and a user with no scans is left out."""
    inputs = metric_inputs(BY_KEY["empty_scan_rate"], columns_from_users(users()))
    assert inputs.valid.tolist() == [True, False, True]
    assert inputs.m[inputs.valid].tolist() == [4.0, 1.0]
    assert inputs.d[inputs.valid].tolist() == [10.0, 4.0]


def test_mean_metrics_are_per_user_means_over_users_who_have_one() -> None:
    """Satisfaction: M = the user's mean rating, D = 1; unrated users are left out."""
    inputs = metric_inputs(BY_KEY["satisfaction"], columns_from_users(users()))
    assert inputs.valid.tolist() == [True, False, False]
    assert float(inputs.m[0]) == 3.5
    assert float(inputs.d[0]) == 1.0


def test_proportions_count_every_user() -> None:
    """Return rate: M is the 0/1 flag for every user."""
    inputs = metric_inputs(BY_KEY["return_rate"], columns_from_users(users()))
    assert inputs.valid.all()
    assert inputs.m.tolist() == [1.0, 0.0, 0.0]


def test_missing_covariates_are_filled_with_the_mean_and_coverage_is_reported() -> None:
    """Only user a has pre-period scans (5/20 empty): c, with 0 pre scans, gets 0.25 too."""
    inputs = metric_inputs(BY_KEY["empty_scan_rate"], columns_from_users(users()))
    assert inputs.x is not None
    assert inputs.x[inputs.valid].tolist() == [0.25, 0.25]
    assert inputs.covariate_coverage == pytest.approx(0.5)


def test_no_user_with_history_means_no_covariate() -> None:
    """Without any pre-period data CUPED is off (x is None), not fed zeros."""
    plain = [UserMetrics(user_id=f"u{i}", arm="control", n_sessions=1, n_scans=3) for i in range(3)]
    inputs = metric_inputs(BY_KEY["empty_scan_rate"], columns_from_users(plain))
    assert inputs.x is None
    assert inputs.covariate_coverage == 0.0


def test_every_criterion_names_a_catalogued_metric_and_the_plan_targets() -> None:
    """The plan: empty scans -30%, parameter selection +20%, satisfaction +15%, 5 min saved."""
    targets = {c.metric: (c.target, c.relative) for c in PLAN_CRITERIA}
    assert targets == {
        "empty_scan_rate": (-0.30, True),
        "desired_range_share": (0.20, True),
        "satisfaction": (0.15, True),
        "scan_time_per_session_s": (-300.0, False),
    }
    assert BY_KEY["empty_scan_rate"].kind is MetricKind.RATIO
    assert np.all([BY_KEY[c.metric].direction != 0 for c in PLAN_CRITERIA])
