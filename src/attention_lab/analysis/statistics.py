"""Uncertainty over probe examples: bootstrap intervals, paired tests, false-discovery control.

Every function takes per-example values ``[examples, ...]`` (NaN where a value is undefined
for an example) and works column by column over the trailing axes. Resampling draws
examples, never heads: the unit of replication is the probe text.

- Bootstrap: percentile interval of the mean over ``resamples`` resamples of examples
  (Efron & Tibshirani, 1993), drawn from a seeded generator.
- Paired test: a two-sided sign-flip permutation test of the mean difference (Fisher's
  randomisation test; exact for symmetric differences, no normality assumed), with the
  ``(1 + hits) / (1 + permutations)`` estimate, which is never 0 (Phipson & Smyth, 2010).
- Benjamini & Hochberg (1995) adjusted p-values (q-values) across the heads of one family.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from typing import Any

import numpy as np

from attention_lab.parameters import AnalysisSettings, StatisticsSettings

CHUNK = 256  # resamples or permutations per matrix product: bounds memory at any probe size


def statistics_settings(params: AnalysisSettings | Mapping[str, Any] | None) -> StatisticsSettings:
    """``analysis.statistics`` with its defaults, from the analysis settings or a mapping."""
    return AnalysisSettings.of(params).statistics


def _columns(values: np.ndarray) -> tuple[np.ndarray, np.ndarray, tuple[int, ...]]:
    """``[N, ...]`` -> (values with NaN as 0, valid mask as float, trailing shape), as [N, K]."""
    flat = np.asarray(values, dtype=np.float64).reshape(len(values), -1)
    valid = ~np.isnan(flat)
    return np.where(valid, flat, 0.0), valid.astype(np.float64), values.shape[1:]


def nan_mean(values: np.ndarray) -> np.ndarray:
    """Mean over examples ignoring NaN; NaN where no example has a value."""
    filled, valid, shape = _columns(values)
    count = valid.sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        return (filled.sum(axis=0) / count).reshape(shape)


def bootstrap_interval(
    values: np.ndarray, resamples: int = 1000, seed: int = 0, level: float = 0.95
) -> tuple[np.ndarray, np.ndarray]:
    """Percentile bootstrap interval of the mean over examples: (low, high), each ``[...]``.

    A resample is a vector of counts (how often each example is drawn), so the resampled means
    are one matrix product: ``counts [B, N] @ values [N, K]``.
    """
    filled, valid, shape = _columns(values)
    n = len(filled)
    rng = np.random.default_rng(seed)
    means = []
    for start in range(0, resamples, CHUNK):
        size = min(CHUNK, resamples - start)
        counts = rng.multinomial(n, np.full(n, 1.0 / n), size=size).astype(np.float64)  # [B, N]
        with np.errstate(invalid="ignore", divide="ignore"):
            means.append((counts @ filled) / (counts @ valid))  # [B, K]
    draws = np.concatenate(means)
    tail = (1 - level) / 2 * 100
    with warnings.catch_warnings():  # a column with no value at all has a NaN interval
        warnings.simplefilter("ignore", RuntimeWarning)
        low, high = np.nanpercentile(draws, [tail, 100 - tail], axis=0)
    return low.reshape(shape), high.reshape(shape)


def paired_permutation_test(
    differences: np.ndarray, permutations: int = 10_000, seed: int = 0
) -> np.ndarray:
    """Two-sided p-value of "mean difference = 0" per column, flipping each example's sign.

    ``differences``: ``[N, ...]`` variant minus reference on the same examples.
    """
    filled, _, shape = _columns(differences)
    n = len(filled)
    observed = np.abs(filled.sum(axis=0))  # [K]; dividing by the count changes nothing
    rng = np.random.default_rng(seed)
    hits = np.zeros(filled.shape[1])
    for start in range(0, permutations, CHUNK):
        size = min(CHUNK, permutations - start)
        signs = rng.choice(np.array([-1.0, 1.0]), size=(size, n))  # [P, N]
        # a relative tolerance, so a flip that only reorders the sum still counts as a hit
        hits += (np.abs(signs @ filled) >= observed * (1 - 1e-12)).sum(axis=0)
    p = (1 + hits) / (1 + permutations)
    p[~np.any(filled != 0, axis=0)] = 1.0  # no difference on any example
    return p.reshape(shape)


def benjamini_hochberg(p: np.ndarray) -> np.ndarray:
    """Adjusted p-values (q) controlling the false-discovery rate over all given tests.

    ``q_(i) = min_{j >= i} p_(j) * m / j`` over the sorted p-values; NaN entries are not tests.
    """
    p = np.asarray(p, dtype=np.float64)
    q = np.full(p.shape, np.nan)
    tested = ~np.isnan(p)
    values = p[tested]
    m = len(values)
    if m == 0:
        return q
    order = np.argsort(values)
    scaled = values[order] * (m / np.arange(1, m + 1))  # the largest p times exactly 1
    adjusted = np.minimum.accumulate(scaled[::-1])[::-1]  # the running minimum from the top
    out = np.empty(m)
    out[order] = np.minimum(adjusted, 1.0)
    q[tested] = out
    return q
