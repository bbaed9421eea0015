"""POST /v1/events and GET /v1/analytics/usage: idempotent, ordered by their own time,
every bad input a precise 4xx."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import pytest
from litestar.testing import TestClient

from server.store.sqlite import SqliteStore
from tests.server.conftest import SCAN
from tests.server.routes.outcomes_app import Outcomes, outcomes_client
from tests.server.store.backends import pg_dsn, store_dsn
from tests.server.store.tcp_proxy import TcpProxy

__all__ = ["pg_dsn", "store_dsn"]

NOW = datetime.now(UTC).replace(microsecond=0)


def completed(event_id: str = "e-1", **overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "type": "scan_completed",
        "event_id": event_id,
        "user_id": "u-1",
        "session_id": "s-1",
        "timestamp": (NOW - timedelta(minutes=1)).isoformat(),
        "arm": "treatment",
        "result_count": 12,
        "duration_s": 3.5,
        "suggestion_shown": True,
        "suggestion_applied": True,
        "desired_min": 5,
        "desired_max": 50,
    }
    body.update(overrides)
    return body


@pytest.fixture
def app(store_dsn: str) -> Iterator[tuple[TestClient[Any], Outcomes]]:
    with outcomes_client(store_dsn) as started:
        yield started


@pytest.fixture
def client(app: tuple[TestClient[Any], Outcomes]) -> TestClient[Any]:
    return app[0]


def test_new_event_is_201_and_a_retry_200(client: TestClient[Any]) -> None:
    """The first post stores the event (201); the same body again is a duplicate (200)."""
    first = client.post("/v1/events", json=completed())
    assert (first.status_code, first.json()) == (201, {"id": "e-1", "status": "created"})
    again = client.post("/v1/events", json=completed())
    assert (again.status_code, again.json()) == (200, {"id": "e-1", "status": "duplicate"})
    usage = client.get("/v1/analytics/usage").json()
    assert usage["overall"]["scans_completed"] == 1


def test_same_id_with_another_body_is_409(client: TestClient[Any]) -> None:
    """Reusing an event_id for different content is a conflict naming the id."""
    client.post("/v1/events", json=completed())
    response = client.post("/v1/events", json=completed(result_count=0))
    assert response.status_code == 409
    assert (response.json()["field"], "'e-1'" in response.json()["error"]) == ("event_id", True)


def test_every_event_type_is_accepted_in_any_order(client: TestClient[Any]) -> None:
    """scan_completed may arrive before scan_started; each keeps its own timestamp."""
    base = {"user_id": "u-2", "session_id": "s-2", "arm": "control"}
    t = [(NOW - timedelta(seconds=s)).isoformat() for s in (30, 20, 10)]
    events = [
        {"type": "scan_completed", "event_id": "c", "timestamp": t[2], **base}
        | {"result_count": 0, "duration_s": 1.0},
        {"type": "first_result", "event_id": "b", "timestamp": t[1], "elapsed_s": 0.4, **base},
        {"type": "scan_started", "event_id": "a", "timestamp": t[0], **base},
    ]
    for event in events:
        assert client.post("/v1/events", json=event).status_code == 201
    control = client.get("/v1/analytics/usage").json()["by_arm"]["control"]
    assert control["drop_off"] == {
        "sessions_with_empty_scan": 1,
        "sessions_ending_empty": 1,
        "rate": 1.0,
    }


def test_issued_prediction_id_is_accepted(app: tuple[TestClient[Any], Outcomes]) -> None:
    """An event naming a prediction this service issued is recorded."""
    client, runtime = app
    body = completed(prediction_id=runtime.ids.new())
    assert client.post("/v1/events", json=body).status_code == 201


@pytest.mark.parametrize(
    ("overrides", "status", "field", "words"),
    [
        ({"prediction_id": "f" * 40}, 404, "prediction_id", "unknown prediction_id"),
        ({"arm": "treatmentx"}, 422, "arm", "expected one of 'control', 'treatment'"),
        ({"experiment": "nope"}, 422, "experiment", "unknown experiment 'nope'"),
        ({"timestamp": (NOW + timedelta(days=2)).isoformat()}, 422, "timestamp", "1 h after"),
        ({"timestamp": "1900-01-01T00:00:00Z"}, 422, "timestamp", "expected from 2000-01-01"),
        ({"type": "scan_exploded"}, 400, "type", "scan_exploded"),
        ({"result_count": -1}, 400, "result_count", ">= 0"),
        ({"duration_s": 0}, 400, "duration_s", "> 0"),
        ({"event_id": ""}, 400, "event_id", "length >= 1"),
        ({"timestamp": "2026-03-02T15:00:00"}, 400, "timestamp", "timezone"),
        ({"suggestion_shown": False}, 400, None, "suggestion_shown is false"),
        ({"desired_min": 60}, 400, "desired_min", "must not exceed desired_max (50)"),
        ({"user_id": "a\u0000b"}, 400, "user_id", "without control characters"),
        ({"elapsed_s": 1.0}, 400, "elapsed_s", "unknown field"),
    ],
)
def test_bad_events_get_precise_4xx(
    client: TestClient[Any], overrides: dict[str, Any], status: int, field: str | None, words: str
) -> None:
    """Each kind of bad event answers its own status, naming the field; nothing is stored."""
    response = client.post("/v1/events", json=completed(**overrides))
    assert response.status_code == status, response.text
    assert response.json().get("field") == field
    assert words in response.json()["error"]
    assert client.get("/v1/analytics/usage").json()["overall"]["scans_completed"] == 0


def test_missing_required_field_is_named(client: TestClient[Any]) -> None:
    """A scan_completed without result_count says which field is missing."""
    body = completed()
    del body["result_count"]
    response = client.post("/v1/events", json=body)
    assert response.status_code == 400
    assert response.json()["field"] == "result_count"


@pytest.mark.parametrize(
    ("query", "status"),
    [
        ({"since": "2026-03-02T15:00:00Z", "until": "2026-03-01T15:00:00Z"}, 422),
        ({"since": "2026-03-02T15:00:00"}, 400),
        ({"since": "yesterday"}, 400),
        ({"until": "0.5"}, 400),
        ({"until": "1700000000"}, 400),
        ({"until": "0001-01-03T00:00:00Z"}, 200),
    ],
)
def test_usage_window_is_validated(
    client: TestClient[Any], query: dict[str, str], status: int
) -> None:
    """A reversed window is 422; a naive time, an unparsable one or a bare number (which
    Litestar's own datetime parsing took as a Unix time) is 400: not RFC 3339; a default
    since that would fall before year 1 stops there."""
    assert client.get("/v1/analytics/usage", params=query).status_code == status


def test_an_unparsable_query_parameter_is_named_in_plain_words(client: TestClient[Any]) -> None:
    """A bad query parameter's 400 names it as the field and says what was expected."""
    response = client.get("/v1/analytics/usage", params={"until": "AAA"})
    assert response.status_code == 400
    body = response.json()
    assert body["field"] == "until"
    assert body["error"].startswith("until: 'AAA' is not a date-time: expected RFC 3339")
    assert "ParamType" not in body["error"]


def test_store_unavailable_is_503_and_nothing_is_acknowledged(tmp_path: Path) -> None:
    """When the store cannot take the write, the answer is 503 with a clear message."""
    store = SqliteStore(tmp_path / "s.db", threads=4, busy_timeout_s=0.05)
    with outcomes_client(store=store) as (client, _):
        holder = sqlite3.connect(tmp_path / "s.db", isolation_level=None)
        holder.execute("BEGIN EXCLUSIVE")
        try:
            response = client.post("/v1/events", json=completed())
        finally:
            holder.execute("ROLLBACK")
            holder.close()
        assert response.status_code == 503
        assert response.headers["retry-after"] == "1"
        assert "unavailable" in response.json()["error"]
        assert client.post("/v1/events", json=completed()).status_code == 201


@pytest.mark.slow
def test_postgres_outage_keeps_predicting_and_loses_nothing(pg_dsn: str, client_for: Any) -> None:
    """PostgreSQL goes away under a running app: /v1/predict keeps answering (ML included),
    writes answer 503; once it is back, every buffered prediction is written, none dropped."""
    url = urlsplit(pg_dsn)
    proxy = TcpProxy((url.hostname or "127.0.0.1", url.port or 5432))
    through_proxy = urlunsplit(url._replace(netloc=f"{url.username}@127.0.0.1:{proxy.port}"))
    try:
        client = client_for(store_dsn=through_proxy, prediction_log_flush_s=0.05)
        runtime = client.app.state.worker
        assert client.blocking_portal is not None
        ids = [client.post("/v1/predict", json=SCAN).json()["prediction_id"]]
        proxy.down()
        for _ in range(20):
            answer = client.post("/v1/predict", json=SCAN)
            assert answer.status_code == 200
            assert answer.json()["ml_enabled"] is True  # the last good config stays in force
            ids.append(answer.json()["prediction_id"])
        refused = client.post("/v1/events", json=completed(prediction_id=ids[0]))
        assert refused.status_code == 503
        assert "PostgreSQL store" in refused.json()["error"]
        rating = {"prediction_id": ids[0], "satisfaction": 4, "usefulness": 4}
        assert client.post("/v1/feedback", json=rating).status_code == 503
        proxy.up()
        statuses = []
        for _ in range(100):
            statuses.append(client.post("/v1/events", json=completed()).status_code)
            if statuses[-1] != 503:
                break
        assert statuses[-1] == 201
        assert client.blocking_portal.call(runtime.log.flush) is True
        stored = [client.blocking_portal.call(runtime.store.get_prediction, i) for i in ids]
        assert None not in stored
        registry = client.app.state.worker.metrics.registry
        dropped = [
            s.value
            for family in registry.collect()
            if family.name == "scanopt_store_dropped"
            for s in family.samples
        ]
        assert sum(dropped) == 0
    finally:
        proxy.close()


def test_openapi_documents_the_event_body(client_for: Any) -> None:
    """/schema/openapi.json describes the POST /v1/events body as the three event types."""
    document = client_for().get("/schema/openapi.json").json()
    body = document["paths"]["/v1/events"]["post"]["requestBody"]["content"]["application/json"]
    refs = {item["$ref"].rsplit("/", 1)[-1] for item in body["schema"]["anyOf"]}
    assert refs == {"ScanStarted", "FirstResult", "ScanCompleted"}
    assert body["schema"]["discriminator"]["propertyName"] == "type"
    assert "result_count" in document["components"]["schemas"]["ScanCompleted"]["properties"]
