"""POST /v1/feedback: ratings of issued predictions, stored once, text stored safely."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from litestar.testing import TestClient

from tests.server.routes.outcomes_app import Outcomes, outcomes_client
from tests.server.store.backends import pg_dsn, store_dsn

__all__ = ["pg_dsn", "store_dsn"]


@pytest.fixture
def app(store_dsn: str) -> Iterator[tuple[TestClient[Any], Outcomes]]:
    with outcomes_client(store_dsn) as started:
        yield started


def _body(prediction_id: str, **overrides: Any) -> dict[str, Any]:
    return {"prediction_id": prediction_id, "satisfaction": 4, "usefulness": 5, **overrides}


def test_feedback_is_201_once_and_a_retry_200(app: tuple[TestClient[Any], Outcomes]) -> None:
    """A rating is created once; the same rating again is acknowledged as a duplicate."""
    client, runtime = app
    pid = runtime.ids.new()
    first = client.post("/v1/feedback", json=_body(pid, suggestion="show sector filters"))
    assert (first.status_code, first.json()) == (201, {"id": pid, "status": "created"})
    again = client.post("/v1/feedback", json=_body(pid, suggestion="show sector filters"))
    assert (again.status_code, again.json()["status"]) == (200, "duplicate")


def test_a_different_second_rating_is_409(app: tuple[TestClient[Any], Outcomes]) -> None:
    """One feedback per prediction: changing it later is a conflict naming the prediction."""
    client, runtime = app
    pid = runtime.ids.new()
    client.post("/v1/feedback", json=_body(pid))
    response = client.post("/v1/feedback", json=_body(pid, satisfaction=1))
    assert response.status_code == 409
    assert pid in response.json()["error"]


def test_unknown_prediction_is_404_naming_it(app: tuple[TestClient[Any], Outcomes]) -> None:
    """A prediction_id this service never issued is 404 and the message quotes it."""
    client, _ = app
    response = client.post("/v1/feedback", json=_body("not-a-real-id"))
    assert response.status_code == 404
    assert ("'not-a-real-id'" in response.json()["error"], response.json()["field"]) == (
        True,
        "prediction_id",
    )


def test_free_text_is_stored_verbatim(app: tuple[TestClient[Any], Outcomes]) -> None:
    """SQL-looking text, quotes and emoji up to 2,000 characters are stored as given."""
    client, runtime = app
    pid = runtime.ids.new()
    text = ("Robert'); DROP TABLE feedback;-- \u00e9 \U0001f680 " * 60)[:2000]
    assert client.post("/v1/feedback", json=_body(pid, suggestion=text)).status_code == 201

    async def stored() -> list[str | None]:
        now = datetime.now(UTC)
        rows = await runtime.store.list_feedback(now - timedelta(minutes=5), now)
        return [r.feedback.suggestion for r in rows]

    assert client.blocking_portal is not None
    assert client.blocking_portal.call(stored) == [text]


@pytest.mark.parametrize(
    ("overrides", "field", "words"),
    [
        ({"satisfaction": 0}, "satisfaction", ">= 1"),
        ({"satisfaction": 6}, "satisfaction", "<= 5"),
        ({"usefulness": 2.5}, "usefulness", "Expected `int`"),
        ({"suggestion": "x" * 2001}, "suggestion", "length <= 2000"),
        ({"suggestion": "nul\u0000byte"}, "suggestion", "regex"),
        ({"rating": 5}, "rating", "unknown field"),
    ],
)
def test_bad_feedback_is_400_naming_the_field(
    app: tuple[TestClient[Any], Outcomes], overrides: dict[str, Any], field: str, words: str
) -> None:
    """Out-of-range ratings, oversized or NUL text and unknown fields are refused precisely."""
    client, runtime = app
    response = client.post("/v1/feedback", json=_body(runtime.ids.new(), **overrides))
    assert response.status_code == 400, response.text
    assert response.json()["field"] == field
    assert words in response.json()["error"]
