"""POST /v1/predict, /v1/predict/batch and /v1/recommend through the real app."""

from __future__ import annotations

from typing import Any

from litestar.testing import TestClient
from prometheus_client.parser import text_string_to_metric_families

from tests.server.conftest import SCAN, Versions

Client = TestClient[Any]


def test_predict_answers_200_with_the_prediction(client: Client, built_versions: Versions) -> None:
    """A treatment user's scan gets intervals, p_empty, confidence, version, its A/B
    decision and a 40-hex id this service can recognise."""
    response = client.post("/v1/predict", json=SCAN)
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {
        "prediction_id",
        "arm",
        "ml_enabled",
        "model_version",
        "result_count",
        "duration_s",
        "p_empty",
        "confidence",
    }
    assert (body["arm"], body["ml_enabled"]) == ("treatment", True)  # u-1 hashes to treatment
    assert body["model_version"] == built_versions.first
    assert len(body["prediction_id"]) == 40
    for target in ("result_count", "duration_s"):
        interval = body[target]
        assert interval["lower"] <= interval["predicted"] <= interval["upper"]
    assert 0.0 <= body["p_empty"] <= 1.0
    assert 0.0 <= body["confidence"] <= 1.0


def test_predict_without_timestamp_means_now(client: Client) -> None:
    """The timestamp is optional: a scan about to run is predicted at the current time."""
    scan = {k: v for k, v in SCAN.items() if k != "timestamp"}
    assert client.post("/v1/predict", json=scan).status_code == 200


def test_batch_predicts_each_scan_in_order(client: Client) -> None:
    """A batch answers one prediction per scan, equal to the single-scan answers."""
    scans = [{**SCAN, "lookback_bars": 20 + 10 * i} for i in range(5)]
    response = client.post("/v1/predict/batch", json={"scans": scans})
    assert response.status_code == 200
    batch = response.json()["predictions"]
    singles = [client.post("/v1/predict", json=s).json() for s in scans]
    assert [p["result_count"] for p in batch] == [p["result_count"] for p in singles]
    assert len({p["prediction_id"] for p in batch}) == 5


def test_batch_of_max_batch_scans_is_accepted(client_for: Any) -> None:
    """Exactly SCANOPT_MAX_BATCH scans is within the limit."""
    client = client_for(max_batch=50, batch_max_size=32)
    response = client.post("/v1/predict/batch", json={"scans": [SCAN] * 50})
    assert response.status_code == 200
    assert len(response.json()["predictions"]) == 50


def test_recommend_answers_suggestions_with_changes(client: Client) -> None:
    """Recommend returns the current outcome and ranked suggestions listing what changed."""
    response = client.post("/v1/recommend", json={"scan": SCAN, "limit": 4})
    assert response.status_code == 200
    body = response.json()
    assert body["candidates_scored"] >= 100
    assert len(body["suggestions"]) <= 4
    for suggestion in body["suggestions"]:
        assert suggestion["score"] < body["current_score"]
        for change in suggestion["changes"]:
            assert set(change) == {"field", "from", "to"}
            assert suggestion["scan"][change["field"]] == change["to"]
            assert SCAN[change["field"]] == change["from"]


def test_recommend_range_defaults_to_5_to_100(client: Client) -> None:
    """Without a range, 5-100 decides whether the scan as sent is in range."""
    body = client.post("/v1/recommend", json={"scan": SCAN}).json()
    count = body["current"]["result_count"]["predicted"]
    assert body["current_in_range"] == (5 <= count <= 100)


def test_the_same_scan_without_timestamp_hits_the_cache(client: TestClient[Any]) -> None:
    """Three posts of one body without a timestamp, within a second: the clock is bucketed
    to the minute, so at least two share a minute and at least one is a cache hit."""
    body = {k: v for k, v in SCAN.items() if k != "timestamp"}
    for _ in range(3):
        assert client.post("/v1/predict", json=body).status_code == 200
    samples = {
        s.name: s.value
        for family in text_string_to_metric_families(client.get("/metrics").text)
        for s in family.samples
    }
    assert samples["scanopt_cache_hits_total"] >= 1
    assert samples["scanopt_cache_hits_total"] + samples["scanopt_cache_misses_total"] == 3
