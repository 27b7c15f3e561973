"""Which heads changed: a paired test per head and metric between a variant and its reference.

Each metric's difference (variant − reference) is taken per seed and probe example, pairing
each seed of the variant with the reference's run of the same seed on the same examples.

- With several seeds, the training run is the unit: the effect's interval and p-value come
  from :mod:`attention_lab.analysis.replicates` (variance over seeds plus over examples,
  Student's t), and a head is flagged only when every seed moves it the same way.
- With one seed there is nothing but the examples: a bootstrap interval and a sign-flip
  permutation test over them (what such a study can say, and no more).

p-values are adjusted with Benjamini–Hochberg across the heads of one (variant, kind,
metric). ``effect_size`` is the effect over the pooled standard deviation of the metric
between examples (Cohen's d); ``large`` means |d| >= 0.8, Cohen's (1988) convention. A head
changed significantly when its q is below ``statistics.fdr_q`` and its change is consistent.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd

from attention_lab.analysis.metrics import METRICS
from attention_lab.analysis.replicates import mean_over_runs
from attention_lab.analysis.statistics import (
    benjamini_hochberg,
    bootstrap_interval,
    nan_mean,
    paired_permutation_test,
    statistics_settings,
)
from attention_lab.parameters import AnalysisSettings

CHANGE_COLUMNS = [
    "variant",
    "reference",
    "kind",
    "layer",
    "head",
    "metric",
    "effect",
    "ci_low",
    "ci_high",
    "p",
    "q",
    "effect_size",
    "large",
    "consistent",
    "significant",
    "n_seeds",
    "n_examples",
]
PAIR_KEYS = ["seed", "kind", "example", "layer", "head"]
LARGE = 0.8  # |Cohen's d| from which an effect is called large (Cohen, 1988)


def head_changes(
    per_example: pd.DataFrame, reference_per_example: pd.DataFrame, params: AnalysisSettings
) -> pd.DataFrame:
    """One row per (kind, layer, head, metric) of ``per_example``'s variant against the reference.

    Both inputs are :func:`attention_lab.analysis.tables.example_head_metrics` tables, stacked
    over the seeds of each. The reference compared with itself has nothing to test: an
    empty table.
    """
    variant = per_example["variant"].iloc[0]
    reference = reference_per_example["variant"].iloc[0]
    if variant == reference:
        return pd.DataFrame(columns=CHANGE_COLUMNS)
    settings = statistics_settings(params)
    paired = per_example.merge(
        reference_per_example[[*PAIR_KEYS, *METRICS]], on=PAIR_KEYS, suffixes=("", "_reference")
    )
    tables = [
        _changes_of(frame, metric, settings).assign(variant=variant, reference=reference, kind=kind)
        for kind, frame in paired.groupby("kind", sort=False)
        for metric in METRICS
    ]
    table = pd.concat(tables, ignore_index=True).dropna(subset=["effect"])
    return table[CHANGE_COLUMNS].reset_index(drop=True)


def _changes_of(frame: pd.DataFrame, metric: str, settings: dict[str, float]) -> pd.DataFrame:
    """Effect, interval, p and q of one metric for every head of one kind."""
    difference = frame.assign(_d=frame[metric] - frame[f"{metric}_reference"])
    wide = difference.pivot(index=["seed", "example"], columns=["layer", "head"], values="_d")
    seeds = wide.index.get_level_values("seed").unique()
    # [S, N, heads]: every seed holds the same examples (one probe set)
    runs = np.stack([wide.loc[s].to_numpy(dtype=np.float64) for s in seeds])
    if len(seeds) > 1:
        estimate = mean_over_runs(runs)
        effect, low, high, p = estimate.mean, estimate.ci_low, estimate.ci_high, estimate.p
    else:  # examples are all there is
        values = runs[0]
        low, high = bootstrap_interval(values, settings.bootstrap_resamples, settings.seed)
        p = paired_permutation_test(values, settings.permutations, settings.seed)
        effect = nan_mean(values)
    p = np.where(np.isnan(effect), np.nan, p)  # a metric undefined for this kind is no test
    q = benjamini_hochberg(p)
    with np.errstate(invalid="ignore", divide="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN columns stay NaN
        per_seed = np.nanmean(runs, axis=1)  # [S, heads]
        spread = np.sqrt(
            np.nanmean(
                [
                    np.nanvar(_wide(frame, column).to_numpy(dtype=np.float64), axis=0, ddof=1)
                    for column in (metric, f"{metric}_reference")
                ],
                axis=0,
            )
        )
        # undefined (NaN, never "large") where the metric does not vary between examples
        effect_size = np.where(spread > 0, effect / spread, np.nan)
    consistent = np.all(np.sign(per_seed) == np.sign(effect), axis=0) & (effect != 0)
    return pd.DataFrame(
        {
            "layer": wide.columns.get_level_values("layer"),
            "head": wide.columns.get_level_values("head"),
            "metric": metric,
            "effect": effect,
            "ci_low": low,
            "ci_high": high,
            "p": p,
            "q": q,
            "effect_size": effect_size,
            "large": np.abs(effect_size) >= LARGE,
            "consistent": consistent,
            "significant": (q < settings.fdr_q) & consistent,
            "n_seeds": len(seeds),
            "n_examples": (~np.isnan(runs[0])).sum(axis=0),
        }
    )


def _wide(frame: pd.DataFrame, column: str) -> pd.DataFrame:
    """``column`` as [(seed, example), heads]: the spread between examples, pooled over seeds."""
    return frame.pivot(index=["seed", "example"], columns=["layer", "head"], values=column)
