"""Server test fixtures: two real tiny model versions, private artifact copies, apps.

The versions are fitted and exported once per session by the real offline pipeline on
simulated history, so every server test runs the graph the product would serve.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import msgspec
import pytest
from litestar.testing import TestClient

from export.pipeline import build_version
from server.app import create_app
from server.settings import Settings
from train.generate import generate_records

TOKEN = "test-admin-token-0123456789"
RECORDS = 1500
AT = datetime(2024, 3, 5, 15, 30, tzinfo=UTC)  # a Tuesday, 10:30 in New York

SCAN: dict[str, Any] = {
    "user_id": "u-1",
    "session_id": "s-1",
    "universe": "sp500",
    "strategy": "momentum",
    "timeframe": "5m",
    "lookback_bars": 50,
    "min_price": 5.0,
    "max_price": 500.0,
    "min_avg_volume": 500_000.0,
    "min_market_cap_musd": 1_000.0,
    "min_abs_change_pct": 2.0,
    "min_relative_volume": 1.5,
    "rsi_min": 30.0,
    "rsi_max": 70.0,
    "n_extra_filters": 2,
    "volatility_index": 18.0,
    "timestamp": AT.isoformat(),
}


class Versions(msgspec.Struct, frozen=True):
    """Where the session's versions were built, and their names."""

    root: Path
    first: str
    second: str


@pytest.fixture(scope="session")
def built_versions(tmp_path_factory: pytest.TempPathFactory) -> Versions:
    """Two versions (seeds 0 and 1) fitted and exported once for the whole session."""
    root = tmp_path_factory.mktemp("built")
    records = generate_records(RECORDS, seed=0)
    first = build_version(records, root, seed=0, quick=True).name
    second = build_version(records, root, seed=1, quick=True).name
    assert first != second
    (root / "current").unlink(missing_ok=True)  # each test's copy says which it serves
    return Versions(root=root, first=first, second=second)


@pytest.fixture
def artifacts(tmp_path: Path, built_versions: Versions) -> Path:
    """A private copy of the built versions with artifacts/current naming the first."""
    dest = tmp_path / "artifacts"
    shutil.copytree(built_versions.root, dest)
    (dest / "current").write_text(built_versions.first + "\n")
    return dest


def make_settings(artifacts: Path, **overrides: Any) -> Settings:
    """Test settings: no polling (tests reload on purpose), admin on, a private store."""
    values: dict[str, Any] = {
        "artifacts": artifacts,
        "reload_poll_s": 0.0,
        "admin_token": TOKEN,
        "workers": 1,
        # A worker freezes its heap once it is ready; in the test process that would be
        # the whole suite's heap, collected first, at every app start (tests/server/test_heap.py).
        "gc_freeze": False,
        # A private store per test (default: var/scanopt.db under the working directory).
        "store_dsn": f"sqlite:///{artifacts.parent / 'var' / 'scanopt.db'}",
    }
    values.update(overrides)
    return Settings(**values)


@pytest.fixture
def client_for(artifacts: Path) -> Iterator[Callable[..., TestClient[Any]]]:
    """Start apps with settings overrides; each is shut down after the test."""
    clients: list[TestClient[Any]] = []

    def start(**overrides: Any) -> TestClient[Any]:
        client = TestClient(create_app(make_settings(artifacts, **overrides)))
        client.__enter__()
        clients.append(client)
        return client

    yield start
    for client in clients:
        client.__exit__(None, None, None)


@pytest.fixture
def client(client_for: Callable[..., TestClient[Any]]) -> TestClient[Any]:
    """The app with default test settings, started (model loaded and warmed)."""
    return client_for()
