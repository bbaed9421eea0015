"""Fewer glibc malloc arenas and a fixed mmap threshold, so a worker's resident memory
stays flat.

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

The mmap threshold: glibc serves a block of at least `M_MMAP_THRESHOLD` bytes (128 KiB at
first) with its own mmap, returned to the system when freed, but each time such a block is
freed it raises the threshold to that block's size (up to 32 MiB), so the next large
arrays come from the heap instead and stay there, fragmented, once freed. The worker
holding the monitoring lease builds arrays of megabytes in its jobs every 30 s; its RSS
rose a step at each job. `fix_mmap_threshold` sets the threshold once, which also stops
glibc moving it. Measured with `python -m bench.soak --duration 150` (2 workers, the
default mix, one run each, 2026-12-03): glibc's own free lists in the lease holder grew
5.9 -> 10.0 MiB and its RSS 119.1 -> 123.9 MiB from the 50th second to the 150th with the
sliding threshold; 4.9 -> 4.0 MiB and 118.2 -> 118.4 MiB with it fixed at 128 KiB.
"""

from __future__ import annotations

import ctypes
import os
from typing import Final

__all__ = ["ENV", "MMAP_ENV", "fix_mmap_threshold", "limit_malloc_arenas"]

ENV: Final = "MALLOC_ARENA_MAX"
MMAP_ENV: Final = "MALLOC_MMAP_THRESHOLD_"  # glibc's name, trailing underscore included
_M_ARENA_MAX: Final = -8  # glibc's malloc.h
_M_MMAP_THRESHOLD: Final = -3


def limit_malloc_arenas(arenas: int) -> bool:
    """Cap this process's (and its children's) malloc arenas at `arenas`; 0 leaves
    glibc's default. True when the cap was applied here."""
    return _mallopt(_M_ARENA_MAX, arenas, ENV)


def fix_mmap_threshold(size: int) -> bool:
    """Serve blocks of `size` bytes and more with mmap in this process (and its children),
    at a threshold glibc no longer moves; 0 leaves glibc's sliding default. True when it
    was applied here."""
    return _mallopt(_M_MMAP_THRESHOLD, size, MMAP_ENV)


def _mallopt(option: int, value: int, env: str) -> bool:
    """Set glibc's malloc `option` to `value` and export it as `env` for children; not
    when `value` is 0 or `env` is set already (glibc applied that at start)."""
    if value <= 0 or env in os.environ:
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):  # not glibc
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    if mallopt(option, value) != 1:
        return False
    os.environ[env] = str(value)
    return True
