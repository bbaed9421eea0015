"""`just soak`: a long open-loop run of a realistic mix against a private 2-worker server.

    python -m bench.soak                      # 1,000 req/s for 300 s (the plan's soak)
    python -m bench.soak --rate 200 --duration 30
    python -m bench.soak --mix event=15,feedback=7   # only the writes, in the default's proportion
    python -m bench.soak --env SCANOPT_MONITORING=off  # a server setting changed for the run

The server is `python -m server.serve` with 2 workers, the prediction log on for every
prediction, and an empty SQLite store on disk. The mix, by request: 70% /v1/predict, 5%
/v1/predict/batch (10 scans), 3% /v1/recommend, 15% /v1/events (scan_completed, each with
a new event_id) and 7% /v1/feedback (each on its own prediction_id, fetched before the run),
scans drawn from the load corpus (realistic, more distinct than the cache holds). The
latency of each request runs from when it was due (bench.openloop: no coordinated omission).

While it runs, the resident memory (VmRSS) of each worker is sampled every 5 s. It passes
(exit 0) when: no request failed (any transport error or non-2xx answer fails the run),
p95 <= 5 ms, every worker's RSS at the end is within 10% of its RSS after the warm-up
(the first fifth of the run), and the store holds exactly the events and feedback the
server acknowledged, with no prediction-log row dropped. Figures: var/soak/soak.json.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import shutil
import sqlite3
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Final, overload

import httpx
import msgspec

from bench.corpus import scan_bodies
from bench.latency import LatencySummary, summarize
from bench.openloop import (
    LoadRunError,
    OpenLoopConfig,
    OpenLoopResult,
    record_open_loop,
    summarize_run,
)
from bench.servers import ServerSpec, child_pids, free_port, running_server

__all__ = ["SoakResult", "main"]

REPO = Path(__file__).resolve().parents[1]
P95_LIMIT_MS: Final = 5.0
RSS_GROWTH_LIMIT: Final = 0.10
# Share of requests per endpoint, in tenths of a percent (sums to 1000).
MIX: Final = (("predict", 700), ("batch", 50), ("recommend", 30), ("event", 150), ("feedback", 70))
Mix = tuple[tuple[str, int], ...]


def parse_mix(text: str) -> Mix:
    """`kind=weight,...` (weights are relative, any positive integers) as a mix."""
    known = [kind for kind, _ in MIX]
    mix: list[tuple[str, int]] = []
    for part in filter(None, (p.strip() for p in text.split(","))):
        kind, sep, weight = part.partition("=")
        if kind not in known or not sep or not weight.isdigit() or int(weight) == 0:
            raise ValueError(
                f"{part!r}: expected KIND=WEIGHT with KIND one of {', '.join(known)} "
                "and WEIGHT a positive integer"
            )
        if kind in dict(mix):
            raise ValueError(f"{kind!r} is given twice")
        mix.append((kind, int(weight)))
    if not mix:
        raise ValueError("the mix is empty: expected KIND=WEIGHT,...")
    return tuple(mix)


class SoakResult(msgspec.Struct, frozen=True, kw_only=True):
    """What one soak run measured and whether each criterion held."""

    rate: float
    duration_s: float
    requests: int
    by_kind: dict[str, int]
    load: OpenLoopResult
    latency_by_kind: dict[str, LatencySummary]  # from when each was due, as `load.latency`
    rss_mb: dict[str, list[float]]  # per worker pid: samples every 5 s
    rss_growth: dict[str, float]  # per worker: end / after warm-up - 1
    events_acknowledged: int
    events_stored: int
    feedback_acknowledged: int
    feedback_stored: int
    predictions_stored: int
    prediction_log_dropped: float
    passed: bool
    reasons: list[str]


class MixedRequests(Sequence[bytes]):
    """Request i of the mix as raw HTTP/1.1 bytes, built when asked for (new ids each time)."""

    def __init__(
        self,
        host: str,
        total: int,
        scans: list[bytes],
        prediction_ids: list[str],
        mix: Mix = MIX,
    ) -> None:
        self.host = host
        self.total = total
        self.scans = scans
        self.prediction_ids = prediction_ids
        self.kinds = [kind for kind, share in mix for _ in range(share)]
        # Every kind, so a feedback that runs out of ids can still count as a predict.
        self.counts: dict[str, int] = dict.fromkeys((k for k, _ in MIX), 0)
        self.kind_of: list[str] = [""] * total  # what request i turned out to be
        self._feedback = 0
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return self.total

    @overload
    def __getitem__(self, i: int) -> bytes: ...
    @overload
    def __getitem__(self, i: slice) -> Sequence[bytes]: ...
    def __getitem__(self, i: int | slice) -> bytes | Sequence[bytes]:
        if isinstance(i, slice):
            raise TypeError("MixedRequests is read one request at a time")
        kind = self.kinds[(i * 7919) % len(self.kinds)]  # spread each kind over the run
        scan = self.scans[i % len(self.scans)]
        if kind == "predict":
            path, body = "/v1/predict", scan
        elif kind == "batch":
            scans = [self.scans[(i + k) % len(self.scans)] for k in range(10)]
            path, body = "/v1/predict/batch", b'{"scans":[' + b",".join(scans) + b"]}"
        elif kind == "recommend":
            path, body = "/v1/recommend", b'{"scan":' + scan + b"}"
        elif kind == "event":
            path, body = "/v1/events", _event(f"soak-{uuid.uuid4().hex}")
        else:
            with self._lock:
                n, self._feedback = self._feedback, self._feedback + 1
            if n >= len(self.prediction_ids):
                path, body = "/v1/predict", scan  # ran out of fresh ids: predict instead
                kind = "predict"
            else:
                path, body = "/v1/feedback", _feedback(self.prediction_ids[n])
        with self._lock:
            self.counts[kind] += 1
        self.kind_of[i] = kind
        head = (
            f"POST {path} HTTP/1.1\r\nHost: {self.host}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n\r\n"
        )
        return head.encode() + body


def _event(event_id: str) -> bytes:
    at = (datetime.now(UTC) - timedelta(seconds=30)).isoformat()
    return msgspec.json.encode(
        {
            "type": "scan_completed",
            "event_id": event_id,
            "user_id": "soak-user",
            "session_id": "soak-session",
            "timestamp": at,
            "result_count": 12,
            "duration_s": 3.5,
        }
    )


def _feedback(prediction_id: str) -> bytes:
    return msgspec.json.encode(
        {"prediction_id": prediction_id, "satisfaction": 4, "usefulness": 5, "suggestion": "ok"}
    )


def _prediction_ids(url: str, scans: list[bytes], n: int) -> list[str]:
    ids: list[str] = []
    with httpx.Client(base_url=url, timeout=30) as client:
        while len(ids) < n:
            chunk = scans[len(ids) % len(scans) :][:200] or scans[:200]
            body = b'{"scans":[' + b",".join(chunk) + b"]}"
            answer = client.post(
                "/v1/predict/batch", content=body, headers={"content-type": "application/json"}
            )
            answer.raise_for_status()
            ids += [p["prediction_id"] for p in answer.json()["predictions"]]
    return ids[:n]


def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def _count(db: Path, table: str) -> int:
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        return int(conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0])  # table: ours
    finally:
        conn.close()


def _metric(url: str, name: str) -> float:
    from prometheus_client.parser import text_string_to_metric_families

    text = httpx.get(f"{url}/metrics", timeout=10).text
    return sum(
        s.value for f in text_string_to_metric_families(text) for s in f.samples if s.name == name
    )


# The soak's own: it listens on its port and counts rows in its own SQLite file.
FIXED_SETTINGS: Final = ("SCANOPT_PORT", "SCANOPT_STORE_DSN", "SCANOPT_METRICS_DIR")


def parse_env(items: Sequence[str]) -> dict[str, str]:
    """`SCANOPT_KEY=VALUE` items as server settings for the run."""
    env: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.startswith("SCANOPT_") or key != key.upper():
            raise ValueError(f"{item!r}: expected SCANOPT_NAME=VALUE (a server setting)")
        if key in FIXED_SETTINGS:
            raise ValueError(
                f"{key} is the soak's own (it checks its own SQLite store on its own port); "
                f"expected any setting but {', '.join(FIXED_SETTINGS)}"
            )
        env[key] = value
    return env


def soak(
    rate: float,
    duration_s: float,
    out: Path,
    mix: Mix = MIX,
    settings: dict[str, str] | None = None,
) -> SoakResult:
    """Run the soak; its figures and verdict (raises LoadRunError if the server fails)."""
    artifacts = REPO / "artifacts"
    home = Path(tempfile.mkdtemp(prefix="scanopt-soak-"))
    db = home / "store.db"
    try:
        port = free_port()
        base = {k: v for k, v in os.environ.items() if not k.startswith("SCANOPT_")}
        base.pop("PROMETHEUS_MULTIPROC_DIR", None)
        spec = ServerSpec(
            name="scanopt-soak",
            argv=[sys.executable, "-m", "server.serve"],
            port=port,
            env={
                "PYTHONPATH": os.pathsep.join(p for p in (str(REPO), base.get("PYTHONPATH")) if p),
                "SCANOPT_PORT": str(port),
                "SCANOPT_WORKERS": "2",
                "SCANOPT_ARTIFACTS": str(artifacts),
                "SCANOPT_STORE_DSN": f"sqlite:///{db}",
                "SCANOPT_METRICS_DIR": str(home / "metrics"),
                "SCANOPT_LOG_LEVEL": "WARNING",
                "SCANOPT_PREDICTION_LOG_SHARE": "1",
                **(settings or {}),
            },
        )
        total = max(1, round(rate * duration_s))
        scans = scan_bodies(20_000)
        with running_server(spec, out, base_env=base) as server:
            feedback_share = dict(mix).get("feedback", 0) / sum(w for _, w in mix)
            ids = _prediction_ids(spec.base_url, scans, int(total * feedback_share * 1.05) + 10)
            before_predictions = _count(db, "predictions") if db.exists() else 0
            mixed = MixedRequests(f"127.0.0.1:{port}", total, scans, ids, mix)
            rss: dict[str, list[float]] = {str(p): [] for p in child_pids(server.pid)}
            stop = threading.Event()

            def sample() -> None:
                while not stop.wait(5.0):
                    for pid in rss:
                        try:
                            rss[pid].append(round(_rss_mb(int(pid)), 1))
                        except OSError:
                            rss[pid].append(0.0)  # the worker died: the verdict will say

            sampler = threading.Thread(target=sample, daemon=True)
            sampler.start()
            try:
                cfg = OpenLoopConfig(
                    url=f"{spec.base_url}/v1/predict", rate=rate, duration_s=duration_s
                )
                # The load generator's own collections (its heap holds every request's
                # record) must never be charged to the server, as bench.openloop says.
                gc.collect()
                gc.disable()
                record = asyncio.run(record_open_loop(cfg, [], requests=mixed))
                load = summarize_run(cfg, record)
            finally:
                gc.enable()
                stop.set()
                sampler.join()
            time.sleep(1.5)  # the prediction log flushes every 0.5 s
            dropped = _metric(spec.base_url, "scanopt_store_dropped_total")
            predictions = _count(db, "predictions") - before_predictions
        events, feedback = _count(db, "events"), _count(db, "feedback")
    finally:
        shutil.rmtree(home, ignore_errors=True)
    warm = max(1, len(next(iter(rss.values()), [])) // 5)
    growth = {
        pid: (samples[-1] / samples[warm - 1] - 1) if len(samples) > warm else 0.0
        for pid, samples in rss.items()
    }
    by_kind: dict[str, list[float]] = {kind: [] for kind, _ in MIX}
    for i, kind in enumerate(mixed.kind_of):
        by_kind[kind].append(record.latency(i))
    reasons = []
    if load.latency.p95_ms > P95_LIMIT_MS:
        reasons.append(f"p95 {load.latency.p95_ms:.2f} ms > {P95_LIMIT_MS} ms")
    for pid, g in growth.items():
        if g > RSS_GROWTH_LIMIT:
            reasons.append(f"worker {pid} RSS grew {100 * g:.1f}% after warm-up")
    if events != mixed.counts["event"]:
        reasons.append(f"{mixed.counts['event']} events acknowledged, {events} stored")
    if feedback != mixed.counts["feedback"]:
        reasons.append(f"{mixed.counts['feedback']} feedback acknowledged, {feedback} stored")
    if dropped:
        reasons.append(f"{dropped:g} prediction-log rows dropped")
    return SoakResult(
        rate=rate,
        duration_s=duration_s,
        requests=load.requests,
        by_kind=mixed.counts,
        load=load,
        latency_by_kind={kind: summarize(v) for kind, v in by_kind.items() if v},
        rss_mb=rss,
        rss_growth={pid: round(g, 4) for pid, g in growth.items()},
        events_acknowledged=mixed.counts["event"],
        events_stored=events,
        feedback_acknowledged=mixed.counts["feedback"],
        feedback_stored=feedback,
        predictions_stored=predictions,
        prediction_log_dropped=dropped,
        passed=not reasons,
        reasons=reasons,
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Run the soak; exit 0 when every criterion held, 1 when one did not."""
    parser = argparse.ArgumentParser(prog="just soak", description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=1000.0, help="requests per second")
    parser.add_argument("--duration", type=float, default=300.0, help="seconds")
    parser.add_argument("--out", type=Path, default=REPO / "var" / "soak")
    parser.add_argument(
        "--mix",
        default=",".join(f"{k}={w}" for k, w in MIX),
        help="KIND=WEIGHT,... of predict, batch, recommend, event, feedback (default: %(default)s)",
    )
    parser.add_argument(
        "--env",
        action="append",
        default=[],
        metavar="SCANOPT_NAME=VALUE",
        help="a server setting for the run (repeatable); the soak's own are the default",
    )
    args = parser.parse_args(argv)
    try:
        mix = parse_mix(args.mix)
    except ValueError as exc:
        parser.error(f"--mix: {exc}")
    try:
        settings = parse_env(args.env)
    except ValueError as exc:
        parser.error(f"--env: {exc}")
    if not (REPO / "artifacts" / "current").is_file():
        print("artifacts/current does not exist: make a model first (`just model`)")
        return 2
    args.out.mkdir(parents=True, exist_ok=True)
    try:
        result = soak(args.rate, args.duration, args.out, mix, settings)
    except LoadRunError as exc:
        print(f"soak FAILED: {exc}")
        return 1
    (args.out / "soak.json").write_bytes(msgspec.json.format(msgspec.json.encode(result)))
    lat = result.load.latency
    print(
        f"soak {result.rate:g} req/s x {result.duration_s:g} s: {result.requests} requests "
        f"{result.by_kind}, 0 errors, p50/p95/p99 {lat.p50_ms:.2f}/{lat.p95_ms:.2f}/"
        f"{lat.p99_ms:.2f} ms, achieved {result.load.achieved_rate:.0f} req/s"
    )
    for kind, k in result.latency_by_kind.items():
        print(f"  {kind}: p50/p95/p99 {k.p50_ms:.2f}/{k.p95_ms:.2f}/{k.p99_ms:.2f} ms")
    send_lag = result.load.send_lag
    print(
        f"client: sends late by p95 {send_lag.p95_ms:.2f} ms, client CPU "
        f"{100 * result.load.client_cpu_share:.0f}% of one core (the load shares the cores)"
    )
    print(
        f"RSS MiB per worker (every 5 s): {result.rss_mb}; growth after warm-up {result.rss_growth}"
    )
    print(
        f"store: events {result.events_stored}/{result.events_acknowledged} acknowledged, "
        f"feedback {result.feedback_stored}/{result.feedback_acknowledged}, "
        f"{result.predictions_stored} predictions logged, {result.prediction_log_dropped:g} dropped"
    )
    print("PASS" if result.passed else "FAIL: " + "; ".join(result.reasons))
    return 0 if result.passed else 1


if __name__ == "__main__":
    sys.exit(main())
