"""The requests every load run sends: realistic scans from the history generator.

Scans are what people set (train.generate), not uniform noise, so the requests exercise the
same feature ranges the model was trained on. There are more distinct scans than the server's
LRU cache holds and the runs cycle through them in order, so an LRU never hits and every
request pays for a real inference: the figures are the uncached path, the worst case.
"""

from __future__ import annotations

from pathlib import Path
from typing import Final

import msgspec

from server.domain.scan import Scan
from train.generate import generate_records

__all__ = ["CORPUS_SEED", "recommend_bodies", "scan_bodies", "write_bodies"]

# Not the training seed: the requests are fresh scans, not training rows replayed.
CORPUS_SEED: Final = 20_251


def scan_bodies(n: int, seed: int = CORPUS_SEED) -> list[bytes]:
    """`n` distinct JSON scan bodies for /v1/predict, the same for the same seed."""
    scans: list[Scan] = [r.to_scan() for r in generate_records(n, seed)]
    bodies = list(dict.fromkeys(msgspec.json.encode(s) for s in scans))
    if len(bodies) < n:
        raise ValueError(f"{n} scans from seed {seed} hold only {len(bodies)} distinct bodies")
    return bodies


def recommend_bodies(scan_bodies_: list[bytes]) -> list[bytes]:
    """/v1/recommend bodies: each scan with the default desired range (5-100 results)."""
    return [b'{"scan":' + body + b"}" for body in scan_bodies_]


def write_bodies(path: Path, bodies: list[bytes]) -> Path:
    """Write bodies as JSON lines (what bench.openloop and the wrk script read)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"\n".join(bodies) + b"\n")
    return path
