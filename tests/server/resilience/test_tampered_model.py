"""A corrupt or tampered model version is refused at start and at reload, by a real
Granian server, and the version serving is untouched: no request fails meanwhile."""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import httpx
import pytest

from tests.server.conftest import SCAN, TOKEN, Versions
from tests.server.granian_process import server_env
from tests.server.resilience.load import Load
from tests.server.resilience.processes import launch, run_launcher
from tests.server.resilience.tampering import TAMPERINGS

AUTH = {"Authorization": f"Bearer {TOKEN}"}


@pytest.mark.parametrize("tampering", sorted(TAMPERINGS))
def test_tampered_version_stops_startup_with_its_reason(
    tmp_path: Path, artifacts: Path, built_versions: Versions, tampering: str
) -> None:
    """`python -m server.serve` exits 1 with one line naming the damage, before any worker."""
    how, reason = TAMPERINGS[tampering]
    how(artifacts / "models" / built_versions.second)
    (artifacts / "current").write_text(built_versions.second)
    result = run_launcher(server_env(tmp_path, artifacts), timeout_s=30)
    assert result.returncode == 1, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith("scanopt: cannot serve:")
    assert reason in lines[0]
    assert built_versions.second in lines[0]
    assert "Started worker" not in result.stdout


@pytest.mark.slow
def test_tampered_versions_are_refused_at_reload_while_the_old_one_serves(
    tmp_path: Path, artifacts: Path, built_versions: Versions
) -> None:
    """Each damaged version: the admin reload answers 409 with the reason, the polling
    workers keep the old version, and the load sees only 200s from the old version."""
    server = launch(tmp_path, artifacts, admin_token=TOKEN, reload_poll_s=0.1, log_level="WARNING")
    try:
        with Load(server.url, clients=2, kinds=("predict",)) as load:
            for name, (how, reason) in TAMPERINGS.items():
                copy = f"{built_versions.second}-{name}"
                folder = artifacts / "models" / copy
                shutil.copytree(artifacts / "models" / built_versions.second, folder)
                manifest = folder / "manifest.json"
                manifest.write_text(
                    json.dumps({**json.loads(manifest.read_text()), "version": copy})
                )
                how(folder)
                (artifacts / "current").write_text(copy)
                response = httpx.post(f"{server.url}/v1/admin/reload", headers=AUTH, timeout=30)
                assert response.status_code == 409, (name, response.text)
                assert response.json()["kind"] == "bad_artifact"
                assert reason in response.json()["error"], (name, response.text)
                time.sleep(0.5)  # several polls by both workers
                load.wait_for(20)
                assert server.metric("scanopt_model_info", version=built_versions.first) == 2
                assert server.metric("scanopt_ready") == 2
            (artifacts / "current").write_text(built_versions.first)
        outcomes = load.snapshot()
        assert [o for o in outcomes if not o.ok] == []
        assert len(outcomes) > 60
        versions = {
            httpx.post(f"{server.url}/v1/predict", json=SCAN).json()["model_version"]
            for _ in range(10)
        }
        assert versions == {built_versions.first}
        assert server.metric("scanopt_errors_total", kind="bad_artifact") >= 1
    finally:
        server.stop()
