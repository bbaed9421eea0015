"""The A/A picture: are null p-values uniform, and does looking every day inflate errors?"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from bench.aa_checks import AaResult

__all__ = ["plot_aa"]


def plot_aa(result: AaResult, path: Path) -> Path:
    """Write a PNG: final-look p-value histograms, and the share of runs crossed by each look."""
    s = result.settings
    main = [o for o in result.metrics if o.main]
    fig = Figure(figsize=(12, 4.5))
    hist, cross = fig.subplots(1, 2)
    edges = np.linspace(0.0, 1.0, 21)
    for o in main:
        hist.stairs(o.p_value_histogram, edges, label=o.metric)
    hist.axhline(s.rerandomizations / 20, color="black", linestyle=":", label="uniform")
    hist.set_xlabel("p-value at the final look")
    hist.set_ylabel(f"runs of {s.rerandomizations:,}")
    hist.set_title("Null p-values should be flat", fontsize=10)
    hist.legend(frameon=False, fontsize=8)
    looks = np.arange(s.n_looks)
    for o in main:
        (line,) = cross.plot(looks, o.peeking_crossed_by_look, linestyle="--", linewidth=1)
        cross.plot(looks, o.sequential_crossed_by_look, color=line.get_color(), label=o.metric)
    cross.axhline(s.alpha, color="black", linestyle=":", label=f"alpha = {s.alpha:g}")
    cross.set_xlabel("daily look")
    cross.set_ylabel("share of runs ever below alpha")
    cross.set_title("Peeking at fixed p (dashed) vs always-valid p (solid)", fontsize=10)
    cross.legend(frameon=False, fontsize=8)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110, bbox_inches="tight")
    return path
