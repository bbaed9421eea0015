"""GET /v1/experiments/{name}/report[.html|.md] through the real app and its store."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from litestar.testing import TestClient

from server.analysis.report import Report, decode_report
from tests.server.conftest import SCAN

Client = TestClient[Any]
USERS = 24
DAYS = 3


def _event(kind: str, answer: dict[str, Any], user: str, at: datetime, **kw: Any) -> dict[str, Any]:
    return {
        "type": kind,
        "event_id": f"{user}-{kind}-{at.timestamp():.0f}",
        "user_id": user,
        "session_id": f"{user}-{at:%Y%m%d}",
        "timestamp": at.isoformat(),
        "prediction_id": answer["prediction_id"],
        "arm": answer["arm"],
        **kw,
    }


def _run_experiment(client: Client) -> dict[str, str]:
    """USERS users scan once a day for DAYS days (in the past); control scans come back
    empty two days in three, treatment scans one day in four. The arms each user got."""
    first_day = datetime.now(UTC).replace(hour=14, minute=0, second=0, microsecond=0) - timedelta(
        days=DAYS
    )
    arms = {}
    for i in range(USERS):
        user = f"user-{i}"
        for day in range(DAYS):
            at = first_day + timedelta(days=day, minutes=i)
            answer = client.post("/v1/predict", json={**SCAN, "user_id": user}).json()
            arms[user] = answer["arm"]
            empty = (i + day) % 3 != 0 if answer["arm"] == "control" else (i + day) % 4 == 0
            count = 0 if empty else 20
            for body in (
                _event("scan_started", answer, user, at),
                _event(
                    "scan_completed",
                    answer,
                    user,
                    at + timedelta(seconds=30),
                    result_count=count,
                    duration_s=30.0,
                    desired_min=5,
                    desired_max=50,
                ),
            ):
                assert client.post("/v1/events", json=body).status_code == 201
    return arms


def _report(client: Client, users: int, path: str = "") -> Report:
    """The report once the prediction log has flushed every user's exposure."""
    deadline = time.monotonic() + 10.0
    while True:
        response = client.get(f"/v1/experiments/ml_scanning/report{path}")
        assert response.status_code == 200, response.text
        report = decode_report(response.content)
        if sum(a.users for a in report.arms) == users or time.monotonic() > deadline:
            return report
        time.sleep(0.05)


@pytest.fixture
def client(client_for: Callable[..., Client]) -> Client:
    """The app with a prediction log that flushes quickly (exposures reach the store)."""
    return client_for(prediction_log_flush_s=0.02)


def test_report_json_counts_every_exposed_user_by_arm(client: Client) -> None:
    """The JSON report has each exposed user once in their arm and the arms' empty rates."""
    arms = _run_experiment(client)
    report = _report(client, USERS)
    assert report.experiment == "ml_scanning"
    by_arm = {a.name: a for a in report.arms}
    for arm in ("control", "treatment"):
        assert by_arm[arm].users == sum(1 for a in arms.values() if a == arm)
        assert by_arm[arm].scans == by_arm[arm].users * DAYS
    assert report.srm.counts == [by_arm["control"].users, by_arm["treatment"].users]
    (treatment,) = report.treatments
    empty = next(m for m in treatment.metrics if m.key == "empty_scan_rate")
    for arm, value in (("control", empty.control_value), ("treatment", empty.treatment_value)):
        users = [int(u.removeprefix("user-")) for u, a in arms.items() if a == arm]
        rule = (lambda k: k % 3 != 0) if arm == "control" else (lambda k: k % 4 == 0)
        empties = sum(rule(i + day) for i in users for day in range(DAYS))
        assert value == pytest.approx(empties / (len(users) * DAYS))
    returned = next(m for m in treatment.metrics if m.key == "return_rate")
    assert (returned.control_value, returned.treatment_value) == (1.0, 1.0)


def test_report_has_one_look_per_day(client: Client) -> None:
    """Daily looks cover each day of the experiment; looks=false leaves them out."""
    _run_experiment(client)
    report = _report(client, USERS)
    assert report.look == DAYS
    assert sorted({p.look for p in report.looks}) == list(range(1, DAYS + 1))
    plain = decode_report(client.get("/v1/experiments/ml_scanning/report?looks=false").content)
    assert (plain.look, plain.looks) == (None, [])


def test_report_html_is_a_page_with_its_plots(client: Client) -> None:
    """The HTML rendering is a whole page with the SRM, forest and trend plots inline."""
    _run_experiment(client)
    _report(client, USERS)
    response = client.get("/v1/experiments/ml_scanning/report.html")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    page = response.text
    assert page.startswith("<!doctype html>")
    assert "Experiment report: ml_scanning" in page
    assert page.count("<svg") == 3  # sample ratio, forest plot, lift by look


def test_report_markdown(client: Client) -> None:
    """The Markdown rendering starts with the title and has the checklist."""
    _run_experiment(client)
    _report(client, USERS)
    response = client.get("/v1/experiments/ml_scanning/report.md")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/markdown")
    assert response.text.startswith("# Experiment report: ml_scanning")
    assert "Empty scans -30%" in response.text


@pytest.mark.parametrize("suffix", ["", ".html", ".md"])
def test_unknown_experiment_is_404_naming_it(client: Client, suffix: str) -> None:
    """An unknown experiment is a 404 whose message names it and the known ones."""
    response = client.get(f"/v1/experiments/nope/report{suffix}")
    assert response.status_code == 404
    error = response.json()["error"]
    assert "'nope'" in error
    assert "ml_scanning" in error
