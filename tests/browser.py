"""The one way tests reach a browser: Debian's chromium, driven directly or by Playwright.

Outside CI a machine without chromium (or without the playwright package) skips the
browser tests with the reason; under CI (CI=true) the same absence fails them, since CI
installs both and a browser check must never vanish silently there.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Final

import pytest

__all__ = ["CHROMIUM", "CHROMIUM_ARGS", "chromium", "sync_playwright"]

CHROMIUM: Final = Path("/usr/bin/chromium")
# Headless, no sandbox (tests run as root in containers), and no network, updates or
# first-run work: a page under test must stand on what the test serves it.
CHROMIUM_ARGS: Final = (
    "--no-sandbox",
    "--headless",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
)


def _missing(what: str, install: str) -> None:
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"{what} is missing but CI=true: {install}")
    pytest.skip(f"{what} is not installed ({install}); CI installs it")


def chromium() -> Path:
    """Debian's chromium, or a skip (a failure under CI) naming what to install."""
    if not CHROMIUM.exists():
        _missing(str(CHROMIUM), "apt-get install chromium")
    return CHROMIUM


def sync_playwright() -> Any:
    """Playwright's `sync_playwright`, once both it and chromium are known to be there."""
    try:
        from playwright.sync_api import sync_playwright as start
    except ImportError:
        _missing("the playwright package", "pip install -e '.[dev]'")
    chromium()
    return start
