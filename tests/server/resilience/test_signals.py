"""Signals to a real 2-worker Granian server under load, each fault counted.

SIGKILL of one worker: the service keeps answering, Granian respawns the worker and it
gets ready, each client connection the worker held loses at most one call (the one in
flight, or the next one sent on that connection), and every acknowledged write is in the
store. SIGTERM: requests in flight finish, the buffered
prediction log is flushed, the server exits within its grace period. SIGHUP: workers are
replaced one by one and no call fails through the scanner's client (what it resent is
counted).
"""

from __future__ import annotations

import os
import signal
import sqlite3
import time
from collections import Counter
from pathlib import Path

import pytest

from server.serve import WORKER_KILL_TIMEOUT_S
from tests.server.granian_process import ServerProcess
from tests.server.resilience.load import KINDS, Load, stored_event_ids
from tests.server.resilience.processes import is_dead, launch, wait_until, worker_pids

pytestmark = pytest.mark.slow


def _ready_workers(server: ServerProcess) -> float:
    try:
        return server.metric("scanopt_ready")
    except OSError:
        return 0.0


def _count(db: Path, table: str) -> int:
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        (n,) = conn.execute(f"SELECT count(*) FROM {table}").fetchone()  # table: a constant of ours
        return int(n)
    finally:
        conn.close()


def test_sigkill_of_a_worker_costs_each_of_its_connections_at_most_one_call(
    tmp_path: Path, artifacts: Path, record_property: pytest.RecordProperty
) -> None:
    """One worker SIGKILLed under load: respawned and ready, at most one lost call per
    connection it held, no acknowledged write lost."""
    server = launch(tmp_path, artifacts, log_level="WARNING")
    try:
        before = worker_pids(server)
        assert len(before) == 2
        victim = min(before)
        with Load(server.url, clients=4) as load:
            load.wait_for(100)
            moment = time.monotonic()
            os.kill(victim, signal.SIGKILL)
            while not is_dead(victim):  # a tight poll: the in-flight window stays narrow
                time.sleep(0.0005)
            dead_at = time.monotonic()
            respawn_s = wait_until(
                "a new worker in place of the killed one",
                lambda: (
                    len(worker_pids(server) - before) == 1 and victim not in worker_pids(server)
                ),
            )
            wait_until("both workers ready", lambda: _ready_workers(server) == 2)
            load.wait_for(100)  # the service answers after the respawn too
        assert server.proc.poll() is None, "the server itself must survive a worker's death"
        failed = load.failed()
        outcomes = load.snapshot()
        # Open at any time between the signal and the death, on either worker: an upper bound
        # of the victim's in-flight requests (each client has at most one open).
        in_flight = load.in_flight_during(moment, dead_at)
        record_property("requests", len(outcomes))
        record_property("failed", len(failed))
        record_property("in_flight_at_kill", in_flight)
        record_property("respawn_s", round(respawn_s, 2))
        print(  # the figures the issue asks to report; shown with -s or -rP
            f"SIGKILL: {len(outcomes)} requests, {len(failed)} failed, {in_flight} in flight "
            f"while the worker died, new worker in {respawn_s:.2f} s"
        )
        # A client whose keep-alive connection the victim held loses one call on it: the
        # one in flight when the worker died, or, when the victim answered it in its last
        # milliseconds or the client was between calls, the next one sent on that dead
        # connection (reset, never reaching a worker). httpx then opens a new connection,
        # which a live worker accepts. So no client fails twice (one connection each).
        per_client = Counter(o.client for o in failed)
        record_property("clients_that_lost_a_call", len(per_client))
        assert max(per_client.values(), default=0) <= 1, [
            (o.client, o.kind, o.error, round(o.started - moment, 4), round(o.ended - dead_at, 4))
            for o in failed
        ]
        assert all(o.status is None for o in failed), "a dying worker may drop, never err"
        assert all(o.ended >= moment for o in failed), "nothing failed before the kill"
        acknowledged = load.acknowledged_events()
        stored = stored_event_ids(tmp_path / "store.db")
        assert acknowledged <= stored, f"acknowledged but lost: {acknowledged - stored}"
        unanswered = {o.event_id for o in failed if o.kind == "event"}
        assert stored - acknowledged <= unanswered
    finally:
        server.stop()


def test_sigterm_finishes_in_flight_requests_flushes_logs_and_exits_in_time(
    tmp_path: Path, artifacts: Path, record_property: pytest.RecordProperty
) -> None:
    """SIGTERM under load: every request begun before it succeeds (bar those a closing
    keep-alive connection dropped unread: counted, at most one per client), every logged
    prediction is written, and the server exits 0 within the workers' kill timeout."""
    # A long flush interval keeps logged predictions in memory until the shutdown flush.
    server = launch(tmp_path, artifacts, log_level="WARNING", prediction_log_flush_s=30)
    try:
        with Load(server.url, clients=4) as load:
            load.wait_for(200)
            moment = time.monotonic()
            os.kill(server.proc.pid, signal.SIGTERM)
            server.proc.wait(timeout=WORKER_KILL_TIMEOUT_S + 10)
            exit_s = time.monotonic() - moment
        outcomes = load.snapshot()
        begun = [o for o in outcomes if o.started < moment]
        record_property("in_flight_at_sigterm", load.in_flight_at(moment))
        record_property("exit_s", round(exit_s, 2))
        print(
            f"SIGTERM: {load.in_flight_at(moment)} in flight, {len(begun)} begun before it, "
            f"{sum(1 for o in begun if not o.ok)} dropped unanswered, "
            f"exit {server.proc.returncode} after {exit_s:.2f} s"
        )
        # A request sent on a keep-alive connection just as its worker stops can meet the
        # close before the worker has read it: the client sees the connection drop with no
        # answer (the HTTP/1.1 keep-alive race; in a cluster the preStop pause sends new
        # requests elsewhere first). Such a request was never begun by the server, so it is
        # counted, not failed; anything else that failed, or any answer that was an error
        # status, fails the test. At most one per client connection.
        dropped = [o for o in begun if not o.ok and o.status is None and "disconnected" in o.error]
        record_property("dropped_unread_at_sigterm", len(dropped))
        assert [o for o in begun if not o.ok and o not in dropped] == []
        assert len(dropped) <= 4, dropped
        assert server.proc.returncode == 0
        assert exit_s < WORKER_KILL_TIMEOUT_S
        predicted = sum(1 for o in outcomes if o.kind == "predict" and o.ok)
        assert _count(tmp_path / "store.db", "predictions") == predicted
        acknowledged = load.acknowledged_events()
        assert acknowledged <= stored_event_ids(tmp_path / "store.db")
    finally:
        server.stop()


def test_sighup_replaces_workers_one_by_one_with_no_call_failing_through_the_client(
    tmp_path: Path, artifacts: Path, record_property: pytest.RecordProperty
) -> None:
    """SIGHUP under a scanner's load (the documented client, its retry policy as is):
    both workers get new pids, one at a time, and no call fails. Each old worker closes
    its keep-alive connections the instant it stops, so a call sent on one just then gets
    no answer; the client resends it (events and feedback always, a prediction once when
    nothing of the answer had arrived), and every such resend is counted and printed."""
    server = launch(tmp_path, artifacts, log_level="WARNING")
    clients = 4
    try:
        before = worker_pids(server)
        seen_counts: set[int] = set()
        with Load(server.url, clients=clients, kinds=KINDS, policy="client") as load:
            load.wait_for(100)
            hup_at = time.monotonic()
            os.kill(server.proc.pid, signal.SIGHUP)

            def replaced() -> bool:
                now = worker_pids(server)
                seen_counts.add(len(before & now))
                return not (before & now) and len(now) == 2

            took_s = wait_until("both workers replaced", replaced, timeout_s=60)
            wait_until("both workers ready", lambda: _ready_workers(server) == 2)
            load.wait_for(100)
        outcomes = load.snapshot()
        failed = load.failed()
        predicts = sum(o.kind == "predict" for o in outcomes)
        resent = load.resent_by_kind
        record_property("requests", len(outcomes))
        record_property("failed", len(failed))
        record_property("resent", load.resent)
        record_property("resent_predictions", resent["predict"])
        record_property("dropped", load.dropped)
        print(
            f"SIGHUP: {len(outcomes)} calls ({predicts} predictions), {len(failed)} failed "
            f"as the client saw them; {load.dropped} attempts dropped by a closing worker "
            f"({dict(load.dropped_by_kind)}), {load.resent} resent by the client ({resent}); "
            f"both workers replaced in {took_s:.1f} s"
        )
        assert 1 in seen_counts, "one old worker should have served while the other was replaced"
        assert failed == [], [(o.kind, o.error, round(o.ended - hup_at, 3)) for o in failed]
        # Each drop was an idle keep-alive connection closed by a stopping worker (or a
        # connection queued on its closed listener): at most one per client and old worker.
        assert load.resent >= load.dropped
        assert load.dropped <= clients * len(before), dict(load.dropped_by_kind)
    finally:
        server.stop()
