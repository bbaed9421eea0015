"""How often probation would roll back a good promotion, and how soon it catches a bad one.

    python -m bench.probation [--histories 40] [--artifacts artifacts] [--step 50]
                              [--plan 400:400,400:1000,1000:2000]

The good version is the model --artifacts/current names (the committed default), judged
on traffic it never saw; the bad one a quick model fitted on a world with 4x the results
and durations (as in tests/server/monitoring/test_probation.py). Both are promoted over
the same parent, the default model. Each history is `train.generate` with its own seed
(its own mix of days, volatility and scans: what one stretch of real traffic looks like),
its real outcomes in order: the first half served by the parent before the promotion, the
second by the new version after it. For each plan MIN:OUTCOMES the conditions probation
watches are evaluated on the new version's cumulative outcomes every --step outcomes from
MIN to OUTCOMES, as the scheduled check would see them: the absolute ones alone
(server.monitoring.alerts.accuracy_alerts, as before the parent was compared) and with the
comparison to the parent's as many outcomes just before the promotion
(server.monitoring.probation.relative_worse, the same functions). A history counts as
rolled back when any look trips. Prints, per plan and rule (`absolute`, `+ parent`: the
absolute conditions and worse than the parent), the share of histories that
would roll back each version and the median outcomes at the bad version's first trip.
Reads and fits only; no server.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

import msgspec
import numpy as np
import onnxruntime as ort
from rich.console import Console
from rich.table import Table

from export.pipeline import build_version
from server.domain.artifact import MANIFEST_FILE, MODEL_INPUT, Manifest
from server.domain.features import encode_scans
from server.domain.scan import UNIVERSE_SIZES, ScanRecord
from server.monitoring.alerts import VersionAccuracy, accuracy_alerts
from server.monitoring.probation import relative_worse
from server.store.monitoring import AccuracySums
from train.generate import generate_records

__all__ = ["main"]

Plan = tuple[int, int]


class _Errors(msgspec.Struct, frozen=True):
    """Per outcome, in arrival order: absolute errors and interval hits of both targets."""

    count_err: np.ndarray
    count_hit: np.ndarray
    dur_err: np.ndarray
    dur_hit: np.ndarray


def _shifted(records: Sequence[ScanRecord]) -> list[ScanRecord]:
    return [
        msgspec.structs.replace(
            r,
            result_count=min(4 * r.result_count, UNIVERSE_SIZES[r.universe]),
            duration_s=min(4 * r.duration_s, 3600.0),
            expected_result_count=None,
            expected_duration_s=None,
        )
        for r in records
    ]


def _errors(folder: Path, records: Sequence[ScanRecord]) -> _Errors:
    session = ort.InferenceSession(str(folder / "model.onnx"))
    features = encode_scans([r.to_scan() for r in records], datetime.now(UTC))
    names = [o.name for o in session.get_outputs()]
    out = dict(zip(names, session.run(None, {MODEL_INPUT: features}), strict=True))
    count = np.asarray([r.result_count for r in records], dtype=np.float64)
    dur = np.asarray([r.duration_s for r in records], dtype=np.float64)
    return _Errors(
        count_err=np.abs(out["result_count"] - count),
        count_hit=(count >= out["result_count_lo"]) & (count <= out["result_count_hi"]),
        dur_err=np.abs(out["duration_s"] - dur),
        dur_hit=(dur >= out["duration_s_lo"]) & (dur <= out["duration_s_hi"]),
    )


def _sums(errors: _Errors, version: str, part: slice) -> AccuracySums:
    """The store's sufficient statistics of the outcomes in `part`."""
    count, dur = errors.count_err[part], errors.dur_err[part]
    return AccuracySums(
        version=version,
        arm="all",
        n=len(count),
        count_abs_err=float(count.sum()),
        count_sq_err=float((count * count).sum()),
        count_sum=0.0,
        count_sum_sq=0.0,
        count_covered=int(errors.count_hit[part].sum()),
        duration_abs_err=float(dur.sum()),
        duration_sq_err=float((dur * dur).sum()),
        duration_sum=0.0,
        duration_sum_sq=0.0,
        duration_covered=int(errors.dur_hit[part].sum()),
        brier_sum=0.0,
    )


def _first_trip(
    errors: _Errors,
    parent: _Errors,
    manifest: Manifest,
    plan: Plan,
    step: int,
    *,
    relative: bool,
) -> int | None:
    """Outcomes at the first look whose conditions trip, or None. `errors` are the new
    version's after the promotion, `parent` the parent's before it (the last ones nearest)."""
    low, high = plan
    training = {t: manifest.metrics[t]["mae"] for t in ("result_count", "duration_s")}
    before = len(parent.count_err)
    for n in range(low, high + 1, step):
        figures = VersionAccuracy(
            version=manifest.version,
            labelled=n,
            mae={
                "result_count": float(errors.count_err[:n].mean()),
                "duration_s": float(errors.dur_err[:n].mean()),
            },
            training_mae=training,
            coverage={
                "result_count": float(errors.count_hit[:n].mean()),
                "duration_s": float(errors.dur_hit[:n].mean()),
            },
        )
        alerts = accuracy_alerts([figures], low)
        if alerts and relative:
            new = _sums(errors, manifest.version, slice(0, n))
            old = _sums(parent, "parent", slice(before - n, before))
            alerts = [a for a in alerts if relative_worse(a.name, a.labels["target"], new, old)]
        if alerts:
            return n
    return None


def _plans(text: str) -> list[Plan]:
    plans = []
    for part in text.split(","):
        low, _, high = part.partition(":")
        try:
            plan = (int(low), int(high))
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"{part!r}: expected MIN:OUTCOMES, two integers like 400:1000"
            ) from None
        if not 1 <= plan[0] <= plan[1]:
            raise argparse.ArgumentTypeError(f"{part!r}: expected 1 <= MIN <= OUTCOMES")
        plans.append(plan)
    return plans


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.probation", description=__doc__)
    parser.add_argument("--histories", type=int, default=40)
    parser.add_argument("--artifacts", type=Path, default=Path("artifacts"))
    parser.add_argument("--step", type=int, default=50)
    parser.add_argument("--plan", type=_plans, default=_plans("400:400,400:1000,1000:2000"))
    args = parser.parse_args(argv)
    try:
        good = args.artifacts / "models" / (args.artifacts / "current").read_text().strip()
        good_manifest = msgspec.json.decode((good / MANIFEST_FILE).read_bytes(), type=Manifest)
    except (OSError, msgspec.DecodeError) as exc:
        print(f"error: {exc}: expected a model in service under {args.artifacts}", file=sys.stderr)
        return 1
    console = Console()
    longest = max(high for _, high in args.plan)
    with tempfile.TemporaryDirectory() as work:
        console.print("fitting the bad version (4x world, quick)...")
        bad = build_version(
            _shifted(generate_records(1500, seed=0)), Path(work), seed=2, quick=True
        )
        bad_manifest = msgspec.json.decode((bad / MANIFEST_FILE).read_bytes(), type=Manifest)
        trips: dict[tuple[str, Plan, bool], list[int | None]] = {}
        for seed in range(1000, 1000 + args.histories):
            records = generate_records(2 * longest, seed=seed)
            parent = _errors(good, records[:longest])
            for name, folder, manifest in (
                ("good", good, good_manifest),
                ("bad", bad, bad_manifest),
            ):
                errors = _errors(folder, records[longest:])
                for plan in args.plan:
                    for relative in (False, True):
                        trips.setdefault((name, plan, relative), []).append(
                            _first_trip(
                                errors, parent, manifest, plan, args.step, relative=relative
                            )
                        )
    table = Table(
        title=f"Probation on {args.histories} generated histories (looks every "
        f"{args.step} outcomes)"
    )
    for column in (
        "min labelled",
        "outcomes",
        "rule",
        "good rolled back",
        "bad rolled back",
        "bad: outcomes at first trip (median)",
    ):
        table.add_column(column, justify="right")
    for plan in args.plan:
        for relative in (False, True):
            good_trips = trips[("good", plan, relative)]
            bad_trips = [n for n in trips[("bad", plan, relative)] if n is not None]
            table.add_row(
                str(plan[0]),
                str(plan[1]),
                "+ parent" if relative else "absolute",
                f"{sum(n is not None for n in good_trips) / len(good_trips):.1%}",
                f"{len(bad_trips) / args.histories:.1%}",
                f"{int(np.median(bad_trips))}" if bad_trips else "-",
            )
    console.print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
