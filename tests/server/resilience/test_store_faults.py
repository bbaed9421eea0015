"""The store misbehaving under a real Granian server: slow, or out of disk.

A slow PostgreSQL (every round trip delayed by a proxy) must not slow predictions: the
prediction log is written off the request path and experiment configs come from a cache.
SQLite on a full disk (a 4 MiB tmpfs mounted for the test) must answer writes 503 naming
the cause, keep predicting, and accept writes again once space returns.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import sqlite3
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import httpx
import numpy as np
import pytest

from tests.server.conftest import SCAN
from tests.server.resilience.load import event_body, stored_event_ids
from tests.server.resilience.processes import launch, wait_until
from tests.server.resilience.slow_proxy import SlowProxy
from tests.server.store.backends import pg_dsn

__all__ = ["pg_dsn"]

pytestmark = pytest.mark.slow

STORE_DELAY_S = 0.1


def _predict_latencies(url: str, n: int) -> np.ndarray:
    with httpx.Client(base_url=url, timeout=10) as client:
        seconds = []
        for i in range(n):
            scan = {**SCAN, "user_id": f"u-{i}"}  # new users: new exposures to log
            started = time.perf_counter()
            response = client.post("/v1/predict", json=scan)
            seconds.append(time.perf_counter() - started)
            assert response.status_code == 200, response.text
    return np.asarray(seconds)


def test_slow_store_leaves_predict_latency_alone(
    pg_dsn: str, artifacts: Path, tmp_path: Path, record_property: pytest.RecordProperty
) -> None:
    """With every store round trip 100 ms slower, predict p95 stays far below 100 ms
    while writes, which must wait for their commit, take at least that long."""
    parts = urlsplit(pg_dsn)
    proxy = SlowProxy((parts.hostname or "127.0.0.1", parts.port or 5432))
    dsn = urlunsplit(parts._replace(netloc=f"{parts.username}@127.0.0.1:{proxy.port}"))
    server = launch(tmp_path, artifacts, store_dsn=dsn, log_level="WARNING")
    stop = threading.Event()
    try:
        fast = _predict_latencies(server.url, 300)
        proxy.delay_s = STORE_DELAY_S
        started = time.perf_counter()
        write = httpx.post(f"{server.url}/v1/events", json=event_body("e-slow"), timeout=30)
        write_s = time.perf_counter() - started
        assert write.status_code == 201, write.text
        assert write_s >= STORE_DELAY_S, "the proxy should have slowed the write"

        def keep_writing() -> None:  # the store stays busy with slow writes meanwhile
            with httpx.Client(base_url=server.url, timeout=30) as client:
                while not stop.is_set():
                    client.post("/v1/events", json=event_body(f"e-{uuid.uuid4().hex}"))

        writer = threading.Thread(target=keep_writing, daemon=True)
        writer.start()
        slow = _predict_latencies(server.url, 300)
        fast_p95, slow_p95 = np.percentile(fast, 95), np.percentile(slow, 95)
        record_property("predict_p95_ms_fast_store", round(1000 * fast_p95, 2))
        record_property("predict_p95_ms_slow_store", round(1000 * slow_p95, 2))
        print(
            f"slow store: predict p95 {1000 * fast_p95:.2f} ms -> {1000 * slow_p95:.2f} ms "
            f"with {1000 * STORE_DELAY_S:.0f} ms per round trip; one event write {write_s:.2f} s"
        )
        assert slow_p95 < STORE_DELAY_S / 2, "a prediction waited on the store"
    finally:
        stop.set()
        server.stop()
        proxy.close()


@contextlib.contextmanager
def _small_disk(path: Path, size: str) -> Iterator[Path]:
    """A tmpfs of `size` at `path` (root only), unmounted afterwards."""
    if os.geteuid() != 0 or shutil.which("mount") is None:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail("CI=true but the full-disk test cannot mount a tmpfs (needs root)")
        pytest.skip("mounting a small tmpfs for the full-disk test needs root")
    path.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)], check=True)
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)


def _fill(disk: Path) -> Path:
    """Write a file until the disk is full; returns it (delete it to give space back)."""
    filler = disk / "filler"
    with filler.open("wb", buffering=0) as out:
        for chunk in (65536, 512):  # big chunks, then the last partial one
            with contextlib.suppress(OSError):
                while True:
                    out.write(b"\0" * chunk)
    return filler


def _rows(db: Path) -> int:
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        return int(conn.execute("SELECT count(*) FROM predictions").fetchone()[0])
    finally:
        conn.close()


def test_full_disk_answers_writes_503_keeps_predicting_and_recovers(
    artifacts: Path, tmp_path: Path, record_property: pytest.RecordProperty
) -> None:
    """SQLite on a full tmpfs: events answer 503 saying the disk is full, predictions 200,
    and after space returns writes succeed again, every acknowledged one stored and the
    predictions logged meanwhile written."""
    with _small_disk(tmp_path / "disk", "4m") as disk:
        db = disk / "store.db"
        server = launch(tmp_path, artifacts, store_dsn=f"sqlite:///{db}", log_level="WARNING")
        try:
            with httpx.Client(base_url=server.url, timeout=30) as client:
                acknowledged = set()
                for i in range(20):
                    response = client.post("/v1/events", json=event_body(f"e-before-{i}"))
                    assert response.status_code == 201, response.text
                    acknowledged.add(f"e-before-{i}")
                filler = _fill(disk)
                refused = []
                for i in range(200):  # enough rows to need new pages
                    response = client.post("/v1/events", json=event_body(f"e-full-{i}"))
                    if response.status_code == 201:
                        acknowledged.add(f"e-full-{i}")
                    else:
                        refused.append(response)
                assert refused, "a full disk should refuse some writes"
                assert {r.status_code for r in refused} == {503}
                body = refused[0].json()
                assert body["kind"] == "store_unavailable"
                assert "full" in body["error"], body
                assert refused[0].headers["retry-after"] == "1"
                predicted = [client.post("/v1/predict", json=SCAN).status_code for _ in range(50)]
                assert set(predicted) == {200}
                filler.unlink()
                after = client.post("/v1/events", json=event_body("e-after"))
                assert after.status_code == 201, after.text
                acknowledged.add("e-after")
                # The 50 predictions logged while the disk was full were kept and retried.
                wait_until("the buffered prediction log written", lambda: _rows(db) == 50, 30)
                record_property("refused_while_full", len(refused))
                print(f"full disk: {len(refused)} of 200 writes refused with 503, then recovered")
            assert server.proc.poll() is None
        finally:
            server.stop()
        assert acknowledged <= stored_event_ids(db)
