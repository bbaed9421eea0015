"""The cached pid: right in this process and in a forked child."""

from __future__ import annotations

import os

from server import process


def test_pid_is_this_process_and_follows_a_fork() -> None:
    """pid() is os.getpid() here, and the child's own pid right after a fork."""
    assert process.pid() == os.getpid()
    read, write = os.pipe()
    child = os.fork()
    if child == 0:  # the child reports whether its pid() is its own, then leaves at once
        os.write(write, b"1" if process.pid() == os.getpid() != 0 else b"0")
        os._exit(0)
    os.close(write)
    answer = os.read(read, 1)
    os.close(read)
    os.waitpid(child, 0)
    assert answer == b"1"
    assert process.pid() == os.getpid() != child
