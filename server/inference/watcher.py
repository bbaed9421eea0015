"""Keeps every worker on the version named by artifacts/current.

An admin reload reaches only the worker that received it; each worker therefore also
polls the stamp of artifacts/current (server.inference.artifacts.read_stamp: the version
named and two mtimes) and reloads by itself when it changes. A refused version is logged
once and not retried until its stamp changes again; the old version keeps serving.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from pathlib import Path

from server.errors import ArtifactError
from server.inference.artifacts import Stamp, read_stamp
from server.inference.predictor import Predictor
from server.monitoring.metrics import Metrics

__all__ = ["ModelWatcher"]

_NOTHING = object()  # no refusal recorded yet (None is a valid stamp: current missing)


class ModelWatcher:
    """Polls artifacts/current every `interval_s` seconds (0: never) and reloads on change."""

    def __init__(
        self,
        predictor: Predictor,
        artifacts: Path,
        interval_s: float,
        metrics: Metrics,
        logger: logging.Logger,
    ) -> None:
        self._predictor = predictor
        self._artifacts = artifacts
        self._interval_s = interval_s
        self._metrics = metrics
        self._logger = logger
        self._refused: object = _NOTHING
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        """Begin polling in the background (no-op when the interval is 0)."""
        if self._interval_s > 0 and self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._poll())

    async def stop(self) -> None:
        """Stop polling; a reload in progress is abandoned before its swap."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def reload(self, *, raise_refused: bool = False) -> bool:
        """Load artifacts/current now; a refusal is logged and remembered, then returns
        False (counted in the errors metric) or, with `raise_refused`, raises the
        ArtifactError for the caller to report (the admin endpoint)."""
        try:
            model, previous = await self._predictor.reload()
        except ArtifactError as exc:
            self._refused = self._stamp()
            self._logger.error("model version refused", extra={"fields": {"reason": exc.message}})
            if raise_refused:
                raise
            self._metrics.errors.labels(exc.kind).inc()
            return False
        self._logger.info(
            "model loaded",
            extra={
                "fields": {
                    "model_version": model.version,
                    "previous_version": None if previous is None else previous.version,
                }
            },
        )
        return True

    async def check(self) -> bool:
        """One poll: reload if the stamp differs from the served and the refused one."""
        stamp = self._stamp()
        if stamp == self._refused:
            return False
        if self._predictor.ready and stamp == self._predictor.model.stamp:
            return False
        if stamp is None and self._predictor.ready:
            return False  # current vanished: keep serving what we have
        return await self.reload()

    def _stamp(self) -> Stamp | None:
        try:
            return read_stamp(self._artifacts)
        except ArtifactError:
            return None

    async def _poll(self) -> None:
        while True:
            await asyncio.sleep(self._interval_s)
            try:
                await self.check()
            except Exception:  # a poll must never kill the worker; the next one retries
                self._logger.exception("model poll failed")
