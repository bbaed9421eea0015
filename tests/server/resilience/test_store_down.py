"""PostgreSQL down and back under a real 2-worker Granian server, every call counted.

The store is cut by a TCP proxy between the server and PostgreSQL (the shared database
itself is never stopped): open connections are reset and new ones refused, as when the
database host goes away. Meanwhile 4 clients keep predicting, posting `scan_completed`
events and feedback for their latest prediction. While it is down, every write that must
commit (events, feedback) answers 503 `store_unavailable` naming the store, with
`Retry-After`, and predictions keep answering 200 with ML. Once it is back, writes are
acknowledged again, and after the buffers drain the store holds every acknowledged event
and feedback, a row for every prediction answered (the prediction log is kept in memory
meanwhile, none dropped), drift counts for every one of them, and accuracy rollups over
exactly the outcomes stored. A challenger is shadow-scored throughout (the second built
version, every answered scan the model ran on): each such prediction has its shadow row
(`shadow_of`) afterwards, once. With a buffer too small for the outage, shadow rows are
dropped, and every prediction without its shadow row is one the metrics counted.
"""

from __future__ import annotations

import contextlib
import time
from collections import Counter
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import httpx
import msgspec
import psycopg
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.server.conftest import Versions
from tests.server.resilience.load import KINDS, Load, Outcome
from tests.server.resilience.processes import launch, wait_until
from tests.server.store.backends import pg_dsn
from tests.server.store.tcp_proxy import TcpProxy

__all__ = ["pg_dsn"]

pytestmark = pytest.mark.slow

OUTAGE_S = 4.0
# Outcomes joined to their prediction, as the accuracy rollups count them.
_JOINED = """SELECT count(*) FROM events e JOIN predictions p ON p.prediction_id = e.prediction_id
WHERE e.type = 'scan_completed' AND p.p_empty IS NOT NULL AND p.model_version IS NOT NULL"""


def _one(dsn: str, sql: str) -> int:
    with psycopg.connect(dsn, connect_timeout=5) as conn:
        row = conn.execute(sql).fetchone()
    return int(row[0] or 0) if row is not None else 0


def _ids(dsn: str, sql: str) -> set[str]:
    with psycopg.connect(dsn, connect_timeout=5) as conn:
        return {str(row[0]) for row in conn.execute(sql)}


def _total(url: str, name: str, **labels: str) -> float:
    """The sum of a metric's samples over the label values not given."""
    text = httpx.get(f"{url}/metrics", timeout=10).text
    return sum(
        sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items())
    )


_SHADOWS = "SELECT shadow_of FROM predictions WHERE shadow_of IS NOT NULL"


class _ShadowLog(msgspec.Struct, frozen=True):
    """What became of the shadow rows of the predictions the model ran for."""

    rows: int  # shadow rows in the store
    written: float  # rows the writer saw committed (scanopt_store_log_written_total)
    dropped: float  # rows or scans counted dropped (shadow queue, prediction log)
    shadowed: set[str]  # the predictions that have their shadow row


def _shadow_log_accounted(dsn: str, url: str, ran: set[str], *, cut_batches: int) -> _ShadowLog:
    """Wait until every prediction in `ran` has its shadow row's fate counted (written or
    dropped, once each), then check that none is lost without being counted.

    A row can be stored and yet counted dropped: its batch's COMMIT went through as the
    cut broke the connection, the writer saw a failure and took the batch back, and a
    buffer already full again could not hold it. `cut_batches` bounds such rows (a
    worker writes one batch at a time; 0 when the buffer can take any batch back, for a
    rewrite is then counted written and is a no-op in the store).
    """

    def log() -> _ShadowLog:
        shadowed = _ids(dsn, _SHADOWS)
        written = _total(url, "scanopt_store_log_written_total", kind="shadow")
        dropped = _total(url, "scanopt_shadow_dropped_total") + _total(
            url, "scanopt_store_dropped_total", kind="shadow"
        )
        rows = _one(dsn, "SELECT count(*) FROM predictions WHERE shadow_of IS NOT NULL")
        return _ShadowLog(rows=rows, written=written, dropped=dropped, shadowed=shadowed)

    def settled() -> bool:
        now = log()
        return now.written + now.dropped >= len(ran)

    with contextlib.suppress(TimeoutError):  # the assertions below say what is missing
        wait_until("a counted fate for the shadow row of every prediction", settled)
    now = log()
    assert now.written + now.dropped == len(ran), (
        f"{len(ran)} predictions ran the model: {now.written} shadow rows written, "
        f"{now.dropped} counted dropped"
    )
    assert now.shadowed <= ran, f"shadow rows of unknown predictions: {now.shadowed - ran}"
    assert now.rows == len(now.shadowed), "a prediction with two shadow rows"
    missing = ran - now.shadowed
    assert len(missing) <= now.dropped, f"{len(missing) - now.dropped} lost, uncounted"
    # Stored though counted dropped: only rows of batches cut during their COMMIT.
    assert 0 <= now.rows - now.written <= cut_batches, (now.rows, now.written)
    return now


def _proxied(dsn: str) -> tuple[TcpProxy, str]:
    """A TCP proxy to the database `dsn` names, and the DSN through it."""
    parts = urlsplit(dsn)
    proxy = TcpProxy((parts.hostname or "127.0.0.1", parts.port or 5432))
    return proxy, urlunsplit(parts._replace(netloc=f"{parts.username}@127.0.0.1:{proxy.port}"))


def test_store_down_and_back_refuses_writes_keeps_predicting_and_loses_nothing(
    pg_dsn: str,
    artifacts: Path,
    built_versions: Versions,
    tmp_path: Path,
    record_property: pytest.RecordProperty,
) -> None:
    """Writes 503 with a reason and Retry-After while PostgreSQL is cut off, predictions
    200; afterwards every acknowledged write is stored and nothing buffered is lost, the
    shadow log included."""
    proxy, through_proxy = _proxied(pg_dsn)
    server = launch(
        tmp_path,
        artifacts,
        store_dsn=through_proxy,
        log_level="WARNING",
        prediction_log_flush_s=0.1,
        drift_flush_s=0.5,
        monitor_interval_s=1,
        shadow_version=built_versions.second,
        shadow_share=1,
    )
    try:
        with Load(server.url, clients=4, kinds=KINDS, timeout_s=30) as load:
            load.wait_for(150)
            cut_at = time.monotonic()
            proxy.down()
            down_at = time.monotonic()
            time.sleep(OUTAGE_S)
            proxy.up()
            up_at = time.monotonic()

            def written_again() -> bool:
                return any(
                    o.kind != "predict" and o.ok and o.started > up_at for o in load.snapshot()
                )

            back_s = wait_until("a write acknowledged after the store came back", written_again)
            load.wait_for(150)
        outcomes = load.snapshot()
        during = [o for o in outcomes if o.started >= down_at and o.ended <= up_at]
        writes_during = [o for o in during if o.kind != "predict"]
        refused = [o for o in outcomes if not o.ok]
        by_kind = Counter((o.kind, o.status) for o in outcomes)
        record_property("calls", len(outcomes))
        record_property("refused", len(refused))
        record_property("back_s", round(back_s, 2))
        print(
            f"store down {OUTAGE_S:.0f} s: {len(outcomes)} calls, {len(refused)} refused "
            f"({dict(by_kind)}); {len(writes_during)} writes wholly inside the outage; "
            f"first write acknowledged {back_s:.2f} s after the store came back"
        )

        # While it was down: predictions answered, writes refused with the reason.
        assert all(o.ok for o in outcomes if o.kind == "predict"), [
            o for o in outcomes if o.kind == "predict" and not o.ok
        ]
        assert sum(o.kind == "predict" for o in during) > 0, "no prediction during the outage"
        assert writes_during, "no write was attempted while the store was down"
        assert all(o.status == 503 for o in writes_during), writes_during
        for o in refused:  # the only failures: writes told to come back
            assert o.kind != "predict", o
            assert o.status == 503, o
            assert o.error_kind == "store_unavailable", o
            assert "PostgreSQL store" in o.error, o
            assert "unavailable" in o.error, o
            assert o.retry_after == "1", o

        # After it came back: every acknowledged write stored; a refused one only when the
        # connection broke during its COMMIT (the cut itself), which its answer said.
        assert server.proc.poll() is None
        events = _ids(pg_dsn, "SELECT event_id FROM events")
        acknowledged = load.acknowledged_events()
        assert acknowledged <= events, f"acknowledged but lost: {acknowledged - events}"
        feedback = _ids(pg_dsn, "SELECT prediction_id FROM feedback")
        rated = load.acknowledged_feedback()
        assert rated <= feedback, f"acknowledged but lost: {rated - feedback}"

        # The cut takes time: `down()` closes the listener, then each pooled connection in
        # turn, so a write that began after `cut_at` but before `down_at` can still be cut
        # mid-COMMIT. "In flight at the cut" is overlapping [cut_at, down_at].
        def at_cut(o: Outcome) -> bool:
            return o.started <= down_at and o.ended >= cut_at

        maybe = [o for o in refused if "may have been stored" in o.error]
        assert all(at_cut(o) for o in maybe), maybe
        stored_refused = {o.event_id for o in refused if o.kind == "event"} & events
        stored_refused |= {o.prediction_id for o in refused if o.kind == "feedback"} & feedback
        stored_refused -= acknowledged | rated  # a later call for the same prediction succeeded
        # A refused write is in the store only if its connection broke during its COMMIT,
        # and then its 503 said it may have been stored; every other 503 wrote nothing.
        said_maybe = {o.event_id or o.prediction_id for o in maybe}
        assert stored_refused <= said_maybe, [
            o for o in refused if (o.event_id or o.prediction_id) in stored_refused - said_maybe
        ]
        # Sent again unchanged, as the client does: each is acknowledged, once.
        resent: Counter[int] = Counter()
        with httpx.Client(base_url=server.url, timeout=30) as client:
            for o in refused:
                path = "/v1/events" if o.kind == "event" else "/v1/feedback"
                resent[client.post(path, json=o.body).status_code] += 1
        assert set(resent) <= {200, 201}, resent
        record_property("maybe_stored", len(maybe))
        print(
            f"{len(maybe)} writes cut during their COMMIT said they may have been stored "
            f"({len(stored_refused)} were); the {len(refused)} refused writes sent again: "
            f"{dict(resent)}"
        )
        answered = load.answered_predictions()
        wait_until(
            "every answered prediction in the prediction log",
            lambda: answered <= _ids(pg_dsn, "SELECT prediction_id FROM predictions"),
        )
        for kind in ("prediction", "exposure"):  # served rows: none may be dropped
            assert _total(server.url, "scanopt_store_dropped_total", kind=kind) == 0, kind
        # Drift counts: each answered prediction counted once in every column's bins.
        per_column = "(SELECT feature, sum(n) AS n FROM drift_counts GROUP BY feature) c"
        drift = f"SELECT max(n) FROM {per_column}"
        wait_until(
            "drift counts for every prediction", lambda: _one(pg_dsn, drift) >= len(answered)
        )
        assert _one(pg_dsn, drift) == len(answered)
        assert _one(pg_dsn, f"SELECT count(DISTINCT n) FROM {per_column}") == 1, (
            "every column counts the same rows"
        )
        # Accuracy rollups, recomputed by the lease holder, cover every outcome stored.
        joined = _one(pg_dsn, _JOINED)
        assert joined > 0
        wait_until(
            "accuracy rollups over every stored outcome",
            lambda: _one(pg_dsn, "SELECT sum(n) FROM accuracy_rollups") == joined,
        )
        # The shadow log: every prediction the model ran for (a user in the experiment,
        # either arm) has its challenger's row, buffered through the outage and written
        # after it like the served rows. A shadow row may be dropped only where it is
        # counted: the shadow's queue full (or scoring failed), or the prediction log's
        # buffer half full for shadow rows (the next test makes it so).
        # No timing allowance for the cut: a batch cut mid-COMMIT between `cut_at` and
        # `down_at` is requeued and rewritten, and a rewrite of a row that did commit is
        # a no-op (its id is the key), so each prediction has at most one shadow row.
        ran = load.answered_in_experiment()
        assert ran, "no answered prediction ran the model"
        # The buffer is never full here: a batch cut during its COMMIT is rewritten.
        shadow = _shadow_log_accounted(pg_dsn, server.url, ran, cut_batches=0)
        rows, dropped, shadowed = shadow.rows, shadow.dropped, shadow.shadowed
        versions = _ids(
            pg_dsn, "SELECT DISTINCT model_version FROM predictions WHERE shadow_of IS NOT NULL"
        )
        assert versions == {built_versions.second}
        ran_during = {o.prediction_id for o in during if o.kind == "predict" and o.arm}
        assert ran_during, "no prediction ran the model while the store was down"
        record_property("shadow_rows", rows)
        record_property("shadow_dropped", dropped)
        print(
            f"shadow: {rows} rows for the {len(ran)} predictions the model ran for "
            f"({len(ran_during & shadowed)} of the {len(ran_during)} answered while the store "
            f"was down), {dropped:.0f} counted dropped"
        )
        record_property("events_stored", len(events))
        record_property("feedback_stored", len(feedback))
        record_property("predictions_answered", len(answered))
        print(
            f"stored: {len(events)} events and {len(feedback)} feedback, all acknowledged; "
            f"{len(answered)} predictions logged and drift-counted; {joined} outcomes in the "
            "accuracy rollups"
        )
    finally:
        server.stop()
        proxy.close()


def test_store_down_with_a_small_buffer_counts_every_shadow_row_it_drops(
    pg_dsn: str,
    artifacts: Path,
    built_versions: Versions,
    tmp_path: Path,
    record_property: pytest.RecordProperty,
) -> None:
    """With a prediction-log buffer too small for the outage (200 rows per worker, shadow
    rows only while it is under half full), shadow rows are dropped, and each prediction
    without its shadow row afterwards is one the metrics counted: none lost silently."""
    capacity = 200
    proxy, through_proxy = _proxied(pg_dsn)
    server = launch(
        tmp_path,
        artifacts,
        store_dsn=through_proxy,
        log_level="WARNING",
        prediction_log_flush_s=0.1,
        prediction_log_capacity=capacity,
        shadow_version=built_versions.second,
        shadow_share=1,
    )
    try:
        with Load(server.url, clients=4, kinds=("predict",), timeout_s=30) as load:
            load.wait_for(100)
            proxy.down()
            time.sleep(OUTAGE_S)
            proxy.up()
            load.wait_for(100)
        assert all(o.ok for o in load.snapshot())
        ran = load.answered_in_experiment()
        assert ran, "no answered prediction ran the model"
        # At most one batch per worker in flight at the cut, of at most `capacity` rows.
        shadow = _shadow_log_accounted(pg_dsn, server.url, ran, cut_batches=2 * capacity)
        rows, dropped = shadow.rows, shadow.dropped
        record_property("shadow_rows", rows)
        record_property("shadow_dropped", dropped)
        reasons = {
            reason: _total(server.url, "scanopt_store_dropped_total", kind="shadow", reason=reason)
            for reason in ("buffer_full", "store_unavailable")
        }
        print(
            f"small buffer, store down {OUTAGE_S:.0f} s: {len(ran)} predictions the model ran "
            f"for, {rows} shadow rows ({shadow.written:.0f} seen written), {dropped:.0f} "
            "counted dropped "
            f"(prediction log: {reasons}; shadow queue: "
            f"{_total(server.url, 'scanopt_shadow_dropped_total'):.0f})"
        )
        assert dropped > 0, "the outage should have overflowed a 200-row buffer"
    finally:
        server.stop()
        proxy.close()
