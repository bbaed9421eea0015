"""server.memory: the malloc arena cap reaches the threads of the process that set it."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from server.memory import ENV, limit_malloc_arenas

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


def _probe(arenas: int) -> tuple[str, int, str]:
    env = {k: v for k, v in os.environ.items() if k != ENV}
    env["PYTHONPATH"] = str(REPO)
    out = subprocess.run(
        [sys.executable, "-c", _PROBE, str(arenas)],
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
