"""server.memory: the malloc arena cap reaches the threads of the process that set it, and
the mmap threshold stays where it was set."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from server.memory import ENV, MMAP_ENV, fix_mmap_threshold, limit_malloc_arenas

REPO = Path(__file__).resolve().parents[2]

# Eight threads allocate malloc-sized blocks (over pymalloc's 512 bytes) at the same
# time; glibc's malloc_info then lists one <heap> per arena in use.
_PROBE = textwrap.dedent(
    """
    import ctypes, os, sys, tempfile, threading
    from server.memory import limit_malloc_arenas
    applied = limit_malloc_arenas(int(sys.argv[1]))
    start = threading.Barrier(8)
    def work():
        start.wait()
        keep = [bytearray(2048) for _ in range(2000)]
        start.wait()
    threads = [threading.Thread(target=work) for _ in range(8)]
    for t in threads: t.start()
    for t in threads: t.join()
    libc = ctypes.CDLL(None)
    libc.fopen.restype = ctypes.c_void_p
    libc.fopen.argtypes = [ctypes.c_char_p, ctypes.c_char_p]
    libc.malloc_info.argtypes = [ctypes.c_int, ctypes.c_void_p]
    libc.fclose.argtypes = [ctypes.c_void_p]
    path = tempfile.mktemp()
    f = libc.fopen(path.encode(), b"w")
    libc.malloc_info(0, f)
    libc.fclose(f)
    heaps = open(path).read().count("<heap nr=")
    os.unlink(path)
    print(applied, heaps, os.environ.get("MALLOC_ARENA_MAX"))
    """
)


def _probe(arenas: int, script: str = _PROBE, variable: str = ENV) -> tuple[str, int, str]:
    """Run a probe script in a fresh interpreter without `variable`; its three words."""
    env = {k: v for k, v in os.environ.items() if k != variable}
    env["PYTHONPATH"] = str(REPO)
    out = subprocess.run(
        [sys.executable, "-c", script, str(arenas)],
        env=env,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout.split()
    return out[0], int(out[1]), out[2]


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's malloc only")
def test_the_cap_holds_for_threads_started_after_it() -> None:
    """With a cap of 2, eight allocating threads share at most 2 arenas, and children get
    MALLOC_ARENA_MAX=2; with 0 (glibc's default) they get arenas of their own."""
    applied, heaps, env = _probe(2)
    assert (applied, env) == ("True", "2")
    assert heaps <= 2
    applied, heaps, env = _probe(0)
    assert (applied, env) == ("False", "None")
    assert heaps > 2


def test_an_explicit_environment_variable_wins(monkeypatch: pytest.MonkeyPatch) -> None:
    """MALLOC_ARENA_MAX already set: glibc applied it at start, so nothing is changed."""
    monkeypatch.setenv(ENV, "4")
    assert limit_malloc_arenas(2) is False
    assert os.environ[ENV] == "4"


# A 1 MiB block freed, then a 256 KiB one held: glibc's sliding threshold has risen to
# 1 MiB by then and takes the second from the heap; a fixed one mmaps it (hblks counts
# the blocks glibc mmapped for malloc).
_MMAP_PROBE = textwrap.dedent(
    """
    import ctypes, os, sys
    from server.memory import fix_mmap_threshold
    applied = fix_mmap_threshold(int(sys.argv[1]))
    class Info(ctypes.Structure):
        _fields_ = [(n, ctypes.c_size_t) for n in (
            "arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks",
            "uordblks", "fordblks", "keepcost")]
    libc = ctypes.CDLL(None)
    libc.mallinfo2.restype = Info
    big = bytearray(1 << 20)
    del big
    before = libc.mallinfo2().hblks
    held = bytearray(256 << 10)
    print(applied, libc.mallinfo2().hblks - before, os.environ.get("MALLOC_MMAP_THRESHOLD_"))
    """
)


def _mmap_probe(size: int) -> tuple[str, int, str]:
    return _probe(size, _MMAP_PROBE, MMAP_ENV)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's malloc only")
def test_a_fixed_mmap_threshold_stays_where_it_was_set() -> None:
    """Fixed at 128 KiB, a 256 KiB block is mmapped even after a 1 MiB one was freed, and
    children get MALLOC_MMAP_THRESHOLD_; with 0 glibc's threshold slides past it."""
    assert _mmap_probe(128 * 1024) == ("True", 1, str(128 * 1024))
    assert _mmap_probe(0) == ("False", 0, "None")


def test_an_explicit_mmap_threshold_in_the_environment_wins(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """MALLOC_MMAP_THRESHOLD_ already set: glibc applied it at start; nothing changes."""
    monkeypatch.setenv(MMAP_ENV, "65536")
    assert fix_mmap_threshold(128 * 1024) is False
    assert os.environ[MMAP_ENV] == "65536"
