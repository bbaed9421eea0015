"""Every query of deploy/grafana/scanopt.json, with Grafana's variables filled in.

`$__rate_interval` becomes 5m (four scrapes of 15 s, Grafana's floor for it), `$window`
its default and `${datasource}` is not part of a query. What is left is plain PromQL that
promtool and Prometheus can read.
"""

from __future__ import annotations

import json
import re
from typing import Any

from tests.deploy.tools import GRAFANA_DASHBOARD

RATE_INTERVAL = "5m"
METRIC_NAME = re.compile(r"\b(scanopt[a-z0-9_:]*|ALERTS|up)\b")


def dashboard() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(GRAFANA_DASHBOARD.read_text())
    return loaded


def _defaults(board: dict[str, Any]) -> dict[str, str]:
    return {
        var["name"]: var["current"]["value"]
        for var in board["templating"]["list"]
        if var["type"] == "custom"
    }


def panel_queries() -> list[tuple[str, str]]:
    """(panel title, PromQL) for every target of every panel."""
    board = dashboard()
    values = {"__rate_interval": RATE_INTERVAL, **_defaults(board)}
    found = []
    for panel in board["panels"]:
        for target in panel.get("targets", []):
            expr = re.sub(r"\$(\w+)", lambda m: values[m.group(1)], target["expr"])
            found.append((panel["title"], expr))
    return found


def metric_names(expr: str) -> set[str]:
    """The metric and recording-rule names one query reads."""
    return set(METRIC_NAME.findall(expr))
