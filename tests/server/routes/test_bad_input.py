"""Every malformed body gets a 4xx JSON error naming the field and what was expected;
the worker keeps serving afterwards."""

from __future__ import annotations

import json
from typing import Any

import pytest
from litestar.testing import TestClient

from tests.server.conftest import SCAN

Client = TestClient[Any]

GOOD = SCAN


def raw(text: str) -> bytes:
    return text.encode()


CASES: list[tuple[str, str, bytes | dict[str, Any], int, str | None, str]] = [
    *(
        (f"{name} in {field}", path, body, 400, where, "without control characters")
        for name, bad in [("NUL", "u\x00"), ("escape", "u\x1b[2J"), ("bidi override", "u\u202ex")]
        for field, path, body, where in [
            ("user_id", "/v1/predict", {**GOOD, "user_id": bad}, "user_id"),
            ("session_id", "/v1/predict", {**GOOD, "session_id": bad}, "session_id"),
            (
                "batch user_id",
                "/v1/predict/batch",
                {"scans": [GOOD, {**GOOD, "user_id": bad}]},
                "scans[1].user_id",
            ),
            (
                "recommend user_id",
                "/v1/recommend",
                {"scan": {**GOOD, "user_id": bad}},
                "scan.user_id",
            ),
        ]
    ),
    ("not JSON", "/v1/predict", raw("user_id=u"), 400, None, "not valid JSON"),
    ("empty body", "/v1/predict", raw(""), 400, None, "not valid JSON"),
    ("array, not object", "/v1/predict", raw("[1, 2]"), 400, None, "Expected `object`"),
    (
        "wrong type",
        "/v1/predict",
        {**GOOD, "lookback_bars": "fifty"},
        400,
        "lookback_bars",
        "Expected `int`, got `str`",
    ),
    (
        "missing field",
        "/v1/predict",
        {k: v for k, v in GOOD.items() if k != "universe"},
        400,
        "universe",
        "required field is missing",
    ),
    ("unknown field", "/v1/predict", {**GOOD, "colour": "red"}, 400, "colour", "unknown field"),
    ("NaN", "/v1/predict", raw('{"min_price": NaN}'), 400, "min_price", "NaN is not a JSON"),
    (
        "-Infinity in a batch",
        "/v1/predict/batch",
        raw(
            json.dumps({"scans": [GOOD, {**GOOD, "min_price": 1.2345}]}).replace(
                "1.2345", "-Infinity"
            )
        ),
        400,
        "scans[1].min_price",
        "-Infinity is not a JSON number: expected a finite number",
    ),
    (
        "timestamp in 1900",
        "/v1/predict",
        {**GOOD, "timestamp": "1900-01-01T00:00:00Z"},
        400,
        "timestamp",
        "expected from 2000-01-01T00:00:00+00:00 to 1 h after the server's clock",
    ),
    (
        "timestamp in 9999",
        "/v1/recommend",
        {"scan": {**GOOD, "timestamp": "9999-12-31T23:59:59Z"}},
        400,
        "scan.timestamp",
        "is outside what a scanner can send",
    ),
    (
        "infinity",
        "/v1/predict",
        raw(json.dumps({**GOOD, "min_price": 1.5}).replace("1.5", "1e999")),
        400,
        "min_price",
        "expected a finite number",
    ),
    ("out of range", "/v1/predict", {**GOOD, "rsi_max": 101}, 400, "rsi_max", "<= 100"),
    ("negative", "/v1/predict", {**GOOD, "min_price": -1}, 400, "min_price", ">= 0"),
    (
        "min >= max price",
        "/v1/predict",
        {**GOOD, "min_price": 600.0},
        400,
        "min_price",
        "must be below max_price",
    ),
    (
        "min >= max rsi",
        "/v1/predict",
        {**GOOD, "rsi_min": 70.0},
        400,
        "rsi_min",
        "must be below rsi_max",
    ),
    (
        "unknown enum",
        "/v1/predict",
        {**GOOD, "universe": "nyse"},
        400,
        "universe",
        "expected one of sp500",
    ),
    (
        "naive timestamp",
        "/v1/predict",
        {**GOOD, "timestamp": "2024-03-05T15:30:00"},
        400,
        "timestamp",
        "timezone",
    ),
    ("empty id", "/v1/predict", {**GOOD, "user_id": ""}, 400, "user_id", "length >= 1"),
    (
        "batch item bad",
        "/v1/predict/batch",
        {"scans": [GOOD, {**GOOD, "timeframe": "2h"}]},
        400,
        "scans[1].timeframe",
        "expected one of 1m",
    ),
    ("batch empty", "/v1/predict/batch", {"scans": []}, 400, "scans", "length >= 1"),
    (
        "batch over limit",
        "/v1/predict/batch",
        {"scans": [GOOD] * 11},
        400,
        "scans",
        "expected at most 10",
    ),
    (
        "recommend min >= max",
        "/v1/recommend",
        {"scan": GOOD, "min_results": 50, "max_results": 50},
        400,
        "min_results",
        "must be below max_results",
    ),
    ("recommend limit", "/v1/recommend", {"scan": GOOD, "limit": 0}, 400, "limit", ">= 1"),
    (
        "recommend nested",
        "/v1/recommend",
        {"scan": {**GOOD, "strategy": "yolo"}},
        400,
        "scan.strategy",
        "expected one of momentum",
    ),
]


@pytest.fixture
def small(client_for: Any) -> Client:
    """An app with small limits so the limit cases stay cheap."""
    client: Client = client_for(max_batch=10, batch_max_size=10, max_body_bytes=64 * 1024)
    return client


@pytest.mark.parametrize(
    ("path", "payload", "status", "field", "words"),
    [case[1:] for case in CASES],
    ids=[case[0] for case in CASES],
)
def test_malformed_body_is_a_4xx_naming_the_field(
    small: Client,
    path: str,
    payload: bytes | dict[str, Any],
    status: int,
    field: str | None,
    words: str,
) -> None:
    """The error is JSON with `error` (naming the field and expectation), `kind`, `field`."""
    if isinstance(payload, bytes):
        response = small.post(path, content=payload, headers={"content-type": "application/json"})
    else:
        response = small.post(path, json=payload)
    assert response.status_code == status
    body = response.json()
    assert body["kind"] == "bad_input"
    assert body.get("field") == field
    assert words in body["error"]
    if field is not None:
        assert body["error"].startswith(field)
    assert small.post("/v1/predict", json=GOOD).status_code == 200


@pytest.mark.parametrize(
    "content_type",
    ["text/plain", "application/x-www-form-urlencoded", "application/xml", "", None],
)
def test_a_body_that_is_not_json_is_415(small: Client, content_type: str | None) -> None:
    """Anything but JSON, a missing content type included, is 415 naming the header and
    what is accepted; the body is not looked at."""
    headers = {} if content_type is None else {"content-type": content_type}
    response = small.post("/v1/predict", content=json.dumps(GOOD).encode(), headers=headers)
    assert response.status_code == 415
    body = response.json()
    assert (body["kind"], body["field"]) == ("unsupported_media_type", "content-type")
    assert "expected application/json (a charset allowed) or a +json type" in body["error"]


@pytest.mark.parametrize(
    "content_type",
    [
        "application/json",
        "application/json; charset=utf-8",
        "Application/JSON",
        "application/scan+json",
    ],
)
def test_json_content_types_are_accepted(small: Client, content_type: str) -> None:
    """application/json with or without parameters, in any case, and +json types pass."""
    response = small.post(
        "/v1/predict", content=json.dumps(GOOD).encode(), headers={"content-type": content_type}
    )
    assert response.status_code == 200


def test_body_over_the_size_limit_is_413(small: Client) -> None:
    """A body over SCANOPT_MAX_BODY_BYTES is refused before decoding, naming the limit."""
    response = small.post("/v1/predict/batch", json={"scans": [GOOD] * 400})
    assert response.status_code == 413
    body = response.json()
    assert body["kind"] == "body_too_large"
    assert "65536 byte limit (SCANOPT_MAX_BODY_BYTES)" in body["error"]
    assert small.post("/v1/predict", json=GOOD).status_code == 200


def test_unknown_route_is_404_json(client: Client) -> None:
    """An unknown path answers 404 in the same error shape."""
    response = client.get("/v1/nothing")
    assert response.status_code == 404
    assert response.json()["kind"] == "not_found"


def test_wrong_method_is_405_naming_the_allowed_ones(client: Client) -> None:
    """GET on a POST route answers 405 and says which methods are allowed."""
    response = client.get("/v1/predict")
    assert response.status_code == 405
    body = response.json()
    assert body["kind"] == "method_not_allowed"
    assert "expected POST" in body["error"]
