"""The launcher and real Granian servers: start-up checks, metrics summed over workers,
hot reload under load, and a real V2 client (tritonclient) in binary and JSON modes."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import httpx
import msgspec
import numpy as np
import pytest
import tritonclient.http as triton

from server.domain.artifact import MODEL_OUTPUTS
from server.domain.features import encode_scans
from server.domain.scan import Scan
from tests.server.conftest import SCAN, TOKEN, Versions
from tests.server.granian_process import REPO, ServerProcess, server_env
from tests.server.routes.test_metrics import promtool_check


def launch(tmp_path: Path, artifacts: Path, **settings: object) -> ServerProcess:
    return ServerProcess(server_env(tmp_path, artifacts, **settings), tmp_path / "server.log")


@pytest.fixture
def server(tmp_path: Path, artifacts: Path) -> Iterator[ServerProcess]:
    """A 2-worker server on the test's own artifacts, stopped after the test."""
    process = launch(tmp_path, artifacts, admin_token=TOKEN, reload_poll_s=0.2)
    try:
        process.wait_ready()
        yield process
    finally:
        process.stop()


def run_launcher(
    tmp_path: Path, artifacts: Path, *, extra_env: dict[str, str] | None = None, **settings: object
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "server.serve"],
        cwd=REPO,
        env={**server_env(tmp_path, artifacts, **settings), **(extra_env or {})},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_bad_setting_stops_startup_with_one_line(tmp_path: Path, artifacts: Path) -> None:
    """A malformed variable exits non-zero with one stderr line naming it."""
    result = run_launcher(tmp_path, artifacts, workers="many")
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert lines == [
        "scanopt: bad setting: SCANOPT_WORKERS='many': expected an integer from 1 to 256"
    ]


def test_unknown_store_scheme_stops_startup_before_any_worker(
    tmp_path: Path, artifacts: Path
) -> None:
    """A DSN of an unknown kind is one line naming the variable (not its password), exit 2."""
    result = run_launcher(tmp_path, artifacts, store_dsn="mysql://root:hunter2@db/scan")
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("scanopt: bad setting: SCANOPT_STORE_DSN=(value not shown)")
    assert "got scheme 'mysql'" in lines[0]
    assert "hunter2" not in result.stderr + result.stdout


def test_missing_model_stops_startup_with_one_line(tmp_path: Path) -> None:
    """No artifacts/current: exit 1 with one line saying so, before any worker starts."""
    empty = tmp_path / "empty"
    empty.mkdir()
    result = run_launcher(tmp_path, empty)
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    assert "cannot serve" in lines[0]
    assert "just model" in lines[0]


def test_missing_shadow_version_stops_startup_with_one_line(
    tmp_path: Path, artifacts: Path
) -> None:
    """SCANOPT_SHADOW_VERSION naming no version: exit 1, one line, before any worker."""
    result = run_launcher(tmp_path, artifacts, shadow_version="nope")
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("scanopt: cannot shadow (SCANOPT_SHADOW_VERSION): ")
    assert "nope: no such folder" in lines[0]


def test_missing_uvloop_stops_startup_with_one_line(tmp_path: Path, artifacts: Path) -> None:
    """The default loop without uvloop installed: exit 2, one line naming both ways out."""
    hider = tmp_path / "hide-uvloop"
    hider.mkdir()
    # A None entry in sys.modules makes `import uvloop` fail, as if it were not installed.
    (hider / "sitecustomize.py").write_text("import sys\nsys.modules['uvloop'] = None\n")
    result = run_launcher(tmp_path, artifacts, extra_env={"PYTHONPATH": str(hider)})
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "scanopt: bad setting: SCANOPT_LOOP=uvloop: uvloop is not installed here "
        "(pip install uvloop, or SCANOPT_LOOP=asyncio)"
    ]


def test_the_standard_loop_still_serves(tmp_path: Path, artifacts: Path) -> None:
    """SCANOPT_LOOP=asyncio, the behaviour before uvloop, is one variable away and serves."""
    process = launch(tmp_path, artifacts, loop="asyncio", workers=1)
    try:
        process.wait_ready()
        answer = httpx.post(f"{process.url}/v1/predict", json=SCAN, timeout=10)
        assert answer.status_code == 200, answer.text
        assert answer.json()["prediction_id"]
        started = [line for line in process.log.read_text().splitlines() if '"starting"' in line]
        assert started
        assert '"loop":"asyncio"' in started[0].replace(" ", "")
    finally:
        process.stop()


@pytest.mark.slow
def test_metrics_add_up_across_workers(server: ServerProcess, tmp_path: Path) -> None:
    """N predictions spread over 2 workers show as N in /metrics, which promtool accepts."""
    labels = {"route": "/v1/predict", "method": "POST", "status": "200"}
    before = server.metric("scanopt_http_requests_total", **labels)
    n = 60
    for _ in range(n):
        # A new connection per request lets the kernel spread them over both workers.
        with httpx.Client(base_url=server.url, timeout=10) as client:
            assert client.post("/v1/predict", json=SCAN).status_code == 200
    assert server.metric("scanopt_http_requests_total", **labels) - before == n
    assert server.metric("scanopt_http_request_duration_seconds_count", **labels) - before == n
    # Access lines are written every SCANOPT_LOG_FLUSH_S (0.2 s), so wait a little for them.
    deadline = time.monotonic() + 5
    while True:
        pids = {
            line["pid"]
            for line in map(msgspec.json.decode, server.output().splitlines())
            if line.get("msg") == "request" and line.get("route") == "/v1/predict"
        }
        if len(pids) == 2 or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert len(pids) == 2, "the requests should have reached both workers"
    assert server.metric("scanopt_ready") == 2
    promtool_check(httpx.get(f"{server.url}/metrics").text)


@pytest.mark.slow
def test_held_access_lines_are_written_when_a_worker_stops(tmp_path: Path, artifacts: Path) -> None:
    """With a long SCANOPT_LOG_FLUSH_S the access line waits, and SIGTERM still writes it."""
    process = launch(tmp_path, artifacts, workers=1, log_flush_s=10)
    try:
        process.wait_ready()
        response = httpx.post(f"{process.url}/v1/predict", json=SCAN, timeout=10)
        assert response.status_code == 200
        request_id = response.headers["x-request-id"]
        time.sleep(0.5)
        assert request_id not in process.output(), "held for up to 10 s, not written yet"
    finally:
        process.stop()
    logged = [msgspec.json.decode(line) for line in process.log.read_text().splitlines()]
    access = [line for line in logged if line.get("request_id") == request_id]
    assert [line["msg"] for line in access] == ["request"]
    assert any(line.get("msg") == "worker stopped" for line in logged)


@pytest.mark.slow
def test_hot_reload_under_load_fails_no_request(
    server: ServerProcess, artifacts: Path, built_versions: Versions
) -> None:
    """Concurrent clients see only 200s while the version changes; every worker converges."""
    seen: Counter[str] = Counter()
    failures: list[str] = []
    stop = threading.Event()
    last: dict[int, str] = {}

    def hammer(k: int) -> None:
        with httpx.Client(base_url=server.url, timeout=10) as client:
            while not stop.is_set():
                try:
                    response = client.post("/v1/predict", json=SCAN)
                except httpx.HTTPError as exc:
                    failures.append(repr(exc))
                    continue
                if response.status_code != 200:
                    failures.append(f"{response.status_code} {response.text}")
                    continue
                version = response.json()["model_version"]
                seen[version] += 1
                last[k] = version

    threads = [threading.Thread(target=hammer, args=(k,)) for k in range(4)]
    for thread in threads:
        thread.start()
    try:
        # On a busy machine the first answers can take a while: switch only after one.
        started = time.monotonic() + 30
        while not seen[built_versions.first] and time.monotonic() < started:
            time.sleep(0.05)
        (artifacts / "current").write_text(built_versions.second)
        reload = httpx.post(
            f"{server.url}/v1/admin/reload", headers={"Authorization": f"Bearer {TOKEN}"}
        )
        assert reload.status_code == 200, reload.text
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            serving = server.metric("scanopt_model_info", version=built_versions.second)
            if serving == 2:
                break
            time.sleep(0.1)
        time.sleep(0.5)
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=30)
    assert failures == []
    assert seen[built_versions.first] > 0
    assert seen[built_versions.second] > 0
    assert server.metric("scanopt_model_info", version=built_versions.second) == 2
    assert server.metric("scanopt_model_info", version=built_versions.first) == 0
    assert set(last.values()) == {built_versions.second}


@pytest.mark.slow
def test_tritonclient_binary_and_json(server: ServerProcess, built_versions: Versions) -> None:
    """tritonclient's HTTP client works with its default (binary) settings and in JSON mode."""
    client = triton.InferenceServerClient(url=server.url.removeprefix("http://"))
    try:
        assert client.is_server_live()
        assert client.is_server_ready()
        assert client.is_model_ready("scanopt")
        metadata = client.get_model_metadata("scanopt")
        assert metadata["versions"] == [built_versions.first]
        scans = [msgspec.convert({**SCAN, "lookback_bars": b}, Scan) for b in (15, 60, 240, 480)]
        rows = encode_scans(scans)

        binary_input = triton.InferInput("features", list(rows.shape), "FP32")
        binary_input.set_data_from_numpy(rows)  # binary_data=True is the default
        binary = client.infer("scanopt", [binary_input])
        assert binary.get_response()["model_version"] == built_versions.first

        json_input = triton.InferInput("features", list(rows.shape), "FP32")
        json_input.set_data_from_numpy(rows, binary_data=False)
        outputs = [triton.InferRequestedOutput(name, binary_data=False) for name in MODEL_OUTPUTS]
        as_json = client.infer("scanopt", [json_input], outputs=outputs)
        assert all("data" in o for o in as_json.get_response()["outputs"])

        versioned = client.infer("scanopt", [binary_input], model_version=built_versions.first)

        batch = httpx.post(
            f"{server.url}/v1/predict/batch",
            json={"scans": [msgspec.to_builtins(s) for s in scans]},
        ).json()["predictions"]
        expected = np.array([p["p_empty"] for p in batch], dtype=np.float32)
        for result in (binary, as_json, versioned):
            for name in MODEL_OUTPUTS:
                assert result.as_numpy(name).shape == (4,)
            np.testing.assert_array_equal(result.as_numpy("p_empty"), expected)
    finally:
        client.close()
