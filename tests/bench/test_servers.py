"""Servers under test: started, awaited, measured and always stopped."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from bench.openloop import LoadRunError
from bench.servers import (
    ServerSpec,
    child_pids,
    free_port,
    peak_rss_mb,
    preflight,
    running_server,
)
from tests.bench.tiny_http import Reply, TinyServer

Start = Callable[[Callable[[int], Reply]], TinyServer]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie still answers kill(0); its state letter says it is gone.
    state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    return state != "Z"


@pytest.mark.slow
def test_server_is_ready_measured_and_stopped(tmp_path: Path) -> None:
    """A real HTTP server: ready on its path, one worker with a peak RSS, gone afterwards."""
    port = free_port()
    spec = ServerSpec(
        name="http-server",
        argv=[sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1"],
        port=port,
        ready_path="/",
        env={"PYTHONUNBUFFERED": "1"},
    )
    with running_server(spec, tmp_path) as server:
        assert server.startup_s > 0
        assert server.worker_pids() == [server.pid]
        assert server.peak_rss_mb()[0] > 1.0
        pid = server.pid
    assert not _alive(pid)


@pytest.mark.slow
def test_server_that_exits_at_start_fails_with_its_log(tmp_path: Path) -> None:
    """A server dying before ready raises with its exit code and the end of its log."""
    spec = ServerSpec(
        name="dies",
        argv=[sys.executable, "-c", "import sys; print('bad setting X'); sys.exit(3)"],
        port=free_port(),
    )
    with (
        pytest.raises(LoadRunError, match=r"exited with 3 .*bad setting X"),
        running_server(spec, tmp_path),
    ):
        pass


@pytest.mark.slow
def test_server_never_ready_times_out_and_is_stopped(tmp_path: Path) -> None:
    """A server that never listens fails after its start-up timeout and is killed."""
    spec = ServerSpec(
        name="mute",
        argv=[sys.executable, "-c", "import time; time.sleep(60)"],
        port=free_port(),
        startup_timeout_s=0.5,
    )
    with pytest.raises(LoadRunError, match="not ready"), running_server(spec, tmp_path):
        pass
    assert not any("time.sleep(60)" in _cmdline(pid) for pid in child_pids(os.getpid()))


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_text().replace("\0", " ")
    except OSError:
        return ""


def test_child_pids_finds_a_spawned_child() -> None:
    """A process this test starts is listed among this process's children."""
    proc = subprocess.Popen(["sleep", "30"])
    try:
        assert proc.pid in child_pids(os.getpid())
    finally:
        proc.kill()
        proc.wait()


def test_peak_rss_of_this_process_is_positive() -> None:
    """VmHWM of a live process reads as a positive number of MiB."""
    assert peak_rss_mb(os.getpid()) > 1.0


def test_preflight_fails_on_a_non_2xx_answer(tiny_server: Start) -> None:
    """A body the server refuses (here 422) fails the preflight naming the status."""
    server = tiny_server(lambda n: Reply(status=422 if n == 1 else 200))
    with pytest.raises(LoadRunError, match="answered 422"):
        preflight(server.url, [b'{"a":1}', b'{"b":2}'])


def test_preflight_passes_when_every_body_gets_2xx(tiny_server: Start) -> None:
    """Every body is sent once and answered 2xx: no error."""
    server = tiny_server(lambda n: Reply())
    preflight(server.url, [b'{"a":1}', b'{"b":2}', b'{"c":3}'])
    assert len(server.served) == 3


def test_preflight_against_a_dead_port_fails() -> None:
    """Nothing listening: cannot reach, raised."""
    with pytest.raises(LoadRunError, match="cannot reach"):
        preflight(f"http://127.0.0.1:{free_port()}/x", [b"{}"])
