"""The HTTP observer: request ids, route-template labels, in-flight gauge, access lines."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from litestar import Litestar, get
from litestar.params import FromPath
from litestar.testing import TestClient

from server.logs import REQUEST_ID
from server.monitoring.http import HttpObserver, RouteTemplates
from server.monitoring.metrics import Metrics
from server.settings import Settings


@pytest.fixture
def observed(tmp_path: Path) -> Iterator[tuple[TestClient[Any], Metrics]]:
    """A one-route app wrapped the way server.app wraps the real one."""

    @get("/items/{item_id:int}")
    async def item(item_id: FromPath[int]) -> dict[str, Any]:
        return {"item": item_id, "request_id": REQUEST_ID.get()}

    @get("/boom")
    async def boom() -> None:
        raise RuntimeError("bug")

    metrics = Metrics(Settings(artifacts=tmp_path))
    app = Litestar([item, boom], logging_config=None)
    app.asgi_handler = HttpObserver(app.asgi_handler, metrics, logging.getLogger("scanopt"))
    with TestClient(app) as client:
        yield client, metrics


def count(metrics: Metrics, route: str, method: str, status: str) -> float:
    labels = {"route": route, "method": method, "status": status}
    return metrics.registry.get_sample_value("scanopt_http_requests_total", labels) or 0.0


def test_request_id_is_generated_and_seen_by_the_handler(
    observed: tuple[TestClient[Any], Metrics],
) -> None:
    """Without X-Request-ID one is made, echoed, and visible to code serving the request."""
    client, _ = observed
    response = client.get("/items/3")
    rid = response.headers["x-request-id"]
    assert len(rid) == 32
    assert response.json()["request_id"] == rid


def test_client_request_id_is_echoed(observed: tuple[TestClient[Any], Metrics]) -> None:
    """A sane client id is kept end to end."""
    client, _ = observed
    response = client.get("/items/3", headers={"X-Request-ID": "scanner-42.a"})
    assert response.headers["x-request-id"] == "scanner-42.a"
    assert response.json()["request_id"] == "scanner-42.a"


def test_unsafe_request_id_is_replaced(observed: tuple[TestClient[Any], Metrics]) -> None:
    """An id with spaces or of absurd length is not echoed into logs; a new one is made."""
    client, _ = observed
    for bad in ("has space", "x" * 200):
        rid = client.get("/items/3", headers={"X-Request-ID": bad}).headers["x-request-id"]
        assert rid != bad
        assert len(rid) == 32


def test_labels_use_the_route_template(observed: tuple[TestClient[Any], Metrics]) -> None:
    """Two item ids are one route label; unknown paths are 'unmatched'; bugs count as 500."""
    client, metrics = observed
    client.get("/items/1")
    client.get("/items/2")
    client.get("/nowhere")
    client.get("/boom")
    assert count(metrics, "/items/{item_id}", "GET", "200") == 2
    assert count(metrics, "unmatched", "GET", "404") == 1
    assert count(metrics, "/boom", "GET", "500") == 1
    assert metrics.registry.get_sample_value("scanopt_http_requests_in_flight") == 0


def test_access_line_carries_status_route_and_duration(
    observed: tuple[TestClient[Any], Metrics], caplog: pytest.LogCaptureFixture
) -> None:
    """Each request logs one INFO 'request' line with its fields."""
    client, _ = observed
    with caplog.at_level(logging.INFO, logger="scanopt"):
        client.get("/items/5")
    lines = [r for r in caplog.records if r.getMessage() == "request"]
    assert len(lines) == 1
    fields = lines[0].fields  # type: ignore[attr-defined]
    assert fields["status"] == 200
    assert fields["route"] == "/items/{item_id}"
    assert fields["path"] == "/items/5"
    assert fields["duration_ms"] >= 0


def test_route_templates_match_parameters_and_nothing_else() -> None:
    """Typed and path parameters match their segments; a longer path matches no template."""
    templates = RouteTemplates(
        [("/v2/models/{name:str}/ready", "/v2/models/{name}/ready"), ("/f/{p:path}", "/f/{p}")]
    )
    assert templates.match("/v2/models/scanopt/ready") == "/v2/models/{name}/ready"
    assert templates.match("/v2/models/scanopt/ready/x") is None
    assert templates.match("/f/a/b/c") == "/f/{p}"
    assert templates.match("/nowhere") is None
