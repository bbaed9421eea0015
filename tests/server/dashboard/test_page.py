"""GET /dashboard in a real browser (Playwright driving Debian's chromium) over a real
2-worker server: live data arrives, every chart draws, no console error, user text stays
text, and a store outage shows while live figures keep coming."""

from __future__ import annotations

import os
import shutil
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import msgspec
import pytest

from server.domain.scan import Scan
from tests.browser import CHROMIUM, CHROMIUM_ARGS, sync_playwright
from tests.server.conftest import SCAN
from tests.server.granian_process import REPO, ServerProcess, server_env
from train.generate import generate_records

pytestmark = pytest.mark.slow

HOSTILE = '<script>window.__pwned = 1</script><img src=x onerror="window.__pwned = 2">'
# Per chart: its id, whether uPlot's draw hook ran, and its canvas width.
DRAWN_CHARTS = """els => els.map(e => {
    const canvas = e.querySelector("canvas");
    return [e.id, e.dataset.drawn, canvas ? canvas.width : 0];
})"""
# `SCANOPT_DASHBOARD_SCREENSHOT=docs/dashboard.png` also writes the README's screenshot.
SCREENSHOT_ENV = "SCANOPT_DASHBOARD_SCREENSHOT"


@pytest.fixture
def server(tmp_path: Path, artifacts: Path) -> Iterator[ServerProcess]:
    # Monitoring refreshed every second, so accuracy and drift reach the page in the test.
    env = server_env(
        tmp_path, artifacts, monitor_interval_s=1.0, drift_flush_s=0.5, accuracy_min_labelled=5
    )
    process = ServerProcess(env, tmp_path / "server.log")
    try:
        process.wait_ready()
        yield process
    finally:
        process.stop()


def _seed(server: ServerProcess) -> None:
    """Simulated users' scans in a market whose volatility jumped (VIX + 22), their real
    outcomes, and feedback, one suggestion hostile markup."""
    now = datetime.now(UTC).isoformat()
    fields = Scan.__struct_fields__
    with httpx.Client(base_url=server.url, timeout=10) as http:
        for i, record in enumerate(generate_records(300, seed=3)):
            scan = msgspec.to_builtins({f: getattr(record, f) for f in fields})
            scan["volatility_index"] = min(90.0, record.volatility_index + 22.0)
            answer = http.post("/v1/predict", json=scan).json()
            if i < 120:
                event = {
                    "type": "scan_completed",
                    "event_id": f"e-{i}",
                    "user_id": record.user_id,
                    "session_id": record.session_id,
                    "timestamp": now,
                    "prediction_id": answer["prediction_id"],
                    "arm": answer["arm"],
                    "result_count": record.result_count,
                    "duration_s": record.duration_s,
                }
                assert http.post("/v1/events", json=event).status_code == 201
            if i < 3:
                feedback = {
                    "prediction_id": answer["prediction_id"],
                    "satisfaction": 5 - i,
                    "usefulness": 4,
                    "suggestion": HOSTILE if i == 0 else f"suggestion {i}: wider RSI band",
                }
                assert http.post("/v1/feedback", json=feedback).status_code == 201


def _traffic(server: ServerProcess, stop: threading.Event) -> None:
    with httpx.Client(base_url=server.url, timeout=10) as http:
        i = 0
        while not stop.is_set():
            http.post("/v1/predict", json={**SCAN, "user_id": f"t-{i % 50}"})
            i += 1
            stop.wait(0.02)


def test_dashboard_in_chromium(server: ServerProcess, tmp_path: Path) -> None:
    """Live figures arrive, all six charts draw, nothing logs an error, the hostile
    suggestion is shown as text, and a failing store shows a banner while live goes on."""
    start = sync_playwright()
    _seed(server)
    stop = threading.Event()
    load = threading.Thread(target=_traffic, args=(server, stop), daemon=True)
    load.start()
    errors: list[str] = []
    try:
        with start() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=list(CHROMIUM_ARGS))
            page = browser.new_page(viewport={"width": 1400, "height": 1700})
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda e: errors.append(str(e)))
            outside: list[str] = []
            page.on(
                "request",
                lambda r: outside.append(r.url) if not r.url.startswith(server.url) else None,
            )
            page.goto(f"{server.url}/dashboard")
            page.wait_for_function(
                "() => document.getElementById('t-rate').textContent !== '-'"
                " && document.getElementById('t-p95').textContent.endsWith('ms')",
                timeout=30_000,
            )
            page.wait_for_selector("#feedback li.feedback", timeout=30_000)
            # The lease holder's monitoring reaches the page: accuracy and drift rows.
            page.wait_for_selector("#accuracy tr:not(:has(td.muted))", timeout=60_000)
            page.wait_for_selector("#drift tr:not(:has(td.muted))", timeout=60_000)
            page.wait_for_selector("#arms tr:not(:has(td.muted))", timeout=60_000)
            charts = page.eval_on_selector_all(".chart", DRAWN_CHARTS)
            assert len(charts) == 6
            assert all(drawn == "1" and width > 0 for _, drawn, width in charts), charts
            assert float(page.text_content("#t-rate") or "0") > 0
            assert page.text_content("#status") in {"ok", "degraded"}
            feedback = page.inner_text("#feedback")
            assert HOSTILE in feedback  # shown as the characters the user typed
            assert page.evaluate("window.__pwned") is None
            assert page.query_selector("#feedback script, #feedback img") is None
            page.screenshot(path=str(tmp_path / "dashboard.png"), full_page=True)
            if target := os.environ.get(SCREENSHOT_ENV):
                shutil.copy(tmp_path / "dashboard.png", REPO / target)

            # The store goes away: the page says so, live figures keep updating.
            page.route(
                "**/v1/dashboard/stored*",
                lambda route: route.fulfill(
                    status=503,
                    content_type="application/json",
                    body='{"error": "store unavailable", "kind": "store_unavailable"}',
                ),
            )
            page.select_option("#window", "24h")  # polls the store at once
            page.wait_for_selector("#store-banner:not([hidden])", timeout=10_000)
            assert "Store unreachable" in (page.text_content("#store-banner") or "")
            before = page.text_content("#updated")
            page.wait_for_function(
                f"() => document.getElementById('updated').textContent !== {before!r}",
                timeout=10_000,
            )
            browser.close()
    finally:
        stop.set()
        load.join(timeout=10)
    # The intercepted 503 is the one error the browser may report: it is the point.
    assert [e for e in errors if "503" not in e] == []
    assert outside == []
