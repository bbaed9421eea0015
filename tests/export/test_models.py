"""`python -m export.models`: listing, moves and prunes as a person runs them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from litestar.testing import TestClient

from bench.servers import free_port
from export.models import fetch_versions, main, versions_table
from server.app import create_app
from server.domain.alias import RollbackMark, mark_rolled_back
from tests.export.conftest import LINEAGE
from tests.server.conftest import make_settings

V1, V2, V3, V4 = LINEAGE


def test_list_json_marks_current_and_lineage(
    lineage: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """--json lists every version newest first with its parent and the current flag."""
    assert main(["list", "--artifacts", str(lineage), "--json"]) == 0
    body = json.loads(capsys.readouterr().out)
    assert body["current"] == V4
    assert [v["version"] for v in body["versions"]] == [V4, V3, V2, V1]
    assert [v["current"] for v in body["versions"]] == [True, False, False, False]
    assert body["versions"][0]["parent_version"] == V3
    assert body["versions"][0]["metrics"]["result_count"]["mae"] > 0


def test_list_table_shows_every_version(lineage: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The table names each version in full and the current one in its title."""
    assert main(["list", "--artifacts", str(lineage)]) == 0
    out = capsys.readouterr().out
    assert f"current: {V4}" in out
    assert all(v in out for v in LINEAGE)


def test_promote_and_rollback_print_the_move(
    lineage: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Each move prints from and to; the pointer follows."""
    assert main(["promote", "--artifacts", str(lineage), V2, "--no-targets"]) == 0
    assert f"current {V4} -> {V2}" in capsys.readouterr().out
    assert main(["rollback", "--artifacts", str(lineage), "--no-targets"]) == 0
    assert f"current {V2} -> {V1}" in capsys.readouterr().out
    assert (lineage / "current").read_text().strip() == V1


def test_a_refused_promotion_is_one_line_and_exit_1(
    lineage: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A missing version: exit 1, one stderr line naming it, current unchanged."""
    assert main(["promote", "--artifacts", str(lineage), "nope", "--no-targets"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert err.startswith("error: version 'nope' does not exist")
    assert (lineage / "current").read_text().strip() == V4


def test_a_rolled_back_version_is_promoted_only_when_asked_by_name(
    lineage: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The server's mark: the listing shows R and why, promote refuses in one line, and
    --allow-rolled-back promotes it."""
    mark = RollbackMark(
        rolled_back_at="2026-12-01T22:00:00+00:00",
        to_version=V1,
        reason="accuracy",
        detail="duration_s online MAE 48 over the plan's bar 5",
    )
    mark_rolled_back(lineage, V2, mark)
    assert main(["list", "--artifacts", str(lineage)]) == 0
    assert f"R {V2}: at 2026-12-01T22:00:00+00:00 to {V1} (accuracy)" in capsys.readouterr().out
    assert main(["promote", "--artifacts", str(lineage), V2, "--no-targets"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "was rolled back" in err
    assert "--allow-rolled-back" in err
    assert (lineage / "current").read_text().strip() == V4
    argv = ["promote", "--artifacts", str(lineage), V2, "--no-targets", "--allow-rolled-back"]
    assert main(argv) == 0
    assert (lineage / "current").read_text().strip() == V2


def test_prune_prints_what_it_removed(lineage: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """prune --keep 2 removes the two oldest (neither current nor its parent)."""
    assert main(["prune", "--artifacts", str(lineage), "--keep", "2"]) == 0
    assert f"removed 2 version(s): {V2}, {V1}" in capsys.readouterr().out


def test_a_bad_command_line_exits_2(lineage: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A missing VERSION argument is a usage error, not a traceback."""
    with pytest.raises(SystemExit) as exited:
        main(["promote", "--artifacts", str(lineage)])
    assert exited.value.code == 2
    assert "version" in capsys.readouterr().err


def test_a_broken_version_shows_its_problem_in_the_table(
    lineage: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """An unreadable manifest is a row with the reason (brackets and all), not a crash."""
    (lineage / "models" / V2 / "manifest.json").write_text("[oops")
    assert main(["list", "--artifacts", str(lineage)]) == 0
    out = capsys.readouterr().out
    assert "not a manifest" in out
    assert V2 in out


def test_the_listing_from_a_running_server_marks_what_it_serves(lineage: Path) -> None:
    """--url reads GET /v1/models/versions: the same versions plus the one served."""
    with TestClient(create_app(make_settings(lineage))) as client:
        listing = fetch_versions(str(client.base_url), client)
    assert listing.serving == V4
    assert listing.current == V4
    assert [v.version for v in listing.versions] == [V4, V3, V2, V1]
    table = versions_table(listing)
    assert table.title is not None
    assert f"the answering worker serves {V4}" in str(table.title)


def test_an_unreachable_server_is_one_line(
    lineage: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """--url to a closed port: exit 1 and one line naming the URL."""
    url = f"http://127.0.0.1:{free_port()}"
    assert main(["list", "--url", url]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert f"{url}/v1/models/versions" in err


@pytest.mark.parametrize(
    ("dsn", "expected"),
    [
        ("mysql://root@db/scan", "--store: store DSN: expected sqlite:///path.db"),
        ("postgresql://nobody@127.0.0.1:1/none", "--store: cannot open the store"),
    ],
)
def test_a_bad_store_for_shadow_figures_is_one_line(
    lineage: Path, capsys: pytest.CaptureFixture[str], dsn: str, expected: str
) -> None:
    """`just models --store` with a DSN of an unknown kind or an unreachable server."""
    assert main(["list", "--artifacts", str(lineage), "--store", dsn]) == 1
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith(f"error: {expected}")
