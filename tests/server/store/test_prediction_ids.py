"""Prediction ids: recognisable without a lookup, unique, and ordered by issue time."""

from __future__ import annotations

import time

import pytest

from server.errors import NotReadyError
from server.store.prediction_ids import PredictionIds

SECRET = b"s" * 32


def test_an_id_is_40_hex_characters_and_recognised_only_with_its_secret() -> None:
    ids = PredictionIds(SECRET)
    issued = ids.new()
    assert len(issued) == 40
    assert issued == issued.lower()
    assert int(issued, 16) >= 0
    assert ids.issued(issued)
    assert not PredictionIds(b"t" * 32).issued(issued)
    forged = issued[:-1] + ("0" if issued[-1] != "0" else "1")
    assert not ids.issued(forged)
    assert not ids.issued(issued.upper())
    assert not ids.issued(issued + "0")


def test_ids_sort_in_the_order_they_were_issued() -> None:
    """The nonce leads with the issue time in milliseconds, so a later id sorts later (what
    keeps the prediction log's primary-key inserts at the end of its B-tree)."""
    ids = PredictionIds(SECRET)
    earlier = [ids.new() for _ in range(100)]
    time.sleep(0.002)
    later = [ids.new() for _ in range(100)]
    assert max(earlier) < min(later)
    millis = int(later[0][:11], 16)
    assert abs(millis - time.time_ns() // 1_000_000) < 5_000


def test_ids_of_the_same_millisecond_are_distinct() -> None:
    ids = PredictionIds(SECRET)
    many = [ids.new() for _ in range(100_000)]
    assert len(set(many)) == len(many)
    assert len({i[11:24] for i in many}) == len(many)  # the random part alone


def test_no_id_before_the_secret_is_known() -> None:
    with pytest.raises(NotReadyError, match="not open yet"):
        PredictionIds().new()
