"""Per-user experiment metrics from the store, on both backends, against hand-counted users."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from server.store.interface import Store
from server.store.records import Exposure, UserMetrics
from tests.server.store.backends import anyio_backend, pg_dsn, store, store_dsn
from tests.server.store.records_factory import (
    T0,
    completed,
    feedback,
    first_result,
    prediction,
    started,
)

__all__ = ["anyio_backend", "pg_dsn", "store", "store_dsn"]

pytestmark = pytest.mark.anyio

EXPERIMENT = "ml_scanning"
E = T0 + timedelta(minutes=10)  # u1's first exposure
PRE = T0 - timedelta(days=3)  # u1's scans before the experiment
NEXT_DAY = T0 + timedelta(days=1, hours=1)
RANGE = {"desired_min": 5, "desired_max": 50}


def _at(base: datetime, seconds: float) -> datetime:
    return base + timedelta(seconds=seconds)


def _exposure(user: str, arm: str, at: datetime, experiment: str = EXPERIMENT) -> Exposure:
    return Exposure(experiment=experiment, user_id=user, arm=arm, first_exposed_at=at)


async def _scenario(store: Store) -> None:
    await store.write_log(
        [
            prediction(1, prediction_id="p1", user_id="u1", result_count=12.5),
            prediction(2, prediction_id="p2", user_id="u1", result_count=12.5),
            # Control: the model ran, its answer was not shown, the log has it.
            prediction(
                3, prediction_id="p3", user_id="u2", arm="control", ml_enabled=False, result_count=4
            ),
        ],
        [
            _exposure("u1", "treatment", E),
            # Logged 5 minutes after u2's first linked scan: that scan is the start.
            _exposure("u2", "control", E),
            _exposure("u3", "control", E),  # exposed, never scanned
            _exposure("u4", "treatment", T0 + timedelta(days=2)),
            _exposure("u9", "treatment", E, experiment="other"),
        ],
    )
    # The scanner's arm on events is ignored: the exposures table says who is where.
    arm = {"arm": "control"}
    events = [
        # u1 before the experiment: one session, an empty scan then a good one (120 s).
        started("pre-a", "u1", "u1-pre", PRE),
        completed("pre-b", "u1", "u1-pre", _at(PRE, 30), 0, duration_s=20.0),
        completed("pre-c", "u1", "u1-pre", _at(PRE, 120), 7, duration_s=10.0),
        # Older than the 14-day pre-window: not a covariate.
        completed("old", "u1", "u1-old", T0 - timedelta(days=30), 0),
        # u1's first session: empty scan, re-tune, a suggested scan in range (130 s).
        started("a1", "u1", "s1", E, prediction_id="p1", **arm),
        completed("a2", "u1", "s1", _at(E, 40), 0, duration_s=40.0, prediction_id="p1", **RANGE),
        started("a3", "u1", "s1", _at(E, 100), prediction_id="p2"),
        first_result("a4", "u1", "s1", _at(E, 110), prediction_id="p2"),
        completed(
            "a5",
            "u1",
            "s1",
            _at(E, 130),
            20,
            duration_s=30.0,
            prediction_id="p2",
            suggestion_shown=True,
            suggestion_applied=True,
            **RANGE,
        ),
        # u1 again the next day: one scan without scan_started, too many results (10 s).
        completed("b1", "u1", "s2", NEXT_DAY, 60, duration_s=10.0, **RANGE),
        # u2: one scan linked to a control prediction, only a lower desired bound (20 s).
        started("c1", "u2", "c1", _at(T0, 300), prediction_id="p3"),
        completed(
            "c2", "u2", "c1", _at(T0, 320), 3, duration_s=15.0, prediction_id="p3", desired_min=1
        ),
    ]
    for event in events:
        await store.record_event(event, NEXT_DAY)
    await store.record_feedback(feedback("p1", satisfaction=2), NEXT_DAY)
    await store.record_feedback(feedback("p2", satisfaction=5), NEXT_DAY)


def _by_user(users: list[UserMetrics]) -> dict[str, UserMetrics]:
    return {u.user_id: u for u in users}


async def test_sums_match_hand_counts(store: Store) -> None:
    """Every UserMetrics field of every exposed user equals the hand-counted value."""
    await _scenario(store)
    result = await store.experiment_metrics(EXPERIMENT)
    users = _by_user(result.users)
    assert sorted(users) == ["u1", "u2", "u3", "u4"]
    assert users["u1"] == UserMetrics(
        user_id="u1",
        arm="treatment",
        n_sessions=2,
        n_scans=3,
        n_empty_scans=1,
        total_scan_time_s=pytest.approx(130.0 + 10.0),
        n_time_to_first_result=2,
        time_to_first_result_s_sum=pytest.approx(110.0 + 10.0),
        n_scans_in_desired_range=1,
        n_predictions=2,
        prediction_abs_error_sum=pytest.approx(12.5 + 7.5),
        n_satisfaction=2,
        satisfaction_sum=7.0,
        returned=True,
        adopted_suggestion=True,
        pre_n_sessions=1,
        pre_n_scans=2,
        pre_n_empty_scans=1,
        pre_total_scan_time_s=pytest.approx(120.0),
    )
    assert users["u2"] == UserMetrics(
        user_id="u2",
        arm="control",
        n_sessions=1,
        n_scans=1,
        n_empty_scans=0,
        total_scan_time_s=pytest.approx(20.0),
        n_time_to_first_result=1,
        time_to_first_result_s_sum=pytest.approx(20.0),
        n_scans_in_desired_range=1,
        n_predictions=1,
        prediction_abs_error_sum=pytest.approx(1.0),
    )
    assert users["u3"] == UserMetrics(user_id="u3", arm="control", n_sessions=0, n_scans=0)
    assert result.first_start == _at(T0, 300)
    assert result.last_activity == NEXT_DAY


async def test_until_sees_only_what_had_happened(store: Store) -> None:
    """A look at `until` drops later scans and users exposed later; returning needs day two."""
    await _scenario(store)
    users = _by_user(
        (await store.experiment_metrics(EXPERIMENT, until=T0 + timedelta(days=1))).users
    )
    assert sorted(users) == ["u1", "u2", "u3"]
    u1 = users["u1"]
    assert (u1.n_sessions, u1.n_scans, u1.returned) == (1, 2, False)
    assert u1.total_scan_time_s == pytest.approx(130.0)

    early = await store.experiment_metrics(EXPERIMENT, until=_at(T0, 400))
    assert [u.user_id for u in early.users] == ["u2"]  # u1 started at E, after this look


async def test_pre_window_bounds_the_covariates(store: Store) -> None:
    """Scans older than the pre-window are not pre-experiment covariates."""
    await _scenario(store)
    short = await store.experiment_metrics(EXPERIMENT, pre_window=timedelta(days=1))
    assert _by_user(short.users)["u1"].pre_n_scans is None
    long = await store.experiment_metrics(EXPERIMENT, pre_window=timedelta(days=60))
    u1 = _by_user(long.users)["u1"]
    assert (u1.pre_n_sessions, u1.pre_n_scans, u1.pre_n_empty_scans) == (2, 3, 2)


async def test_no_exposures_no_users(store: Store) -> None:
    """An experiment nobody was exposed to yields no users and no span."""
    result = await store.experiment_metrics(EXPERIMENT)
    assert (result.users, result.first_start, result.last_activity) == ([], None, None)
