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
quantiles shrink as windows grow, so this errs towards fewer alarms. With the design
effects below, a column's effective size stops growing at the largest window they were
measured at, and so do the thresholds: windows beyond it share one calibration. Those
few sizes are calibrated at export into the manifest (`drift_thresholds`), so a serving
worker calibrates only for a version exported before that, or with another `METHOD`.

Live windows are stretches of time, not rows drawn at random from the training year, so
each column is calibrated the way its rows arise in such a stretch (its `grain`):

- ``row``: rows vary from scan to scan (filters, universe, model outputs): the window is
  multinomial from the shares, as above, at its effective size (below);
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

Effective size: consecutive live scans are far more alike than independent rows (the
outputs follow the day's VIX; people re-run their saved scans), and a new population of
people or a new year of market is not the one the reference was drawn from. A manifest
exported with a drift calibration (export.drift: Kish design effects measured on the
time-ordered training history) gives each column that can alarm

- deff_w(n): the variance of a window's bin shares over contiguous windows of n rows of
  the history, over the multinomial variance at n (measured at 256, 512, ... rows;
  between sizes the next larger one is used, beyond the largest the effective size stays
  that of the largest: both err towards fewer alarms);
- D: the reference's own design effect, deff_users + deff_time - 1, with deff_users from
  resampling the history's users and deff_time from its persistence in time: a year holds
  few windows of the largest size (8 of 8,192 rows), and a level such as the VIX is still
  persistent at that length (its window deff still grows ~1.5x per doubling), so the
  largest window's share variance is carried on to the history's length, falling per
  doubling by the ratio of the last doubling measured (1/2 once rows are independent, 1
  while fully persistent; the fall speeds up with length, so this errs towards a larger
  D), and at least the integrated autocorrelation time of the bin indicators (Geyer). On
  the default market model, from point estimates, this gives the VIX D = 5,500 rows, 13
  independent levels a year, as its AR(1) of 0.93 a day (integrated time 27.6 days of
  ~200 rows) implies. The reference is then worth N / D independent rows (N the
  history's rows).

Every variance ratio is an estimate from K windows (or K users): each is taken at its
upper 95% bound, (K - 1) / chi2_{K-1}(0.05) times the estimate (2.0x from the 17 windows of
4,096 rows a year of ~72,000 training rows holds, 3.2x from its 8 of 8,192, 1.17x from 241
users): thresholds at a tail quantile are sensitive to an underestimated variance, and
that errs towards fewer alarms (the VIX's D becomes ~18,000 rows, 4 levels a year).

A live window's shares minus the reference's then vary like a multinomial at

    n_eff = 1 / (deff_w(n) / n + 2 D / N)

rows: the window about its own population and stretch of time, plus that population
about the truth, plus the reference about the truth (the live population taken as large
as the training one: a smaller live population varies more). Thresholds are the same
(1 - alpha / T) quantiles, at n_eff rows (floored, at least 1). A day column so calibrated
is multinomial at its n_eff too (one row: the whole window in one bin, as above), and its
bins beyond the training range get a reference share of 1 / (N / D + 1) each instead of 0:
the chance that one more of N / D exchangeable observations lies beyond all of them. The
calibration assumes live traffic holds about as many rows per day and per user as the
history did: much busier traffic packs more of one day into a window than deff_w allows.

A manifest without a calibration (exported before it) is calibrated as described above on
independent rows, and every report says so (`calibration`).
"""

from __future__ import annotations

import functools
import hashlib
import math
from collections.abc import Callable, Mapping, Sequence
from typing import Final

import msgspec
import numpy as np
import numpy.typing as npt

from server.domain.artifact import (
    DriftCalibration,
    DriftDesign,
    DriftThresholds,
    Manifest,
    ReferenceDistribution,
    Thresholds,
)
from server.domain.features import FEATURE_SPEC
from server.monitoring.schemas import ColumnDrift

__all__ = [
    "CLOCK_COLUMNS",
    "CONVENTIONAL",
    "DAY_COLUMNS",
    "FALSE_ALARM_RATE",
    "METHOD",
    "MIN_ROWS",
    "Column",
    "Design",
    "Reference",
    "bin_values",
    "calibrate",
    "calibrate_every_size",
    "calibration_rows",
    "jensen_shannon",
    "psi",
    "reference_design_effect",
    "score",
    "shipped_thresholds",
    "time_design_effect",
    "variance_upper",
    "wasserstein",
    "window_design_effects",
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
# Windows a calibration scores at a time. All 40,000 at once, calibrating the default
# model's reference peaked at 24-25 MiB of arrays (tracemalloc, at 2^10 to 2^18 rows),
# memory the lease holder's allocator kept after the job: its resident memory climbed a
# step at each new window size. In chunks the peak is 3.0 MiB and the thresholds are the
# same to the bit (the generator draws the same windows, and each is scored on its own).
_CALIBRATION_CHUNK: Final = 4096
# Names the calibration below (draws, seed, the exact two-bin case), so thresholds kept in
# the store are recomputed when it changes.
METHOD: Final = f"mc{_DRAWS}-seed0-exact2-grain1-kish1"

Counts = npt.NDArray[np.float64]


def _digest(drift: DriftCalibration) -> str:
    return hashlib.sha256(msgspec.json.encode(drift)).hexdigest()[:8]


class Design(msgspec.Struct, frozen=True, kw_only=True):
    """A column's design effects from the manifest's drift calibration (module docstring)."""

    window_rows: tuple[int, ...]  # ascending
    windows: tuple[float, ...]  # deff_w at each of window_rows (upper 95% bounds)
    reference_rows: float  # N / D: the independent rows the reference is worth

    def effective_rows(self, rows: int) -> int:
        """n_eff of a window of `rows` rows: at least 1."""
        sizes = self.window_rows
        if rows >= sizes[-1]:
            window = sizes[-1] / max(1.0, self.windows[-1])
        else:
            i = next(i for i, size in enumerate(sizes) if size >= rows)
            window = rows / min(max(1.0, self.windows[i]), float(rows))
        return max(1, math.floor(1.0 / (1.0 / window + 2.0 / self.reference_rows)))


def variance_upper(estimates: int) -> float:
    """Upper 95% bound of a variance estimated from `estimates` independent values, over the
    estimate: (k - 1) / chi2_{k-1}(0.05), chi2's quantile by Wilson and Hilferty (within
    1% of the exact one from 3 degrees of freedom on)."""
    k = max(2, estimates) - 1
    z = -1.6448536269514722  # the 5% point of the standard normal
    quantile = k * (1.0 - 2.0 / (9.0 * k) + z * math.sqrt(2.0 / (9.0 * k))) ** 3
    return k / max(quantile, 1e-9)


def window_design_effects(drift: DriftCalibration, design: DriftDesign) -> tuple[float, ...]:
    """deff_w at each window size, at its upper 95% bound from that size's window count."""
    return tuple(
        max(1.0, d) * variance_upper(k) for d, k in zip(design.windows, drift.windows, strict=True)
    )


def time_design_effect(drift: DriftCalibration, design: DriftDesign) -> float:
    """deff of the whole history's shares from its persistence in time (module docstring):
    the largest window's share variance (its upper bound) carried on to the history's
    length, falling per doubling by the ratio of the last doubling measured (between 1/2,
    no persistence left, and 1), and no less than the integrated autocorrelation time."""
    sizes, deffs = drift.window_rows, [max(1.0, d) for d in design.windows]
    n, top = drift.history_rows, sizes[-1]
    ratio = 0.5 if len(sizes) < 2 else (deffs[-1] / top) / (deffs[-2] / sizes[-2])
    ratio = min(1.0, max(0.5, ratio))
    upper = window_design_effects(drift, design)[-1]
    carried = upper * (n / top) * ratio ** math.log2(max(1.0, n / top))
    return max(1.0, design.autocorrelation, float(carried))


def reference_design_effect(drift: DriftCalibration, design: DriftDesign) -> float:
    """D: the reference's design effect, from its users (upper bound from the number of
    users) and from its persistence in time."""
    users = max(1.0, design.users) * variance_upper(drift.users)
    return max(1.0, users + time_design_effect(drift, design) - 1.0)


class Column(msgspec.Struct, frozen=True, kw_only=True, dict=True):
    """One column's reference: bin edges, shares, kind and the scores it is tested with."""

    name: str
    kind: str
    edges: tuple[float, ...]
    shares: tuple[float, ...]
    # From the manifest's drift calibration; None: calibrated on independent rows.
    design: Design | None = None

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
        beyond = 0.0 if self.design is None else 1.0 / (self.design.reference_rows + 1.0)
        inside = tuple(x * (1.0 - 2.0 * beyond) for x in self.shares)
        return Column(name=self.name, kind=self.kind, edges=edges, shares=(beyond, *inside, beyond))

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

    # The manifest's drift calibration (its method), or None: independent rows.
    calibration: str | None = None

    @classmethod
    def of(cls, manifest: Manifest) -> Reference:
        kinds = {f.name: str(f.kind) for f in manifest.feature_spec}
        return cls.build(manifest.version, manifest.reference, manifest.drift, kinds)

    @classmethod
    def build(
        cls,
        version: str,
        reference: Mapping[str, ReferenceDistribution],
        drift: DriftCalibration | None = None,
        kinds: Mapping[str, str] | None = None,
    ) -> Reference:
        """Every column of `reference` (features, then outputs), with `drift`'s design;
        feature kinds from `kinds` (default: this code's feature spec)."""
        if kinds is None:
            kinds = {f.name: str(f.kind) for f in FEATURE_SPEC}
        designs = {} if drift is None else drift.columns
        columns = tuple(
            Column(
                name=name,
                kind=kinds.get(name, "numeric"),  # model outputs are numbers
                edges=tuple(ref.edges),
                shares=tuple(ref.shares),
                design=None
                if drift is None or name not in designs
                else Design(
                    window_rows=tuple(drift.window_rows),
                    windows=window_design_effects(drift, designs[name]),
                    reference_rows=drift.history_rows
                    / reference_design_effect(drift, designs[name]),
                ),
            )
            for name, ref in reference.items()
        )
        calibration = None if drift is None else f"{drift.method}-{_digest(drift)}"
        return cls(version=version, columns=columns, calibration=calibration)

    @property
    def method(self) -> str:
        """Names how thresholds of this reference are computed (the store's cache key)."""
        return f"{METHOD}-{self.calibration or 'independent'}"

    @property
    def calibration_note(self) -> str:
        """How the thresholds allow for time-ordered traffic, in words."""
        if self.calibration is None:
            return (
                "independent rows: the manifest has no drift calibration (exported before it), "
                "so time-ordered traffic alarms more often than the stated rate"
            )
        return f"time-ordered windows of the training history (design effects, {self.calibration})"

    @property
    def tests(self) -> int:
        """The (column, score) tests that can alarm: T in the Bonferroni level."""
        return sum(len(c.scores) for c in self.columns if c.alarms)

    @property
    def largest_calibration_rows(self) -> int | None:
        """The largest window size thresholds are calibrated at: the smallest power of two
        holding the largest window the design effects were measured at, when every column
        that can alarm has them; None otherwise, since an independent column's null keeps
        narrowing as windows grow. From that size on every column's effective size is that
        of the largest window (`Design.effective_rows`), so larger windows have the same
        thresholds to the bit; calibrating them again only spent CPU (the default model:
        ~1 s each at 2^14 to 2^18 rows, each equal to the one at 2^13)."""
        designs = [c.design for c in self.columns if c.alarms]
        if not designs or any(d is None for d in designs):
            return None
        largest = max(d.window_rows[-1] for d in designs if d is not None)
        return 1 << (largest - 1).bit_length()

    def calibration_rows(self, n: int) -> int:
        """The window size a window of `n` rows is calibrated at: the largest power of two
        not above `n`, and no larger than `largest_calibration_rows`."""
        rows = calibration_rows(n)
        largest = self.largest_calibration_rows
        return rows if largest is None else min(rows, largest)


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


def calibration_rows(n: int) -> int:
    """The window size thresholds are calibrated at: the largest power of two <= n."""
    return 1 << (max(n, 1).bit_length() - 1)


def _null_quantiles(
    column: Column, rows: int, level: float, draws: int, rng: np.random.Generator
) -> dict[str, float]:
    """The `level` quantile of each of the column's scores on windows of `rows` rows drawn
    from the reference: exact for a two-bin column, Monte Carlo (`draws` windows, shared
    by the scores) otherwise."""
    if column.design is not None:
        return _effective_quantiles(column, column.design.effective_rows(rows), level, draws, rng)
    p = np.asarray(column.shares, dtype=np.float64)
    p = p / p.sum()
    if column.grain == "day":
        # The whole window in one bin, that bin drawn with the reference shares.
        windows = np.eye(len(p), column.n_bins) * rows
        return {n: _exact_quantile(score(column, n, windows), p, level) for n in column.scores}
    if len(p) == 2:
        # A window is fully described by the count in the first bin, k ~ Binomial(rows, p0):
        # score every k once and read the quantile off the exact distribution.
        return _two_bin_quantiles(column, rows, float(p[0]), level, _as_stored)
    return _sampled_quantiles(column, rows, p, level, draws, rng, _as_stored)


def _effective_quantiles(
    column: Column, rows: int, level: float, draws: int, rng: np.random.Generator
) -> dict[str, float]:
    """The `level` quantiles of a calibrated column: windows multinomial at `rows` (its
    effective size) from the shares it is scored against (a day column's beyond-range
    bins included); exact for one row or two bins, Monte Carlo otherwise. Scored windows
    are in scoring order, so they are put back in stored order for `score`."""
    scored = column.scored
    p = np.asarray(scored.shares, dtype=np.float64)
    p = p / p.sum()
    k = len(p)

    def stored(windows: Counts) -> Counts:
        if column.grain != "day":
            return windows
        # scoring order (below, reference bins, above) -> stored (reference, above, below)
        out: Counts = np.concatenate(
            [windows[..., 1 : k - 1], windows[..., k - 1 :], windows[..., :1]], axis=-1
        )
        return out

    if rows == 1:
        windows = np.eye(k)
        return {
            n: _exact_quantile(score(column, n, stored(windows)), p, level) for n in column.scores
        }
    if k == 2:
        return _two_bin_quantiles(column, rows, float(p[0]), level, stored)
    return _sampled_quantiles(column, rows, p, level, draws, rng, stored)


def _as_stored(windows: Counts) -> Counts:
    return windows


def _two_bin_quantiles(
    column: Column, rows: int, p0: float, level: float, stored: Callable[[Counts], Counts]
) -> dict[str, float]:
    """Exact quantiles of a two-bin column: every window (k, rows - k) scored once, weighted
    by its binomial probability; scored `_CALIBRATION_CHUNK` windows at a time."""
    mass = _binomial_pmf(rows, p0)
    values = {name: np.empty(rows + 1) for name in column.scores}
    for start in range(0, rows + 1, _CALIBRATION_CHUNK):
        k = np.arange(start, min(start + _CALIBRATION_CHUNK, rows + 1), dtype=np.float64)
        windows = stored(np.stack([k, rows - k], axis=1))
        for name in column.scores:
            values[name][start : start + len(k)] = score(column, name, windows)
    return {name: _exact_quantile(values[name], mass, level) for name in column.scores}


def _sampled_quantiles(
    column: Column,
    rows: int,
    p: Counts,
    level: float,
    draws: int,
    rng: np.random.Generator,
    stored: Callable[[Counts], Counts],
) -> dict[str, float]:
    """Monte Carlo quantiles: `draws` multinomial windows of `rows` rows, drawn and scored
    `_CALIBRATION_CHUNK` at a time (the generator yields the same windows either way)."""
    parts: dict[str, list[Counts]] = {name: [] for name in column.scores}
    for start in range(0, draws, _CALIBRATION_CHUNK):
        size = min(_CALIBRATION_CHUNK, draws - start)
        null = stored(rng.multinomial(rows, p, size=size).astype(np.float64))
        for name in column.scores:
            parts[name].append(score(column, name, null))
    return {
        name: float(np.quantile(np.concatenate(chunks), level, method="higher"))
        for name, chunks in parts.items()
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


def calibrate_every_size(reference: Reference) -> DriftThresholds | None:
    """Thresholds at every window size a server calibrates `reference` at (MIN_ROWS to
    `largest_calibration_rows`, by powers of two), for the manifest; None when those sizes
    have no end (a column without design effects)."""
    largest = reference.largest_calibration_rows
    if largest is None:
        return None
    sizes = []
    rows = calibration_rows(MIN_ROWS)
    while rows <= largest:
        sizes.append(rows)
        rows *= 2
    return DriftThresholds(
        method=reference.method, windows=[calibrate(reference, rows) for rows in sizes]
    )


def shipped_thresholds(
    shipped: DriftThresholds | None, reference: Reference, rows: int
) -> Thresholds | None:
    """The manifest's thresholds for windows of `rows` rows (a size `calibration_rows`
    gives), if it has them and they were computed the way this code computes them."""
    if shipped is None or shipped.method != reference.method:
        return None
    for thresholds in shipped.windows:
        if thresholds.rows == rows and thresholds.alpha == FALSE_ALARM_RATE:
            return thresholds
    return None


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
