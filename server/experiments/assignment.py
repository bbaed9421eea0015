"""Deterministic, stateless A/B assignment: GrowthBook's FNV-1a "v2" hash into 10,000 buckets.

    fnv1a32(s):  h = 0x811C9DC5; for each character c: h ^= ord(c); h = h * 0x01000193 mod 2^32
    bucket(salt, user) = fnv1a32(str(fnv1a32(salt + user))) mod 10,000

(growthbook-python `growthbook/core.py`, hash version 2; the published vectors are pinned in
tests.) The double hash is GrowthBook's fix for v1's poor spread on sequential ids.

Arm i owns buckets [start_i, start_i + round(coverage x width_i)) where start_i is the running
sum of the weights before it (in buckets) and width_i = start_{i+1} - start_i. Ranges
start where they would at full coverage, so raising coverage only grows every range to
the right: a user never moves from one arm to another, and users already in the
experiment stay in it. Everything is integer arithmetic on buckets, so replicas (and
other languages) agree to the bucket.

The function is pure: no state, no I/O, so every worker and replica assigns alike.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import Final

__all__ = [
    "BUCKETS",
    "arm_for_bucket",
    "assign_arm",
    "bucket_of",
    "bucket_ranges",
    "fnv1a32",
    "hash_v1",
    "hash_v2",
]

BUCKETS: Final = 10_000
_FNV_OFFSET: Final = 0x811C9DC5
_FNV_PRIME: Final = 0x01000193
_MASK: Final = 0xFFFFFFFF


def fnv1a32(text: str) -> int:
    """32-bit FNV-1a over the code points of `text` (GrowthBook hashes characters, not bytes)."""
    h = _FNV_OFFSET
    for ch in text:
        h ^= ord(ch)
        h = (h * _FNV_PRIME) & _MASK
    return h


def hash_v1(seed: str, value: str) -> float:
    """GrowthBook hash version 1, in [0, 1): kept only to pin the published vectors."""
    return (fnv1a32(value + seed) % 1000) / 1000


def bucket_of(salt: str, user_id: str) -> int:
    """The user's bucket in [0, BUCKETS): GrowthBook hash version 2 before the division."""
    return fnv1a32(str(fnv1a32(salt + user_id))) % BUCKETS


def hash_v2(seed: str, value: str) -> float:
    """GrowthBook hash version 2, in [0, 1)."""
    return bucket_of(seed, value) / BUCKETS


def bucket_ranges(weights: Sequence[float], coverage: float) -> list[tuple[int, int]]:
    """Each arm's half-open bucket range [start, end) for these weights and this coverage.

    Weights must be non-negative and sum to 1 (the config validates that before it gets
    here); coverage is clamped into [0, 1] as GrowthBook does.
    """
    coverage = min(max(coverage, 0.0), 1.0)
    # Integer bounds first, so that at full coverage the ranges tile all buckets exactly
    # (thirds would otherwise leave a bucket between two rounded ranges).
    bounds = [0]
    cumulative = 0.0
    for weight in weights:
        cumulative += weight
        bounds.append(round(cumulative * BUCKETS))
    # round() is monotone in coverage, so a larger coverage never shrinks a range.
    return [
        (start, start + round(coverage * (end - start)))
        for start, end in itertools.pairwise(bounds)
    ]


def arm_for_bucket(
    bucket: int, arms: Sequence[str], ranges: Sequence[tuple[int, int]]
) -> str | None:
    """The arm whose range holds `bucket`, or None when the bucket is outside the coverage."""
    for arm, (start, end) in zip(arms, ranges, strict=True):
        if start <= bucket < end:
            return arm
    return None


def assign_arm(
    salt: str, user_id: str, arms: Sequence[str], weights: Sequence[float], coverage: float
) -> str | None:
    """The arm of `user_id` in the experiment salted `salt`, or None outside the coverage."""
    return arm_for_bucket(bucket_of(salt, user_id), arms, bucket_ranges(weights, coverage))
