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
