"""The statistics behind every interval and p-value `hubkit analyze` reports.

One resampling scheme for everything: a seeded **cluster bootstrap** that draws whole clusters with
replacement — training runs for paired run comparisons (the ten epochs of one run are one observation),
base models for claims about base models (a language, a model family), single observations otherwise. The
unit is named in every table (`resampled`) and in the report.

From the same resamples: the 95 % percentile interval, and a two-sided p-value for "the quantity is 0" from the
bootstrap standard error (Wald: `2 Φ(−|estimate| / sd of the resampled estimates)`; continuous, unlike counting
resamples past 0, whose resolution of `2 / (B + 1)` could never survive a correction over 20 benchmarks). A
bootstrap over a handful of clusters is over-confident (two base models give three distinct resamples), so an
interval and a p-value need at least `MIN_CLUSTERS` clusters: with fewer they are missing and nothing is claimed. Within one analysis the p-values are
adjusted for multiple comparisons with Holm's step-down method (family-wise error) and Benjamini–Hochberg
(false discovery rate); a finding is stated only when its interval excludes 0 and its Holm-adjusted p is under
0.05.

Example:
    >>> import numpy as np
    >>> est = cluster_bootstrap_mean(np.array([1.0, 2.0, 3.0, 4.0]), np.array(["a", "a", "b", "b"]))
    >>> est.mean, est.clusters
    (2.5, 2)
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

BOOTSTRAP = 1000
SEED = 0
ALPHA = 0.05
MIN_CLUSTERS = 5  # fewer clusters: no interval, no p-value


class Estimate(NamedTuple):
    """A statistic with its 95 % cluster-bootstrap interval and two-sided p-value for 0."""

    mean: float
    ci_low: float
    ci_high: float
    p: float
    clusters: int


NAN = Estimate(float("nan"), float("nan"), float("nan"), float("nan"), 0)


def bootstrap_p(estimate: float, samples: np.ndarray, clusters: int) -> float:
    """Two-sided p-value of 0 from the bootstrap standard error: `2 Φ(−|estimate| / sd(samples))` (NaN with fewer
    than `MIN_CLUSTERS` clusters or no spread)."""
    from scipy.stats import norm

    samples = np.asarray(samples, float)
    samples = samples[~np.isnan(samples)]
    if clusters < MIN_CLUSTERS or len(samples) < 2 or np.isnan(estimate):
        return float("nan")
    se = float(samples.std(ddof=1))
    if se == 0:
        return 0.0 if estimate != 0 else 1.0
    return float(2 * norm.sf(abs(estimate) / se))


def _interval(samples: np.ndarray) -> tuple[float, float]:
    low, high = np.percentile(samples, [2.5, 97.5])
    return float(low), float(high)


def _cluster_index(clusters: np.ndarray | None, n_values: int) -> np.ndarray:
    if clusters is None:
        return np.arange(n_values)
    _, inverse = np.unique(np.asarray(clusters, object).astype(str), return_inverse=True)
    return inverse


def cluster_bootstrap_mean(values: np.ndarray, clusters: np.ndarray | None = None, n: int = BOOTSTRAP,
                           seed: int = SEED) -> Estimate:
    """The mean of `values` with its interval and p-value, resampling whole clusters.

    With `clusters` None each value is its own cluster (the ordinary bootstrap). A resample draws as many
    clusters as there are, with replacement, and averages every value of the clusters drawn.

    Args:
        values: the observations (differences, gains).
        clusters: one label per value: the unit that is resampled.
        n: resamples.
        seed: the generator's seed (numpy's `default_rng`).
    """
    values = np.asarray(values, float)
    if len(values) == 0:
        return NAN
    inverse = _cluster_index(clusters, len(values))
    sums = np.bincount(inverse, weights=values)
    counts = np.bincount(inverse).astype(float)
    mean = float(values.mean())
    if len(sums) < MIN_CLUSTERS:
        return Estimate(mean, float("nan"), float("nan"), float("nan"), len(sums))
    idx = np.random.default_rng(seed).integers(0, len(sums), (n, len(sums)))
    means = sums[idx].sum(axis=1) / counts[idx].sum(axis=1)
    return Estimate(mean, *_interval(means), bootstrap_p(mean, means, len(sums)), len(sums))


def rowwise_pearson(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Pearson r along the last axis (NaN where either side is constant)."""
    x = x - x.mean(axis=-1, keepdims=True)
    y = y - y.mean(axis=-1, keepdims=True)
    denom = np.sqrt((x * x).sum(axis=-1) * (y * y).sum(axis=-1))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(denom > 0, (x * y).sum(axis=-1) / denom, np.nan)


def _ranks(values: np.ndarray) -> np.ndarray:
    from scipy.stats import rankdata

    return rankdata(values, axis=-1)


def bootstrap_corr(x: np.ndarray, y: np.ndarray, method: str, clusters: np.ndarray | None = None,
                   n: int = BOOTSTRAP, seed: int = SEED) -> Estimate:
    """A correlation (`pearson` or `spearman`) with its interval and p-value, resampling `clusters` (each
    pair its own cluster when None; a resample takes every pair of the clusters drawn).

    `Estimate.mean` holds r; `Estimate.clusters` the number of clusters.
    """
    x, y = np.asarray(x, float), np.asarray(y, float)
    keep = ~(np.isnan(x) | np.isnan(y))
    x, y = x[keep], y[keep]
    labels = None if clusters is None else np.asarray(clusters, object)[keep]
    if len(x) < 3 or np.std(x) == 0 or np.std(y) == 0:
        return NAN._replace(clusters=len(x) if labels is None else len(set(map(str, labels))))
    value = float(rowwise_pearson(_ranks(x), _ranks(y)) if method == "spearman" else rowwise_pearson(x, y))
    rng = np.random.default_rng(seed)
    if labels is None and len(x) < MIN_CLUSTERS:
        return Estimate(value, float("nan"), float("nan"), float("nan"), len(x))
    if labels is None:
        idx = rng.integers(0, len(x), (n, len(x)))
        xs, ys = x[idx], y[idx]
        if method == "spearman":
            xs, ys = _ranks(xs), _ranks(ys)
        samples = rowwise_pearson(xs, ys)
        count = len(x)
    else:
        inverse = _cluster_index(labels, len(x))
        members = [np.flatnonzero(inverse == c) for c in range(inverse.max() + 1)]
        count = len(members)
        if count < MIN_CLUSTERS:
            return Estimate(value, float("nan"), float("nan"), float("nan"), count)
        draws = rng.integers(0, count, (n, count))
        samples = np.empty(n)
        for i, draw in enumerate(draws):  # resamples differ in size: one at a time
            rows = np.concatenate([members[c] for c in draw])
            xs, ys = x[rows], y[rows]
            if method == "spearman":
                xs, ys = _ranks(xs), _ranks(ys)
            samples[i] = rowwise_pearson(xs, ys)
    samples = samples[~np.isnan(samples)]
    if not len(samples):
        return Estimate(value, float("nan"), float("nan"), float("nan"), count)
    return Estimate(value, *_interval(samples), bootstrap_p(value, samples, count), count)


def _ranked(p: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The p-values as floats, an all-NaN output of their shape, and the non-NaN positions in ascending order of p."""
    p = np.asarray(p, float)
    ok = np.flatnonzero(~np.isnan(p))
    return p, np.full(len(p), np.nan), ok[np.argsort(p[ok], kind="stable")]


def holm(p: np.ndarray) -> np.ndarray:
    """Holm's step-down adjusted p-values (NaN kept as NaN, not counted)."""
    p, out, order = _ranked(p)
    m = len(order)
    if m:
        out[order] = np.minimum(np.maximum.accumulate((m - np.arange(m)) * p[order]), 1.0)
    return out


def benjamini_hochberg(p: np.ndarray) -> np.ndarray:
    """Benjamini–Hochberg adjusted p-values (q-values; NaN kept as NaN, not counted)."""
    p, out, order = _ranked(p)
    m = len(order)
    if m:
        scaled = p[order] * m / np.arange(1, m + 1)
        out[order] = np.minimum(np.minimum.accumulate(scaled[::-1])[::-1], 1.0)
    return out


def adjust(table, column: str = "p"):
    """`table` with `p_holm` and `q_bh` beside its p-values (`column`): one family per table."""
    p = table[column].to_numpy(float) if len(table) else np.array([])
    return table.assign(p_holm=holm(p), q_bh=benjamini_hochberg(p))


def significant(table) -> np.ndarray:
    """Rows whose Holm-adjusted p is under `ALPHA` (their interval excludes 0)."""
    if not len(table):
        return np.zeros(0, bool)
    excludes = (table["ci_low"] > 0) | (table["ci_high"] < 0)
    return (excludes & (table["p_holm"] < ALPHA)).to_numpy(bool)
