"""Open-loop load at a constant rate, latency measured from each request's intended send time.

    python -m bench.openloop http://127.0.0.1:8002/v1/predict --bodies var/bench/bodies.jsonl \
        --rate 1000 --duration 30 --out var/bench/open.json

A closed-loop tool (wrk) sends the next request only when an answer came back, so a server
stall also stalls the client and the requests that should have been sent meanwhile are never
measured ("coordinated omission"). Here the schedule is fixed before the run: request i is
due at t0 + i / rate whatever happened before, and its latency runs from that instant. A
request that waited in the client because every connection was busy, or because the event
loop was late, is charged for the wait.

The event loop can only sleep in whole milliseconds (epoll), so the dispatcher sends what is
due within the next `lookahead_s`; a request sent early is timed from when it really left.
So latency_i = done_i - min(intended_i, sent_i).

The client's own cost is reported with every run: how late requests left (send lag) and
the CPU time the client process used, since it shares the machine with the server.

Any refused connection, transport error, timeout or non-2xx answer fails the run with
`LoadRunError`; a failed run reports no latency figure at all. `record_open_loop` is the
same run without that verdict: every request's times, status and (optionally) answer
body, for a caller that counts errors itself or reads the answers (bench.swap).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from urllib.parse import urlsplit

import msgspec

from bench.latency import LatencySummary, summarize

__all__ = [
    "LoadRunError",
    "OpenLoopConfig",
    "OpenLoopRecord",
    "OpenLoopResult",
    "build_requests",
    "main",
    "record_open_loop",
    "run_open_loop",
    "summarize_run",
]

_MAX_ERROR_SAMPLES = 5


class LoadRunError(RuntimeError):
    """A load run could not reach the server or saw an error; it has no figures to report."""


class OpenLoopConfig(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """One open-loop run: where, what, how fast and for how long."""

    url: str
    rate: float
    duration_s: float
    connections: int = 32
    # How long after the last send the run waits for outstanding answers before failing.
    drain_timeout_s: float = 10.0
    lookahead_s: float = 0.001


class OpenLoopResult(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Figures of an open-loop run that completed without a single error."""

    url: str
    target_rate: float
    duration_s: float
    connections: int
    requests: int
    achieved_rate: float
    latency: LatencySummary
    # Client overhead: how late requests left their schedule, and client CPU per wall second.
    send_lag: LatencySummary
    client_cpu_share: float


def build_requests(url: str, bodies: Sequence[bytes]) -> list[bytes]:
    """Raw HTTP/1.1 keep-alive requests: POST each body to `url` (GET when no bodies)."""
    parts = urlsplit(url)
    if parts.scheme != "http" or not parts.hostname:
        raise ValueError(f"url {url!r}: expected http://host:port/path")
    host = f"{parts.hostname}:{parts.port or 80}"
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    if not bodies:
        return [f"GET {path} HTTP/1.1\r\nHost: {host}\r\n\r\n".encode()]
    return [
        (
            f"POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n\r\n"
        ).encode()
        + body
        for body in bodies
    ]


async def _read_response(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    """Read one whole HTTP/1.1 response (length-delimited or chunked): status and body."""
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    status = int(lines[0].split(b" ", 2)[1])
    length = 0
    chunked = False
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        key = name.strip().lower()
        if key == b"content-length":
            length = int(value)
        elif key == b"transfer-encoding" and b"chunked" in value.lower():
            chunked = True
    if chunked:
        chunks = []
        while True:
            size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
            chunks.append((await reader.readexactly(size + 2))[:size])
            if size == 0:
                break
        return status, b"".join(chunks)
    if length:
        return status, await reader.readexactly(length)
    return status, b""


class OpenLoopRecord:
    """Every request of one run, indexed by request number (perf_counter seconds).

    `status` is 0 for a request never answered and -1 for a transport error; `bodies`
    holds each answer's body when the run kept them, else stays empty.
    """

    def __init__(self, n: int, rate: float, keep_bodies: bool) -> None:
        self.rate = rate
        self.start = 0.0
        self.sent = [0.0] * n
        self.done = [0.0] * n
        self.status = [0] * n
        self.bodies: list[bytes] = [b""] * n if keep_bodies else []
        self.errors: list[str] = []
        self.wall_s = 0.0
        self.cpu_s = 0.0

    def fail(self, i: int, what: str) -> None:
        self.status[i] = -1
        self.errors.append(f"request {i}: {what}")

    def intended(self, i: int) -> float:
        """When request i was due: start + i / rate, whatever happened before."""
        return self.start + i / self.rate

    def latency(self, i: int) -> float:
        """done - min(intended, sent): a request held back by the client is charged for it."""
        return self.done[i] - min(self.intended(i), self.sent[i])


async def _worker(
    url: str,
    conn: tuple[asyncio.StreamReader, asyncio.StreamWriter],
    queue: asyncio.Queue[int | None],
    requests: Sequence[bytes],
    rec: OpenLoopRecord,
) -> None:
    reader, writer = conn
    parts = urlsplit(url)
    clock = time.perf_counter
    while (i := await queue.get()) is not None:
        rec.sent[i] = clock()
        try:
            writer.write(requests[i % len(requests)])
            status, body = await _read_response(reader)
        except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError) as exc:
            rec.fail(i, f"{type(exc).__name__}: {exc}")
            writer.close()
            try:
                reader, writer = await asyncio.open_connection(parts.hostname, parts.port)
            except OSError as again:
                rec.errors.append(f"reconnect to {url} failed: {again}")
                return
            continue
        rec.done[i] = clock()
        rec.status[i] = status
        if rec.bodies:
            rec.bodies[i] = body
    writer.close()


async def _dispatch(
    queue: asyncio.Queue[int | None], total: int, start: float, cfg: OpenLoopConfig
) -> None:
    clock = time.perf_counter
    i = 0
    while i < total:
        # Everything due by now (+ lookahead) goes out, however late the loop woke up.
        due = min(total, int((clock() + cfg.lookahead_s - start) * cfg.rate) + 1)
        while i < due:
            queue.put_nowait(i)
            i += 1
        wait = start + i / cfg.rate - cfg.lookahead_s - clock()
        if wait > 0:
            await asyncio.sleep(wait)
        else:
            await asyncio.sleep(0)  # let the workers send what was just queued


async def record_open_loop(
    cfg: OpenLoopConfig,
    bodies: Sequence[bytes],
    *,
    keep_bodies: bool = False,
    requests: Sequence[bytes] | None = None,
) -> OpenLoopRecord:
    """Send `rate` requests/s for `duration_s` and record every request, errors included;
    raise `LoadRunError` only when the server cannot be reached at all.

    Request i is `requests[i % len(requests)]` when raw HTTP/1.1 requests are given (a mix
    of endpoints, bodies made on demand), else POST `bodies` in turn to `cfg.url`."""
    if cfg.rate <= 0 or cfg.duration_s <= 0 or cfg.connections < 1:
        raise ValueError(
            f"rate={cfg.rate}, duration_s={cfg.duration_s}, connections={cfg.connections}: "
            "expected all positive"
        )
    requests = build_requests(cfg.url, bodies) if requests is None else requests
    parts = urlsplit(cfg.url)
    try:
        conns = [
            await asyncio.open_connection(parts.hostname, parts.port)
            for _ in range(cfg.connections)
        ]
    except OSError as exc:
        raise LoadRunError(f"cannot reach {cfg.url}: {exc}") from None

    total = max(1, round(cfg.rate * cfg.duration_s))
    rec = OpenLoopRecord(total, cfg.rate, keep_bodies)
    queue: asyncio.Queue[int | None] = asyncio.Queue()
    workers = [asyncio.create_task(_worker(cfg.url, conn, queue, requests, rec)) for conn in conns]
    cpu0 = time.process_time()
    start = rec.start = time.perf_counter() + 0.01
    await _dispatch(queue, total, start, cfg)
    for _ in workers:
        queue.put_nowait(None)
    _, pending = await asyncio.wait(workers, timeout=cfg.drain_timeout_s)
    for task in pending:
        task.cancel()
    rec.wall_s = time.perf_counter() - start
    rec.cpu_s = time.process_time() - cpu0
    return rec


async def run_open_loop(
    cfg: OpenLoopConfig, bodies: Sequence[bytes], *, requests: Sequence[bytes] | None = None
) -> OpenLoopResult:
    """Send `rate` requests/s for `duration_s` and return the figures; raise on any error.
    `requests`, when given, are raw HTTP/1.1 requests sent in turn instead of `bodies`."""
    return summarize_run(cfg, await record_open_loop(cfg, bodies, requests=requests))


def summarize_run(cfg: OpenLoopConfig, rec: OpenLoopRecord) -> OpenLoopResult:
    """The figures of a recorded run; raise LoadRunError on any error in it."""
    total = len(rec.status)
    start = rec.start
    unanswered = sum(1 for s in rec.status if s == 0)
    bad = [s for s in rec.status if s >= 300]
    failed = sum(1 for s in rec.status if s < 0)
    if unanswered or bad or failed or rec.errors:
        kinds = []
        if failed:
            kinds.append(f"{failed} transport errors")
        if bad:
            kinds.append(f"{len(bad)} non-2xx answers (first status {bad[0]})")
        if unanswered:
            kinds.append(f"{unanswered} requests never answered")
        samples = "; ".join(rec.errors[:_MAX_ERROR_SAMPLES])
        raise LoadRunError(
            f"open-loop run against {cfg.url} failed: {', '.join(kinds) or 'errors'} "
            f"out of {total} requests" + (f" ({samples})" if samples else "")
        )

    latencies = [rec.latency(i) for i in range(total)]
    lags = [max(0.0, rec.sent[i] - rec.intended(i)) for i in range(total)]
    last_done = max(rec.done)
    return OpenLoopResult(
        url=cfg.url,
        target_rate=cfg.rate,
        duration_s=cfg.duration_s,
        connections=cfg.connections,
        requests=total,
        achieved_rate=total / (last_done - start),
        latency=summarize(latencies),
        send_lag=summarize(lags),
        client_cpu_share=rec.cpu_s / rec.wall_s,
    )


def read_bodies(path: Path) -> list[bytes]:
    """Request bodies from a JSON-lines file, one body per non-empty line."""
    return [line for line in path.read_bytes().splitlines() if line.strip()]


def main(argv: Sequence[str] | None = None) -> int:
    """CLI: run, print the result as JSON (and write it to --out); exit 1 on a failed run."""
    parser = argparse.ArgumentParser(prog="python -m bench.openloop", description=__doc__)
    parser.add_argument("url")
    parser.add_argument("--bodies", type=Path, help="JSON lines, one request body each")
    parser.add_argument("--rate", type=float, default=1000.0, help="requests per second")
    parser.add_argument("--duration", type=float, default=30.0, help="seconds")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--out", type=Path, help="write the result JSON here")
    args = parser.parse_args(argv)
    bodies = read_bodies(args.bodies) if args.bodies else []
    cfg = OpenLoopConfig(
        url=args.url, rate=args.rate, duration_s=args.duration, connections=args.connections
    )
    # The client's own collector pauses would otherwise be charged to the server.
    gc.disable()
    try:
        result = asyncio.run(run_open_loop(cfg, bodies))
    except LoadRunError as exc:
        print(f"FAILED: {exc}", file=sys.stderr)
        return 1
    data = msgspec.json.encode(result)
    if args.out:
        args.out.write_bytes(data)
    sys.stdout.write(data.decode() + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
