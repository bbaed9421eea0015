"""create_app: wiring, extension points, CORS and the OpenAPI document."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

from litestar import Request, get
from litestar.testing import TestClient

from server.app import Worker, create_app
from tests.server.conftest import make_settings
from tests.server.domain.test_scan import GOOD


def test_openapi_documents_every_endpoint_and_body(client: TestClient[Any]) -> None:
    """/schema/openapi.json lists the endpoints; bodies decoded by hand are documented."""
    spec = client.get("/schema/openapi.json").json()
    paths = spec["paths"]
    for path in ("/v1/predict", "/v1/predict/batch", "/v1/recommend", "/v2/models/{name}/infer"):
        body = paths[path]["post"]["requestBody"]
        ref = body["content"]["application/json"]["schema"]["$ref"]
        assert ref.removeprefix("#/components/schemas/") in spec["components"]["schemas"]
    for path in ("/v1/models", "/health/live", "/health/ready", "/v2/models/{name}/ready"):
        assert "get" in paths[path]
    assert "/metrics" not in paths
    scan = spec["components"]["schemas"]["Scan"]
    assert {"universe", "min_price", "rsi_max"} <= set(scan["properties"])
    assert client.get("/schema").status_code == 200


def test_extra_routes_state_and_hooks_are_wired(artifacts: Path) -> None:
    """Extra handlers see the worker and extra state; extra hooks run around the worker's."""
    calls: list[str] = []

    @get("/extra")
    async def extra(request: Request[Any, Any, Any]) -> dict[str, Any]:
        worker = request.app.state.worker
        assert isinstance(worker, Worker)
        return {"ready": worker.predictor.ready, "flag": request.app.state.flag}

    app = create_app(
        make_settings(artifacts),
        extra_routes=[extra],
        on_startup=[lambda: calls.append("up")],
        on_shutdown=[lambda: calls.append("down")],
        state={"flag": 7},
    )
    with TestClient(app) as client:
        assert client.get("/extra").json() == {"ready": True, "flag": 7}
    assert calls == ["up", "down"]


def test_cors_only_for_listed_origins(client_for: Any) -> None:
    """SCANOPT_CORS_ORIGINS allows exactly its origins; others get no CORS headers."""
    client = client_for(cors_origins=("https://scanner.example",))
    allowed = client.get("/health/live", headers={"Origin": "https://scanner.example"})
    assert allowed.headers["access-control-allow-origin"] == "https://scanner.example"
    other = client.get("/health/live", headers={"Origin": "https://evil.example"})
    assert "access-control-allow-origin" not in other.headers


def test_no_cors_headers_by_default(client: TestClient[Any]) -> None:
    """With the default empty list the app sends no CORS headers at all."""
    response = client.get("/health/live", headers={"Origin": "https://scanner.example"})
    assert "access-control-allow-origin" not in response.headers


def test_serving_a_prediction_loads_neither_scipy_nor_matplotlib(artifacts: Path) -> None:
    """A worker that only predicts never imports the report's scipy and matplotlib."""
    # A fresh interpreter: this one has scipy already (the fixtures train with scikit-learn).
    code = f"""
import sys
from pathlib import Path
from litestar.testing import TestClient
from server.app import create_app
from server.settings import Settings
body = {GOOD!r}
artifacts = Path({str(artifacts)!r})
settings = Settings(
    artifacts=artifacts,
    reload_poll_s=0.0,
    workers=1,
    store_dsn="sqlite:///" + str(artifacts.parent / "var" / "scanopt.db"),
)
with TestClient(create_app(settings)) as client:
    assert client.post("/v1/predict", json=body).status_code == 200
    assert client.get("/schema/openapi.json").status_code == 200
print(sorted(m for m in ("scipy", "matplotlib") if m in sys.modules))
"""
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    )
    assert result.stdout.strip().splitlines()[-1] == "[]"
