"""Calibrated 90% intervals: conformalized quantile regression, per group of scans.

The quantile models give a raw interval [lo, hi] on a log scale. On the calibration split
(rows the quantile models never saw) each row gets the smallest widening t for which
[lo - max(t, 0), hi + t] holds its outcome; the (1 - alpha) finite-sample quantile of those
is the widening to use (Romano, Patterson, Candès 2019). Two departures from the textbook:

- The lower end only ever widens. Many scans come back empty, so the lower quantile often
  sits at the floor; letting a negative t tighten it would trade one side for the other.
- Mondrian groups: the calibration rows are split by their raw upper quantile or by the
  point prediction (small, medium, large scans) and each group gets its own widening.
  One global widening covers 90% on average but only ~75% of the largest scans
  (measured); per group, each size class is covered close to 90% too. Between two
  groups the widening ramps linearly over +-RAMP around the edge instead of jumping:
  float32 (ONNX) and float64 (scikit-learn) differ by ~1e-6, and a jump would make a row
  on an edge fail parity (about one export in a hundred, estimated). Edges sit in gaps
  between calibration predictions, and the ramp touches a fraction of a percent of rows,
  with a widening between its neighbours'.

Outcomes are compared on the scale of each end: for counts the lower end becomes
exp(lo) - 1 and the upper exp(hi) (the quantile models are fitted on log(count + U(0, 1))
jittered counts, Machado & Santos Silva 2005), so `y_lo` = log1p(count) and
`y_hi` = log(count) (minus infinity for 0, which any upper end covers).
"""

from __future__ import annotations

import math
from typing import Literal

import msgspec
import numpy as np
import numpy.typing as npt

__all__ = [
    "RAMP",
    "GroupKey",
    "Interval",
    "calibrate_interval",
    "conformal_widening",
    "group_edges",
]

Floats = npt.NDArray[np.float64]
# Half-width of the ramp between groups, on the log scale of the quantiles (1%).
RAMP = 0.01


GroupKey = Literal["upper", "point"]


class Interval(msgspec.Struct, frozen=True, kw_only=True):
    """Group edges and one widening per group (len(edges) + 1).

    `key` says what the groups split on: the raw upper quantile, or the point model's raw
    output (log mean count, log median duration), which is what "by tercile of predicted
    count" means to a user.
    """

    edges: list[float]
    widenings: list[float]
    ramp: float = RAMP
    key: GroupKey = "upper"

    def widening_for(self, raw_hi: Floats) -> Floats:
        """Each row's widening: its group's, ramping linearly to the next across an edge.

        t = w0 + sum over edges g of (w_g - w_(g-1)) * clip((hi - edge_g) / (2 ramp) + 1/2, 0, 1)
        """
        t = np.full(np.shape(raw_hi), self.widenings[0], dtype=np.float64)
        for g, edge in enumerate(self.edges, start=1):
            step = np.clip((raw_hi - edge) / (2.0 * self.ramp) + 0.5, 0.0, 1.0)
            t += (self.widenings[g] - self.widenings[g - 1]) * step
        return t

    def apply(
        self, raw_lo: Floats, raw_hi: Floats, raw_point: Floats | None = None
    ) -> tuple[Floats, Floats]:
        """The calibrated interval, still on the quantile models' scale.

        `raw_point` is needed when the groups split on the point prediction.
        """
        if self.key == "point" and raw_point is None:
            raise ValueError("this interval's groups split on the point: pass raw_point")
        t = self.widening_for(
            raw_point if self.key == "point" and raw_point is not None else raw_hi
        )
        return raw_lo - np.maximum(t, 0.0), raw_hi + t

    def as_manifest(self, target: str) -> dict[str, float]:
        out = {f"{target}.widening_{g}": w for g, w in enumerate(self.widenings)}
        out.update({f"{target}.edge_{g + 1}": e for g, e in enumerate(self.edges)})
        out[f"{target}.ramp"] = self.ramp
        out[f"{target}.groups_on_point"] = 1.0 if self.key == "point" else 0.0
        return out


def conformal_widening(lo: Floats, hi: Floats, y_lo: Floats, y_hi: Floats, alpha: float) -> float:
    """The finite-sample (1 - alpha) quantile of each row's smallest covering widening."""
    upper = y_hi - hi
    lower = np.where(lo > y_lo, lo - y_lo, -np.inf)
    scores = np.maximum(upper, lower)
    n = scores.size
    level = min(1.0, math.ceil((n + 1) * (1.0 - alpha)) / n)
    return float(np.quantile(scores, level, method="higher"))


def group_edges(raw_hi: Floats, groups: int) -> list[float]:
    """Edges splitting `raw_hi` into about equal groups, each in the widest nearby gap."""
    values = np.unique(raw_hi)
    if groups < 2 or values.size < 2 * groups:
        return []
    edges = []
    window = max(1, values.size // 100)
    for q in np.linspace(0.0, 1.0, groups + 1)[1:-1]:
        k = int(np.searchsorted(values, np.quantile(raw_hi, q)))
        a, b = max(0, k - window), min(values.size - 1, k + window)
        gaps = np.diff(values[a : b + 1])
        i = a + int(np.argmax(gaps))
        edges.append(float((values[i] + values[i + 1]) / 2.0))
    return sorted(set(edges))


def calibrate_interval(
    raw_lo: Floats,
    raw_hi: Floats,
    y_lo: Floats,
    y_hi: Floats,
    alpha: float,
    groups: int,
    raw_point: Floats | None = None,
) -> Interval:
    """Mondrian CQR on the calibration split; fewer groups when a group would be tiny.

    The groups split on `raw_point` when given, else on the raw upper quantile.
    """
    # Below ~100 rows a group's 90% quantile rests on a handful of scores.
    groups = max(1, min(groups, raw_hi.size // 100))
    key = raw_hi if raw_point is None else raw_point
    edges = group_edges(key, groups)
    group = np.searchsorted(np.asarray(edges), key, side="right")
    widenings = []
    for g in range(len(edges) + 1):
        rows = group == g
        widenings.append(
            conformal_widening(raw_lo[rows], raw_hi[rows], y_lo[rows], y_hi[rows], alpha)
        )
    return Interval(edges=edges, widenings=widenings, key="upper" if raw_point is None else "point")
