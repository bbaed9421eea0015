"""GET /v1/models: the manifest summary of the version in service."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from litestar.testing import TestClient

from server.domain.artifact import MODEL_OUTPUTS
from server.domain.features import FEATURE_NAMES, feature_spec_digest
from tests.server.conftest import Versions


def test_models_describes_the_served_version(
    client: TestClient[Any], artifacts: Path, built_versions: Versions
) -> None:
    """Version, checksum, features, outputs, metrics and importances come from the manifest."""
    body = client.get("/v1/models").json()
    manifest = json.loads(
        (artifacts / "models" / built_versions.first / "manifest.json").read_text()
    )
    assert body["version"] == built_versions.first
    assert body["model_sha256"] == manifest["files"][manifest["model_file"]]
    assert body["feature_spec_sha256"] == feature_spec_digest()
    assert [f["name"] for f in body["features"]] == list(FEATURE_NAMES)
    assert set(MODEL_OUTPUTS) <= set(body["outputs"])
    assert body["metrics"] == manifest["metrics"]
    assert body["importances"] == manifest["importances"]
    assert "reference" not in body  # histograms stay out of the summary


def test_versions_lists_every_version_and_the_served_one(
    client: TestClient[Any], built_versions: Versions
) -> None:
    """GET /v1/models/versions: both versions, newest first, current and serving named."""
    body = client.get("/v1/models/versions").json()
    assert body["current"] == built_versions.first
    assert body["serving"] == built_versions.first
    assert [v["version"] for v in body["versions"]] == [built_versions.second, built_versions.first]
    assert body["versions"][0]["parent_version"] == built_versions.first


def test_versions_shows_current_ahead_of_serving_until_reload(
    client: TestClient[Any], artifacts: Path, built_versions: Versions
) -> None:
    """After a promotion and before this worker reloads, current and serving differ."""
    (artifacts / "current").write_text(built_versions.second + "\n")
    body = client.get("/v1/models/versions").json()
    assert body["current"] == built_versions.second
    assert body["serving"] == built_versions.first
