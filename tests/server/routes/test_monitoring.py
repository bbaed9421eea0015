"""GET /v1/monitoring/accuracy and /drift: served predictions joined to posted outcomes,
figures with their n, gauges on /metrics, and a 400 naming each bad parameter."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from litestar.testing import TestClient

from tests.server.conftest import SCAN

N = 300


@pytest.fixture
def served(client: TestClient[Any]) -> tuple[TestClient[Any], list[dict[str, Any]]]:
    """N scans of N users predicted in one batch, each with its scan_completed outcome."""
    scans = [
        {**SCAN, "user_id": f"u{i}", "session_id": f"s{i}", "lookback_bars": 20 + i % 50}
        for i in range(N)
    ]
    answers = client.post("/v1/predict/batch", json={"scans": scans}).json()["predictions"]
    now = datetime.now(UTC).isoformat()
    for i, answer in enumerate(answers):
        event = {
            "type": "scan_completed",
            "event_id": f"e{i}",
            "user_id": f"u{i}",
            "session_id": f"s{i}",
            "timestamp": now,
            "prediction_id": answer["prediction_id"],
            "arm": answer["arm"],
            "result_count": i % 20,
            "duration_s": 2.0 + i % 5,
        }
        assert client.post("/v1/events", json=event).status_code == 201
    worker = client.app.state.worker
    portal = client.blocking_portal
    assert portal is not None
    assert portal.call(worker.runtime.log.flush) is True
    assert portal.call(worker.monitor.flush) > 0
    assert portal.call(worker.monitor.run_jobs) is True
    return client, answers


def test_accuracy_joins_outcomes_to_predictions_per_arm(
    served: tuple[TestClient[Any], list[dict[str, Any]]],
) -> None:
    """Every labelled outcome counts once, overall and split by the arms that served it."""
    client, answers = served
    report = client.get("/v1/monitoring/accuracy", params={"window": "1h"}).json()
    groups = {g["arm"]: g for g in report["groups"]}
    assert groups["all"]["labelled"] == N
    arms = {a["arm"] for a in answers}
    assert sum(groups[arm]["labelled"] for arm in arms) == N
    figures = groups["all"]["result_count"]
    assert figures["mae"] > 0
    assert 0 <= figures["coverage"] <= 1
    assert figures["training_mae"] > 0
    assert 0 <= groups["all"]["p_empty"]["brier"] <= 1


def test_metrics_export_online_figures_beside_training_ones(
    served: tuple[TestClient[Any], list[dict[str, Any]]],
) -> None:
    """/metrics carries the online gauges per window and the training figures."""
    client, _answers = served
    text = client.get("/metrics").text
    version = client.get("/v1/monitoring/accuracy").json()["groups"][0]["version"]
    for line in (
        f'scanopt_online_labelled{{version="{version}",window="1h"}} {float(N)}',
        f'scanopt_online_mae{{target="result_count",version="{version}",window="live"}}',
        f'scanopt_training_mae{{target="duration_s",version="{version}"}}',
        'scanopt_drift_threshold{feature="volatility_index",score="psi"}',
        'scanopt_drift_alarm{feature="volatility_index"}',
        "scanopt_store_up 1.0",
        'scanopt_experiment_config_age_seconds{experiment="ml_scanning"}',
    ):
        assert line in text


def test_drift_reports_every_column_with_its_threshold(
    served: tuple[TestClient[Any], list[dict[str, Any]]],
) -> None:
    """Every feature and output of the served rows has its scores and thresholds."""
    client, _ = served
    report = client.get("/v1/monitoring/drift", params={"window_minutes": "60"}).json()
    assert report["n"] == N
    assert report["false_alarm_rate"] == 0.01
    columns = {c["column"]: c for c in report["columns"]}
    assert len(columns) == 38
    vix = columns["volatility_index"]
    assert vix["psi_threshold"] >= 0.2
    assert vix["wasserstein_threshold"] >= 0.1
    # Every served scan had the same volatility: far from the reference spread.
    assert vix["alarm"] is True


def test_too_few_outcomes_say_not_enough_data(client: TestClient[Any]) -> None:
    """No labelled outcome: no group; no served row: drift says how many it has."""
    assert client.get("/v1/monitoring/accuracy").json()["groups"] == []
    drift = client.get("/v1/monitoring/drift").json()
    assert drift["note"].startswith("not enough data (n = 0)")


@pytest.mark.parametrize(
    ("path", "params", "field"),
    [
        ("/v1/monitoring/accuracy", {"window": "2h"}, "window"),
        ("/v1/monitoring/drift", {"window_minutes": "0"}, "window_minutes"),
        ("/v1/monitoring/drift", {"window_minutes": "soon"}, "window_minutes"),
    ],
)
def test_bad_parameters_are_400_naming_them(
    client: TestClient[Any], path: str, params: dict[str, str], field: str
) -> None:
    """A bad window is a 400 whose message names the parameter and what is allowed."""
    response = client.get(path, params=params)
    assert response.status_code == 400
    assert field in response.text
    assert "expected" in response.text
