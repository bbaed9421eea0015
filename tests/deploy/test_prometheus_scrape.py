"""A real Prometheus scraping a real 2-worker scanopt: the rules load, the queries answer."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import yaml

from tests.deploy.grafana.queries import MONITORING_GAUGES, metric_names, panel_queries
from tests.deploy.prometheus_process import PrometheusProcess
from tests.deploy.tools import RULES
from tests.server.conftest import SCAN
from tests.server.granian_process import ServerProcess, server_env

pytestmark = pytest.mark.slow

# Panels that may show no data here: firing alerts and dropped prediction-log rows need
# failures this test does not cause, and the monitoring gauges need the in-app monitoring.
SILENT_ALLOWED = {"Firing alerts", "Prediction-log rows dropped"} | {
    title for title, expr in panel_queries() if metric_names(expr) & MONITORING_GAUGES
}


@pytest.fixture
def scraped(tmp_path: Path, artifacts: Path) -> Iterator[tuple[ServerProcess, PrometheusProcess]]:
    """scanopt (2 workers) and a Prometheus scraping it every second; both stopped after."""
    server = ServerProcess(server_env(tmp_path, artifacts), tmp_path / "server.log")
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
    """alerts.yml loads and evaluates cleanly, p95 latency reads back, and every Grafana
    panel over metrics scanopt exported shows data."""
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

    names = prometheus.query('group by (__name__) ({__name__=~".+"})')
    present = {sample["metric"]["__name__"] for sample in names}
    panels: dict[str, list[str]] = {}
    for title, expr in panel_queries():
        panels.setdefault(title, []).append(expr)
    silent = set()
    for title, exprs in panels.items():
        answered = [bool(prometheus.query(expr)) for expr in exprs]  # each query is valid
        if not any(answered):
            silent.add(title)
            assert not all(metric_names(e) <= present for e in exprs), f"{title}: no data"
    assert silent <= SILENT_ALLOWED, sorted(silent - SILENT_ALLOWED)
