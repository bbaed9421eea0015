"""A real Prometheus for the tests: Debian's /usr/bin/prometheus on a free loopback port.

It scrapes the given targets every second and loads deploy/prometheus/alerts.yml,
evaluating it every second. Started in its own process group, stopped by that group's
id, its data in the test's tmp folder.
"""

from __future__ import annotations

import contextlib
import subprocess
import time
from pathlib import Path
from typing import Any

import httpx
import yaml

from bench.servers import free_port, stop_process_group
from tests.deploy.tools import RULES, require_tool


class PrometheusProcess:
    """One Prometheus; `query` runs an instant query through the HTTP API."""

    def __init__(self, tmp: Path, targets: list[str]) -> None:
        binary = require_tool("prometheus", "prometheus")
        config = {
            "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
            "rule_files": [str(RULES)],
            "scrape_configs": [
                {"job_name": "scanopt", "static_configs": [{"targets": targets}]},
            ],
        }
        (tmp / "prometheus.yml").write_text(yaml.safe_dump(config))
        self.url = f"http://127.0.0.1:{free_port()}"
        self.log = tmp / "prometheus.log"
        self._out = self.log.open("wb")
        self.proc = subprocess.Popen(
            [
                binary,
                f"--config.file={tmp / 'prometheus.yml'}",
                f"--storage.tsdb.path={tmp / 'tsdb'}",
                f"--web.listen-address={self.url.removeprefix('http://')}",
                "--log.level=warn",
            ],
            stdout=self._out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def wait_ready(self, timeout_s: float = 30.0) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"prometheus exited {self.proc.returncode}:\n{self.output()}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{self.url}/-/ready", timeout=2).status_code == 200:
                    return
            time.sleep(0.1)
        raise TimeoutError(f"prometheus not ready after {timeout_s} s:\n{self.output()}")

    def api(self, path: str, **params: str) -> Any:
        """The `data` of one /api/v1 call, asserting status success."""
        body = httpx.get(f"{self.url}/api/v1/{path}", params=params, timeout=10).json()
        assert body["status"] == "success", body
        return body["data"]

    def query(self, expr: str) -> list[dict[str, Any]]:
        """An instant query's vector (or scalar as one sample)."""
        data = self.api("query", query=expr)
        if data["resultType"] == "scalar":
            return [{"metric": {}, "value": data["result"]}]
        result: list[dict[str, Any]] = data["result"]
        return result

    def wait_for(self, expr: str, timeout_s: float = 30.0) -> list[dict[str, Any]]:
        """Poll until `expr` returns samples that are all numbers (not NaN)."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            result = self.query(expr)
            if result and all(s["value"][1] not in {"NaN", "+Inf", "-Inf"} for s in result):
                return result
            time.sleep(0.25)
        raise TimeoutError(f"no data for {expr} after {timeout_s} s")

    def output(self) -> str:
        self._out.flush()
        return self.log.read_text(errors="replace")

    def stop(self) -> None:
        stop_process_group(self.proc, timeout_s=15)
        self._out.close()
