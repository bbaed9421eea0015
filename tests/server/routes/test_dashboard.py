"""GET /dashboard, its assets and JSON: self-contained, bad windows named, store outages."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pytest
from litestar.testing import TestClient

from server.errors import StoreUnavailableError
from tests.server.conftest import SCAN


def test_page_is_served_with_a_strict_policy(client: TestClient[Any]) -> None:
    """The page is HTML whose policy allows only this origin's scripts and styles."""
    response = client.get("/dashboard")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    policy = response.headers["content-security-policy"]
    assert "script-src 'self'" in policy
    assert "default-src 'none'" in policy


def test_page_loads_nothing_from_elsewhere(client: TestClient[Any]) -> None:
    """Every script and stylesheet the page names is one of the app's own assets."""
    html = client.get("/dashboard").text
    assert "http://" not in html
    assert "https://" not in html
    for asset in ("uPlot.iife.min.js", "uPlot.min.css", "dashboard.js", "dashboard.css"):
        assert f"/dashboard/assets/{asset}" in html
        assert client.get(f"/dashboard/assets/{asset}").status_code == 200


def test_vendored_licence_is_served(client: TestClient[Any]) -> None:
    """uPlot's MIT licence is served beside it."""
    assert "MIT License" in client.get("/dashboard/assets/uPlot.LICENSE").text


def test_unknown_asset_is_404(client: TestClient[Any]) -> None:
    """Only the vendored files are served: other names are 404, never a file read."""
    assert client.get("/dashboard/assets/..%2Fpage.html").status_code == 404
    assert client.get("/dashboard/assets/app.py").status_code == 404


def test_live_counts_requests_and_versions(client: TestClient[Any]) -> None:
    """Live figures show the served version, the requests and the latency histogram."""
    for _ in range(3):
        assert client.post("/v1/predict", json=SCAN).status_code == 200
    live = client.get("/v1/dashboard/live").json()
    assert live["requests"] >= 3
    assert live["model_versions"] == [client.get("/v1/models").json()["version"]]
    assert live["latency_buckets"][-1] == [None, 3]  # the +Inf bucket (le null) holds every one
    assert live["ready_workers"] == 1


@pytest.mark.parametrize("path", ["/v1/dashboard/history", "/v1/dashboard/stored"])
def test_bad_window_is_400_naming_it(client: TestClient[Any], path: str) -> None:
    """A window other than 1h, 24h or 7d is a 400 that names it and lists the choices."""
    response = client.get(path, params={"window": "2h"})
    assert response.status_code == 400
    body = response.json()
    assert body["field"] == "window"
    assert "'2h'" in body["error"]
    assert "1h, 24h, 7d" in body["error"]


def test_stored_shows_feedback_as_written(client: TestClient[Any]) -> None:
    """Recent feedback comes back with its suggestion exactly as the user typed it."""
    answer = client.post("/v1/predict", json=SCAN).json()
    text = "<b>bold</b> & more"
    feedback = {"prediction_id": answer["prediction_id"], "satisfaction": 4, "usefulness": 5}
    assert client.post("/v1/feedback", json={**feedback, "suggestion": text}).status_code == 201
    stored = client.get("/v1/dashboard/stored", params={"window": "1h"}).json()
    assert [f["suggestion"] for f in stored["feedback"]] == [text]


def test_store_outage_is_503_while_live_keeps_answering(
    client: TestClient[Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """With the store unreachable, stored figures answer 503 and live ones still 200."""

    async def unreachable(since: datetime, until: datetime) -> list[Any]:
        raise StoreUnavailableError("database is locked")

    store = client.app.state.worker.store
    monkeypatch.setattr(store, "list_feedback", unreachable)
    assert client.get("/v1/dashboard/stored").status_code == 503
    assert client.get("/v1/dashboard/live").status_code == 200
