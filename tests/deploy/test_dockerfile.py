"""deploy/Dockerfile, run here as its container would run it (no container engine on this
machine): its ENV, its WORKDIR laid out with the same names, its CMD, then its
HEALTHCHECK command; the server must get ready, pass the health check and stop cleanly."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import httpx
import pytest

from bench.servers import free_port
from tests.server.granian_process import REPO

DOCKERFILE = REPO / "deploy" / "Dockerfile"


def _instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    joined = DOCKERFILE.read_text().replace("\\\n", " ")
    out = []
    for line in joined.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            out.append((word.upper(), rest.strip()))
    return out


def _env() -> dict[str, str]:
    env: dict[str, str] = {}
    for word, rest in _instructions():
        if word == "ENV":
            for pair in rest.split():
                key, _, value = pair.partition("=")
                env[key] = value
    return env


def _one(word: str) -> str:
    (value,) = [rest for w, rest in _instructions() if w == word]
    return value


def test_image_runs_as_a_non_root_user_with_a_health_check() -> None:
    """USER is not root; HEALTHCHECK probes /health/ready; CMD is `just serve`'s command."""
    assert _one("USER") not in {"root", "0"}
    assert "/health/ready" in _one("HEALTHCHECK")
    assert json.loads(_one("CMD")) == [".venv/bin/python", "-m", "server.serve"]
    assert _env()["SCANOPT_HOST"] == "0.0.0.0"  # reachable from outside the container


@pytest.mark.slow
def test_start_command_serves_and_passes_the_health_check(tmp_path: Path) -> None:
    """CMD in WORKDIR with the image's ENV: ready, HEALTHCHECK exits 0, SIGTERM exits 0."""
    workdir = _one("WORKDIR")
    app = tmp_path / "app"  # stands for WORKDIR: the same relative names inside
    app.mkdir()
    (app / ".venv").symlink_to(REPO / ".venv")
    for package in ("server", "train", "export", "bench"):
        (app / package).symlink_to(REPO / package)
    shutil.copytree(REPO / "artifacts", app / "artifacts")  # what the image COPYs: the default
    (app / "var").mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith("SCANOPT_")}
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    env.pop("PYTHONPATH", None)  # the image installs scanopt; here WORKDIR holds the code
    for key, value in _env().items():
        if value.startswith("/tmp/"):
            value = f"{tmp_path}/{value.removeprefix('/tmp/')}"
        env[key] = value.replace(workdir, str(app), 1) if value.find(workdir) >= 0 else value
    port = free_port()
    env["SCANOPT_PORT"] = str(port)  # a free port: other servers run on this machine
    env["SCANOPT_HOST"] = "127.0.0.1"
    cmd = json.loads(_one("CMD"))
    health = json.loads(_one("HEALTHCHECK").split(" CMD ", 1)[1])
    log = (tmp_path / "server.log").open("wb")
    proc = subprocess.Popen(
        cmd, cwd=app, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            assert proc.poll() is None, (tmp_path / "server.log").read_text()
            try:
                if httpx.get(f"http://127.0.0.1:{port}/health/ready", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, "not ready within 60 s"
            time.sleep(0.1)
        check = subprocess.run(
            health, cwd=app, env=env, capture_output=True, timeout=30, check=False
        )
        assert check.returncode == 0, check.stderr
        os.killpg(proc.pid, signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)
        log.close()
