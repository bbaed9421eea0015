"""deploy/grafana/scanopt.json: every panel's query parses and reads metrics that exist."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from litestar.testing import TestClient

from tests.deploy.grafana.queries import dashboard, metric_names, panel_queries
from tests.deploy.tools import RULES, promtool
from tests.server.conftest import SCAN

_SAMPLE_SUFFIXES = {"histogram": ("_bucket", "_count", "_sum")}


def _recorded() -> set[str]:
    groups = yaml.safe_load(RULES.read_text())["groups"]
    return {rule["record"] for group in groups for rule in group["rules"] if "record" in rule}


def test_every_query_parses(tmp_path: Path) -> None:
    """promtool parses each panel query (one recording rule per query, `check rules`)."""
    queries = panel_queries()
    rules = [{"record": f"panel:q{i}", "expr": expr} for i, (_, expr) in enumerate(queries)]
    path = tmp_path / "panels.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "panels", "rules": rules}]}))
    assert f"SUCCESS: {len(queries)} rules found" in promtool("check", "rules", str(path))


def test_queries_read_only_known_metrics(client: TestClient[Any]) -> None:
    """Each name a panel reads is declared on /metrics or is a recording rule."""
    client.post("/v1/predict", json=SCAN)
    exposed = set()
    for line in client.get("/metrics").text.splitlines():
        if line.startswith("# TYPE "):  # families with no sample yet are declared too
            name, kind = line.split()[2:4]
            exposed |= {name + s for s in _SAMPLE_SUFFIXES.get(kind, ("",))}
    known = exposed | _recorded() | {"ALERTS", "up"}
    for title, expr in panel_queries():
        assert metric_names(expr) <= known, f"{title}: {metric_names(expr) - known}"


def test_panels_are_laid_out_without_overlap() -> None:
    """No two panels share a grid cell, and every panel fits the 24-column grid."""
    taken: set[tuple[int, int]] = set()
    for panel in dashboard()["panels"]:
        pos = panel["gridPos"]
        assert pos["x"] + pos["w"] <= 24, panel["title"]
        cells = {
            (x, y)
            for x in range(pos["x"], pos["x"] + pos["w"])
            for y in range(pos["y"], pos["y"] + pos["h"])
        }
        assert not cells & taken, panel["title"]
        taken |= cells


@pytest.mark.parametrize("unique", ["id", "title"])
def test_panel_ids_and_titles_are_unique(unique: str) -> None:
    """Grafana keys panels by id; people find them by title: neither repeats."""
    values = [p[unique] for p in dashboard()["panels"]]
    assert len(values) == len(set(values))
