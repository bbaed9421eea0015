"""Closed-loop throughput with wrk: how many requests/s a server answers flat out.

wrk keeps `connections` requests in flight and sends the next one as soon as an answer comes
back, so its requests/s is the server's capacity; its latencies suffer from coordinated
omission and are quoted only beside that figure, never as the latency at a given load (that
is bench.openloop's job).

The Lua script rotates through a file of realistic bodies, pre-formatted in init() as wrk's
manual advises, and prints one JSON line with the totals, percentiles and error counts from
done(). wrk counts as errors connect/read/write failures, timeouts and statuses > 399; a
preflight (bench.servers.preflight) has already checked every body gets a 2xx.
"""

from __future__ import annotations

import json
import math
import shutil
import subprocess
from pathlib import Path
from typing import Final
from urllib.parse import urlsplit

import msgspec

from bench.openloop import LoadRunError

__all__ = ["WRK_MARKER", "WrkResult", "lua_script", "parse_wrk_output", "run_wrk"]

WRK_MARKER: Final = "WRK_JSON "

_DONE: Final = """
function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    '%s{"requests":%d,"duration_us":%d,"connect":%d,"read":%d,"write":%d,"status":%d,'
    .. '"timeout":%d,"p50_us":%d,"p90_us":%d,"p99_us":%d,"max_us":%d,"mean_us":%f}\\n',
    "__MARKER__", summary.requests, summary.duration, e.connect, e.read, e.write, e.status,
    e.timeout, latency:percentile(50), latency:percentile(90), latency:percentile(99),
    latency.max, latency.mean))
end
"""


class WrkResult(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Figures of a wrk run that completed without a single error."""

    url: str
    threads: int
    connections: int
    duration_s: float
    requests: int
    requests_per_s: float
    # Closed-loop latencies (coordinated omission included), milliseconds.
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float


def lua_script(path: str, bodies_file: Path | None) -> str:
    """A wrk script that POSTs the lines of `bodies_file` to `path` in turn (GET when None).

    The bodies are read from the file in init(), not embedded: tens of thousands of string
    constants would overflow a LuaJIT function.
    """
    lines = ["local reqs = {}", "local n = 0", "local i = 0", "function init(args)"]
    if bodies_file is None:
        lines.append(f"  reqs[1] = wrk.format('GET', {_lua_string(path)})")
    else:
        lines += [
            f"  for line in io.lines({_lua_string(str(bodies_file))}) do",
            "    if #line > 0 then",
            f"      reqs[#reqs + 1] = wrk.format('POST', {_lua_string(path)}, "
            "{['Content-Type'] = 'application/json'}, line)",
            "    end",
            "  end",
        ]
    lines += [
        "  n = #reqs",
        "end",
        "function request()",
        "  i = i % n + 1",
        "  return reqs[i]",
        "end",
        _DONE.replace("__MARKER__", WRK_MARKER),
    ]
    return "\n".join(lines)


def _lua_string(text: str) -> str:
    if "]==]" in text:
        raise ValueError(f"{text!r}: expected no ']==]' (the end of a Lua long string)")
    return f"[==[{text}]==]"


def parse_wrk_output(
    stdout: str, *, url: str, threads: int, connections: int, duration_s: float
) -> WrkResult:
    """The figures from wrk's output; `LoadRunError` when it errored or answered nothing."""
    line = next((ln for ln in stdout.splitlines() if ln.startswith(WRK_MARKER)), None)
    if line is None:
        raise LoadRunError(f"wrk against {url} printed no result line: {stdout[-500:]!r}")
    raw = json.loads(line[len(WRK_MARKER) :])
    errors = {k: int(raw[k]) for k in ("connect", "read", "write", "status", "timeout")}
    if any(errors.values()) or raw["requests"] == 0:
        kinds = ", ".join(f"{v} {k}" for k, v in errors.items() if v) or "no answers"
        raise LoadRunError(
            f"wrk against {url} failed: {kinds} errors out of {raw['requests']} requests"
        )
    seconds = raw["duration_us"] / 1e6
    return WrkResult(
        url=url,
        threads=threads,
        connections=connections,
        duration_s=duration_s,
        requests=int(raw["requests"]),
        requests_per_s=raw["requests"] / seconds,
        p50_ms=raw["p50_us"] / 1000,
        p90_ms=raw["p90_us"] / 1000,
        p99_ms=raw["p99_us"] / 1000,
        max_ms=raw["max_us"] / 1000,
    )


def run_wrk(
    url: str,
    bodies_file: Path | None,
    *,
    duration_s: float,
    workdir: Path,
    threads: int = 1,
    connections: int = 16,
    timeout_s: float = 5.0,
) -> WrkResult:
    """Run wrk against `url` for `duration_s` with the bodies in `bodies_file` (JSON lines).

    The figures, or `LoadRunError`.
    """
    exe = shutil.which("wrk")
    if exe is None:
        raise LoadRunError("wrk is not installed: expected it on PATH (apt-get install wrk)")
    # wrk takes whole seconds only ("-d0.5s" is a usage error).
    seconds = max(1, math.ceil(duration_s))
    script = workdir / "wrk_bodies.lua"
    script.write_text(lua_script(urlsplit(url).path or "/", bodies_file))
    cmd = [
        exe,
        f"-t{threads}",
        f"-c{connections}",
        f"-d{seconds}s",
        f"--timeout={timeout_s:g}s",
        "-s",
        str(script),
        url,
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + 60, check=False)
    if proc.returncode != 0:
        raise LoadRunError(
            f"wrk against {url} exited {proc.returncode}: {(proc.stderr or proc.stdout)[-500:]}"
        )
    return parse_wrk_output(
        proc.stdout, url=url, threads=threads, connections=connections, duration_s=seconds
    )
