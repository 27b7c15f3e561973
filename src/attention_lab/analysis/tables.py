"""Long tables streamed over attention stores: head metrics, comparison with a reference,
and the study's performance table."""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from attention_lab.analysis.metrics import (
    METRICS,
    RunningMean,
    cosine_similarity,
    head_metrics,
    jensen_shannon,
    pattern_class,
)
from attention_lab.datasets.store import AttentionStore
from attention_lab.errors import DataError

logger = logging.getLogger(__name__)

SELF_KINDS = ("encoder", "decoder")


def _long_table(store: AttentionStore, kind: str, values: dict[str, np.ndarray]) -> pd.DataFrame:
    """[L, H] arrays -> one row per (variant, kind, layer, head) with the stored indices."""
    meta = store.meta
    rows = []
    for li, layer in enumerate(meta["layers"]):
        for hi, head in enumerate(meta["heads"]):
            rows.append(
                {
                    "variant": meta["variant"],
                    "kind": kind,
                    "layer": layer,
                    "head": head,
                    "kv_group": meta["kv_group"][hi],
                    **{k: float(v[li, hi]) for k, v in values.items()},
                }
            )
    return pd.DataFrame(rows)


def compute_head_metrics(store: AttentionStore) -> pd.DataFrame:
    """Per (kind, layer, head): every metric of :mod:`metrics` averaged over the probe set, plus its pattern class.

    Streams one example at a time. Cross-attention gets the position-free metrics only.
    """
    tables = []
    for kind in store.kinds:
        means = {name: RunningMean() for name in METRICS}
        causal = bool(store.meta["causal"].get(kind, False))
        for i in tqdm(
            range(len(store)), desc=f"head metrics {store.meta['variant']}/{kind}", leave=False
        ):
            meta = store.example_meta(i)
            # keys of decoder self-attention are decoder tokens; cross-attention keys are encoder tokens
            tokens = meta["decoder"] if kind == "decoder" and "decoder" in meta else meta
            values = head_metrics(
                store.attention(i, kind), tokens["tokens"], tokens["special_mask"], causal
            )
            if kind == "cross":
                for name in (
                    "mean_distance",
                    "previous_mass",
                    "self_mass",
                    "next_mass",
                    "segment_mass",
                ):
                    values[name] = np.full_like(values[name], np.nan)
            for name, value in values.items():
                means[name].add(value)
        table = _long_table(store, kind, {name: m.mean() for name, m in means.items()})
        table["pattern"] = [pattern_class(row) for row in table.to_dict("records")]
        table["n_examples"] = len(store)
        tables.append(table)
    return pd.concat(tables, ignore_index=True)


def compare_to_reference(store: AttentionStore, reference: AttentionStore) -> pd.DataFrame:
    """Cosine similarity (Kovaleva et al.) and JS divergence (Clark et al.) to the reference, per head.

    Averaged over the probe examples both stores hold with the same tokens.
    """
    in_reference = set(reference.example_ids)
    shared = [eid for eid in store.example_ids if eid in in_reference]
    if not shared:
        raise DataError(
            f"{store.meta['variant']} and the reference {reference.meta['variant']} share no probe examples; "
            "re-run `kedro run --pipeline=attention_extraction` so both use the same probe_set."
        )
    tables = []
    for kind in [k for k in store.kinds if k in reference.kinds]:
        cos, jsd, used = RunningMean(), RunningMean(), 0
        causal = bool(store.meta["causal"].get(kind, False))
        for eid in tqdm(shared, desc=f"compare {store.meta['variant']}/{kind}", leave=False):
            a, b = store.attention(eid, kind), reference.attention(eid, kind)
            if a.shape != b.shape:  # different tokenizers or stored heads: not comparable
                continue
            cos.add(cosine_similarity(a, b))
            jsd.add(jensen_shannon(a, b, causal))
            used += 1
        if used:
            table = _long_table(
                store, kind, {"cosine_similarity": cos.mean(), "js_divergence": jsd.mean()}
            )
            tables.append(table.assign(reference=reference.meta["variant"], n_examples=used))
    if not tables:
        raise DataError(
            f"{store.meta['variant']}: no example has the same shape as in the reference; compare variants of one base model."
        )
    return pd.concat(tables, ignore_index=True)


def combine_comparisons(
    *comparisons: pd.DataFrame,
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """All variants' comparisons, their per-layer summary, and aggregates per key/value group."""
    table = pd.concat(comparisons, ignore_index=True)
    keys = ["variant", "reference", "kind", "layer"]
    by_layer = table.groupby(keys, as_index=False).agg(
        cosine_similarity=("cosine_similarity", "mean"),
        js_divergence=("js_divergence", "mean"),
        min_cosine_similarity=("cosine_similarity", "min"),
    )
    by_group = table.groupby([*keys, "kv_group"], as_index=False).agg(
        cosine_similarity=("cosine_similarity", "mean"),
        js_divergence=("js_divergence", "mean"),
        heads=("head", "count"),
    )
    return table, by_layer, by_group


# the performance table's metric columns, in order (a task fills only its own)
SUMMARY_COLUMNS = (
    "variant",
    "method",
    "mechanism",
    "accuracy",
    "macro_f1",
    "eval_loss",
    "perplexity",
    "train_seconds",
    "trainable_parameters",
    "total_parameters",
    "peak_memory_mb",
)


def summarise_variant(metrics: dict[str, Any], head_metrics: pd.DataFrame) -> dict[str, Any]:
    """One variant's row of the performance table: task metrics, cost and mean entropy."""
    self_attn = head_metrics[head_metrics["kind"].isin(SELF_KINDS)]
    return {
        **{k: metrics.get(k) for k in SUMMARY_COLUMNS},
        "mean_entropy": float(self_attn["entropy"].mean()),
    }


def similarity_pivot(similarity_by_layer: pd.DataFrame, variants: list[str]) -> pd.DataFrame:
    """Layers x variants (in ``variants`` order) of mean cosine similarity to each variant's
    reference; a study with several attention kinds gets one column per variant and kind."""
    kinds = similarity_by_layer["kind"].nunique() > 1
    rank = {v: i for i, v in enumerate(variants)}
    table = similarity_by_layer.sort_values("variant", key=lambda s: s.map(rank), kind="stable")
    table = table.assign(column=table["variant"] + (" · " + table["kind"] if kinds else ""))
    pivot = table.pivot_table(index="layer", columns="column", values="cosine_similarity")
    return pivot[list(dict.fromkeys(table["column"]))].round(3)


def build_performance_table(
    similarity_by_layer: pd.DataFrame, *summaries: dict[str, Any]
) -> pd.DataFrame:
    """One row per variant, with its mean attention similarity to its reference (the study's,
    or that of its own base model)."""
    table = pd.DataFrame(summaries)
    by_variant = similarity_by_layer.groupby("variant")
    table["mean_similarity_to_reference"] = table["variant"].map(
        by_variant["cosine_similarity"].mean()
    )
    table["reference"] = table["variant"].map(by_variant["reference"].first())
    return table.dropna(axis=1, how="all")


def concat_tables(*tables: pd.DataFrame) -> pd.DataFrame:
    """Stack the per-variant tables into one long table."""
    return pd.concat(tables, ignore_index=True)
