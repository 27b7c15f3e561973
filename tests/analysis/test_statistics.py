"""Bootstrap intervals, the paired permutation test, Benjamini–Hochberg and the head_changes table,
each against a reference computed another way."""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pytest

from attention_lab.analysis.changes import CHANGE_COLUMNS, head_changes
from attention_lab.analysis.metrics import METRICS
from attention_lab.analysis.statistics import (
    benjamini_hochberg,
    bootstrap_interval,
    nan_mean,
    paired_permutation_test,
)


def test_bootstrap_intervals_cover_the_true_mean_about_95_percent_of_the_time():
    rng = np.random.default_rng(1)
    samples = rng.normal(1.0, 1.0, size=(30, 2000))  # 2,000 independent studies of 30 examples
    low, high = bootstrap_interval(samples, resamples=1000, seed=2)
    coverage = float(((low <= 1.0) & (1.0 <= high)).mean())
    # the percentile bootstrap is a little narrow at n = 30 (about 93-94%); 2,000 studies: ±1%
    assert 0.91 <= coverage <= 0.97
    width = float((high - low).mean())
    assert width == pytest.approx(2 * 1.96 / np.sqrt(30), rel=0.1)  # the normal theory width


def test_bootstrap_is_seeded_ignores_nan_and_collapses_on_a_constant():
    values = np.array(
        [[1.0, 2.0, np.nan], [3.0, 2.0, np.nan], [5.0, 2.0, np.nan], [np.nan, 2.0, np.nan]]
    )
    low, high = bootstrap_interval(values, resamples=500, seed=0)
    again = bootstrap_interval(values, resamples=500, seed=0)
    np.testing.assert_array_equal(low, again[0])
    assert 1.0 <= low[0] < 3.0 < high[0] <= 5.0  # from the three valid values only
    assert (low[1], high[1]) == (2.0, 2.0)
    assert np.isnan(low[2]) and np.isnan(high[2])
    np.testing.assert_array_equal(nan_mean(values)[:2], [3.0, 2.0])


def test_permutation_p_value_matches_exact_enumeration_of_all_sign_flips():
    rng = np.random.default_rng(3)
    differences = rng.normal(0.4, 1.0, size=(10, 4))
    exact = []
    for column in differences.T:
        observed = abs(column.sum())
        flips = np.array(list(itertools.product([-1.0, 1.0], repeat=10)))  # all 1,024
        exact.append(float((np.abs(flips @ column) >= observed - 1e-12).mean()))
    estimated = paired_permutation_test(differences, permutations=40_000, seed=4)
    np.testing.assert_allclose(estimated, exact, atol=0.01)


def test_permutation_test_of_no_difference_is_one_and_never_zero():
    p = paired_permutation_test(np.array([[0.0, 5.0], [0.0, 6.0], [0.0, 7.0]] * 6), 999, 0)
    assert p[0] == 1.0
    assert p[1] == pytest.approx((1 + 2 * 999 / 2**18) / 1000, abs=2e-3)  # all-positive: tiny
    assert p[1] > 0


def test_benjamini_hochberg_against_a_hand_worked_example():
    p = np.array([0.01, 0.04, 0.03, 0.005, 0.5, np.nan])
    # sorted 0.005 0.01 0.03 0.04 0.5 -> x 5/rank: 0.025 0.025 0.05 0.05 0.5 -> running min from the top
    np.testing.assert_allclose(benjamini_hochberg(p)[:5], [0.025, 0.05, 0.05, 0.025, 0.5])
    assert np.isnan(benjamini_hochberg(p)[5])


def per_example_table(variant: str, values: np.ndarray, seed: int = 42) -> pd.DataFrame:
    """[examples, layers, heads] of every metric -> the example_head_metrics layout."""
    n, layers, heads = values.shape
    rows = [
        {
            "variant": variant,
            "seed": seed,
            "kind": "encoder",
            "example": f"ex{i}",
            "layer": layer,
            "head": head,
            "kv_group": head,
            **{m: values[i, layer, head] for m in METRICS},
        }
        for i in range(n)
        for layer in range(layers)
        for head in range(heads)
    ]
    return pd.DataFrame(rows)


def test_head_changes_finds_the_one_changed_head_and_reports_its_effect():
    rng = np.random.default_rng(5)
    reference = rng.normal(0.5, 0.1, size=(40, 2, 3))
    variant = reference + rng.normal(0.0, 0.02, size=reference.shape)
    variant[:, 1, 2] += 0.1  # layer 1, head 2 changes
    params = {"statistics": {"bootstrap_resamples": 500, "permutations": 5000, "seed": 0}}
    table = head_changes(
        per_example_table("ft", variant), per_example_table("base", reference), params
    )
    assert list(table.columns) == CHANGE_COLUMNS
    assert len(table) == 2 * 3 * len(METRICS)
    significant = table[table["significant"]]
    assert set(zip(significant["layer"], significant["head"], strict=True)) == {(1, 2)}
    changed = table[(table["layer"] == 1) & (table["head"] == 2) & (table["metric"] == "entropy")]
    expected = float((variant[:, 1, 2] - reference[:, 1, 2]).mean())
    assert changed["effect"].item() == pytest.approx(expected)
    assert changed["ci_low"].item() < expected < changed["ci_high"].item()
    assert (table["q"] >= table["p"]).all()


def seeds_table(variant: str, runs: list[np.ndarray]) -> pd.DataFrame:
    return pd.concat(
        [per_example_table(variant, values, seed) for seed, values in enumerate(runs)],
        ignore_index=True,
    )


def test_over_seeds_a_change_one_reseed_overturns_is_not_flagged():
    """Head (0, 0) moves by 0.1 in every seed; head (0, 1) by 0.3 in one seed only. Over the
    examples of that one seed both look certain; over seeds only the first is a finding."""
    rng = np.random.default_rng(3)
    reference = [rng.normal(0.5, 0.1, size=(40, 1, 3)) for _ in range(3)]
    variant = [r + rng.normal(0.0, 0.02, size=r.shape) for r in reference]
    for run in variant:
        run[:, 0, 0] += 0.1 + rng.normal(0, 0.005)  # consistent, with a little seed noise
    variant[0][:, 0, 1] += 0.3  # one run only
    params = {"statistics": {"bootstrap_resamples": 200, "permutations": 2000, "seed": 0}}
    one_seed = head_changes(
        per_example_table("ft", variant[0]), per_example_table("base", reference[0]), params
    )
    over_seeds = head_changes(seeds_table("ft", variant), seeds_table("base", reference), params)

    def flagged(table):
        rows = table[(table["metric"] == "entropy") & table["significant"]]
        return set(zip(rows["layer"], rows["head"], strict=True))

    assert flagged(one_seed) == {(0, 0), (0, 1)}
    assert flagged(over_seeds) == {(0, 0)}
    row = over_seeds[(over_seeds["metric"] == "entropy") & (over_seeds["head"] == 0)]
    assert row["n_seeds"].item() == 3 and row["large"].item()  # 0.1 against a spread of ~0.1
    expected = np.mean(
        [(v[:, 0, 0] - r[:, 0, 0]).mean() for v, r in zip(variant, reference, strict=True)]
    )
    assert row["effect"].item() == pytest.approx(expected)


def test_the_reference_against_itself_has_nothing_to_test():
    table = per_example_table("base", np.zeros((3, 1, 2)))
    assert head_changes(table, table, {}).empty


@pytest.mark.slow  # a sweep of simulated studies
def test_planted_shifts_are_found_and_untouched_heads_stay_quiet_over_seeds():
    """20 studies: 4 of 24 heads shifted by half a standard deviation of the noise."""
    params = {"statistics": {"bootstrap_resamples": 200, "permutations": 2000, "seed": 0}}
    planted = {(0, 1), (1, 3), (2, 0), (3, 5)}
    found, quiet, untouched = 0, 0, 0
    for seed in range(20):
        rng = np.random.default_rng(100 + seed)
        reference = rng.normal(0.5, 0.1, size=(40, 4, 6))
        variant = reference + rng.normal(0.0, 0.05, size=reference.shape)
        for layer, head in planted:
            variant[:, layer, head] += 0.05
        table = head_changes(
            per_example_table("v", variant), per_example_table("r", reference), params
        )
        table = table[table["metric"] == "entropy"]
        marked = set(
            zip(
                table.loc[table["significant"], "layer"],
                table.loc[table["significant"], "head"],
                strict=True,
            )
        )
        found += len(marked & planted)
        others = table[
            [(la, h) not in planted for la, h in zip(table["layer"], table["head"], strict=True)]
        ]
        quiet += int((others["q"] >= 0.05).sum())
        untouched += len(others)
    assert found == 20 * len(planted)  # every planted shift, in every study
    assert quiet / untouched >= 0.95  # the untouched heads are not flagged
