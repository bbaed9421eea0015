"""The prediction cache: stored rows come back, least recently used eviction."""

from __future__ import annotations

from server.inference.cache import PredictionCache


def test_hit_after_put_and_miss_before() -> None:
    """A row is a miss until stored, then a hit returning the stored outputs."""
    cache = PredictionCache(2)
    assert cache.get(b"a") is None
    cache.put(b"a", (1.0,))
    assert cache.get(b"a") == (1.0,)


def test_least_recently_used_is_evicted() -> None:
    """Over capacity, the row used longest ago goes first; a read refreshes a row."""
    cache = PredictionCache(2)
    cache.put(b"a", (1.0,))
    cache.put(b"b", (2.0,))
    cache.get(b"a")  # b is now the oldest
    cache.put(b"c", (3.0,))
    assert cache.get(b"b") is None
    assert cache.get(b"a") == (1.0,)
    assert cache.get(b"c") == (3.0,)
    assert len(cache) == 2


def test_zero_capacity_stores_nothing() -> None:
    """SCANOPT_CACHE_SIZE=0 switches the cache off."""
    cache = PredictionCache(0)
    cache.put(b"a", (1.0,))
    assert len(cache) == 0
