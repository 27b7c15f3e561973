"""Uncertainty over training runs *and* test examples, for findings that must survive a reseed.

A study trains every variant once per seed and evaluates every run on the same examples. A
metric's mean over S seeds then varies for two reasons: another seed trains another model, and
another draw of N test examples asks other questions. With ``y[s, i]`` the value of seed s on
example i, its variance is estimated as

    var(mean) = var_s(mean_i y[s, i]) / S  +  max(0, interaction)

- the first term, the spread of the per-seed means, holds the seed effect and each run's own
  example noise;
- ``interaction`` is what the examples add beyond that: examples that suit one variant more
  than another, shared by every seed, hence invisible in the spread of the seeds. It is the
  two-way ANOVA estimate (MS_examples − MS_residual) / (S·N), computed in closed form for a
  mean and from a bootstrap over examples for a metric that is not one (macro-F1, perplexity).

The interval and the two-sided p-value ("the mean is 0") come from Student's t with S − 1
degrees of freedom: the seed is the unit of replication. With 3 seeds the t quantile is 4.3,
not 1.96, which keeps the interval honest where a bootstrap over 3 seeds would be far too
narrow (it can draw only 10 distinct sets). Welch–Satterthwaite's larger degrees of freedom
were tried and were liberal on planted data (7% false positives at the 5% level); S − 1
errs the other way when the examples add much (99% coverage on such data, 96% on planted
accuracies). tests/analysis/test_replicates.py measures both. A study with one
seed has no seed term: its interval speaks of the examples only (``n_seeds = 1`` says so).

For a comparison the metric is the paired difference: the variant's seed s against the
reference's seed s, on the same examples, so both pairings are respected.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
from scipy import stats

LEVEL = 0.95


@dataclass(frozen=True)
class Estimate:
    """A mean over seeds with its 95% interval; arrays broadcast over any trailing axes."""

    mean: np.ndarray
    se: np.ndarray
    df: np.ndarray
    n_seeds: int

    @property
    def half_width(self) -> np.ndarray:
        with np.errstate(invalid="ignore"):
            return stats.t.ppf(0.5 + LEVEL / 2, self.df) * self.se

    @property
    def ci_low(self) -> np.ndarray:
        return self.mean - self.half_width

    @property
    def ci_high(self) -> np.ndarray:
        return self.mean + self.half_width

    @property
    def p(self) -> np.ndarray:
        """Two-sided p-value of "the mean is 0"; 1 where nothing varies and the mean is 0."""
        with np.errstate(invalid="ignore", divide="ignore"):
            t = np.abs(self.mean) / self.se
            p = 2 * stats.t.sf(t, self.df)
        p = np.where(self.se > 0, p, np.where(self.mean == 0, 1.0, 0.0))
        return np.where(np.isnan(self.mean), np.nan, p)


def combine(
    per_seed: np.ndarray, example_term: np.ndarray, example_df: np.ndarray | float | None
) -> Estimate:
    """The mean of ``per_seed`` ``[S, ...]``, its variance the seeds' spread / S plus
    ``example_term`` (the interaction above; with one seed, the whole example variance, whose
    estimate has ``example_df`` degrees of freedom)."""
    per_seed = np.asarray(per_seed, dtype=np.float64)
    n_seeds = len(per_seed)
    mean = per_seed.mean(axis=0)
    seed_term = per_seed.var(axis=0, ddof=1) / n_seeds if n_seeds > 1 else np.zeros_like(mean)
    example_term = np.maximum(np.asarray(example_term, dtype=np.float64), 0.0)
    var = seed_term + example_term
    if n_seeds > 1:  # the seed is the unit of replication (see the module's notes)
        df = np.full_like(mean, n_seeds - 1)
    else:
        df = np.broadcast_to(np.asarray(example_df, dtype=np.float64), mean.shape).copy()
    return Estimate(mean=mean, se=np.sqrt(var), df=df, n_seeds=n_seeds)


def mean_over_runs(values: np.ndarray) -> Estimate:
    """``values [S, N, ...]``: one value per seed and example (NaN: undefined there).

    The estimate of the mean over seeds of each seed's mean over examples.
    """
    values = np.asarray(values, dtype=np.float64)
    n_seeds, n_examples = values.shape[:2]
    with np.errstate(invalid="ignore", divide="ignore"), _quiet():
        per_seed = np.nanmean(values, axis=1)  # [S, ...]
        per_example = np.nanmean(values, axis=0)  # [N, ...]: the mean over seeds
        counts = np.sum(~np.isnan(per_example), axis=0)
        grand = np.nanmean(per_example, axis=0)
        ms_examples = n_seeds * np.nansum((per_example - grand) ** 2, axis=0) / (counts - 1)
        if n_seeds == 1:  # no residual to tell apart: the examples are all there is
            example_term, example_df = ms_examples / counts, counts - 1
        else:
            residual = values - per_seed[:, None] - per_example[None] + grand
            df_residual = (n_seeds - 1) * (counts - 1)
            ms_residual = np.nansum(residual**2, axis=(0, 1)) / df_residual
            example_term = (ms_examples - ms_residual) / (n_seeds * counts)
            example_df = None  # the seeds' S - 1 count
    example_term = np.where(counts > 1, example_term, 0.0)
    return combine(per_seed, example_term, example_df)


def metric_over_runs(
    metric: Callable[..., float],
    runs: Sequence[tuple[np.ndarray, ...]],
    resamples: int = 1000,
    seed: int = 0,
) -> Estimate:
    """Any metric of a run's per-example outcomes: ``metric(*runs[s])``, one run per seed.

    Every array of every run holds the same N examples in the same order (first axis), so
    an example resample draws the same rows from all of them: the comparison stays paired.
    The interaction is (S · var(mean over seeds) − mean over seeds of var(seed)) / (S − 1)
    over the resamples, the bootstrap's counterpart of the ANOVA estimate.
    """
    n_examples, n_seeds = len(runs[0][0]), len(runs)
    per_seed = np.array([metric(*run) for run in runs])
    rng = np.random.default_rng(seed)
    draws = np.empty((resamples, n_seeds))
    for b in range(resamples):
        rows = rng.integers(0, n_examples, n_examples)
        draws[b] = [metric(*(a[rows] for a in run)) for run in runs]
    pooled = np.var(draws.mean(axis=1), ddof=1)
    if n_seeds == 1:
        return combine(per_seed, pooled, n_examples - 1)
    within = np.var(draws, axis=0, ddof=1).mean()
    return combine(per_seed, (n_seeds * pooled - within) / (n_seeds - 1), None)


@contextmanager
def _quiet():
    """No 'mean of empty slice' warnings: an all-NaN column is NaN on purpose."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        yield
