"""How much attention changed, against how much it changes when only the seed does.

For each variant, kind and layer: the similarity of its maps to its reference's (each seed
against the reference's run of the same seed), and the similarity between its own seeds (seed
42 against 43, and so on, on the same probes): the noise floor. Both are means over runs and
probe examples with 95% intervals from :mod:`attention_lab.analysis.replicates`. A layer's
change is called real (``changed``) only when the whole interval of its similarity to the
reference lies below the whole interval of its between-seed similarity.

The floor's intervals treat the seed pairs as runs; pairs that share a seed are not
independent, so with 3 seeds the floor's interval is a little narrow.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from attention_lab.analysis.replicates import mean_over_runs

LAYER_KEYS = ["variant", "reference", "kind", "layer"]


def similarity_by_layer(comparison: pd.DataFrame, *per_example: pd.DataFrame) -> pd.DataFrame:
    """One row per (variant, reference, kind, layer).

    ``comparison``: every job's per-head comparison (``attention_comparison``).
    ``per_example``: per example and layer similarities, of each job to its reference and of
    each pair of one variant's seeds (told apart by ``reference == variant`` with two seeds).
    """
    rows = pd.concat(per_example, ignore_index=True)
    between = (rows["variant"] == rows["reference"]) & (rows["seed"] != rows["reference_seed"])
    to_reference = _over_runs(rows[~between], "cosine", "n_seeds")
    floor = _over_runs(
        rows[between].assign(reference=_reference_of(rows[~between], rows[between])),
        "seed",
        "n_seed_pairs",
    )
    table = to_reference.merge(_per_head(comparison), on=LAYER_KEYS, how="left")
    table = table.merge(floor, on=LAYER_KEYS, how="left")
    if "seed_similarity" not in table:  # one seed: no floor
        table = table.assign(
            seed_similarity=np.nan, seed_ci_low=np.nan, seed_ci_high=np.nan, n_seed_pairs=0
        )
    table["n_seed_pairs"] = table["n_seed_pairs"].fillna(0).astype(int)
    table["change_beyond_floor"] = table["seed_similarity"] - table["cosine_similarity"]
    # real only where the floor exists and the intervals do not touch
    floor = table["seed_ci_low"]
    table["changed"] = floor.notna() & (table["cosine_ci_high"] < floor.fillna(-np.inf))
    return table


def _reference_of(to_reference: pd.DataFrame, between: pd.DataFrame) -> pd.Series:
    """The floor rows carry their variant's reference, so they join the variant's rows."""
    reference = to_reference.drop_duplicates("variant").set_index("variant")["reference"]
    return between["variant"].map(reference).fillna(between["variant"])


def _over_runs(rows: pd.DataFrame, prefix: str, count: str) -> pd.DataFrame:
    """Mean over runs (seeds, or seed pairs) and examples, with its interval, per layer."""
    name = "cosine_similarity" if prefix == "cosine" else "seed_similarity"
    out = []
    for keys, group in rows.groupby(LAYER_KEYS, sort=False):
        runs = group.assign(
            run=group["seed"].astype(str) + "/" + group["reference_seed"].astype(str)
        )
        values = runs.pivot_table(
            index="run", columns="example", values="cosine_similarity", dropna=False
        ).to_numpy()  # [runs, examples]
        estimate = mean_over_runs(values)
        out.append(
            {
                **dict(zip(LAYER_KEYS, keys, strict=True)),
                name: float(estimate.mean),
                f"{prefix}_ci_low": float(estimate.ci_low),
                f"{prefix}_ci_high": float(estimate.ci_high),
                count: estimate.n_seeds,
            }
        )
    return pd.DataFrame(
        out, columns=[*LAYER_KEYS, name, f"{prefix}_ci_low", f"{prefix}_ci_high", count]
    )


def _per_head(comparison: pd.DataFrame) -> pd.DataFrame:
    """Per layer, over heads and seeds: JS divergence, the least similar head (its mean over
    seeds), the Hungarian-matched similarity, and how many heads keep their index."""
    # a head "keeps its index" when the Hungarian match pairs it with the same reference head
    heads = comparison.assign(kept=comparison["matched_head"] == comparison["head"])
    per_head = heads.groupby([*LAYER_KEYS, "head"], as_index=False).agg(
        cosine_similarity=("cosine_similarity", "mean"),
        js_divergence=("js_divergence", "mean"),
        matched_similarity=("matched_similarity", "mean"),
        kept=("kept", "mean"),
    )
    return per_head.groupby(LAYER_KEYS, as_index=False).agg(
        js_divergence=("js_divergence", "mean"),
        min_cosine_similarity=("cosine_similarity", "min"),
        matched_similarity=("matched_similarity", "mean"),
        heads_kept=("kept", "sum"),  # the mean over seeds of each seed's count
    )


def similarity_by_kv_group(comparison: pd.DataFrame) -> pd.DataFrame:
    """Per (variant, reference, kind, layer, key/value group): means over its heads and seeds."""
    return comparison.groupby([*LAYER_KEYS, "kv_group"], as_index=False).agg(
        cosine_similarity=("cosine_similarity", "mean"),
        js_divergence=("js_divergence", "mean"),
        heads=("head", "nunique"),
    )
