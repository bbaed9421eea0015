"""Usage analytics from scan events, on both backends, against a hand-counted scenario."""

from __future__ import annotations

from datetime import timedelta

import pytest

from server.store.interface import Store
from server.store.records import DropOff, Event
from tests.server.store.backends import anyio_backend, pg_dsn, store, store_dsn
from tests.server.store.records_factory import T0, completed, started

__all__ = ["anyio_backend", "pg_dsn", "store", "store_dsn"]

pytestmark = pytest.mark.anyio


def _scenario() -> list[Event]:
    t = [T0 + timedelta(minutes=m) for m in range(10)]
    treat, ctrl = {"arm": "treatment"}, {"arm": "control"}
    return [
        # u1 (treatment), session s1: an empty scan, then a good one with an applied suggestion.
        completed("a", "u1", "s1", t[1], result_count=0, **treat),
        completed(
            "b", "u1", "s1", t[2], 5, suggestion_shown=True, suggestion_applied=True, **treat
        ),
        # u1 comes back in session s2 the same day (not a return), which ends on an empty scan.
        completed("c", "u1", "s2", t[3], result_count=0, **treat),
        # u2 (control), session s3: started, then ends empty.
        started("d", "u2", "s3", t[0], **ctrl),
        completed("e", "u2", "s3", t[4], result_count=0, **ctrl),
        # u3 (treatment), session s4: shown a suggestion, not applied.
        completed("f", "u3", "s4", t[5], 3, suggestion_shown=True, **treat),
        # Outside the window: ignored.
        completed("g", "u9", "s9", T0 - timedelta(minutes=1), result_count=0, **treat),
    ]


async def test_usage_by_arm_matches_hand_counts(store: Store) -> None:
    """Adoption, scans per session, return rate and drop-off per arm, as counted by hand."""
    # Arrival order is scrambled on purpose: only the events' own timestamps count.
    for event in reversed(_scenario()):
        await store.record_event(event, T0 + timedelta(hours=1))
    report = await store.usage(T0, T0 + timedelta(hours=1))

    treatment = report.by_arm["treatment"]
    assert (treatment.users, treatment.sessions, treatment.scans_completed) == (2, 3, 4)
    assert treatment.empty_scans == 2
    assert treatment.scans_per_session == pytest.approx(4 / 3)
    assert (treatment.suggestions_shown, treatment.suggestions_applied) == (2, 1)
    assert treatment.suggestion_apply_rate == 0.5
    assert (treatment.users_shown_suggestion, treatment.users_adopting) == (2, 1)
    assert treatment.adoption == 0.5
    assert (treatment.returning_users, treatment.return_rate) == (0, 0.0)
    assert treatment.drop_off == DropOff(
        sessions_with_empty_scan=2, sessions_ending_empty=1, rate=0.5
    )

    control = report.by_arm["control"]
    assert (control.users, control.sessions, control.scans_completed) == (1, 1, 1)
    assert control.suggestion_apply_rate is None
    assert control.adoption is None
    assert control.return_rate == 0.0
    assert control.drop_off == DropOff(
        sessions_with_empty_scan=1, sessions_ending_empty=1, rate=1.0
    )

    overall = report.overall
    assert (overall.users, overall.sessions, overall.scans_completed) == (3, 4, 5)
    assert (overall.returning_users, overall.users_adopting) == (0, 1)
    assert overall.drop_off == DropOff(
        sessions_with_empty_scan=3, sessions_ending_empty=2, rate=pytest.approx(2 / 3)
    )


async def test_a_return_is_an_event_on_a_later_utc_day_as_in_the_report(store: Store) -> None:
    """Two sessions on one day are no return; an event after midnight UTC is, in any session."""
    evening = T0.replace(hour=23, minute=50)
    events = [
        completed("a", "same_day", "s1", T0),
        completed("b", "same_day", "s2", evening),
        completed("c", "next_day", "s3", evening),
        completed("d", "next_day", "s3", evening + timedelta(minutes=20)),  # 00:10 UTC
        completed("e", "once", "s4", T0),
    ]
    for event in events:
        await store.record_event(event, T0 + timedelta(days=2))
    usage = (await store.usage(T0, T0 + timedelta(days=2))).overall
    assert (usage.users, usage.returning_users) == (3, 1)
    assert usage.return_rate == pytest.approx(1 / 3)


async def test_events_without_arm_are_grouped_as_none(store: Store) -> None:
    """Events sent without an arm count overall and under "none"."""
    await store.record_event(completed("x", "u1", "s1", T0), T0)
    report = await store.usage(T0, T0 + timedelta(minutes=1))
    assert set(report.by_arm) == {"none"}
    assert report.overall.scans_completed == report.by_arm["none"].scans_completed == 1


async def test_empty_window_reports_zeros_not_errors(store: Store) -> None:
    """No events: zero counts and no rates (None), not a division by zero."""
    report = await store.usage(T0, T0 + timedelta(minutes=1))
    assert report.by_arm == {}
    assert report.overall.users == 0
    assert report.overall.scans_per_session is None
    assert report.overall.drop_off.rate is None
