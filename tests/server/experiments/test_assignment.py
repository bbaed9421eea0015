"""Assignment: GrowthBook's published hash vectors, bucket ranges and stickiness."""

from __future__ import annotations

import itertools

import pytest

from server.experiments.assignment import (
    BUCKETS,
    assign_arm,
    bucket_of,
    bucket_ranges,
    fnv1a32,
    hash_v1,
    hash_v2,
)

# growthbook-python tests/cases.json, "hash": (seed, value, version, result).
_PUBLISHED_HASHES = [
    ("", "a", 1, 0.22),
    ("", "b", 1, 0.077),
    ("b", "a", 1, 0.946),
    ("ef", "d", 1, 0.652),
    ("asdf", "8952klfjas09ujk", 1, 0.549),
    ("", "123", 1, 0.011),
    ("", '___)((*":&', 1, 0.563),
    ("seed", "a", 2, 0.0505),
    ("seed", "b", 2, 0.2696),
    ("foo", "ab", 2, 0.2575),
    ("foo", "def", 2, 0.2019),
    ("89123klj", "8952klfjas09ujkasdf", 2, 0.124),
    ("90850943850283058242805", "123", 2, 0.7516),
    ("()**(%$##$%#$#", '___)((*":&', 2, 0.0128),
]

# growthbook-python tests/cases.json, "getBucketRange" with valid weights:
# (weights, coverage, expected ranges as shares).
_PUBLISHED_RANGES = [
    ([0.5, 0.5], 1.0, [(0, 0.5), (0.5, 1)]),
    ([0.5, 0.5], 0.5, [(0, 0.25), (0.5, 0.75)]),
    ([0.5, 0.5], 0.0, [(0, 0), (0.5, 0.5)]),
    ([0.25] * 4, 1.0, [(0, 0.25), (0.25, 0.5), (0.5, 0.75), (0.75, 1)]),
    ([0.4, 0.6], 1.0, [(0, 0.4), (0.4, 1)]),
    ([0.2, 0.3, 0.5], 1.0, [(0, 0.2), (0.2, 0.5), (0.5, 1)]),
    ([0.2, 0.3, 0.5], 0.2, [(0, 0.04), (0.2, 0.26), (0.5, 0.6)]),
    ([0.5, 0.5], -0.2, [(0, 0), (0.5, 0.5)]),
    ([0.5, 0.5], 1.5, [(0, 0.5), (0.5, 1)]),
]


@pytest.mark.parametrize(("seed", "value", "version", "expected"), _PUBLISHED_HASHES)
def test_published_growthbook_hash_vectors(
    seed: str, value: str, version: int, expected: float
) -> None:
    """Our FNV-1a hashes give GrowthBook's published results, v1 and v2."""
    hashed = hash_v1(seed, value) if version == 1 else hash_v2(seed, value)
    assert hashed == pytest.approx(expected, abs=1e-12)


def test_fnv1a32_reference_values() -> None:
    """FNV-1a 32-bit matches its reference values (empty string is the offset basis)."""
    assert fnv1a32("") == 0x811C9DC5
    assert fnv1a32("a") == 0xE40C292C
    assert fnv1a32("foobar") == 0xBF9CF968


@pytest.mark.parametrize(("weights", "coverage", "expected"), _PUBLISHED_RANGES)
def test_published_bucket_ranges(
    weights: list[float], coverage: float, expected: list[tuple[float, float]]
) -> None:
    """Bucket ranges equal GrowthBook's getBucketRange vectors, in 1/10,000 buckets."""
    ranges = bucket_ranges(weights, coverage)
    assert [(a / BUCKETS, b / BUCKETS) for a, b in ranges] == [
        pytest.approx(r, abs=1e-12) for r in expected
    ]


def test_full_coverage_tiles_every_bucket_even_for_thirds() -> None:
    """At full coverage every bucket belongs to exactly one arm, whatever the weights."""
    ranges = bucket_ranges([1 / 3, 1 / 3, 1 / 3], 1.0)
    assert ranges[0][0] == 0
    assert ranges[-1][1] == BUCKETS
    assert all(a[1] == b[0] for a, b in itertools.pairwise(ranges))


def test_raising_coverage_only_adds_users() -> None:
    """Growing the rollout never moves a user between arms or out of the experiment."""
    users = [f"user-{i}" for i in range(5000)]
    arms = ("control", "treatment")
    previous = {u: assign_arm("ml_scanning", u, arms, [0.5, 0.5], 0.0) for u in users}
    assert set(previous.values()) == {None}
    for coverage in (0.05, 0.1, 0.25, 0.5, 0.8, 1.0):
        current = {u: assign_arm("ml_scanning", u, arms, [0.5, 0.5], coverage) for u in users}
        for user, arm in previous.items():
            if arm is not None:
                assert current[user] == arm, (user, coverage)
        previous = current
    assert None not in previous.values()


def test_assignment_is_deterministic_and_balanced() -> None:
    """The same user always gets the same arm; 20,000 users split close to 50/50."""
    arms = ("control", "treatment")
    picks = [assign_arm("ml_scanning", f"u{i}", arms, [0.5, 0.5], 1.0) for i in range(20_000)]
    again = [assign_arm("ml_scanning", f"u{i}", arms, [0.5, 0.5], 1.0) for i in range(20_000)]
    assert picks == again
    # 4 standard deviations of a fair binomial (sd = 70.7): fails by chance ~1 in 16,000.
    assert abs(picks.count("treatment") - 10_000) < 283


def test_salt_reshuffles_users() -> None:
    """Another experiment's salt gives an independent split (buckets differ)."""
    a = [bucket_of("exp-a", f"u{i}") for i in range(1000)]
    b = [bucket_of("exp-b", f"u{i}") for i in range(1000)]
    assert sum(x == y for x, y in zip(a, b, strict=True)) < 10
