"""Drift of recent traffic against the manifest's reference histograms, with known alarm rates.

Every feature and every model output has a reference histogram in the manifest (`edges`,
`shares`). Recent predictions are counted into those same bins (server.monitoring.counts),
so a window is a vector of counts per column, and counts from any number of workers and
replicas add up exactly. Against the reference shares each column gets:

- PSI = sum (cur - ref) ln(cur / ref), shares floored at 1e-4 (as Evidently does), for
  every column; convention: 0.1 moderate, 0.2 major;
- Wasserstein-1 over the reference std for numeric and ordinal columns, mass at each
  bin's midpoint: sum_i |F_ref(i) - F_cur(i)| (c_{i+1} - c_i) / std_ref;
- Jensen-Shannon distance (natural log, the square root of the divergence, as
  scipy.spatial.distance.jensenshannon) for binary columns.

Thresholds with a stated false-alarm rate. A fixed threshold (Evidently's 0.1) alarms
more or less often depending on how many rows a window holds, and testing ~40 columns at
once multiplies the chance that one of them trips. So each threshold is the larger of the
conventional one (PSI 0.2, Wasserstein 0.1, Jensen-Shannon 0.1: smaller shifts are not
worth a page) and the (1 - alpha / T) quantile of that score on windows of the same size
drawn from the reference itself (Monte Carlo, multinomial draws from the shares), where T
is the number of (column, score) tests: by Bonferroni, a window drawn from the reference
trips any test with probability at most alpha, whatever the dependence between columns.
Windows are calibrated at the largest power of two not above their size: the null
quantiles shrink as windows grow, so this errs towards fewer alarms.

Live windows are stretches of time, not rows drawn at random from the training year, so
each column is calibrated the way its rows arise in such a stretch (its `grain`):

- ``row``: rows vary from scan to scan (filters, universe, model outputs): the window is
  multinomial from the shares, as above. Consecutive live scans are more alike than that
  (the outputs follow the day's VIX; people re-run their saved scans), which these
  thresholds do not allow for: that needs a null from stretches of the training history;
- ``day``: one market-wide level per trading day (volatility_index): a window of up to a
  day sits at one level, so the null window is all its rows in one bin, drawn with the
  reference shares (exact: one window per bin, weighted by its share). Both scores are
  convex in the window's shares, so a window that straddles two bins or two days scores
  no higher than the worse of its bins, and the bound still holds. Such a column has two
  more bins, for values above and below the reference's outer edges (the training
  history's largest and smallest value; stored after the reference's own bins, above then
  below, with reference share 0 and mass half a bin beyond the edge): a window whose level
  lies inside the training range looks like some training day and cannot alarm, one
  beyond it can. So the rate this column adds is the chance that a new day lies beyond the
  range of every training day: about 2 / (days + 1) if days were exchangeable, but a
  persistent level such as the VIX holds far fewer independent days than a year has, so
  the measured rate is higher (`just drift-check`, time-ordered windows);
- ``clock``: set by when the window is, not by what is sent (weekday, market_open,
  minutes_since_open): a window of an hour sees one weekday, one open/closed state and one
  hour of the session, against a reference of every hour of every weekday. Scored and
  exported, never alarmed, and not counted in T.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Mapping, Sequence
from typing import Final

import msgspec
import numpy as np
import numpy.typing as npt

from server.domain.artifact import Manifest
from server.monitoring.schemas import ColumnDrift

__all__ = [
    "CLOCK_COLUMNS",
    "CONVENTIONAL",
    "DAY_COLUMNS",
    "FALSE_ALARM_RATE",
    "METHOD",
    "MIN_ROWS",
    "Column",
    "Reference",
    "Thresholds",
    "bin_values",
    "calibrate",
    "jensen_shannon",
    "psi",
    "wasserstein",
]

FALSE_ALARM_RATE: Final = 0.01
# Below this many rows a window says "not enough data" instead of scores.
MIN_ROWS: Final = 256
CONVENTIONAL: Final[Mapping[str, float]] = {"psi": 0.2, "wasserstein": 0.1, "jensen_shannon": 0.1}
# The columns calibrated by their grain (module docstring); every other column is `row`.
DAY_COLUMNS: Final = frozenset({"volatility_index"})
CLOCK_COLUMNS: Final = frozenset({"weekday", "market_open", "minutes_since_open"})
_FLOOR: Final = 1e-4
_DRAWS: Final = 40_000
# Names the calibration below (draws, seed, the exact two-bin case), so thresholds kept in
# the store are recomputed when it changes.
METHOD: Final = f"mc{_DRAWS}-seed0-exact2-grain1"

Counts = npt.NDArray[np.float64]


class Column(msgspec.Struct, frozen=True, kw_only=True, dict=True):
    """One column's reference: bin edges, shares, kind and the scores it is tested with."""

    name: str
    kind: str
    edges: tuple[float, ...]
    shares: tuple[float, ...]

    @property
    def scores(self) -> tuple[str, str]:
        return ("psi", "jensen_shannon") if self.kind == "binary" else ("psi", "wasserstein")

    @property
    def grain(self) -> str:
        """How the column's rows arise in a stretch of time: row, day or clock."""
        if self.name in CLOCK_COLUMNS:
            return "clock"
        return "day" if self.name in DAY_COLUMNS else "row"

    @property
    def alarms(self) -> bool:
        return self.grain != "clock"

    @property
    def n_bins(self) -> int:
        """Bins counted: the reference's, and for a day column the two beyond its edges."""
        return len(self.shares) + (2 if self.grain == "day" else 0)

    @functools.cached_property
    def scored(self) -> Column:
        """The column scores are computed on: a day column with its beyond-range bins."""
        if self.grain != "day":
            return self
        e = self.edges
        edges = (2 * e[0] - e[1], *e, 2 * e[-1] - e[-2])
        return Column(name=self.name, kind=self.kind, edges=edges, shares=(0.0, *self.shares, 0.0))

    def in_scoring_order(self, counts: Counts) -> Counts:
        """Counts (stored order) in the bin order of `scored`: below, the reference's, above."""
        if self.grain != "day":
            return counts
        k = len(self.shares)
        ordered: Counts = np.concatenate(
            [counts[..., k + 1 :], counts[..., :k], counts[..., k : k + 1]], axis=-1
        )
        return ordered

    @functools.cached_property
    def inner_edges(self) -> npt.NDArray[np.float64]:
        return np.asarray(self.edges[1:-1], dtype=np.float64)

    @functools.cached_property
    def centers(self) -> npt.NDArray[np.float64]:
        e = np.asarray(self.edges, dtype=np.float64)
        return (e[:-1] + e[1:]) / 2

    @functools.cached_property
    def std(self) -> float:
        p = np.asarray(self.shares)
        mean = float(p @ self.centers)
        return math.sqrt(float(p @ (self.centers - mean) ** 2))


class Reference(msgspec.Struct, frozen=True, kw_only=True):
    """Every column of one model version: features (in model order), then outputs."""

    version: str
    columns: tuple[Column, ...]

    @classmethod
    def of(cls, manifest: Manifest) -> Reference:
        kinds = {f.name: str(f.kind) for f in manifest.feature_spec}
        columns = tuple(
            Column(
                name=name,
                kind=kinds.get(name, "numeric"),  # model outputs are numbers
                edges=tuple(ref.edges),
                shares=tuple(ref.shares),
            )
            for name, ref in manifest.reference.items()
        )
        return cls(version=manifest.version, columns=columns)

    @property
    def tests(self) -> int:
        """The (column, score) tests that can alarm: T in the Bonferroni level."""
        return sum(len(c.scores) for c in self.columns if c.alarms)


def bin_values(column: Column, values: npt.NDArray[np.floating]) -> npt.NDArray[np.int64]:
    """Bin index of each value; values beyond the outer edges count in the end bins (a day
    column's in its bins beyond the edges: above, then below)."""
    index = np.searchsorted(column.inner_edges, values, side="right").astype(np.int64)
    if column.grain == "day":
        k = len(column.shares)
        index = np.where(values > column.edges[-1], k, index)
        index = np.where(values < column.edges[0], k + 1, index)
    return index


def _shares(counts: Counts) -> Counts:
    total = counts.sum(axis=-1, keepdims=True)
    shares: Counts = counts / np.maximum(total, 1.0)
    return shares


def psi(reference: Sequence[float], counts: Counts) -> Counts:
    """PSI of each row of `counts` (windows x bins) against `reference` shares."""
    ref = np.maximum(np.asarray(reference), _FLOOR)
    cur = np.maximum(_shares(counts), _FLOOR)
    result: Counts = ((cur - ref) * np.log(cur / ref)).sum(axis=-1)
    return result


def wasserstein(column: Column, counts: Counts) -> Counts:
    """Wasserstein-1 distance over the reference std of each row of `counts`."""
    if column.std <= 0:
        return np.zeros(counts.shape[:-1])
    gaps = np.diff(column.centers)
    cdf_ref = np.cumsum(column.shares)[:-1]
    cdf_cur = np.cumsum(_shares(counts), axis=-1)[..., :-1]
    result: Counts = (np.abs(cdf_cur - cdf_ref) * gaps).sum(axis=-1) / column.std
    return result


def jensen_shannon(reference: Sequence[float], counts: Counts) -> Counts:
    """Jensen-Shannon distance (natural log) of each row of `counts` against `reference`."""
    p = np.asarray(reference, dtype=np.float64)
    q = _shares(counts)
    m = (p + q) / 2

    def kl(a: Counts, b: Counts) -> Counts:
        with np.errstate(divide="ignore", invalid="ignore"):
            terms = np.where(a > 0, a * np.log(a / b), 0.0)
        out: Counts = terms.sum(axis=-1)
        return out

    divergence = np.maximum((kl(p, m) + kl(q, m)) / 2, 0.0)
    result: Counts = np.sqrt(divergence)
    return result


def score(column: Column, name: str, counts: Counts) -> Counts:
    """Score `name` of each row of `counts` (stored bin order) for `column`."""
    counts = column.in_scoring_order(counts)
    column = column.scored
    if name == "psi":
        return psi(column.shares, counts)
    if name == "wasserstein":
        return wasserstein(column, counts)
    return jensen_shannon(column.shares, counts)


class Thresholds(msgspec.Struct, frozen=True, kw_only=True):
    """Alarm thresholds of every (column, score) for windows of `rows` rows."""

    rows: int
    alpha: float
    values: dict[str, dict[str, float]]


def calibration_rows(n: int) -> int:
    """The window size thresholds are calibrated at: the largest power of two <= n."""
    return 1 << (max(n, 1).bit_length() - 1)


def _null_quantiles(
    column: Column, rows: int, level: float, draws: int, rng: np.random.Generator
) -> dict[str, float]:
    """The `level` quantile of each of the column's scores on windows of `rows` rows drawn
    from the reference: exact for a two-bin column, Monte Carlo (`draws` windows, shared
    by the scores) otherwise."""
    p = np.asarray(column.shares, dtype=np.float64)
    p = p / p.sum()
    if column.grain == "day":
        # The whole window in one bin, that bin drawn with the reference shares.
        windows = np.eye(len(p), column.n_bins) * rows
        return {n: _exact_quantile(score(column, n, windows), p, level) for n in column.scores}
    if len(p) == 2:
        # A window is fully described by the count in the first bin, k ~ Binomial(rows, p0):
        # score every k once and read the quantile off the exact distribution.
        k = np.arange(rows + 1, dtype=np.float64)
        windows = np.stack([k, rows - k], axis=1)
        mass = _binomial_pmf(rows, float(p[0]))
        return {n: _exact_quantile(score(column, n, windows), mass, level) for n in column.scores}
    null = rng.multinomial(rows, p, size=draws).astype(np.float64)
    return {
        name: float(np.quantile(score(column, name, null), level, method="higher"))
        for name in column.scores
    }


def _exact_quantile(values: Counts, mass: Counts, level: float) -> float:
    """The `level` quantile of a score taking `values` with probabilities `mass`."""
    order = np.argsort(values, kind="stable")
    cdf = np.cumsum(mass[order])
    index = min(int(np.searchsorted(cdf, level - 1e-12)), len(values) - 1)
    return float(values[order][index])


def _binomial_pmf(n: int, p: float) -> Counts:
    """P(K = k) for k = 0..n, K ~ Binomial(n, p): log-space recurrence, stable at any n."""
    if p <= 0.0 or p >= 1.0:
        out = np.zeros(n + 1)
        out[0 if p <= 0.0 else -1] = 1.0
        return out
    k = np.arange(n, dtype=np.float64)
    steps = np.log((n - k) / (k + 1)) + math.log(p) - math.log1p(-p)
    log = n * math.log1p(-p) + np.concatenate(([0.0], np.cumsum(steps)))
    mass: Counts = np.exp(log - log.max())
    result: Counts = mass / mass.sum()
    return result


def calibrate(
    reference: Reference,
    rows: int,
    *,
    alpha: float = FALSE_ALARM_RATE,
    draws: int = _DRAWS,
    seed: int = 0,
) -> Thresholds:
    """Thresholds for windows of `rows` rows holding the family false-alarm rate at alpha."""
    rng = np.random.default_rng(seed)
    level = 1.0 - alpha / reference.tests
    values: dict[str, dict[str, float]] = {}
    for column in reference.columns:
        if not column.alarms:
            continue
        null = _null_quantiles(column, rows, level, draws, rng)
        values[column.name] = {name: max(CONVENTIONAL[name], q) for name, q in null.items()}
    return Thresholds(rows=rows, alpha=alpha, values=values)


def evaluate(
    reference: Reference, counts: Mapping[str, Mapping[int, int]], thresholds: Thresholds
) -> list[ColumnDrift]:
    """Each column's scores, thresholds and alarm for one window of merged bin counts."""
    out = []
    for column in reference.columns:
        got = counts.get(column.name, {})
        vector = np.zeros(column.n_bins)
        for b, n in got.items():
            if 0 <= b < len(vector):
                vector[b] += n
        n = int(vector.sum())
        if n < MIN_ROWS:
            out.append(ColumnDrift(column=column.name, kind=column.kind, n=n))
            continue
        found = {name: float(score(column, name, vector)) for name in column.scores}
        limits = thresholds.values.get(column.name, {})  # none for clock columns
        out.append(
            ColumnDrift(
                column=column.name,
                kind=column.kind,
                n=n,
                psi=found["psi"],
                psi_threshold=limits.get("psi"),
                wasserstein=found.get("wasserstein"),
                wasserstein_threshold=limits.get("wasserstein"),
                jensen_shannon=found.get("jensen_shannon"),
                jensen_shannon_threshold=limits.get("jensen_shannon"),
                alarm=any(found[name] > limits[name] for name in limits),
            )
        )
    return out
