"""server.heap: a ready worker's start-up objects leave the collector's walks, and return."""

from __future__ import annotations

import gc
import weakref
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from litestar.testing import TestClient

from server import heap
from server.app import create_app
from tests.server.conftest import TOKEN, Versions, make_settings

AUTH = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture(autouse=True)
def _thawed() -> Iterator[None]:
    yield
    gc.unfreeze()  # whatever a failed test left frozen goes back to the collector


def _tracked(obj: object) -> bool:
    """True when a collection of the generations would walk `obj`."""
    return any(found is obj for found in gc.get_objects())


def test_freeze_takes_live_objects_out_of_collections_and_thaw_returns_them() -> None:
    marker: list[object] = [object()]
    assert _tracked(marker)
    frozen = heap.freeze()
    assert frozen == gc.get_freeze_count() > 0
    assert not _tracked(marker)
    heap.thaw()
    assert gc.get_freeze_count() == 0
    assert _tracked(marker)


class _Node:
    def __init__(self) -> None:
        self.me = self  # a reference cycle: only the cyclic collector frees it


def test_freeze_collects_garbage_first() -> None:
    gc.disable()  # so only freeze's own collection can free the cycle
    try:
        node = _Node()
        gone = weakref.ref(node)
        del node
        assert gone() is not None  # unreachable, not yet collected
        heap.freeze()
        assert gone() is None  # collected, not frozen for the worker's life
    finally:
        gc.enable()


def test_a_ready_worker_freezes_and_its_stop_thaws(artifacts: Path) -> None:
    with TestClient(create_app(make_settings(artifacts, gc_freeze=True))) as client:
        assert client.get("/health/ready").status_code == 200
        assert gc.get_freeze_count() > 0
    assert gc.get_freeze_count() == 0


def test_gc_freeze_off_leaves_the_collector_alone(
    client_for: Callable[..., TestClient[Any]],
) -> None:
    client = client_for(gc_freeze=False)
    assert client.get("/health/ready").status_code == 200
    assert gc.get_freeze_count() == 0


def test_a_reload_frees_the_frozen_version_it_replaced(
    client_for: Callable[..., TestClient[Any]], artifacts: Path, built_versions: Versions
) -> None:
    """Frozen objects still die by reference count; the first version (loaded before the
    freeze) is gone once a reload has replaced it, so reloads do not pile up models."""
    client = client_for(gc_freeze=True)
    predictor = client.app.state.worker.predictor
    assert predictor.model.version == built_versions.first
    assert gc.get_freeze_count() > 0  # the first version was loaded before the freeze
    first = weakref.ref(predictor.model)
    (artifacts / "current").write_text(built_versions.second + "\n")
    assert client.post("/v1/admin/reload", headers=AUTH).status_code == 200
    assert predictor.model.version == built_versions.second
    gc.collect()
    assert first() is None
