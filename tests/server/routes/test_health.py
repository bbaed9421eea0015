"""Probes: live always, ready only with a warmed model; no model means 503, not 500."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from litestar.testing import TestClient

from tests.server.conftest import SCAN, Versions


def test_live_and_ready_with_a_model(client: TestClient[Any], built_versions: Versions) -> None:
    """A started worker is live and ready, naming its model version."""
    assert client.get("/health/live").json() == {"status": "ok"}
    ready = client.get("/health/ready")
    assert ready.status_code == 200
    assert ready.json() == {"status": "ready", "model_version": built_versions.first}


def test_without_a_model_the_worker_is_live_but_not_ready(client_for: Any, artifacts: Path) -> None:
    """A missing model leaves the worker up, not ready, and predictions answer 503."""
    (artifacts / "current").unlink()
    client = client_for()
    assert client.get("/health/live").status_code == 200
    ready = client.get("/health/ready")
    assert ready.status_code == 503
    assert ready.json()["status"] == "not_ready"
    predicted = client.post("/v1/predict", json=SCAN)
    assert predicted.status_code == 503
    assert predicted.json()["kind"] == "not_ready"
    assert predicted.headers["retry-after"] == "1"


def test_polling_picks_up_a_model_that_appears_later(
    client_for: Any, artifacts: Path, built_versions: Versions
) -> None:
    """With polling on, a worker started without a model becomes ready once current exists."""
    (artifacts / "current").unlink()
    client = client_for(reload_poll_s=0.05)
    assert client.get("/health/ready").status_code == 503
    (artifacts / "current").write_text(built_versions.first)
    for _ in range(400):  # polls every 50 ms; give it up to 20 s on a loaded machine
        if client.get("/health/ready").status_code == 200:
            break
        time.sleep(0.05)
    assert client.get("/health/ready").status_code == 200
