"""bench.soak: the mix it sends, and a short real run whose figures add up."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import msgspec
import pytest

from bench.soak import MIX, MixedRequests, parse_env, parse_mix, soak


def test_the_mix_is_what_it_says_and_each_request_knows_its_kind() -> None:
    """Over 1,000 requests each kind's share matches MIX; kind_of says what each became,
    and feedback turns into a prediction once the fresh prediction ids run out."""
    scans = [b'{"user_id":"u"}']
    mixed = MixedRequests("h:1", 1000, scans, ["p"] * 10)
    paths = Counter(mixed[i].split(b" ", 2)[1].decode() for i in range(1000))
    assert Counter(mixed.kind_of) == Counter(mixed.counts)
    assert mixed.counts["feedback"] == 10
    assert mixed.counts["predict"] == dict(MIX)["predict"] + dict(MIX)["feedback"] - 10
    assert paths["/v1/feedback"] == 10
    assert paths["/v1/predict/batch"] == dict(MIX)["batch"]
    assert paths["/v1/recommend"] == dict(MIX)["recommend"]
    assert paths["/v1/events"] == dict(MIX)["event"]


@pytest.mark.slow
def test_a_short_soak_stores_what_it_acknowledged_and_times_each_kind(tmp_path: Path) -> None:
    """A 4 s run at 100 req/s against the real 2-worker server: every request answered,
    the store holds exactly the acknowledged events and feedback, and the latency by kind
    covers every request."""
    result = soak(100.0, 4.0, tmp_path)
    assert result.requests == 400
    assert sum(result.by_kind.values()) == 400
    assert result.events_stored == result.events_acknowledged == result.by_kind["event"]
    assert result.feedback_stored == result.feedback_acknowledged == result.by_kind["feedback"]
    assert result.prediction_log_dropped == 0
    assert set(result.latency_by_kind) == {k for k, n in result.by_kind.items() if n}
    assert {k: s.count for k, s in result.latency_by_kind.items()} == {
        k: n for k, n in result.by_kind.items() if n
    }
    assert len(result.rss_mb) == 2  # both workers sampled
    msgspec.json.encode(result)  # what soak.json is written from


def test_a_mix_is_parsed_from_kind_weight_pairs_and_bad_ones_say_what_is_expected() -> None:
    """`--mix event=15,feedback=7` sends only those kinds in that proportion; an unknown
    kind, a weight that is not a positive integer, a repeat or nothing at all is refused
    with what was expected."""
    mix = parse_mix("event=15, feedback=7")
    assert mix == (("event", 15), ("feedback", 7))
    mixed = MixedRequests("h:1", 220, [b'{"user_id":"u"}'], ["p"] * 100, mix)
    paths = Counter(mixed[i].split(b" ", 2)[1].decode() for i in range(220))
    assert paths == {"/v1/events": 150, "/v1/feedback": 70}
    for bad, words in [
        ("events=1", "KIND one of predict, batch"),
        ("event=0", "WEIGHT a positive integer"),
        ("event=x", "WEIGHT a positive integer"),
        ("event", "expected KIND=WEIGHT"),
        ("event=1,event=2", "given twice"),
        ("", "empty"),
    ]:
        with pytest.raises(ValueError, match=words):
            parse_mix(bad)


def test_settings_for_the_run_must_be_scanopt_variables() -> None:
    """`--env SCANOPT_MONITORING=off` passes through; anything else is refused by name."""
    assert parse_env(["SCANOPT_MONITORING=off", "SCANOPT_LOG_LEVEL=INFO"]) == {
        "SCANOPT_MONITORING": "off",
        "SCANOPT_LOG_LEVEL": "INFO",
    }
    for bad in ["PATH=/tmp", "SCANOPT_MONITORING", "scanopt_monitoring=off"]:
        with pytest.raises(ValueError, match=f"{bad!r}: expected SCANOPT_NAME=VALUE"):
            parse_env([bad])
    with pytest.raises(ValueError, match="SCANOPT_STORE_DSN is the soak's own"):
        parse_env(["SCANOPT_STORE_DSN=postgresql://x"])
