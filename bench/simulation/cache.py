"""The server's prediction-cache counters, read from its /metrics (summed over workers)."""

from __future__ import annotations

import httpx
import msgspec
from prometheus_client.parser import text_string_to_metric_families

__all__ = ["CacheCounts", "cache_counts"]


class CacheCounts(msgspec.Struct, frozen=True, kw_only=True):
    """Prediction-cache lookups a server answered from the cache, and all of them."""

    hits: int
    lookups: int

    @property
    def hit_rate(self) -> float:
        return self.hits / self.lookups if self.lookups else 0.0

    def __str__(self) -> str:
        return f"{self.hits:,} of {self.lookups:,} lookups hit ({self.hit_rate * 100:.1f}%)"


def cache_counts(url: str) -> CacheCounts:
    """The cache counters of the server at `url` since it started."""
    text = httpx.get(f"{url}/metrics", timeout=10).text
    values = {
        s.name: s.value for family in text_string_to_metric_families(text) for s in family.samples
    }
    hits = int(values.get("scanopt_cache_hits_total", 0))
    misses = int(values.get("scanopt_cache_misses_total", 0))
    return CacheCounts(hits=hits, lookups=hits + misses)
