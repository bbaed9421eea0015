"""Business figures per arm on both backends, against a hand-counted scenario."""

from __future__ import annotations

from datetime import timedelta

import pytest

from server.store.interface import Store
from tests.server.store.backends import anyio_backend, pg_dsn, store, store_dsn
from tests.server.store.records_factory import T0, completed, feedback, first_result, prediction

__all__ = ["anyio_backend", "pg_dsn", "store", "store_dsn"]

pytestmark = pytest.mark.anyio

DAY = timedelta(days=1)


async def test_business_by_arm_matches_hand_counts(store: Store) -> None:
    """Empty rate, first result, feedback, adoption and regular usage per arm, by hand."""
    treat, ctrl = {"arm": "treatment"}, {"arm": "control"}
    applied = {"suggestion_shown": True, "suggestion_applied": True, **treat}
    events = [
        # u1 applies suggestions on two days: tried and regular.
        completed("a", "u1", "s1", T0, 5, **applied),
        completed("b", "u1", "s2", T0 + DAY, 7, **applied),
        # u2 (treatment) never applies; one empty scan; a first result after 2 s.
        completed("c", "u2", "s3", T0, 0, **treat),
        first_result("d", "u2", "s3", T0, elapsed_s=2.0, **treat),
        # u3 (control): one empty, one not.
        completed("e", "u3", "s4", T0, 0, **ctrl),
        completed("f", "u3", "s4", T0, 4, **ctrl),
    ]
    received = T0 + 2 * DAY
    for event in events:
        await store.record_event(event, received)
    await store.write_log([prediction(1), prediction(2, arm="control")], [])
    await store.record_feedback(feedback("p0001", satisfaction=5), received)
    await store.record_feedback(feedback("p0002", satisfaction=2), received)

    arms = {a.arm: a for a in await store.business(received, received + timedelta(minutes=1))}
    t, c = arms["treatment"], arms["control"]
    assert (t.users, t.scans_completed, t.active_users) == (2, 3, 2)
    assert t.empty_rate == pytest.approx(1 / 3)
    assert t.first_result_s == pytest.approx(2.0)
    assert (t.adoption, t.regular_usage) == (0.5, 0.5)
    assert (t.feedback, t.satisfaction, t.positive_share) == (1, 5.0, 1.0)
    assert (c.empty_rate, c.adoption, c.positive_share) == (0.5, 0.0, 0.0)
    # By event time, a window holding only the first day sees u1's first scan only.
    first_day = {a.arm: a for a in await store.business(T0, T0 + DAY, "occurred_us")}
    assert first_day["treatment"].regular_usage == 0.0
    assert first_day["treatment"].scans_completed == 2
