"""Real servers for the tests: `python -m server.serve` (Granian) on a free port.

Started in their own process group and stopped by that group's id, so a test can never
leave workers behind, and only processes the test started are signalled.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
from prometheus_client.parser import text_string_to_metric_families

from bench.servers import free_port, stop_process_group

REPO = Path(__file__).resolve().parents[2]


def server_env(tmp: Path, artifacts: Path, **settings: Any) -> dict[str, str]:
    """The process environment: ours without SCANOPT_*, plus the given settings."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SCANOPT_")}
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    env.update(
        {
            "SCANOPT_ARTIFACTS": str(artifacts),
            "SCANOPT_METRICS_DIR": str(tmp / "metrics"),
            "SCANOPT_STORE_DSN": f"sqlite:///{tmp.resolve() / 'store.db'}",
            "SCANOPT_PORT": str(free_port()),
            "SCANOPT_WORKERS": "2",
        }
    )
    env.update({f"SCANOPT_{k.upper()}": str(v) for k, v in settings.items()})
    return env


class ServerProcess:
    """One launched server; `url` is its base URL, `log` its JSON-lines output."""

    def __init__(self, env: dict[str, str], log: Path) -> None:
        self.env = env
        self.log = log
        self.url = f"http://127.0.0.1:{env['SCANOPT_PORT']}"
        self.workers = int(env["SCANOPT_WORKERS"])
        self._out = log.open("wb")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "server.serve"],
            cwd=REPO,
            env=env,
            stdout=self._out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def metric(self, name: str, **labels: str) -> float:
        """One sample's value from /metrics (0 when absent)."""
        text = httpx.get(f"{self.url}/metrics", timeout=10).text
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                if sample.name == name and all(
                    sample.labels.get(k) == v for k, v in labels.items()
                ):
                    return sample.value
        return 0.0

    def wait_ready(self, timeout_s: float = 60.0) -> None:
        """Until every worker reports ready (scanopt_ready sums over live workers)."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited {self.proc.returncode}:\n{self.output()}")
            try:
                if self.metric("scanopt_ready") >= self.workers:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.05)
        raise TimeoutError(f"server not ready after {timeout_s} s:\n{self.output()}")

    def output(self) -> str:
        self._out.flush()
        return self.log.read_text(errors="replace")

    def stop(self) -> None:
        """SIGTERM to the process group, SIGKILL if it does not exit in time."""
        stop_process_group(self.proc, timeout_s=20)
        self._out.close()


@contextlib.contextmanager
def one_worker_server(home: Path, versions_root: Path, version: str, token: str) -> Iterator[str]:
    """A one-worker server (SQLite, admin token `token`) on a copy of the built versions
    with `version` current, for the tests that talk to a real server; yields its URL."""
    artifacts = home / "artifacts"
    shutil.copytree(versions_root, artifacts)
    (artifacts / "current").write_text(version + "\n")
    env = server_env(home, artifacts, workers=1, admin_token=token, log_level="WARNING")
    process = ServerProcess(env, home / "server.log")
    try:
        process.wait_ready()
        yield process.url
    finally:
        process.stop()
