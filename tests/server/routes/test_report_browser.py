"""The experiment report's HTML page in a real browser (Playwright driving Debian's
chromium): hostile text that reaches it is shown as text and runs nothing."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import msgspec
import pytest
from litestar.testing import TestClient

from server.analysis.report import Report, decode_report
from server.analysis.report_html import render_html
from tests.security.hostile import HOSTILE, render_in_chromium
from tests.server.analysis.sample_report import sample_report
from tests.server.conftest import SCAN

pytestmark = pytest.mark.slow

Client = TestClient[Any]
USERS = 6


def _hostile_names(report: Report) -> Report:
    """The report with its experiment and arm names, and a warning, made hostile markup:
    every string the page shows that comes from configuration or data."""
    names = {
        "ml_scanning": HOSTILE,
        "control": f"control {HOSTILE}",
        "treatment": f"treatment {HOSTILE}",
    }

    def swap(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: swap(v) for k, v in value.items()}
        if isinstance(value, list):
            return [swap(v) for v in value]
        return names.get(value, value) if isinstance(value, str) else value

    hostile = msgspec.convert(swap(msgspec.to_builtins(report)), Report)
    return msgspec.structs.replace(hostile, warnings=[*hostile.warnings, HOSTILE])


def test_every_name_on_the_page_is_shown_as_text() -> None:
    """Experiment, arm names (tables, headings and the SVG plots' labels) and warnings
    carrying markup are shown as the characters they are; no script runs, no error."""
    page = render_in_chromium(html=render_html(_hostile_names(sample_report())))
    assert f"treatment {HOSTILE}" in page.text
    assert page.text.count(HOSTILE) >= 4
    assert page.pwned is None
    assert page.hostile_elements == 0
    assert page.errors == []


@pytest.fixture
def client(client_for: Callable[..., Client]) -> Client:
    """The app with a prediction log that flushes quickly (exposures reach the store)."""
    return client_for(prediction_log_flush_s=0.02)


def test_hostile_ids_and_suggestions_stored_through_the_api_run_nothing(client: Client) -> None:
    """User, session and event ids and a feedback suggestion carrying markup (all allowed:
    printable, no controls) go through the API into the store and the report built from
    it; the served page runs no script and logs no error."""
    for i in range(USERS):
        user = f"{HOSTILE}{i}"
        answer = client.post(
            "/v1/predict", json={**SCAN, "user_id": user, "session_id": f"{HOSTILE}s{i}"}
        ).json()
        event = {
            "type": "scan_completed",
            "event_id": f"{HOSTILE}e{i}",
            "user_id": user,
            "session_id": f"{HOSTILE}s{i}",
            "timestamp": SCAN["timestamp"],
            "prediction_id": answer["prediction_id"],
            "arm": answer["arm"],
            "result_count": 0 if i % 2 else 12,
            "duration_s": 3.0,
        }
        assert client.post("/v1/events", json=event).status_code == 201, event
        feedback = {
            "prediction_id": answer["prediction_id"],
            "satisfaction": 1 + i % 5,
            "usefulness": 3,
            "suggestion": HOSTILE,
            "user_id": user,
        }
        assert client.post("/v1/feedback", json=feedback).status_code == 201
    deadline = time.monotonic() + 10.0
    while True:  # until the prediction log has flushed every exposure
        report = decode_report(client.get("/v1/experiments/ml_scanning/report").content)
        if sum(a.users for a in report.arms) == USERS or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert sum(a.users for a in report.arms) == USERS
    response = client.get("/v1/experiments/ml_scanning/report.html")
    assert response.status_code == 200
    assert "<script" not in response.text
    page = render_in_chromium(html=response.text)
    assert "ml_scanning" in page.text
    assert page.pwned is None
    assert page.hostile_elements == 0
    assert page.errors == []
