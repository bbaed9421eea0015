"""/schema works offline: a real browser with every off-machine request blocked renders
every operation from the app's own Redoc bundle."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from server.docs import ASSET_PATH, REDOC_VERSION
from tests.browser import CHROMIUM_ARGS, chromium
from tests.server.conftest import TOKEN
from tests.server.granian_process import REPO, ServerProcess, server_env

ASSETS = REPO / "server" / "docs" / "assets"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, built_versions: Any) -> Iterator[str]:
    """A real server (Granian, one worker) serving a tiny model."""
    home = tmp_path_factory.mktemp("docs-server")
    artifacts = home / "artifacts"
    shutil.copytree(built_versions.root, artifacts)
    (artifacts / "current").write_text(built_versions.first + "\n")
    env = server_env(home, artifacts, workers=1, admin_token=TOKEN, log_level="WARNING")
    process = ServerProcess(env, home / "server.log")
    try:
        process.wait_ready()
        yield process.url
    finally:
        process.stop()


def test_the_page_refers_to_nothing_off_the_machine(server: str) -> None:
    """The HTML loads only the app's bundle: no CDN, no web-font stylesheet, no favicon."""
    page = httpx.get(f"{server}/schema", timeout=10).text
    assert f'<script src="{ASSET_PATH}"' in page
    for host in ("cdn.", "fonts.googleapis", "jsdelivr", "unpkg"):
        assert host not in page
    bundle = httpx.get(f"{server}{ASSET_PATH}", timeout=10)
    assert bundle.status_code == 200
    assert bundle.headers["content-type"].startswith("text/javascript")
    vendored = (ASSETS / "redoc.standalone.js").read_bytes()
    assert b"https://cdn.redoc.ly/redoc/logo-mini.svg" in vendored  # as npm published it
    assert bundle.content.count(b"https://cdn.") == 0  # as served: its one CDN URL swapped
    assert len(bundle.content) - len(vendored) < 100
    notices = (ASSETS / "redoc.standalone.js.LICENSE.txt").read_text()
    assert f'Version: "{REDOC_VERSION}"' in notices  # the bundle is the version it claims


@pytest.mark.slow
def test_schema_renders_every_operation_offline(server: str) -> None:
    """Chromium (--no-sandbox), requests to anything but the app aborted, opens /schema and
    finds every operation's summary rendered; nothing off the machine was even asked for."""
    from playwright.sync_api import Route, sync_playwright

    executable = chromium()
    spec = httpx.get(f"{server}/schema/openapi.json", timeout=10).json()
    summaries = {
        op["summary"] for ops in spec["paths"].values() for op in ops.values() if "summary" in op
    }
    assert len(summaries) >= 10
    blocked: list[str] = []

    def only_the_app(route: Route) -> None:
        if route.request.url.startswith(server):
            route.continue_()
        else:
            blocked.append(route.request.url)
            route.abort()

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(executable), args=list(CHROMIUM_ARGS)
        )
        try:
            page = browser.new_page()
            page.route("**/*", only_the_app)
            page.goto(f"{server}/schema", wait_until="networkidle")
            page.wait_for_selector("[role=menuitem]", timeout=30_000)
            text = page.inner_text("body")
        finally:
            browser.close()
    missing = sorted(s for s in summaries if s not in text)
    assert missing == []
    assert blocked == []
