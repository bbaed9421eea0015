"""This process's id without a system call per ask.

`os.getpid()` is a system call (glibc stopped caching the pid in 2.25) and the hot path
asks for it on every request: once for the access line, and in prometheus_client's
multiprocess mode once per metric update (about eleven), to notice a fork. `pid()` reads
a variable instead, which an at-fork hook refreshes in every child, so a Granian worker
sees its own pid from its first instruction after the fork.
"""

from __future__ import annotations

import os

__all__ = ["pid"]

_PID = [os.getpid()]


def _refresh() -> None:
    _PID[0] = os.getpid()


def pid() -> int:
    """os.getpid(), refreshed after every fork."""
    return _PID[0]


os.register_at_fork(after_in_child=_refresh)
