"""GET /v1/monitoring/accuracy and /drift: served predictions joined to posted outcomes,
figures with their n, gauges on /metrics, and a 400 naming each bad parameter."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import msgspec
import pytest
from litestar.testing import TestClient

from server.app import create_app
from server.domain.artifact import Manifest
from server.monitoring.monitor import Monitor, MonitorSettings
from tests.server.conftest import SCAN, Versions, make_settings

N = 300


@pytest.fixture(scope="module")
def served(
    tmp_path_factory: pytest.TempPathFactory, built_versions: Versions
) -> Iterator[tuple[TestClient[Any], list[dict[str, Any]]]]:
    """N scans of N users predicted in one batch, each with its scan_completed outcome,
    on one app for the module (the background jobs are slowed so the test drives them)."""
    artifacts = tmp_path_factory.mktemp("monitoring") / "artifacts"
    shutil.copytree(built_versions.root, artifacts)
    (artifacts / "current").write_text(built_versions.first + "\n")
    settings = make_settings(artifacts, drift_flush_s=600.0, monitor_interval_s=3600.0)
    with TestClient(create_app(settings)) as client:
        yield _serve(client)


def _serve(client: TestClient[Any]) -> tuple[TestClient[Any], list[dict[str, Any]]]:
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
    assert portal.call(worker.log.flush) is True
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
    # The test models are too small for a drift calibration: the report says what it uses.
    assert report["calibration"].startswith("independent rows: the manifest has no drift")
    columns = {c["column"]: c for c in report["columns"]}
    assert len(columns) == 38
    vix = columns["volatility_index"]
    assert vix["psi_threshold"] >= 0.2
    assert vix["wasserstein_threshold"] >= 0.1
    # Every served scan had the same volatility, far from the year's spread (PSI well above
    # 0.2), but one ordinary day's level: a day column alarms only beyond the training range.
    assert vix["psi"] > 0.2
    assert vix.get("alarm", False) is False  # false is left out of the answer
    # A clock column is scored but has no threshold and never alarms.
    weekday = columns["weekday"]
    assert weekday["psi"] is not None
    assert (weekday.get("psi_threshold"), weekday.get("alarm", False)) == (None, False)


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
        ("/v1/monitoring/business", {"window": "live"}, "window"),
        ("/v1/monitoring/importance", {"version": "../etc"}, "version"),
    ],
)
def test_bad_parameters_are_400_naming_them(
    client: TestClient[Any], path: str, params: dict[str, str], field: str
) -> None:
    """A bad window is a 400 whose message names the parameter and what is allowed, in
    plain words (Litestar's own text for window_minutes showed Python reprs)."""
    response = client.get(path, params=params)
    assert response.status_code == 400
    body = response.json()
    assert body["field"] == field
    assert body["error"].startswith(field)
    assert "expected" in body["error"]
    assert "ParamType" not in body["error"]


def test_importance_drift_is_measured_on_labelled_outcomes(
    served: tuple[TestClient[Any], list[dict[str, Any]]],
) -> None:
    """With enough labelled outcomes the nDCG is stored and served with its 0.9 bar."""
    client, _ = served
    worker = client.app.state.worker
    # The test model is a quick build without importances: borrow the committed model's
    # (same features) as the baseline ranking.
    manifest = msgspec.structs.replace(worker.predictor.model.manifest, importances=_committed())
    monitor = Monitor(
        worker.store,
        worker.monitor.gauges,
        worker.settings.artifacts,
        MonitorSettings(),
        current=lambda: manifest,
        run=lambda: worker.predictor.model.run,
    )
    assert client.blocking_portal is not None
    result = client.blocking_portal.call(monitor.measure_importance)
    assert result is not None
    assert result.n == N
    report = client.get("/v1/monitoring/importance").json()
    assert report["threshold"] == 0.9
    assert 0.0 <= report["ndcg"] <= 1.0
    assert report["violation"] == (report["ndcg"] < 0.9)
    assert set(report["by_target"]) <= {"result_count", "duration_s", "empty"}


def test_importance_without_outcomes_says_why(client: TestClient[Any]) -> None:
    """No labelled outcome yet: no figure, and a note saying what it needs."""
    assert client.blocking_portal is not None
    monitor = client.app.state.worker.monitor
    assert client.blocking_portal.call(monitor.measure_importance) is None
    report = client.get("/v1/monitoring/importance").json()
    assert report.get("ndcg") is None
    assert report["note"].startswith("not enough data (n = 0)")


def _committed() -> dict[str, dict[str, float]]:
    root = Path(__file__).resolve().parents[3] / "artifacts"
    path = root / "models" / (root / "current").read_text().strip() / "manifest.json"
    return msgspec.json.decode(path.read_bytes(), type=Manifest).importances


def test_business_reports_each_arm_and_exports_the_empty_rate(
    served: tuple[TestClient[Any], list[dict[str, Any]]],
) -> None:
    """Every posted outcome counts in its arm; the empty rate is on /metrics per window."""
    client, _answers = served
    report = client.get("/v1/monitoring/business", params={"window": "1h"}).json()
    arms = {a["arm"]: a for a in report["arms"]}
    assert sum(a["scans_completed"] for a in arms.values()) == N
    empty = sum(1 for i in range(N) if i % 20 == 0)
    rate = sum(a["empty_rate"] * a["scans_completed"] for a in arms.values()) / N
    assert abs(rate - empty / N) < 1e-9
    assert (
        'scanopt_business_empty_rate{arm="treatment",window="24h"}' in client.get("/metrics").text
    )
    assert client.get("/v1/monitoring/business", params={"window": "30d"}).status_code == 400
