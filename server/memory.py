"""Fewer glibc malloc arenas, so a worker's resident memory stays flat.

glibc gives every thread that allocates an arena of its own, up to 8 per core (16 on a
2-core machine), and an arena keeps what was freed in it for that arena's later use
rather than returning it to the system. A worker runs many threads: its store pool (4),
asyncio's default executor (the drift calibration and the importance measurement of the
worker holding the monitoring lease) and any onnxruntime starts. Each arena then grows to the
largest amount its threads ever held at once, and together they showed up as a worker's
resident memory climbing for minutes. `tracemalloc` found no Python objects behind the
growth: only the bounded prediction cache grew.

Measured with `python -m bench.soak --rate 300 --duration 240` (2 workers, the default
mix, monitoring on, 2026-12-02, two runs each): the lease holder's RSS grew 15.8% and
15.1% after the warm-up with glibc's default arenas, 6.0% and 10.6% with at most 2 (the
other worker: under 3% either way; monitoring off: 2.6% and 3.8%). Over 15 minutes with
the cap it climbed for the first two and then stayed flat: 1.2% after the first fifth.

`limit_malloc_arenas` runs in the launcher before Granian starts a thread or forks a
worker, so every worker inherits the limit; it also sets `MALLOC_ARENA_MAX` for any
process started from it. An explicit `MALLOC_ARENA_MAX` in the environment wins (glibc
applied it when the process started). Off glibc (musl, macOS) it does nothing.
"""

from __future__ import annotations

import ctypes
import os
from typing import Final

__all__ = ["ENV", "limit_malloc_arenas"]

ENV: Final = "MALLOC_ARENA_MAX"
_M_ARENA_MAX: Final = -8  # glibc's malloc.h


def limit_malloc_arenas(arenas: int) -> bool:
    """Cap this process's (and its children's) malloc arenas at `arenas`; 0 leaves
    glibc's default. True when the cap was applied here."""
    if arenas <= 0 or ENV in os.environ:
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):  # not glibc
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    if mallopt(_M_ARENA_MAX, arenas) != 1:
        return False
    os.environ[ENV] = str(arenas)
    return True
