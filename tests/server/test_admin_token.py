"""The admin token is never printed: not in the bad-setting line, not in the server's
logs (start-up, access log, a refused call), not in any answer, not in repr(settings)."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from server.settings import Settings
from tests.server.granian_process import ServerProcess, server_env
from tests.server.test_serve import run_launcher

TOKEN = "tok-3f9a61c2e07b4d58-secret"  # distinctive enough to find anywhere


def test_a_bad_token_is_named_not_printed(tmp_path: Path, artifacts: Path) -> None:
    """A token under 16 characters stops start-up with one line naming the variable and
    the rule; the value appears nowhere in the output."""
    short = "sh0rt-s3cret"
    result = run_launcher(tmp_path, artifacts, admin_token=short)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "scanopt: bad setting: SCANOPT_ADMIN_TOKEN=(value not shown): expected a token of "
        "at least 16 characters (or empty to switch admin off)"
    ]
    assert short not in result.stdout + result.stderr


def test_repr_of_settings_hides_the_token_and_the_dsn() -> None:
    """repr() (and rich's repr) show every setting but the two secrets."""
    settings = Settings(admin_token=TOKEN, store_dsn="postgresql://scan:hunter2@db/scan")
    text = repr(settings)
    assert "admin_token='(not shown)'" in text
    assert "store_dsn='(not shown)'" in text
    assert "workers=" in text
    assert TOKEN not in text
    assert "hunter2" not in text
    assert repr(Settings()).count("(not shown)") == 1  # the DSN; no token: None is shown


@pytest.mark.slow
def test_a_running_server_never_prints_the_token(tmp_path: Path, artifacts: Path) -> None:
    """Admin calls with no token, a wrong one (the real one with a letter changed) and the
    right one, logged at DEBUG: neither token is in the log or in any answer."""
    wrong = TOKEN[:-1] + "X"
    env = server_env(tmp_path, artifacts, admin_token=TOKEN, workers=1, log_level="DEBUG")
    server = ServerProcess(env, tmp_path / "server.log")
    answers: list[str] = []
    try:
        server.wait_ready()
        with httpx.Client(base_url=server.url, timeout=30) as http:
            for headers, status in (
                ({}, 401),
                ({"Authorization": f"Bearer {wrong}"}, 403),
                ({"Authorization": wrong}, 401),
                ({"Authorization": f"Bearer {TOKEN}"}, 200),
            ):
                response = http.post("/v1/admin/reload", headers=headers)
                assert response.status_code == status, response.text
                answers.append(str(response.headers) + response.text)
            bad = http.put(
                "/v1/admin/experiments/ml_scanning",
                json={"coverage": 2},
                headers={"Authorization": f"Bearer {TOKEN}"},
            )
            assert bad.status_code == 400
            answers.append(bad.text)
    finally:
        server.stop()
    log = server.log.read_text(errors="replace")
    assert "admin" in log or "reload" in log  # the calls were logged at all
    for secret in (TOKEN, wrong, TOKEN[4:20]):
        assert secret not in log
        assert not any(secret in answer for answer in answers)
