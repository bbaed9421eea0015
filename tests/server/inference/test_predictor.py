"""The predictor: one code path from scan to prediction, cached, batched, hot-swappable."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import msgspec
import numpy as np
import pytest

from server.domain.artifact import confidence_score
from server.domain.features import encode_row
from server.domain.scan import Scan
from server.errors import ArtifactError, NotReadyError
from server.inference.predictor import INLINE_MAX_ROWS, Predictor
from server.monitoring.metrics import Metrics
from tests.server.conftest import SCAN, Versions, make_settings

BASE = msgspec.convert(SCAN, Scan)


def predictor_for(artifacts: Path, **overrides: Any) -> Predictor:
    settings = make_settings(artifacts, **overrides)
    predictor = Predictor(settings, Metrics(settings))
    predictor.install(predictor.load())
    return predictor


def counted_predictor(artifacts: Path, **overrides: Any) -> tuple[Predictor, Metrics]:
    settings = make_settings(artifacts, **overrides)
    metrics = Metrics(settings)
    predictor = Predictor(settings, metrics)
    predictor.install(predictor.load())
    return predictor, metrics


def cache_counts(metrics: Metrics) -> tuple[float, float]:
    """(hits, misses) as /metrics reports them."""
    get = metrics.registry.get_sample_value
    return (get("scanopt_cache_hits_total") or 0.0, get("scanopt_cache_misses_total") or 0.0)


def scans(n: int) -> list[Scan]:
    return [msgspec.structs.replace(BASE, lookback_bars=10 + i) for i in range(n)]


def test_not_ready_before_a_model_is_installed(artifacts: Path) -> None:
    """Predicting before the first load is a NotReadyError, not a crash."""
    settings = make_settings(artifacts)
    predictor = Predictor(settings, Metrics(settings))
    assert not predictor.ready
    with pytest.raises(NotReadyError):
        predictor.predict_one(BASE)


def test_predict_one_is_the_session_output(artifacts: Path) -> None:
    """The prediction is exactly the graph's outputs for encode_row, plus its confidence."""
    predictor = predictor_for(artifacts)
    p = predictor.predict_one(BASE)
    raw = predictor.model.run(np.asarray([encode_row(BASE)], dtype=np.float32))
    count, count_lo, count_hi, dur, dur_lo, dur_hi, p_empty = (float(o[0]) for o in raw)
    assert (p.result_count.predicted, p.result_count.lower, p.result_count.upper) == (
        count,
        count_lo,
        count_hi,
    )
    assert (p.duration_s.predicted, p.duration_s.lower, p.duration_s.upper) == (dur, dur_lo, dur_hi)
    assert p.p_empty == p_empty
    assert p.confidence == confidence_score(count, count_lo, count_hi, dur, dur_lo, dur_hi)
    assert p.model_version == predictor.model.version


def test_repeated_row_is_served_from_the_cache(artifacts: Path) -> None:
    """The same encoded row hits the cache: the same outcome for another user."""
    predictor, metrics = counted_predictor(artifacts)
    first = predictor.predict_one(BASE)
    other_user = msgspec.structs.replace(BASE, user_id="someone-else")
    second = predictor.predict_one(other_user)
    assert cache_counts(metrics) == (1, 1)
    assert second == first


def test_a_scan_without_timestamp_hits_within_its_minute(artifacts: Path) -> None:
    """The server's clock is bucketed to the minute: the same scan at :05 and :55 is one
    miss and one hit; at the next minute it is a miss again."""
    predictor, metrics = counted_predictor(artifacts)
    scan = msgspec.structs.replace(BASE, timestamp=None)
    minute = datetime(2026, 3, 3, 15, 1, tzinfo=UTC)
    for seconds in (5, 55, 65):
        predictor.predict_one(scan, minute + timedelta(seconds=seconds))
    assert cache_counts(metrics) == (1, 2)


def test_cache_size_zero_never_looks_up(artifacts: Path) -> None:
    """With the cache off nothing is stored and nothing counted."""
    predictor, metrics = counted_predictor(artifacts, cache_size=0)
    predictor.predict_one(BASE)
    predictor.predict_one(BASE)
    assert cache_counts(metrics) == (0, 0)
    assert len(predictor.model.cache) == 0


@pytest.mark.parametrize("n", [3, INLINE_MAX_ROWS + 40])
def test_predict_many_equals_predict_one(artifacts: Path, n: int) -> None:
    """A batch (inline or on a thread) gives each scan what predict_one gives it."""
    predictor = predictor_for(artifacts, cache_size=0)
    batch = scans(n)
    version, predictions = asyncio.run(predictor.predict_many(batch))
    assert version == predictor.model.version
    singles = [predictor.predict_one(s) for s in batch]
    assert [p.result_count for p in predictions] == [p.result_count for p in singles]
    assert [p.p_empty for p in predictions] == [p.p_empty for p in singles]


def test_batcher_gives_the_same_answers(artifacts: Path) -> None:
    """With SCANOPT_BATCHER on, concurrent predictions equal the inline ones."""
    inline = predictor_for(artifacts, cache_size=0)
    batched = predictor_for(artifacts, cache_size=0, batcher=True, batch_max_wait_us=0)
    batch = scans(20)

    async def concurrently() -> list[Any]:
        try:
            return list(await asyncio.gather(*(batched.predict(s) for s in batch)))
        finally:
            await batched.close()

    got = asyncio.run(concurrently())
    assert [p.result_count for p in got] == [inline.predict_one(s).result_count for s in batch]


def test_reload_swaps_and_old_model_finishes(artifacts: Path, built_versions: Versions) -> None:
    """After a reload new requests use the new version; a request holding the old one
    still runs on it."""
    predictor = predictor_for(artifacts)
    old = predictor.model
    (artifacts / "current").write_text(built_versions.second)
    new, previous = asyncio.run(predictor.reload())
    assert previous is old
    assert predictor.model is new
    assert predictor.predict_one(BASE).model_version == built_versions.second
    assert old.run(np.asarray([encode_row(BASE)], dtype=np.float32))[0].shape == (1,)


def test_refused_reload_keeps_serving_the_old(artifacts: Path, built_versions: Versions) -> None:
    """A corrupt new version raises ArtifactError and the old one stays in service."""
    predictor = predictor_for(artifacts)
    model_file = artifacts / "models" / built_versions.second / "model.onnx"
    model_file.write_bytes(b"tampered")
    (artifacts / "current").write_text(built_versions.second)
    with pytest.raises(ArtifactError, match="sha256"):
        asyncio.run(predictor.reload())
    assert predictor.model.version == built_versions.first
    assert predictor.predict_one(BASE).model_version == built_versions.first
