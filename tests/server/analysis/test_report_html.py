"""The self-contained HTML page."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import msgspec
import numpy as np

from bench.aa_population import PopulationSpec, simulate_population, users_at
from server.analysis.analysis import AnalysisSpec, analyse_experiment
from server.analysis.report import LookPoint, Report
from server.analysis.report_html import render_html

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)


def report_with_looks(name: str = "ml_scanning") -> Report:
    pop = simulate_population(PopulationSpec(n_users=1200, n_days=3, seed=5))
    labels = list(np.where(np.random.default_rng(5).random(1200) < 0.5, "control", "treatment"))
    spec = AnalysisSpec(experiment=name, arms=("control", "treatment"), weights=(0.5, 0.5))
    looks: list[LookPoint] = []
    r = None
    for day in range(3):
        r = analyse_experiment(
            users_at(pop, day, labels),
            msgspec.structs.replace(spec, look=day),
            now=NOW,
            looks=looks,
        )
        looks = r.looks
    assert r is not None
    return r


def test_page_is_self_contained_with_inline_plots() -> None:
    """Forest plot, SRM bars and the lift-by-look plot are inline SVG; nothing is fetched."""
    page = render_html(report_with_looks())
    assert page.startswith("<!doctype html>")
    assert page.count("<svg") == 3
    assert "<?xml" not in page
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", page)
    assert "<link" not in page
    assert "<script" not in page


def test_page_order_puts_the_sample_ratio_first() -> None:
    """SRM banner before the checklist, the checklist before the metric tables."""
    page = render_html(report_with_looks())
    assert page.index("Sample ratio") < page.index("Success criteria") < page.index("Efficiency")


def test_text_from_the_report_is_escaped() -> None:
    """An experiment named like markup is shown, not executed."""
    page = render_html(report_with_looks("<script>alert(1)</script>"))
    assert "<script>alert" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page


def test_the_same_report_renders_to_the_same_bytes() -> None:
    """No dates or random ids in the SVG: a stored report re-renders identically."""
    r = report_with_looks()
    assert render_html(r) == render_html(r)
