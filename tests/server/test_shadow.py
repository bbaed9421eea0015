"""Shadow scoring end to end: responses untouched, rows written and joined, a worse
challenger found worse, the queue bound, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import msgspec
import pytest
from litestar.testing import TestClient
from rich.console import Console

from export import models as models_cli
from server.app import Worker
from server.dataplane import Served
from server.domain.scan import Scan
from server.domain.versions import VersionList
from server.experiments.gate import Decision
from server.inference.model import load_model
from server.inference.predictor import Predictor
from server.monitoring.metrics import Metrics
from server.shadow import ShadowScorer, shadow_id
from server.store.buffer import PredictionLog
from server.store.metrics import StoreMetrics
from server.store.prediction_ids import PredictionIds
from server.store.sqlite import SqliteStore
from tests.server.conftest import SCAN, Versions, make_settings
from tests.server.onnx_graphs import linear_graph, write_version
from tests.server.store.backends import pg_dsn, store_dsn
from train.generate import generate_records

__all__ = ["pg_dsn", "store_dsn"]
# store_dsn comes before client_for in each signature: the app stops before the
# PostgreSQL schema is dropped.

BAD = "bad-constant"
# A contract graph that says ~150 results and ~60 s for every scan: far from the
# generated outcomes (a median of a few results and seconds) the trained champion tracks.
BAD_RECIPES = {
    "result_count": ("Add", 150.0),
    "result_count_lo": ("Add", 100.0),
    "result_count_hi": ("Add", 300.0),
    "duration_s": ("Add", 60.0),
    "duration_s_lo": ("Add", 30.0),
    "duration_s_hi": ("Add", 120.0),
}


def _worker(client: TestClient[Any]) -> Worker:
    worker: Worker = client.app.state.worker
    return worker


def _counting_ids(monkeypatch: pytest.MonkeyPatch) -> Callable[[], None]:
    """Make prediction ids a counter, so two apps (two stores, two secrets) answer the
    same requests identically."""
    counter = itertools.count()

    def new(self: PredictionIds) -> str:
        return f"{next(counter):040x}"

    monkeypatch.setattr(PredictionIds, "new", new)

    def reset() -> None:
        nonlocal counter
        counter = itertools.count()

    return reset


def _requests() -> Iterator[tuple[str, dict[str, Any]]]:
    scans = [
        {**SCAN, "user_id": f"u-{i}", "lookback_bars": 20 + 10 * i, "min_price": 1.0 + i}
        for i in range(12)
    ]
    for scan in scans:
        yield "/v1/predict", scan
    yield "/v1/predict/batch", {"scans": scans}
    for scan in scans[:4]:
        yield "/v1/recommend", {"scan": scan, "min_results": 5, "max_results": 100}
    yield "/v1/predict", {**SCAN, "universe": "nyse"}  # a 400 is the same with a shadow too


def _answers(client: TestClient[Any]) -> list[tuple[int, list[tuple[str, str]], bytes]]:
    out = []
    for n, (path, body) in enumerate(_requests()):
        response = client.post(path, json=body, headers={"x-request-id": f"req-{n}"})
        headers = sorted((k, v) for k, v in response.headers.items() if k.lower() != "date")
        out.append((response.status_code, headers, response.content))
    return out


def test_shadow_changes_no_response_byte_for_byte(
    client_for: Callable[..., TestClient[Any]],
    built_versions: Versions,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    """The same requests with and without a shadow: every status, header and body byte."""
    reset = _counting_ids(monkeypatch)
    plain = client_for(store_dsn=f"sqlite:///{tmp_path / 'plain.db'}")
    without = _answers(plain)
    reset()
    shadowed = client_for(
        store_dsn=f"sqlite:///{tmp_path / 'shadow.db'}", shadow_version=built_versions.second
    )
    with_shadow = _answers(shadowed)
    assert with_shadow == without
    # ...and the shadow really scored them: 12 + 12 + 4 answered scans.
    worker = _worker(shadowed)
    assert worker.shadow is not None
    shadowed.blocking_portal.call(worker.shadow.drain)
    scored = worker.metrics.registry.get_sample_value(
        "scanopt_shadow_scored_total", {"version": built_versions.second}
    )
    assert scored == 28


def _outcome(prediction_id: str, record: Any, n: int) -> dict[str, Any]:
    return {
        "type": "scan_completed",
        "event_id": f"e-{n}",
        "user_id": record.user_id,
        "session_id": record.session_id,
        "prediction_id": prediction_id,
        "timestamp": (datetime.now(UTC) - timedelta(minutes=1)).isoformat(),
        "result_count": record.result_count,
        "duration_s": record.duration_s,
    }


def _predict_and_complete(client: TestClient[Any], n: int) -> list[str]:
    """`n` generated scans predicted, each followed by its real outcome; the ids."""
    ids = []
    for i, record in enumerate(generate_records(n, seed=5)):
        scan = msgspec.to_builtins(record.to_scan())
        answer = client.post("/v1/predict", json=scan)
        assert answer.status_code == 200, answer.text
        prediction_id = answer.json()["prediction_id"]
        event = client.post("/v1/events", json=_outcome(prediction_id, record, i))
        assert event.status_code == 201, event.text
        ids.append(prediction_id)
    worker = _worker(client)
    assert worker.shadow is not None
    client.blocking_portal.call(worker.shadow.drain)
    assert client.blocking_portal.call(worker.log.flush)
    return ids


def test_shadow_rows_are_written_joined_and_never_served(
    store_dsn: str, client_for: Callable[..., TestClient[Any]], built_versions: Versions
) -> None:
    """Each shadow row refers to its served prediction; accuracy and A/B see served rows only."""
    client = client_for(store_dsn=store_dsn, shadow_version=built_versions.second)
    ids = _predict_and_complete(client, 60)
    store = _worker(client).store
    served = client.blocking_portal.call(store.get_prediction, ids[0])
    shadow = client.blocking_portal.call(store.get_prediction, shadow_id(ids[0]))
    assert served is not None
    assert shadow is not None
    assert served.model_version == built_versions.first
    assert not served.shadow
    assert shadow.model_version == built_versions.second
    assert shadow.shadow_of == ids[0]
    assert shadow.scan == served.scan
    assert (shadow.user_id, shadow.arm, shadow.endpoint) == (served.user_id, served.arm, "predict")

    now = datetime.now(UTC)
    sums = client.blocking_portal.call(
        store.shadow_sums, now - timedelta(hours=1), now + timedelta(hours=1)
    )
    assert [(s.champion, s.shadow, s.n) for s in sums] == [
        (built_versions.first, built_versions.second, 60)
    ]
    # Served accuracy: the champion alone, each outcome once.
    client.blocking_portal.call(
        store.refresh_accuracy, now - timedelta(hours=1), now + timedelta(hours=1)
    )
    accuracy = client.blocking_portal.call(
        store.accuracy, now - timedelta(hours=1), now + timedelta(hours=1)
    )
    assert {a.version for a in accuracy} == {built_versions.first}
    assert sum(a.n for a in accuracy) == 60
    # A/B: one prediction per scan, not two.
    metrics = client.blocking_portal.call(store.experiment_metrics, "ml_scanning")
    assert sum(u.n_predictions for u in metrics.users) == 60

    listing = msgspec.json.decode(client.get("/v1/models/versions").content, type=VersionList)
    assert listing.shadow is not None
    assert listing.shadow.version == built_versions.second
    (comparison,) = listing.shadow.comparisons
    assert (comparison.champion, comparison.shadow, comparison.n) == (
        built_versions.first,
        built_versions.second,
        60,
    )
    assert comparison.result_count.champion_mae is not None
    assert comparison.result_count.shadow_mae is not None
    assert comparison.result_count.verdict in {"better", "worse", "undecided"}


def test_a_worse_challenger_is_found_worse(
    store_dsn: str,
    client_for: Callable[..., TestClient[Any]],
    artifacts: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A constant graph far from every outcome, shadowing the trained model."""
    write_version(artifacts, BAD, linear_graph(recipes=BAD_RECIPES), make_current=False)
    client = client_for(store_dsn=store_dsn, shadow_version=BAD, accuracy_min_labelled=30)
    _predict_and_complete(client, 200)
    listing = msgspec.json.decode(client.get("/v1/models/versions").content, type=VersionList)
    assert listing.shadow is not None
    (comparison,) = listing.shadow.comparisons
    assert comparison.n == 200
    for target in (comparison.result_count, comparison.duration_s):
        assert target.verdict == "worse", target
        assert target.lower is not None
        assert target.lower > 0
        assert target.p_value is not None
        assert target.p_value < 0.05
    # The gauges show the same comparison.
    worker = _worker(client)
    assert worker.shadow_monitor is not None
    client.blocking_portal.call(worker.shadow_monitor.refresh)
    verdict = worker.metrics.registry.get_sample_value(
        "scanopt_shadow_verdict",
        {"target": "result_count", "champion": comparison.champion, "shadow": BAD},
    )
    assert verdict == 1.0
    live = client.get("/v1/dashboard/live").json()
    rows = {r["target"]: r for r in live["shadow"]}
    assert rows.keys() == {"result_count", "duration_s"}
    assert rows["result_count"]["verdict"] == "worse"
    assert rows["result_count"]["pairs"] == 200
    assert rows["result_count"]["shadow_mae"] == pytest.approx(comparison.result_count.shadow_mae)
    assert rows["result_count"]["champion_mae"] == pytest.approx(
        comparison.result_count.champion_mae
    )
    # `just models --store DSN` reads the same comparison; `--url` shows the server's.
    assert models_cli.main(["list", "--artifacts", str(artifacts), "--store", store_dsn]) == 0
    printed = capsys.readouterr().out
    assert "Shadow comparison" in printed
    assert printed.count("worse") == 2
    remote = models_cli.fetch_versions("http://testserver.local", client)
    assert remote.shadow is not None
    assert remote.shadow == listing.shadow
    table = Console(width=200, record=True)
    table.print(models_cli.versions_table(remote), models_cli.shadow_table(remote.shadow))
    text = table.export_text()
    assert f"{BAD}" in text
    assert "sh" in text.split(BAD)[0].splitlines()[-1]


def test_no_shadow_no_shadow_figures(client: TestClient[Any]) -> None:
    """Without SCANOPT_SHADOW_VERSION the listing has no shadow part."""
    listing = msgspec.json.decode(client.get("/v1/models/versions").content, type=VersionList)
    assert listing.shadow is None


def test_a_full_queue_drops_the_shadow_sample_never_the_answer(
    artifacts: Path, built_versions: Versions, tmp_path: Path
) -> None:
    """Beyond the queue's capacity a sampled scan is dropped and counted."""

    async def run() -> None:
        settings = make_settings(artifacts)
        store = SqliteStore(tmp_path / "q.db", threads=1)  # never opened: nothing is flushed
        worker_metrics = Metrics(settings)
        log = PredictionLog(
            store,
            StoreMetrics(worker_metrics.registry),
            capacity=100,
            batch_size=100,
            flush_interval_s=1.0,
            share=1.0,
        )
        scorer = ShadowScorer(
            built_versions.second,
            log,
            worker_metrics.registry,
            load=lambda: load_model(
                artifacts, intra_op_threads=1, cache_size=0, version=built_versions.second
            ),
            share=1.0,
            capacity=2,
        )
        await scorer.start()
        predictor = Predictor(settings, worker_metrics)
        predictor.install(predictor.load())
        scan = msgspec.convert(SCAN, type=Scan)
        prediction = predictor.predict_one(scan)
        for n in range(5):
            scorer(
                Served(
                    scan=scan,
                    decision=Decision(experiment="ml_scanning", arm="control", ml_enabled=False),
                    prediction_id=f"p{n}",
                    endpoint="predict",
                    at=datetime.now(UTC),
                    model_version=prediction.model_version,
                    predicted=prediction,
                )
            )
        assert scorer.pending == 2
        assert (
            worker_metrics.registry.get_sample_value(
                "scanopt_shadow_dropped_total", {"reason": "queue_full"}
            )
            == 3
        )
        await scorer.drain()
        assert log.pending == 2
        await scorer.stop()
        await predictor.close()

    asyncio.run(run())
