"""POST /v1/admin/reload: bearer token, atomic swap, refusal keeps the old version."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from litestar.testing import TestClient

from tests.server.conftest import SCAN, TOKEN, Versions
from tests.server.onnx_graphs import write_version

AUTH = {"Authorization": f"Bearer {TOKEN}"}


def test_admin_is_not_routed_without_a_token(client_for: Any) -> None:
    """SCANOPT_ADMIN_TOKEN unset: the admin endpoints do not exist (404)."""
    client = client_for(admin_token=None)
    assert client.post("/v1/admin/reload", headers=AUTH).status_code == 404


def test_missing_token_is_401(client: TestClient[Any]) -> None:
    """No bearer token: 401 with a WWW-Authenticate challenge."""
    response = client.post("/v1/admin/reload")
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"
    assert response.json()["kind"] == "unauthorized"


def test_wrong_token_is_403(client: TestClient[Any]) -> None:
    """A bearer token that is not SCANOPT_ADMIN_TOKEN: 403."""
    response = client.post("/v1/admin/reload", headers={"Authorization": "Bearer nope"})
    assert response.status_code == 403
    assert response.json()["kind"] == "forbidden"


def test_reload_serves_the_new_current(
    client: TestClient[Any], artifacts: Path, built_versions: Versions
) -> None:
    """After current changes, a reload answers both versions and predictions use the new."""
    (artifacts / "current").write_text(built_versions.second)
    response = client.post("/v1/admin/reload", headers=AUTH)
    assert response.status_code == 200
    assert response.json() == {
        "model_version": built_versions.second,
        "previous_version": built_versions.first,
    }
    assert client.post("/v1/predict", json=SCAN).json()["model_version"] == built_versions.second


def test_corrupt_version_is_refused_with_409(
    client: TestClient[Any], artifacts: Path, built_versions: Versions
) -> None:
    """A version failing its checksum is refused with the reason; the old one keeps serving."""
    (artifacts / "models" / built_versions.second / "model.onnx").write_bytes(b"corrupt")
    (artifacts / "current").write_text(built_versions.second)
    response = client.post("/v1/admin/reload", headers=AUTH)
    assert response.status_code == 409
    body = response.json()
    assert body["kind"] == "bad_artifact"
    assert "sha256" in body["error"]
    assert client.post("/v1/predict", json=SCAN).json()["model_version"] == built_versions.first


def test_version_for_another_feature_spec_is_refused(
    client: TestClient[Any], artifacts: Path, built_versions: Versions
) -> None:
    """A version exported for a different feature spec is refused; the old keeps serving."""
    write_version(artifacts, "other-spec", spec_digest="0" * 64)
    response = client.post("/v1/admin/reload", headers=AUTH)
    assert response.status_code == 409
    assert "feature spec" in response.json()["error"]
    assert client.get("/health/ready").json()["model_version"] == built_versions.first
