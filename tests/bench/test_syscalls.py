"""bench.syscalls: reading strace's summary table and dividing it per response."""

from __future__ import annotations

import pytest

from bench.syscalls import per_response, strace_counts

SUMMARY = """\
% time     seconds  usecs/call     calls    errors syscall
------ ----------- ----------- --------- --------- ----------------
 76.32    7.221404         217     33140      4078 futex
 14.07    1.331211         207      6430           epoll_wait
  1.11    0.104899          18      5741           sendto
  0.40    0.037000          11      3310           writev
------ ----------- ----------- --------- --------- ----------------
100.00    9.461354         192     48621      5014 total
"""


def test_counts_come_from_the_calls_column_with_or_without_errors() -> None:
    """Each row's calls, whether or not it has an errors column; the total row is left out."""
    assert strace_counts(SUMMARY) == {
        "futex": 33140,
        "epoll_wait": 6430,
        "sendto": 5741,
        "writev": 3310,
    }


def test_counts_are_divided_by_the_responses_written() -> None:
    """writev is one per response: every count is per response, the total first."""
    counts = per_response(strace_counts(SUMMARY))
    assert list(counts)[:2] == ["total", "futex"]
    assert counts["writev"] == 1.0
    assert counts["futex"] == pytest.approx(33140 / 3310)
    assert counts["total"] == pytest.approx((33140 + 6430 + 5741 + 3310) / 3310)


def test_no_response_is_an_error_not_a_division_by_zero() -> None:
    """Without a writev (the worker answered nothing) the run says so."""
    with pytest.raises(ValueError, match="no writev"):
        per_response({"futex": 10})
