"""A private scanopt server for a simulation: Granian via `python -m server.serve`.

It listens on a free port, serves the given artifacts, and keeps its store in a fresh
temporary directory (RAM-backed /dev/shm when the machine has it: the store still commits
every write, but a simulation is about the experiment, not about disk sync latency).
The directory is deleted when the server stops; its log stays in `log_dir`.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import msgspec

from bench.servers import ServerSpec, free_port, running_server

__all__ = ["OwnServer", "own_server"]

REPO = Path(__file__).resolve().parents[2]
_SHM = Path("/dev/shm")


class OwnServer(msgspec.Struct, frozen=True, kw_only=True):
    """Where the server answers, where its store lives, and how long it took to be ready."""

    url: str
    store_dsn: str
    startup_s: float
    log: Path


@contextmanager
def own_server(artifacts: Path, log_dir: Path, *, workers: int = 2) -> Iterator[OwnServer]:
    """Start a server on `artifacts` with an empty store; stop it and delete the store after."""
    if not (artifacts / "current").is_file():
        raise FileNotFoundError(
            f"{artifacts / 'current'} does not exist: make a model first (`just model`)"
        )
    store_dir = Path(tempfile.mkdtemp(prefix="scanopt-sim-", dir=_SHM if _SHM.is_dir() else None))
    try:
        port = free_port()
        dsn = f"sqlite:///{(store_dir / 'scanopt.db').resolve()}"
        base = {k: v for k, v in os.environ.items() if not k.startswith("SCANOPT_")}
        base.pop("PROMETHEUS_MULTIPROC_DIR", None)
        python_path = os.pathsep.join(p for p in (str(REPO), base.get("PYTHONPATH")) if p)
        spec = ServerSpec(
            name="scanopt-sim",
            argv=[sys.executable, "-m", "server.serve"],
            port=port,
            env={
                "PYTHONPATH": python_path,
                "SCANOPT_HOST": "127.0.0.1",
                "SCANOPT_PORT": str(port),
                "SCANOPT_WORKERS": str(workers),
                "SCANOPT_ARTIFACTS": str(artifacts.resolve()),
                "SCANOPT_STORE_DSN": dsn,
                "SCANOPT_METRICS_DIR": str(store_dir / "metrics"),
                "SCANOPT_LOG_LEVEL": "WARNING",
                "SCANOPT_RELOAD_POLL_S": "0",
                "SCANOPT_PREDICTION_LOG_FLUSH_S": "0.2",
                # Monitoring answers within seconds, so a run can read what it caught.
                "SCANOPT_MONITOR_INTERVAL_S": "2",
                "SCANOPT_DRIFT_FLUSH_S": "1",
            },
        )
        with running_server(spec, log_dir, base_env=base) as server:
            yield OwnServer(
                url=spec.base_url, store_dsn=dsn, startup_s=server.startup_s, log=server.log
            )
    finally:
        shutil.rmtree(store_dir, ignore_errors=True)
