"""The README's client snippet, run exactly as written, with the server up and with it down."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from typing import Any

import msgspec
import pytest

from bench.servers import free_port
from server.client import ReportStats, ScanoptClient
from server.domain.scan import Scan
from tests.server.conftest import SCAN, TOKEN
from tests.server.granian_process import REPO, one_worker_server


def snippet() -> str:
    """The python block of the README's "Scanner integration" section."""
    readme = (REPO / "README.md").read_text()
    section = readme.split("## Scanner integration", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```python\n(.*?)```", section, flags=re.DOTALL)
    assert len(blocks) == 1, "the section holds one python block"
    return str(blocks[0])


def run_snippet(url: str, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """Run the snippet with the scanner's own parts stubbed; its namespace afterwards."""
    monkeypatch.setenv("SCANOPT_URL", url)
    shown: list[Any] = []

    def run_scan(scan: Scan) -> list[str]:
        time.sleep(0.01)
        return ["AAPL", "MSFT"]

    namespace: dict[str, Any] = {
        "scan": msgspec.convert(SCAN, Scan),
        "show_prediction": lambda *shown_args: shown.append(shown_args),
        "run_scan": run_scan,
        "shown": shown,
    }
    exec(compile(snippet(), "README.md", "exec"), namespace)
    return namespace


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, built_versions: Any) -> Iterator[str]:
    """A real server (Granian, one worker) serving a tiny model."""
    home = tmp_path_factory.mktemp("readme-server")
    with one_worker_server(home, built_versions.root, built_versions.first, TOKEN) as url:
        yield url


@pytest.mark.slow
def test_snippet_with_the_server_up(server: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Against a real server the snippet predicts, shows the prediction (u-1 is treatment)
    and delivers both events and the feedback."""
    namespace = run_snippet(server, monkeypatch)
    scanopt: ScanoptClient = namespace["scanopt"]
    assert namespace["answer"] is not None
    assert namespace["answer"].ml_enabled
    assert len(namespace["shown"]) == 1
    assert scanopt.reporting == ReportStats(queued=3, sent=3)


def test_snippet_with_nothing_listening(monkeypatch: pytest.MonkeyPatch) -> None:
    """With nothing listening the snippet runs to the end without raising: no answer, the
    two events counted as failed, the feedback skipped."""
    namespace = run_snippet(f"http://127.0.0.1:{free_port()}", monkeypatch)
    scanopt: ScanoptClient = namespace["scanopt"]
    assert namespace["answer"] is None
    assert namespace["shown"] == []
    assert scanopt.reporting == ReportStats(queued=2, failed=2, skipped=1)
