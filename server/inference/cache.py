"""An in-process LRU cache of model outputs, keyed on the encoded feature row.

The key is the row's float32 bytes: two scans that encode to the same features share an
answer, whatever their user or session ids. Served rows carry the time of day to the
minute (server.inference.clock), so the same scan hits for the rest of its minute, with
or without a timestamp; the key is still exactly what the model sees.

One cache belongs to one `LoadedModel`, so a reload can never serve the old version's
answers. It is used from the event loop thread only.
"""

from __future__ import annotations

from collections import OrderedDict

__all__ = ["PredictionCache", "RowValues"]

# The seven model outputs of one row, in MODEL_OUTPUTS order.
RowValues = tuple[float, ...]


class PredictionCache:
    """Least-recently-used map from feature-row bytes to that row's outputs."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self._rows: OrderedDict[bytes, RowValues] = OrderedDict()

    def __len__(self) -> int:
        return len(self._rows)

    def get(self, key: bytes) -> RowValues | None:
        """The cached outputs of a row, or None; the predictor counts hits and misses
        (scanopt_cache_hits_total, scanopt_cache_misses_total)."""
        values = self._rows.get(key)
        if values is not None:
            self._rows.move_to_end(key)
        return values

    def put(self, key: bytes, values: RowValues) -> None:
        """Remember a row's outputs, evicting the least recently used beyond capacity."""
        if self.capacity <= 0:
            return
        self._rows[key] = values
        self._rows.move_to_end(key)
        if len(self._rows) > self.capacity:
            self._rows.popitem(last=False)
