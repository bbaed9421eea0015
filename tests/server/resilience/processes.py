"""Helpers for signalling a real Granian server: its worker pids, waits on them.

Only the processes of the server the test launched are ever signalled (its own pid and
the children the kernel lists under it).
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from tests.server.granian_process import REPO, ServerProcess, server_env

__all__ = ["is_dead", "launch", "run_launcher", "wait_until", "worker_pids"]


def run_launcher(env: dict[str, str], timeout_s: float = 60.0) -> subprocess.CompletedProcess[str]:
    """`python -m server.serve` to its end; on a timeout its whole process group is killed
    (a launcher that wrongly started serving must not leave workers behind)."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "server.serve"],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        out, err = proc.communicate(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        out, err = proc.communicate()
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


def launch(tmp_path: Path, artifacts: Path, **settings: object) -> ServerProcess:
    """A server on the test's artifacts and private SQLite store, ready to answer."""
    server = ServerProcess(server_env(tmp_path, artifacts, **settings), tmp_path / "server.log")
    try:
        server.wait_ready()
    except BaseException:
        server.stop()
        raise
    return server


def worker_pids(server: ServerProcess) -> set[int]:
    """The Granian workers: the direct children of the launcher process."""
    pids: set[int] = set()
    for task in Path(f"/proc/{server.proc.pid}/task").iterdir():
        try:
            pids |= {int(p) for p in (task / "children").read_text().split()}
        except OSError:  # the thread ended while we looked
            continue
    return pids


def is_dead(pid: int) -> bool:
    """True once `pid` has exited (a zombie waiting for its parent counts: its sockets are gone)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    return stat.rpartition(")")[2].split()[0] in {"Z", "X"}


def wait_until(what: str, check: Callable[[], bool], timeout_s: float = 60.0) -> float:
    """Poll `check` until true; the seconds it took. TimeoutError names `what`."""
    start = time.monotonic()
    while not check():
        if time.monotonic() - start > timeout_s:
            raise TimeoutError(f"{what}: not after {timeout_s} s")
        time.sleep(0.05)
    return time.monotonic() - start
