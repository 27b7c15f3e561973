"""Intervals over seeds and examples, checked on planted data whose truth is known.

Each simulation draws a fresh test set (example difficulty, and examples that favour the
variant) and fresh training runs (a seed effect per run), like a real replicated study.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from attention_lab.analysis.replicates import mean_over_runs, metric_over_runs

SEEDS, EXAMPLES, SIMULATIONS = 3, 200, 600


def planted_losses(rng, margin: float, seed_sd: float = 0.05):
    """Per-example losses [seeds, examples] of a variant and its reference; the variant is
    better by ``margin`` on average over examples and seeds."""
    difficulty = rng.normal(0, 1.0, EXAMPLES)  # shared: the same test examples
    favours = rng.normal(0, 0.3, EXAMPLES)  # examples where the variant does better or worse

    def run(mean, extra):
        return mean + rng.normal(0, seed_sd) + difficulty + extra + rng.normal(0, 0.5, EXAMPLES)

    variant = np.stack([run(margin, favours) for _ in range(SEEDS)])
    reference = np.stack([run(0.0, 0.0) for _ in range(SEEDS)])
    return variant, reference


def planted_accuracy(rng, margin: float):
    """Correct (1) or not per example and seed; the variant is right more often by ``margin``."""
    p_right = rng.uniform(0.25, 0.8, EXAMPLES)  # each example's difficulty

    def run(shift):
        p = p_right + shift + rng.normal(0, 0.012)  # seed-to-seed spread of about 1 point
        return (rng.random(EXAMPLES) < p).astype(float)

    variant = np.stack([run(margin) for _ in range(SEEDS)])
    reference = np.stack([run(0.0) for _ in range(SEEDS)])
    return variant, reference


@pytest.mark.parametrize("planted", [planted_losses, planted_accuracy])
def test_the_interval_covers_the_planted_difference_about_95_percent_of_the_time(planted):
    rng = np.random.default_rng(2026)
    margin = 0.05
    covered = 0
    for _ in range(SIMULATIONS):
        variant, reference = planted(rng, margin)
        estimate = mean_over_runs(variant - reference)
        covered += bool(estimate.ci_low <= margin <= estimate.ci_high)
    coverage = covered / SIMULATIONS
    # binomial spread of the coverage over 600 simulations is about 0.9 points
    # at least the nominal 95%; S - 1 degrees of freedom err on the wide side
    assert 0.94 <= coverage <= 0.995, coverage


@pytest.mark.parametrize("planted", [planted_losses, planted_accuracy])
def test_two_recipes_that_differ_only_by_seed_are_rarely_called_different(planted):
    rng = np.random.default_rng(7)
    called = 0
    for _ in range(SIMULATIONS):
        variant, reference = planted(rng, 0.0)
        called += bool(mean_over_runs(variant - reference).p < 0.05)
    assert called / SIMULATIONS <= 0.05, called / SIMULATIONS


def test_intervals_are_wider_than_the_examples_alone_allow_when_seeds_disagree():
    rng = np.random.default_rng(0)
    base = rng.normal(0, 1, (1, 500))
    agreeing = base + rng.normal(0, 0.01, (3, 1))  # three runs, nearly the same
    disagreeing = base + np.array([[-0.5], [0.0], [0.5]])  # three runs far apart
    width = {
        name: float(mean_over_runs(values).half_width)
        for name, values in (("agree", agreeing), ("disagree", disagreeing))
    }
    assert width["disagree"] > 5 * width["agree"]


def test_three_seeds_give_a_t_interval_with_two_degrees_of_freedom():
    """Seeds that share no examples' effect: the interval is the seeds' own t interval."""
    per_seed = np.array([0.70, 0.74, 0.72])
    values = per_seed[:, None] + np.zeros((3, 600))  # every example alike within a seed
    estimate = mean_over_runs(values)
    half = stats.t.ppf(0.975, 2) * np.std(per_seed, ddof=1) / np.sqrt(3)
    assert float(estimate.mean) == pytest.approx(0.72)
    assert float(estimate.df) == 2
    assert float(estimate.ci_low) == pytest.approx(0.72 - half)
    assert float(estimate.ci_high) == pytest.approx(0.72 + half)


def test_examples_that_favour_one_variant_widen_the_interval():
    """A per-example effect shared by every seed is invisible in the seeds' spread: the
    ANOVA interaction term adds it back (it equals its planted variance / N here)."""
    rng = np.random.default_rng(5)
    favours = rng.normal(0, 1.0, 400)
    values = np.stack([favours + s for s in (0.0, 0.01, 0.02)])  # no residual noise
    estimate = mean_over_runs(values)
    seed_term = np.var([favours.mean() + s for s in (0.0, 0.01, 0.02)], ddof=1) / 3
    assert float(estimate.se) ** 2 == pytest.approx(seed_term + favours.var(ddof=1) / 400)


def test_one_seed_speaks_of_the_examples_only():
    values = np.random.default_rng(1).normal(0.3, 1.0, (1, 400))
    estimate = mean_over_runs(values)
    se = values.std(ddof=1) / np.sqrt(400)
    assert estimate.n_seeds == 1
    assert float(estimate.se) == pytest.approx(se)
    assert float(estimate.df) == pytest.approx(399)


def test_a_metric_over_runs_resamples_the_same_examples_in_every_run():
    """Paired runs that are identical give a difference of exactly 0 in every resample."""
    rng = np.random.default_rng(3)
    runs = [(x, x.copy()) for x in rng.random((3, 50))]
    estimate = metric_over_runs(lambda a, b: a.mean() - b.mean(), runs, resamples=50)
    assert float(estimate.mean) == 0.0 and float(estimate.se) == 0.0
    assert float(estimate.p) == 1.0
