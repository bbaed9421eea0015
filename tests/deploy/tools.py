"""Debian tools the deploy tests drive: found on PATH, or a skip that says why.

Outside CI a missing tool skips with the package to install; under CI=true it fails,
because there .ci/run installs them and a skip would hide a part that never ran.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
PROMETHEUS_DIR = REPO / "deploy" / "prometheus"
RULES = PROMETHEUS_DIR / "alerts.yml"
RULE_TESTS = PROMETHEUS_DIR / "alerts_test.yml"
GRAFANA_DASHBOARD = REPO / "deploy" / "grafana" / "scanopt.json"


def require_tool(name: str, package: str) -> str:
    """The tool's path; a skip (a failure under CI=true) when it is not installed."""
    path = shutil.which(name)
    if path is None:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"{name} is not installed but CI=true: apt-get install {package}")
        pytest.skip(f"{name} not installed (Debian package `{package}`); CI installs it")
    return path


def promtool(*args: str, cwd: Path | None = None, stdin: str | None = None) -> str:
    """Run promtool; its combined output, asserting exit status 0."""
    done = subprocess.run(
        [require_tool("promtool", "prometheus"), *args],
        cwd=cwd,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    output = done.stdout + done.stderr
    assert done.returncode == 0, output
    return output
