"""Open Inference Protocol V2 through the app: metadata, readiness, JSON and binary infer."""

from __future__ import annotations

from typing import Any

import msgspec
import numpy as np
from litestar.testing import TestClient

from server.domain.artifact import MODEL_OUTPUTS
from server.domain.features import N_FEATURES, encode_scans
from server.domain.scan import Scan
from tests.server.conftest import SCAN, Versions

Client = TestClient[Any]
ROWS = encode_scans([msgspec.convert({**SCAN, "lookback_bars": b}, Scan) for b in (20, 90, 300)])


def test_server_and_model_metadata(client: Client, built_versions: Versions) -> None:
    """GET /v2 lists the binary extension; the model lists its version and signatures."""
    assert "binary_tensor_data" in client.get("/v2").json()["extensions"]
    meta = client.get("/v2/models/scanopt").json()
    assert meta["versions"] == [built_versions.first]
    assert meta["inputs"] == [{"name": "features", "datatype": "FP32", "shape": [-1, N_FEATURES]}]
    assert [o["name"] for o in meta["outputs"]] == list(MODEL_OUTPUTS)
    versioned = client.get(f"/v2/models/scanopt/versions/{built_versions.first}")
    assert versioned.json() == meta


def test_health_and_readiness(client: Client) -> None:
    """Server live/ready answer 200 with the empty body KServe's spec asks for (not
    `null`); model ready answers its JSON."""
    for path in ("/v2/health/live", "/v2/health/ready"):
        response = client.get(path)
        assert (response.status_code, response.content) == (200, b"")
    assert client.get("/v2/models/scanopt/ready").json() == {"name": "scanopt", "ready": True}


def test_unknown_model_or_version_is_404(client: Client) -> None:
    """Another model name or version answers 404 naming what is served."""
    response = client.get("/v2/models/other")
    assert response.status_code == 404
    assert "expected 'scanopt'" in response.json()["error"]
    response = client.post("/v2/models/scanopt/versions/old/infer", json={"inputs": []})
    assert response.status_code == 404
    assert "not served" in response.json()["error"]


def test_json_infer_equals_v1_predictions(client: Client) -> None:
    """JSON tensors in and out; the values are what /v1/predict/batch answers."""
    request = {
        "id": "req-7",
        "inputs": [
            {
                "name": "features",
                "shape": list(ROWS.shape),
                "datatype": "FP32",
                "data": ROWS.reshape(-1).tolist(),
            }
        ],
    }
    response = client.post("/v2/models/scanopt/infer", json=request)
    assert response.status_code == 200
    body = response.json()
    assert body["id"] == "req-7"
    outputs = {o["name"]: o for o in body["outputs"]}
    assert list(outputs) == list(MODEL_OUTPUTS)
    assert outputs["p_empty"]["shape"] == [3]
    scans = [{**SCAN, "lookback_bars": b} for b in (20, 90, 300)]
    v1 = client.post("/v1/predict/batch", json={"scans": scans}).json()["predictions"]
    assert outputs["result_count"]["data"] == [p["result_count"]["predicted"] for p in v1]
    assert outputs["p_empty"]["data"] == [p["p_empty"] for p in v1]


def test_binary_infer_round_trip(client: Client) -> None:
    """Binary input after the JSON header; binary outputs back with their header length."""
    raw = ROWS.astype("<f4").tobytes()
    header = msgspec.json.encode(
        {
            "inputs": [
                {
                    "name": "features",
                    "shape": list(ROWS.shape),
                    "datatype": "FP32",
                    "parameters": {"binary_data_size": len(raw)},
                }
            ],
            "parameters": {"binary_data_output": True},
        }
    )
    response = client.post(
        "/v2/models/scanopt/infer",
        content=header + raw,
        headers={
            "Inference-Header-Content-Length": str(len(header)),
            "Content-Type": "application/octet-stream",
        },
    )
    assert response.status_code == 200
    length = int(response.headers["inference-header-content-length"])
    meta = msgspec.json.decode(response.content[:length])
    sizes = [o["parameters"]["binary_data_size"] for o in meta["outputs"]]
    assert sizes == [3 * 4] * len(MODEL_OUTPUTS)
    blob = response.content[length:]
    assert len(blob) == sum(sizes)
    p_empty = np.frombuffer(blob[6 * 12 : 7 * 12], "<f4")
    json_answer = client.post(
        "/v2/models/scanopt/infer",
        json={
            "inputs": [
                {
                    "name": "features",
                    "shape": [3, N_FEATURES],
                    "datatype": "FP32",
                    "data": ROWS.tolist(),
                }
            ],
            "outputs": [{"name": "p_empty"}],
        },
    ).json()
    assert p_empty.tolist() == json_answer["outputs"][0]["data"]


def test_malformed_infer_is_400_with_error(client: Client) -> None:
    """A bad tensor answers 400 with the V2 {"error": ...} shape."""
    response = client.post(
        "/v2/models/scanopt/infer",
        json={
            "inputs": [{"name": "features", "shape": [1, 2], "datatype": "FP32", "data": [1, 2]}]
        },
    )
    assert response.status_code == 400
    assert "expected [n," in response.json()["error"]


def test_infer_refuses_a_body_that_says_it_is_not_json(client: Client) -> None:
    """A V2 infer body may come without a content type (tritonclient's JSON mode) but not
    as text/plain: 415 naming the header."""
    response = client.post(
        "/v2/models/scanopt/infer", content=b"{}", headers={"content-type": "text/plain"}
    )
    assert response.status_code == 415
    assert response.json()["field"] == "content-type"
