"""GET /metrics: Prometheus text that promtool accepts, counting what happened."""

from __future__ import annotations

import os
import shutil
import subprocess
from typing import Any

import pytest
from litestar.testing import TestClient
from prometheus_client.parser import text_string_to_metric_families

from tests.server.conftest import SCAN, Versions


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample keyed by (name, sorted labels)."""
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def promtool_check(text: str) -> None:
    """Run `promtool check metrics`; skipped only when promtool is absent outside CI."""
    promtool = shutil.which("promtool")
    if promtool is None:
        if os.environ.get("CI"):
            pytest.fail("promtool is not installed but CI is set: install the prometheus package")
        pytest.skip("promtool not installed (Debian package `prometheus`); CI installs it")
    result = subprocess.run(
        [promtool, "check", "metrics"], input=text, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_metrics_count_requests_predictions_and_cache(
    client: TestClient[Any], built_versions: Versions
) -> None:
    """Requests by route template, predictions by version, cache hits and misses add up."""
    for _ in range(3):
        assert client.post("/v1/predict", json=SCAN).status_code == 200
    client.post("/v1/predict", json={"bad": 1})
    client.get("/v2/models/scanopt/ready")
    got = samples(client.get("/metrics").text)
    ok = (("method", "POST"), ("route", "/v1/predict"), ("status", "200"))
    assert got[("scanopt_http_requests_total", ok)] == 3
    assert got[("scanopt_http_request_duration_seconds_count", ok)] == 3
    bad = (("method", "POST"), ("route", "/v1/predict"), ("status", "400"))
    assert got[("scanopt_http_requests_total", bad)] == 1
    template = (("method", "GET"), ("route", "/v2/models/{name}/ready"), ("status", "200"))
    assert got[("scanopt_http_requests_total", template)] == 1
    version = (("model_version", built_versions.first),)
    assert got[("scanopt_predictions_total", version)] == 3
    assert got[("scanopt_cache_misses_total", ())] == 1
    assert got[("scanopt_cache_hits_total", ())] == 2
    assert got[("scanopt_errors_total", (("kind", "bad_input"),))] == 1
    assert got[("scanopt_ready", ())] == 1
    info = (
        ("sha256", client.get("/v1/models").json()["model_sha256"]),
        ("version", built_versions.first),
    )
    assert got[("scanopt_model_info", info)] == 1
    assert (
        got[("scanopt_inference_duration_seconds_count", (("model", built_versions.first),))] >= 1
    )


def test_unmatched_paths_are_one_label(client: TestClient[Any]) -> None:
    """Unknown paths never become labels of their own (no cardinality blow-up)."""
    client.get("/x/1")
    client.get("/x/2")
    got = samples(client.get("/metrics").text)
    key = (("method", "GET"), ("route", "unmatched"), ("status", "404"))
    assert got[("scanopt_http_requests_total", key)] == 2


def test_promtool_accepts_the_exposition(client: TestClient[Any]) -> None:
    """`promtool check metrics` passes on the output after some traffic."""
    client.post("/v1/predict", json=SCAN)
    client.post("/v1/predict/batch", json={"scans": [SCAN] * 3})
    promtool_check(client.get("/metrics").text)


def test_a_405_is_labelled_with_the_route_it_matched(client: TestClient[Any]) -> None:
    """A wrong method on a known path counts under its template, not as unmatched."""
    assert client.put("/v1/predict", json=SCAN).status_code == 405
    assert client.post("/v2/models/scanopt/ready").status_code == 405
    got = samples(client.get("/metrics").text)
    predict = (("method", "PUT"), ("route", "/v1/predict"), ("status", "405"))
    ready = (("method", "POST"), ("route", "/v2/models/{name}/ready"), ("status", "405"))
    assert got[("scanopt_http_requests_total", predict)] == 1
    assert got[("scanopt_http_requests_total", ready)] == 1
    unmatched = (("method", "PUT"), ("route", "unmatched"), ("status", "405"))
    assert ("scanopt_http_requests_total", unmatched) not in got


def test_content_type_names_the_charset_once(client: TestClient[Any]) -> None:
    """The exposition's content type is Prometheus's, with one charset parameter."""
    content_type = client.get("/metrics").headers["content-type"]
    assert content_type.count("charset") == 1
    assert content_type.startswith("text/plain; version=")
