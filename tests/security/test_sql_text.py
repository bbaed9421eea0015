"""Text from clients reaches SQL only as parameters, on both backends.

Ids with quotes, comment markers, placeholders and a statement of their own are stored
and read back exactly, and the tables they name survive. (The feedback suggestion has the
same test beside its route: tests/server/routes/test_feedback.py.)
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from tests.server.resilience.load import event_body
from tests.server.routes.outcomes_app import outcomes_client
from tests.server.store.backends import pg_dsn, store_dsn

__all__ = ["pg_dsn", "store_dsn"]

PAYLOADS = [
    "x'); DROP TABLE events; --",
    'quote"double',
    "pct%s and ? and $1 and %(x)s",
    "back\\slash' OR '1'='1",
]


@pytest.mark.parametrize("payload", PAYLOADS)
def test_ids_with_sql_are_stored_verbatim(store_dsn: str, payload: str) -> None:
    """An event whose ids are SQL is stored as given; the events table still answers."""
    with outcomes_client(store_dsn) as (client, runtime):
        body = {**event_body(f"e-{payload}"), "user_id": payload, "session_id": payload}
        response = client.post("/v1/events", json=body)
        assert response.status_code == 201, response.text
        assert client.post("/v1/events", json=body).status_code == 200  # found again by id

        async def stored() -> list[tuple[str, str, str]]:
            now = datetime.now(UTC)
            rows = await runtime.store.list_events(now - timedelta(hours=1), now)
            return [(r.event.event_id, r.event.user_id, r.event.session_id) for r in rows]

        assert client.blocking_portal is not None
        assert client.blocking_portal.call(stored) == [(f"e-{payload}", payload, payload)]
