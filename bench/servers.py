"""Servers under test as real processes: start, wait until ready, check, measure memory, stop.

Each server runs in its own process group (started here, so stopping it ends exactly the
processes this module started). Memory is the peak resident set (VmHWM in /proc/<pid>/status)
of each worker process: Granian's children, or the server process itself when it has none.
"""

from __future__ import annotations

import http.client
import os
import re
import signal
import socket
import subprocess
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from pathlib import Path
from urllib.parse import urlsplit

import msgspec

from bench.openloop import LoadRunError

__all__ = [
    "RunningServer",
    "ServerSpec",
    "child_pids",
    "free_port",
    "peak_rss_mb",
    "preflight",
    "running_server",
    "stop_process_group",
]

_READY_IN_A_ROW = 20


class ServerSpec(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """How to start one server under test and where to reach it."""

    name: str
    argv: list[str]
    port: int
    env: dict[str, str] = {}
    ready_path: str = "/health/ready"
    startup_timeout_s: float = 60.0

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


class RunningServer(msgspec.Struct, frozen=True, kw_only=True):
    """A started, ready server: its spec, main pid and measured start-up time."""

    spec: ServerSpec
    pid: int
    startup_s: float
    log: Path

    def worker_pids(self) -> list[int]:
        """The processes that serve requests: the children, else the main process."""
        return child_pids(self.pid) or [self.pid]

    def peak_rss_mb(self) -> list[float]:
        """Peak resident memory of each worker so far, MiB."""
        return [peak_rss_mb(pid) for pid in self.worker_pids()]


def free_port() -> int:
    """A TCP port nothing listens on right now (the kernel picks it)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def child_pids(pid: int) -> list[int]:
    """Direct children of `pid`, read from /proc."""
    children: list[int] = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue  # the process ended while we looked
        # The command name may contain spaces and parentheses: fields start after the last ')'.
        fields = stat[stat.rindex(")") + 2 :].split()
        if int(fields[1]) == pid:
            children.append(int(entry.name))
    return sorted(children)


def peak_rss_mb(pid: int) -> float:
    """VmHWM (peak resident set) of a live process, MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024.0
    raise LookupError(f"/proc/{pid}/status has no VmHWM line: expected a live user process")


def _get_status(base_url: str, path: str, timeout_s: float = 2.0) -> int:
    parts = urlsplit(base_url)
    conn = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=timeout_s)
    try:
        conn.request("GET", path)
        return conn.getresponse().status
    finally:
        conn.close()


def preflight(url: str, bodies: Sequence[bytes], timeout_s: float = 30.0) -> None:
    """POST every body once; `LoadRunError` unless each one gets a 2xx."""
    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=timeout_s)
    try:
        for body in bodies:
            conn.request("POST", parts.path, body, {"Content-Type": "application/json"})
            resp = conn.getresponse()
            answer = resp.read()
            if not 200 <= resp.status < 300:
                raise LoadRunError(
                    f"preflight POST {url} answered {resp.status} (expected 2xx) to "
                    f"{body[:80]!r}: {answer[:200]!r}"
                )
    except OSError as exc:
        raise LoadRunError(f"cannot reach {url}: {exc}") from None
    finally:
        conn.close()


def stop_process_group(
    proc: subprocess.Popen[bytes] | subprocess.Popen[str], timeout_s: float = 10.0
) -> None:
    """SIGTERM to `proc`'s process group (started with `start_new_session=True`), SIGKILL
    if it has not exited within `timeout_s`; then SIGKILL to any member left behind (a
    worker outliving its parent)."""
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout_s)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout_s)
    with suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)


@contextmanager
def running_server(
    spec: ServerSpec, log_dir: Path, base_env: Mapping[str, str] | None = None
) -> Iterator[RunningServer]:
    """Start the server, wait until its ready path answers 200, yield it, then stop it."""
    log_dir.mkdir(parents=True, exist_ok=True)
    log = log_dir / (re.sub(r"[^A-Za-z0-9.+-]+", "-", spec.name).strip("-") + ".log")
    env = {**(base_env if base_env is not None else os.environ), **spec.env}
    t0 = time.perf_counter()
    with log.open("wb") as out:
        proc = subprocess.Popen(
            spec.argv, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    try:
        deadline = t0 + spec.startup_timeout_s
        # Several workers share the socket: fresh connections land on different workers, so
        # a run of ready answers in a row means every worker is up, not only the first.
        in_a_row = 0
        first_ready = 0.0
        while in_a_row < _READY_IN_A_ROW:
            if proc.poll() is not None:
                tail = log.read_text(errors="replace")[-800:]
                raise LoadRunError(
                    f"{spec.name} exited with {proc.returncode} before it was ready: {tail}"
                )
            try:
                ready = _get_status(spec.base_url, spec.ready_path) == 200
            except OSError:
                ready = False  # not listening yet
            in_a_row = in_a_row + 1 if ready else 0
            if ready:
                first_ready = first_ready or time.perf_counter()
                continue
            if time.perf_counter() > deadline:
                raise LoadRunError(
                    f"{spec.name} was not ready on {spec.base_url}{spec.ready_path} "
                    f"after {spec.startup_timeout_s:g} s"
                )
            time.sleep(0.05)
        yield RunningServer(spec=spec, pid=proc.pid, startup_s=first_ready - t0, log=log)
    finally:
        stop_process_group(proc)
