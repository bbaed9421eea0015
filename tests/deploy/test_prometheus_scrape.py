"""A real Prometheus scraping a real 2-worker scanopt: the rules load, the queries answer."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
import yaml

from tests.deploy.grafana.queries import panel_queries
from tests.deploy.prometheus_process import PrometheusProcess
from tests.deploy.tools import RULES
from tests.server.conftest import SCAN
from tests.server.granian_process import ServerProcess, server_env

pytestmark = pytest.mark.slow

# Panels that may show no data here: firing alerts and dropped prediction-log rows need
# failures this test does not cause; importance drift is measured hourly.
SILENT_ALLOWED = {"Firing alerts", "Prediction-log rows dropped", "Importance nDCG"}
SHIFTED = {"volatility_index": 40.0, "universe": "us_all"}  # a calm market turns wild


@pytest.fixture
def scraped(tmp_path: Path, artifacts: Path) -> Iterator[tuple[ServerProcess, PrometheusProcess]]:
    """scanopt (2 workers) and a Prometheus scraping it every second; both stopped after."""
    env = server_env(
        tmp_path,
        artifacts,
        monitor_interval_s=1.0,
        drift_flush_s=0.5,
        accuracy_min_labelled=5,
    )
    server = ServerProcess(env, tmp_path / "server.log")
    prometheus: PrometheusProcess | None = None
    try:
        server.wait_ready()
        prometheus = PrometheusProcess(tmp_path, [server.url.removeprefix("http://")])
        prometheus.wait_ready()
        yield server, prometheus
    finally:
        if prometheus is not None:
            prometheus.stop()
        server.stop()


def _scraped_traffic(server: ServerProcess, prometheus: PrometheusProcess) -> None:
    """Traffic in two bursts with a scrape between: a series first seen after the first
    burst only has a rate once a later scrape sees it grow."""
    _traffic(server)
    prometheus.wait_for('scanopt_http_requests_total{route="/v1/predict/batch"}')
    _traffic(server)


def _shifted_outcomes(server: ServerProcess) -> None:
    """Shifted scans in batches, and an outcome for each of the first ones."""
    now = datetime.now(UTC).isoformat()
    with httpx.Client(base_url=server.url, timeout=30) as http:
        for batch in range(3):
            scans = [
                {**SCAN, **SHIFTED, "user_id": f"s-{batch}-{i}", "lookback_bars": 20 + i % 50}
                for i in range(120)
            ]
            answer = http.post("/v1/predict/batch", json={"scans": scans})
            assert answer.status_code == 200
            if batch:
                continue
            for i, prediction in enumerate(answer.json()["predictions"][:60]):
                event = {
                    "type": "scan_completed",
                    "event_id": f"e-{i}",
                    "user_id": f"s-0-{i}",
                    "session_id": "s",
                    "timestamp": now,
                    "prediction_id": prediction["prediction_id"],
                    "arm": prediction["arm"],
                    "result_count": i % 20,
                    "duration_s": 2.0 + i % 5,
                }
                assert http.post("/v1/events", json=event).status_code == 201


def _traffic(server: ServerProcess) -> None:
    with httpx.Client(base_url=server.url, timeout=10) as http:
        for i in range(150):
            scan = {**SCAN, "user_id": f"u-{i}", "lookback_bars": 20 + i % 7}
            assert http.post("/v1/predict", json=scan).status_code == 200
        assert http.post("/v1/predict", json={**SCAN, "rsi_min": 90.0}).status_code == 400
        assert http.post("/v1/predict/batch", json={"scans": [SCAN] * 8}).status_code == 200


def test_rules_load_latency_reads_back_and_panels_answer(
    scraped: tuple[ServerProcess, PrometheusProcess],
) -> None:
    """alerts.yml loads and evaluates cleanly, p95 latency reads back, an online-accuracy
    gauge after outcomes and a drift score after shifted traffic read back, and every
    Grafana panel over metrics scanopt exported shows data."""
    server, prometheus = scraped
    _scraped_traffic(server, prometheus)
    p95 = prometheus.wait_for(
        "histogram_quantile(0.95, sum by (le) "
        '(rate(scanopt_http_request_duration_seconds_bucket{route="/v1/predict"}[1m])))'
    )
    assert 0 < float(p95[0]["value"][1]) <= 5.0
    sli = prometheus.wait_for("scanopt:availability_sli_error:ratio_rate5m")
    assert float(sli[0]["value"][1]) == 0.0  # 400s are the client's mistake, not a failure
    prometheus.wait_for("scanopt:latency_sli_error:ratio_rate3d")

    expected = {g["name"]: len(g["rules"]) for g in yaml.safe_load(RULES.read_text())["groups"]}
    groups = prometheus.api("rules")["groups"]
    assert {g["name"]: len(g["rules"]) for g in groups} == expected
    for group in groups:
        for rule in group["rules"]:
            assert rule["health"] == "ok", rule
            assert not rule.get("lastError"), rule

    # The in-app monitoring's gauges: accuracy once outcomes joined their predictions,
    # drift once shifted traffic was counted (the lease holder refreshes every second).
    _shifted_outcomes(server)
    mae = prometheus.wait_for(
        'scanopt_online_mae{target="result_count", window="1h"}', timeout_s=90
    )
    assert float(mae[0]["value"][1]) >= 0
    prometheus.wait_for('scanopt_online_labelled{window="1h"} == 60', timeout_s=60)
    drift = prometheus.wait_for(
        'scanopt_drift_score{feature="volatility_index", score="psi"}'
        " > on (feature, score) group_left scanopt_drift_threshold",
        timeout_s=90,
    )
    assert float(drift[0]["value"][1]) > 0.1
    prometheus.wait_for('scanopt_drift_alarm{feature="volatility_index"} == 1', timeout_s=30)

    panels: dict[str, list[str]] = {}
    for title, expr in panel_queries():
        panels.setdefault(title, []).append(expr)
    silent = set(panels)
    deadline = time.monotonic() + 30  # gauges the lease holder refreshes every second
    while silent - SILENT_ALLOWED and time.monotonic() < deadline:
        for title in sorted(silent):
            answered = [bool(prometheus.query(expr)) for expr in panels[title]]  # all valid
            if any(answered):
                silent.discard(title)
        time.sleep(0.5)
    assert silent <= SILENT_ALLOWED, sorted(silent - SILENT_ALLOWED)
