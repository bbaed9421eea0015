"""The OpenAPI document declares every error response with the error body, and every field
of every wire type with its meaning, unit and range."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from litestar.testing import TestClient

from server.docs.openapi import ERROR_STATUSES, error_statuses

ERROR_REF = {"$ref": "#/components/schemas/ErrorBody"}


@pytest.fixture
def spec(client_for: Callable[..., TestClient[Any]]) -> dict[str, Any]:
    """The document of an app with the admin routes on."""
    document: dict[str, Any] = client_for().get("/schema/openapi.json").json()
    return document


def test_every_operation_declares_its_errors_with_the_error_body(spec: dict[str, Any]) -> None:
    """Each operation lists the statuses it can answer, each with ErrorBody as content."""
    seen: set[int] = set()
    for path, operations in spec["paths"].items():
        for operation in operations.values():
            has_body = "requestBody" in operation
            for status in error_statuses(path, has_body, bool(operation.get("parameters"))):
                response = operation["responses"][str(status)]
                assert response["content"]["application/json"]["schema"] == ERROR_REF
                assert response["description"] == ERROR_STATUSES[status]
                seen.add(status)
    assert {400, 401, 403, 404, 409, 413, 415, 422, 503} <= seen
    error = spec["components"]["schemas"]["ErrorBody"]
    assert set(error["required"]) == {"error", "kind"}


def test_json_operations_declare_400_413_415(spec: dict[str, Any]) -> None:
    """/v1/predict can answer 400, 413, 415 and 503; /health/live no error at all."""
    predict = spec["paths"]["/v1/predict"]["post"]["responses"]
    assert {"400", "413", "415", "503"} <= set(predict)
    assert set(spec["paths"]["/health/live"]["get"]["responses"]) == {"200"}


def test_every_scan_field_has_a_description_with_its_range(spec: dict[str, Any]) -> None:
    """Each Scan property is described; bounded ones end with the range from the schema's
    own constraints (so the numbers are the ones the decoder enforces)."""
    scan = spec["components"]["schemas"]["Scan"]["properties"]
    for name, prop in scan.items():
        assert prop.get("description"), name
        if "minimum" in prop or "maxLength" in prop:
            assert "Range: " in prop["description"], name
    assert scan["lookback_bars"]["description"].endswith("in bars. Range: [10, 500]")
    assert "USD" in scan["min_price"]["description"]
    assert scan["min_price"]["description"].endswith("Range: [0, 1,000,000]")
    assert scan["user_id"]["description"].endswith("Range: 1 to 128 characters")
    assert "Range: 2000-01-01 to 1 h after" in scan["timestamp"]["description"]


def test_error_statuses_follow_the_routes_rules() -> None:
    """Bodies add 400/413/415, parameters 400; named things 404; events 409 and 422; admin
    401/403; live probes nothing."""
    assert error_statuses("/v1/events", True) == [400, 404, 409, 413, 415, 422, 503]
    assert error_statuses("/v2/models/{name}/ready", False, True) == [400, 404, 503]
    assert error_statuses("/v1/analytics/usage", False, True) == [400, 422, 503]
    assert error_statuses("/v1/admin/reload", False) == [401, 403, 409, 503]
    assert error_statuses("/health/live", False) == []


def test_parameters_state_the_rules_the_server_enforces(spec: dict[str, Any]) -> None:
    """Windows are enums, ids and names carry their pattern, optional parameters are their
    type alone (no null), instants are date-times, and the report declares its media types."""

    def parameter(path: str, name: str, verb: str = "get") -> dict[str, Any]:
        found = [p for p in spec["paths"][path][verb]["parameters"] if p["name"] == name]
        schema: dict[str, Any] = found[0]["schema"]
        return schema

    assert parameter("/v1/monitoring/accuracy", "window")["enum"] == ["1h", "24h", "7d", "live"]
    assert parameter("/v1/dashboard/history", "window")["enum"] == ["1h", "24h", "7d"]
    assert parameter("/v1/monitoring/drift", "window_minutes")["type"] == "integer"
    version = parameter("/v1/monitoring/drift", "version")
    assert (version["type"], "oneOf" in version) == ("string", False)
    assert version["pattern"].startswith("^[A-Za-z0-9]")
    assert parameter("/v2/models/{name}", "name")["pattern"].startswith("^[^\\x00-\\x1f")
    assert parameter("/v1/experiments/{name}", "name")["maxLength"] == 64
    assert parameter("/v1/analytics/usage", "since")["format"] == "date-time"
    html = spec["paths"]["/v1/experiments/{name}/report.html"]["get"]["responses"]["200"]
    assert list(html["content"]) == ["text/html"]
    events = spec["paths"]["/v1/events"]["post"]["responses"]
    assert events["200"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/Ack"
    }
    assert spec["components"]["schemas"]["Scan"]["additionalProperties"] is False
    change = spec["components"]["schemas"]["Change"]["properties"]["to"]
    assert "anyOf" in change
    assert "oneOf" not in change


_BOUNDS = frozenset(
    {"minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "minLength", "maxLength"}
)


def _bounded(prop: dict[str, Any]) -> bool:
    """Whether a property (or the non-null option of an optional one) has a range."""
    options = [prop, *prop.get("anyOf", []), *prop.get("oneOf", [])]
    return any(_BOUNDS & set(option) for option in options)


def test_every_schema_field_has_a_description_with_its_range(spec: dict[str, Any]) -> None:
    """Every property of every schema in components/schemas is described; bounded ones
    carry the range from their own constraints, as for Scan.

    Every schema there is one of ours (request and response bodies, and the types they
    hold): Litestar adds none of its own, so nothing is excluded.
    """
    missing: list[str] = []
    unranged: list[str] = []
    schemas = spec["components"]["schemas"]
    for schema_name, schema in schemas.items():
        for name, prop in schema.get("properties", {}).items():
            description = prop.get("description")
            if not description:
                missing.append(f"{schema_name}.{name}")
            elif _bounded(prop) and "Range: " not in description:
                unranged.append(f"{schema_name}.{name}")
    assert not missing, "fields without a description: " + ", ".join(missing)
    assert not unranged, "bounded fields without their range: " + ", ".join(unranged)
    assert {"Scan", "PredictAnswer", "ErrorBody", "V2InferRequest", "ScanStarted"} <= set(schemas)
    assert schemas["RecommendRequest"]["properties"]["limit"]["description"].endswith(
        "count. Range: [1, 20]"
    )
    assert "always scan_started" in schemas["ScanStarted"]["properties"]["type"]["description"]
