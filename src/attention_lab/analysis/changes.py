"""Which heads changed: a paired test per head and metric between a variant and its reference.

On the probe examples both hold, each metric's per-example difference (variant − reference)
gives the effect (its mean), a bootstrap interval, and a sign-flip permutation p-value.
p-values are adjusted with Benjamini–Hochberg across the heads of one (variant, kind,
metric); a head changed significantly when its q is below ``statistics.fdr_q``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from attention_lab.analysis.metrics import METRICS
from attention_lab.analysis.statistics import (
    benjamini_hochberg,
    bootstrap_interval,
    nan_mean,
    paired_permutation_test,
    statistics_settings,
)

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
    "significant",
    "n_examples",
]
PAIR_KEYS = ["kind", "example", "layer", "head"]


def head_changes(
    per_example: pd.DataFrame, reference_per_example: pd.DataFrame, params: dict[str, Any]
) -> pd.DataFrame:
    """One row per (kind, layer, head, metric) of ``per_example``'s variant against the reference.

    Both inputs are :func:`attention_lab.analysis.tables.example_head_metrics` tables. The
    reference compared with itself has nothing to test: an empty table.
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
    wide = difference.pivot(index="example", columns=["layer", "head"], values="_d")
    values = wide.to_numpy(dtype=np.float64)  # [examples, heads]
    low, high = bootstrap_interval(values, settings["resamples"], settings["seed"])
    p = paired_permutation_test(values, settings["permutations"], settings["seed"])
    effect = nan_mean(values)
    p = np.where(np.isnan(effect), np.nan, p)  # a metric undefined for this kind is no test
    q = benjamini_hochberg(p)
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
            "significant": q < settings["fdr_q"],
            "n_examples": (~np.isnan(values)).sum(axis=0),
        }
    )
