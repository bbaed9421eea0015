"""`just export`: the fitted models of `just train` become a served model version.

    python -m export.onnx [--bundle var/train/models.joblib] [--artifacts artifacts]
                          [--parity-rows 10000] [--no-report]

Builds the one ONNX graph, checks parity on at least --parity-rows rows (held-out rows,
topped up with freshly generated ones), writes artifacts/models/<version>/ (model.onnx,
manifest.json, parity.npz and report/ with the run's metrics.json and plots) and points
artifacts/current at it. Any failure is one line on stderr and a non-zero exit; nothing
is written when parity fails.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import NoReturn

import joblib
from rich.console import Console

from export.artifacts import ArtifactError
from export.parity import MIN_PARITY_ROWS, GraphError, ParityError
from export.version import export_version
from server.domain.artifact import MODEL_FILE
from train.fit import BUNDLE_FILE, METRICS_FILE
from train.training import TrainResult

__all__ = ["ExportError", "load_bundle", "main", "report_files"]


class ExportError(Exception):
    """The export cannot start; one line naming the path and what was expected."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message}\n")


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="python -m export.onnx", description=__doc__.split("\n")[0])
    parser.add_argument("--bundle", type=Path, default=Path("var/train") / BUNDLE_FILE)
    parser.add_argument("--artifacts", type=Path, default=Path("artifacts"))
    parser.add_argument("--parity-rows", type=int, default=MIN_PARITY_ROWS)
    parser.add_argument(
        "--no-report", action="store_true", help="do not copy metrics.json and plots into report/"
    )
    return parser


def load_bundle(path: Path) -> TrainResult:
    """The TrainResult `just train` saved (joblib: offline only, never on the server)."""
    if not path.is_file():
        raise ExportError(f"{path}: no such file: expected the fitted models (run `just train`)")
    try:
        result = joblib.load(path)
    except Exception as exc:  # any unpickling failure means "not a bundle"
        raise ExportError(
            f"{path}: cannot load ({type(exc).__name__}): expected a bundle from `just train`"
        ) from None
    if not isinstance(result, TrainResult):
        raise ExportError(f"{path} holds a {type(result).__name__}: expected a TrainResult")
    return result


def report_files(folder: Path) -> dict[str, bytes]:
    """metrics.json and the PNG plots of a training run, as report/<name>."""
    names = [METRICS_FILE, *sorted(p.name for p in folder.glob("*.png"))]
    return {f"report/{n}": (folder / n).read_bytes() for n in names if (folder / n).is_file()}


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    console = Console()
    try:
        result = load_bundle(args.bundle)
        args.artifacts.mkdir(parents=True, exist_ok=True)
        extra = {} if args.no_report else report_files(args.bundle.parent)
        with console.status("converting to ONNX and checking parity"):
            exported = export_version(
                result, args.artifacts, min_parity_rows=args.parity_rows, extra_files=extra
            )
    except (ExportError, ParityError, GraphError, ArtifactError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    folder, parity = exported.folder, exported.parity
    size_mb = (folder / MODEL_FILE).stat().st_size / 1e6
    console.print(
        f"parity on {parity.rows} rows: max |onnx - sklearn| {parity.max_abs_diff:.3g}, "
        f"max relative {parity.max_rel_diff:.3g} (worst: {parity.worst_output}, "
        f"tolerance {parity.tolerance:g})"
    )
    console.print(f"wrote {folder} ({MODEL_FILE} {size_mb:.2f} MB); current -> {folder.name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
