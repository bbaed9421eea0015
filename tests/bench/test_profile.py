"""bench.profile: shares of samples per frame from py-spy's collapsed stacks."""

from __future__ import annotations

from bench.profile import top_frames

STACKS = "\n".join(
    [
        "thread (1): MainThread;main (server/serve.py:9);predict (server/dataplane.py:5) 6",
        "thread (1): MainThread;main (server/serve.py:9);emit (logging/__init__.py:1) 3",
        "thread (2) 1",
    ]
)


def test_self_is_the_innermost_frame_and_native_threads_are_named() -> None:
    """Own samples go to the last Python frame; a stack with none counts as native."""
    own, _ = top_frames(STACKS)
    assert own == [
        ("predict (server/dataplane.py)", 0.6),
        ("emit (logging/__init__.py)", 0.3),
        ("(native)", 0.1),
    ]


def test_total_counts_scanopt_frames_anywhere_once_per_sample() -> None:
    """A scanopt frame's total is every sample it appears in; library frames are left out."""
    _, total = top_frames(STACKS)
    assert dict(total) == {"main (server/serve.py)": 0.9, "predict (server/dataplane.py)": 0.6}


def test_empty_input_has_no_figures() -> None:
    """No samples: no shares rather than a division by zero."""
    assert top_frames("") == ([], [])
