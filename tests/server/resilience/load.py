"""A bounded closed-loop load that records every request's fate, for the fault tests.

`Load(url, clients=4)` runs one thread per client, each with its own keep-alive
connection, alternating `POST /v1/predict` and `POST /v1/events` (a fresh `event_id` each
time) with a short pause between requests, so the rate stays bounded on a shared machine.
Every request becomes an `Outcome`: when it started and ended (monotonic seconds), the
status or the transport error. Like the scanopt client, it resends an event once when its
connection dropped under it (events are idempotent by id), and counts those in `resent`.
A fault test then counts what failed, how many requests were in flight when the fault
hit, and which event writes the server acknowledged, to compare with the rows in the store.
"""

from __future__ import annotations

import sqlite3
import threading
import time
import uuid
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import msgspec

from server.client_wire import may_resend
from tests.server.conftest import SCAN

__all__ = ["Load", "Outcome", "event_body", "stored_event_ids"]


class Outcome(msgspec.Struct, frozen=True):
    """One request: what it was, when it ran, and how it ended."""

    kind: str  # "predict" or "event"
    started: float
    ended: float
    status: int | None  # None: no HTTP answer (connection refused, reset, timeout)
    error: str = ""
    event_id: str = ""

    @property
    def ok(self) -> bool:
        return self.status is not None and 200 <= self.status < 300


def event_body(event_id: str) -> dict[str, Any]:
    """A valid scan_completed event a minute old (the server refuses future times)."""
    return {
        "type": "scan_completed",
        "event_id": event_id,
        "user_id": "u-load",
        "session_id": "s-load",
        "timestamp": (datetime.now(UTC) - timedelta(minutes=1)).isoformat(),
        "arm": "treatment",
        "result_count": 12,
        "duration_s": 3.5,
    }


class Load:
    """`clients` threads hammering `url` until `stop()`; outcomes in `outcomes`."""

    def __init__(
        self,
        url: str,
        *,
        clients: int = 4,
        pause_s: float = 0.002,
        timeout_s: float = 10.0,
        kinds: Iterable[str] = ("predict", "event"),
    ) -> None:
        self.url = url
        self.pause_s = pause_s
        self.timeout_s = timeout_s
        self.kinds = tuple(kinds)
        self.outcomes: list[Outcome] = []
        self.resent = 0  # requests sent a second time under the client's retry policy
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads = [
            threading.Thread(target=self._run, args=(k,), daemon=True) for k in range(clients)
        ]

    def __enter__(self) -> Load:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stop()

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=self.timeout_s + 5)

    def _run(self, k: int) -> None:
        with httpx.Client(base_url=self.url, timeout=self.timeout_s) as client:
            i = 0
            while not self._stop.is_set():
                kind = self.kinds[(i + k) % len(self.kinds)]
                i += 1
                event_id = f"e-{uuid.uuid4().hex}" if kind == "event" else ""
                started = time.monotonic()
                status: int | None = None
                error = ""
                for attempt in range(2):
                    try:
                        if kind == "event":
                            response = client.post("/v1/events", json=event_body(event_id))
                        else:
                            response = client.post("/v1/predict", json=SCAN)
                        status = response.status_code
                        error = "" if response.is_success else response.text[:200]
                        break
                    except httpx.TransportError as exc:
                        status, error = None, repr(exc)
                        # Resend once exactly when the scanopt client would: a connection
                        # that closed under a request (a worker going away between two
                        # keep-alive requests) may be retried for an idempotent event.
                        if attempt or not may_resend(exc, idempotent=kind == "event"):
                            break
                        with self._lock:
                            self.resent += 1
                    except httpx.HTTPError as exc:
                        status, error = None, repr(exc)
                        break
                outcome = Outcome(kind, started, time.monotonic(), status, error, event_id)
                with self._lock:
                    self.outcomes.append(outcome)
                time.sleep(self.pause_s)

    def snapshot(self) -> list[Outcome]:
        with self._lock:
            return list(self.outcomes)

    def wait_for(self, n: int, timeout_s: float = 30.0) -> None:
        """Until at least `n` more requests have completed than now."""
        target = len(self.snapshot()) + n
        deadline = time.monotonic() + timeout_s
        while len(self.snapshot()) < target:
            if time.monotonic() > deadline:
                raise TimeoutError(f"fewer than {n} requests completed in {timeout_s} s")
            time.sleep(0.01)

    def failed(self) -> list[Outcome]:
        return [o for o in self.snapshot() if not o.ok]

    def in_flight_at(self, moment: float) -> int:
        """Requests started before `moment` that had not ended by it."""
        return self.in_flight_during(moment, moment)

    def in_flight_during(self, start: float, end: float) -> int:
        """Requests that were open at some point between `start` and `end`."""
        return sum(1 for o in self.snapshot() if o.started <= end and o.ended >= start)

    def acknowledged_events(self) -> set[str]:
        """Event ids the server answered 201 or 200: committed, by its contract."""
        return {o.event_id for o in self.snapshot() if o.kind == "event" and o.ok}


def stored_event_ids(db: Path) -> set[str]:
    """Every event_id in the SQLite store, read through a separate read-only connection."""
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        return {row[0] for row in conn.execute("SELECT event_id FROM events")}
    finally:
        conn.close()
