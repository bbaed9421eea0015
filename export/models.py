"""`just models`, `just promote`, `just rollback`, `just prune`: the versions and the alias.

    python -m export.models list     [--json] [--url URL | --store DSN]   (each command also takes
                                                         --artifacts DIR, default artifacts)
    python -m export.models promote  VERSION [--no-targets] [--allow-rolled-back]
    python -m export.models rollback [--no-targets]
    python -m export.models prune    [--keep 5] [--dry-run]

`list` shows every version newest first with its held-out metrics, its parent, whether the
server rolled it back after a failed probation (R, with why) and which one
`artifacts/current` names (the version every worker serves within one poll interval);
with --url it asks a running server instead and also marks what the answering worker serves
and, when the server runs a shadow version, its paired comparison with the champion;
--store reads every shadow comparison from a store directly (SQLite or PostgreSQL).
`promote` validates a version (the checks of `just validate`) and then switches the alias
atomically; `rollback` promotes the current version's parent; `prune` keeps the N newest
versions plus the current one and its parent. A refused move is one line on stderr, exit
1, and the alias untouched; a malformed command line exits 2.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

import msgspec
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from export.lifecycle import LifecycleError, Move, promote, prune, rollback
from server.domain.versions import ShadowReport, VersionList, list_versions

if TYPE_CHECKING:
    import httpx

__all__ = ["fetch_versions", "main", "read_shadow", "shadow_table", "versions_table"]

_DEFAULT_KEEP = 5
# Pairs a shadow figure needs, as SCANOPT_ACCURACY_MIN_LABELLED's default.
_MIN_PAIRS = 30


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message}\n")


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="python -m export.models", description=__doc__.split("\n")[0])
    # Every command takes --artifacts after its name, as `just models --artifacts X` passes it.
    common = _Parser(add_help=False)
    common.add_argument("--artifacts", type=Path, default=Path("artifacts"))
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    listing = commands.add_parser(
        "list", parents=[common], help="versions, metrics, lineage, the current one"
    )
    listing.add_argument("--json", action="store_true", help="print the listing as JSON")
    listing.add_argument(
        "--url",
        default=None,
        help="ask a running server (GET URL/v1/models/versions) instead of reading --artifacts, "
        "so the table also shows the version the answering worker serves",
    )
    listing.add_argument(
        "--store",
        default=None,
        help="also read every shadow comparison from this store DSN (sqlite:///var/scanopt.db "
        "or postgresql://...); without it only --url shows shadow figures",
    )
    for name, text in (
        ("promote", "validate VERSION, then serve it"),
        ("rollback", "serve the parent"),
    ):
        sub = commands.add_parser(name, parents=[common], help=text)
        if name == "promote":
            sub.add_argument("version")
            sub.add_argument(
                "--allow-rolled-back",
                action="store_true",
                help="promote a version the server rolled back after a failed probation",
            )
        sub.add_argument(
            "--no-targets",
            action="store_true",
            help="check integrity only, not the metric targets (for tiny test models)",
        )
    pruning = commands.add_parser(
        "prune", parents=[common], help="delete old versions (never current or its parent)"
    )
    pruning.add_argument("--keep", type=int, default=_DEFAULT_KEEP)
    pruning.add_argument("--dry-run", action="store_true")
    return parser


def _metric(listing_metrics: dict[str, dict[str, float]], group: str, key: str, fmt: str) -> str:
    value = listing_metrics.get(group, {}).get(key)
    return "-" if value is None else format(value, fmt)


def fetch_versions(url: str, client: httpx.Client | None = None) -> VersionList:
    """GET /v1/models/versions from a running server; LifecycleError when it cannot answer."""
    import httpx  # only for --url (a dev dependency, like the Python client's)

    target = url.rstrip("/") + "/v1/models/versions"
    try:
        response = (client or httpx).get(target, timeout=10.0)
        response.raise_for_status()
        return msgspec.json.decode(response.content, type=VersionList)
    except (httpx.HTTPError, msgspec.DecodeError) as exc:
        raise LifecycleError(
            f"{target}: {exc}: expected a scanopt server's version listing"
        ) from None


def versions_table(listing: VersionList) -> Table:
    """The listing as a rich table, the current version marked (* current, S served,
    R rolled back by the server after a failed probation, sh the shadow version)."""
    title = f"Model versions (current: {listing.current or 'none'}"
    if listing.serving is not None:
        title += f"; the answering worker serves {listing.serving}"
    table = Table(title=title + ")")
    for column in (
        "",
        "version",
        "parent",
        "rows",
        "count MAE",
        "count cov90",
        "dur MAE (s)",
        "dur cov90",
        "empty Brier",
        "MB",
    ):
        named = column in {"", "version", "parent"}
        # Version names are never folded: they are what a person copies into `just promote`.
        table.add_column(column, justify="left" if named else "right", no_wrap=named)
    for v in listing.versions:
        if v.problem is not None:
            table.add_row("[red]![/]", v.version, "[red]unreadable (below)[/]")
            continue
        m = v.metrics
        shadowing = listing.shadow is not None and v.version == listing.shadow.version
        table.add_row(
            ("[green]*[/]" if v.current else "")
            + ("[cyan]S[/]" if v.version == listing.serving else "")
            + ("[red]R[/]" if v.rolled_back is not None else "")
            + ("[magenta]sh[/]" if shadowing else ""),
            v.version,
            v.parent_version or "-",
            "-" if v.training_rows is None else f"{v.training_rows:,}",
            _metric(m, "result_count", "mae", ".3f"),
            _metric(m, "result_count", "coverage_90", ".3f"),
            _metric(m, "duration_s", "mae", ".3f"),
            _metric(m, "duration_s", "coverage_90", ".3f"),
            _metric(m, "empty", "brier", ".4f"),
            "-" if v.model_bytes is None else f"{v.model_bytes / 1e6:.2f}",
        )
    return table


def read_shadow(dsn: str) -> ShadowReport:
    """Every (champion, shadow) comparison in the store `dsn` names."""
    from server.errors import InvalidInputError
    from server.monitoring.shadow import read_report
    from server.store import store_from_dsn

    async def read() -> ShadowReport:
        try:
            store = store_from_dsn(dsn, pool_size=1)
        except InvalidInputError as exc:
            raise LifecycleError(f"--store: {exc.message}") from None
        try:
            await store.open()
        except Exception as exc:  # each driver raises its own errors; one line names it
            reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            raise LifecycleError(f"--store: cannot open the store: {reason}") from None
        try:
            return await read_report(store, version=None, share=None, min_pairs=_MIN_PAIRS)
        finally:
            await store.close()

    return asyncio.run(read())


def _fmt(value: float | None, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def shadow_table(report: ShadowReport) -> Table:
    """The paired comparisons: both versions' MAE on the same requests and the verdict."""
    title = "Shadow comparison"
    if report.version is not None:
        title += f" (shadow {report.version}, share {report.share:g})"
    table = Table(title=title)
    for column in ("champion", "shadow", "pairs", "target", "champion MAE", "shadow MAE"):
        table.add_column(column, no_wrap=column in {"champion", "shadow"})
    table.add_column("shadow - champion [95% sequence]")
    table.add_column("p")
    table.add_column("verdict")
    for c in report.comparisons:
        for t in (c.result_count, c.duration_s):
            interval = (
                "-"
                if t.difference is None
                else f"{t.difference:+.3f} [{t.lower:+.3f}, {t.upper:+.3f}]"
            )
            colour = {"better": "green", "worse": "red"}.get(t.verdict)
            table.add_row(
                c.champion,
                c.shadow,
                f"{c.n:,}",
                t.target,
                _fmt(t.champion_mae, ".3f"),
                _fmt(t.shadow_mae, ".3f"),
                interval,
                _fmt(t.p_value, ".3g"),
                t.verdict if colour is None else f"[{colour}]{t.verdict}[/]",
            )
    return table


def _moved(console: Console, move: Move, what: str) -> None:
    if move.changed:
        console.print(f"{what}: current {move.previous or 'none'} -> {move.version}")
    else:
        console.print(f"{what}: current already names {move.version}; nothing changed")


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    # Piped or captured output has no terminal width; the table needs ~130 columns.
    console = Console() if sys.stdout.isatty() else Console(width=140)
    try:
        if args.command == "list":
            listing = (
                list_versions(args.artifacts) if args.url is None else fetch_versions(args.url)
            )
            if args.store is not None:
                listing = msgspec.structs.replace(listing, shadow=read_shadow(args.store))
            if args.json:
                sys.stdout.write(msgspec.json.encode(listing).decode() + "\n")
            else:
                console.print(versions_table(listing))
                for v in listing.versions:
                    if v.problem is not None:
                        console.print(f"[red]![/] {v.version}: {escape(v.problem)}")
                    if v.rolled_back is not None:
                        console.print(f"[red]R[/] {v.version}: {escape(v.rolled_back)}")
                if listing.shadow is not None:
                    if listing.shadow.problem is not None:
                        console.print(f"[red]![/] shadow: {escape(listing.shadow.problem)}")
                    elif listing.shadow.comparisons:
                        console.print(shadow_table(listing.shadow))
                    else:
                        console.print("shadow: no labelled request scored by both versions yet")
        elif args.command == "promote":
            _moved(
                console,
                promote(
                    args.artifacts,
                    args.version,
                    targets=not args.no_targets,
                    allow_rolled_back=args.allow_rolled_back,
                ),
                "promoted",
            )
        elif args.command == "rollback":
            _moved(console, rollback(args.artifacts, targets=not args.no_targets), "rolled back")
        else:
            removed = prune(args.artifacts, keep=args.keep, dry_run=args.dry_run)
            verb = "would remove" if args.dry_run else "removed"
            console.print(
                f"{verb} {len(removed)} version(s)" + (f": {', '.join(removed)}" if removed else "")
            )
    except LifecycleError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
