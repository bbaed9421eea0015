"""deploy/prometheus/alerts.yml: valid rules, and every alert tested both ways by promtool."""

from __future__ import annotations

from typing import Any

import yaml

from tests.deploy.tools import PROMETHEUS_DIR, RULE_TESTS, RULES, promtool


def _rules() -> list[dict[str, Any]]:
    groups = yaml.safe_load(RULES.read_text())["groups"]
    return [rule for group in groups for rule in group["rules"]]


def test_promtool_checks_the_rules() -> None:
    """`promtool check rules` accepts alerts.yml and finds every rule in it."""
    output = promtool("check", "rules", str(RULES))
    assert f"SUCCESS: {len(_rules())} rules found" in output


def test_promtool_rule_tests_pass() -> None:
    """`promtool test rules alerts_test.yml` passes: each alert fires and stays silent as pinned."""
    output = promtool("test", "rules", RULE_TESTS.name, cwd=PROMETHEUS_DIR)
    assert "SUCCESS" in output


def test_every_alert_is_tested_firing_and_silent() -> None:
    """Each alert in alerts.yml has a rule test expecting it to fire and one expecting silence."""
    alerts = {rule["alert"] for rule in _rules() if "alert" in rule}
    fired: set[str] = set()
    silent: set[str] = set()
    for case in yaml.safe_load(RULE_TESTS.read_text())["tests"]:
        for check in case.get("alert_rule_test", []):
            (fired if check["exp_alerts"] else silent).add(check["alertname"])
    assert alerts <= fired, f"never tested firing: {sorted(alerts - fired)}"
    assert alerts <= silent, f"never tested silent: {sorted(alerts - silent)}"


def test_every_alert_says_what_is_wrong() -> None:
    """Each alert carries a severity (page or ticket), a summary and a description."""
    for rule in _rules():
        if "alert" in rule:
            assert rule["labels"]["severity"] in {"page", "ticket"}, rule["alert"]
            assert {"summary", "description"} <= set(rule["annotations"]), rule["alert"]
