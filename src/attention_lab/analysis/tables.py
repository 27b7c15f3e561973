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
    cosine_similarity,
    cross_head_cosine,
    head_metrics,
    jensen_shannon,
    match_heads,
    pattern_class,
)
from attention_lab.analysis.statistics import bootstrap_interval, nan_mean, statistics_settings
from attention_lab.datasets.store import AttentionStore, token_sides
from attention_lab.errors import DataError
from attention_lab.kinds import SELF_ATTENTION_KINDS, AttentionKind, base_kind
from attention_lab.parameters import AnalysisSettings

logger = logging.getLogger(__name__)

SELF_KINDS = SELF_ATTENTION_KINDS  # encoder and decoder self-attention weights


def _long_table(store: AttentionStore, kind: str, values: dict[str, np.ndarray]) -> pd.DataFrame:
    """[L, H] arrays -> one row per (variant, kind, layer, head) with the stored indices."""
    meta = store.meta
    layers, heads = np.meshgrid(meta.layers, meta.heads, indexing="ij")  # [L, H]
    groups = np.broadcast_to(np.asarray(meta.kv_group), layers.shape)
    return pd.DataFrame(
        {
            "variant": meta.variant,
            "seed": int(meta.seed),
            "kind": kind,
            "layer": layers.ravel(),
            "head": heads.ravel(),
            "kv_group": groups.ravel(),
            **{k: np.asarray(v, dtype=np.float64).ravel() for k, v in values.items()},
        }
    )


POSITIONAL = ("mean_distance", "previous_mass", "self_mass", "next_mass", "segment_mass")


def example_head_metrics(store: AttentionStore) -> pd.DataFrame:
    """Every metric of :mod:`metrics` per (kind, example, layer, head): the per-example table
    that means, intervals and tests are computed from. Streams one example at a time, keeping
    only its [L, H] values (float32).

    Cross-attention gets the position-free metrics only (the others are NaN).
    """
    values = {kind: {name: [] for name in METRICS} for kind in store.kinds}  # per example [L, H]
    for i in tqdm(range(len(store)), desc=f"head metrics {store.meta.variant}", leave=False):
        meta = store.example_meta(i)  # read once, for every kind
        for kind in store.kinds:
            # keys of decoder self-attention are decoder tokens; cross-attention keys are encoder tokens
            _, tokens = token_sides(meta, kind)
            causal = store.meta.is_causal(kind)
            example = head_metrics(
                store.attention(i, kind), tokens["tokens"], tokens["special_mask"], causal
            )
            for name in METRICS:
                nan = not AttentionKind.parse(kind).is_self_attention and name in POSITIONAL
                values[kind][name].append(
                    np.full_like(example[name], np.nan) if nan else example[name]
                )
    tables = [_per_example_table(store, kind, values[kind]) for kind in store.kinds]
    return pd.concat(tables, ignore_index=True)


def _per_example_table(
    store: AttentionStore, kind: str, values: dict[str, list[np.ndarray]]
) -> pd.DataFrame:
    """Per-example [L, H] values -> rows ordered by (example, layer, head)."""
    heads = _long_table(store, kind, {})
    n = len(store)
    frame = pd.concat([heads] * n, ignore_index=True)
    frame["example"] = np.repeat(np.asarray(store.example_ids, dtype=object), len(heads))
    for name, per_example in values.items():
        frame[name] = np.stack(per_example).astype(np.float32).ravel()  # [N, L, H] flattened
    return frame


HEAD_KEYS = ["variant", "seed", "kind", "layer", "head", "kv_group"]


def summarise_head_metrics(per_example: pd.DataFrame, params: AnalysisSettings) -> pd.DataFrame:
    """Per (kind, layer, head): each metric's mean over examples with its bootstrap interval
    (``{metric}_ci_low`` / ``_ci_high``), the pattern class and the number of examples."""
    settings = AnalysisSettings.of(params)  # built once (a mapping from a notebook, too)
    resamples, seed = settings.statistics.bootstrap_resamples, settings.statistics.seed
    tables = []
    for _, frame in per_example.groupby("kind", sort=False):
        heads = frame.drop_duplicates(HEAD_KEYS)[HEAD_KEYS].sort_values(["layer", "head"])
        heads = heads.reset_index(drop=True)  # in the (layer, head) order of _by_example
        for name in METRICS:
            values = _by_example(frame, name)  # [N, heads]
            low, high = bootstrap_interval(values, resamples, seed)
            heads[name] = nan_mean(values)
            heads[f"{name}_ci_low"], heads[f"{name}_ci_high"] = low, high
        heads["sink_rate_gu"] = _sink_share(
            _by_example(frame, "first_token_importance"), settings.sink_threshold
        )
        heads["pattern"] = [pattern_class(row) for row in heads.to_dict("records")]
        heads["n_examples"] = frame["example"].nunique()
        tables.append(heads)
    return pd.concat(tables, ignore_index=True)


def compute_head_metrics(
    store: AttentionStore, params: dict[str, Any] | None = None
) -> pd.DataFrame:
    """:func:`summarise_head_metrics` of :func:`example_head_metrics`, in one call."""
    return summarise_head_metrics(example_head_metrics(store), params or {})


def _sink_share(importance: np.ndarray, threshold: float) -> np.ndarray:
    """[examples, heads] first-token importance -> per head, the share of examples over
    ``threshold``: averaged over heads and layers, Gu et al.'s sink rate (NaN where their
    importance is undefined)."""
    over = np.where(np.isnan(importance), np.nan, importance > threshold)
    return nan_mean(over)


def _by_example(frame: pd.DataFrame, column: str) -> np.ndarray:
    """Long per-example rows of one kind -> [examples, heads] in (layer, head) order."""
    wide = frame.pivot(index="example", columns=["layer", "head"], values=column)
    return wide.sort_index(axis=1).to_numpy(dtype=np.float64)


def compare_to_reference(
    store: AttentionStore, reference: AttentionStore, params: AnalysisSettings | None = None
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Cosine similarity (Kovaleva et al.) and JS divergence (Clark et al.) to the reference.

    Per head: means over the probe examples both stores hold with the same tokens, with
    bootstrap intervals per head (``cosine_ci_low``/``_high``) and for each layer's mean over
    heads (``layer_cosine_ci_low``/``_high``, repeated on the layer's rows). Per example and
    layer: the mean over heads, from which the study's intervals over seeds come
    (:mod:`attention_lab.analysis.noise_floor`). Two seeds of one variant compare the same way.
    """
    in_reference = set(reference.example_ids)
    shared = [eid for eid in store.example_ids if eid in in_reference]
    if not shared:
        raise DataError(
            f"{store.meta.variant} and the reference {reference.meta.variant} share no probe examples; "
            "re-run `kedro run --pipeline=attention_extraction` so both use the same probe_set."
        )
    for key in ("layers", "heads"):  # maps are compared position by position
        if getattr(store.meta, key) != getattr(reference.meta, key):
            raise DataError(
                f"{store.meta.variant} stores {key} {getattr(store.meta, key)} but the reference "
                f"{reference.meta.variant} stores {getattr(reference.meta, key)}; extract both "
                "with the same attention_extraction.layers and heads."
            )
    stats = statistics_settings(params)
    tables = [
        tables
        for kind in store.kinds
        if kind in reference.kinds
        and (tables := _compare_kind(store, reference, kind, shared, stats)) is not None
    ]
    if not tables:
        raise DataError(
            f"{store.meta.variant}: no example has the same shape as in the reference; compare variants of one base model."
        )
    heads, examples = zip(*tables, strict=True)
    return pd.concat(heads, ignore_index=True), pd.concat(examples, ignore_index=True)


def _compare_kind(store, reference, kind: str, shared: list[str], stats):
    """One kind's (per-head, per-example layer) comparison; None when no example has the
    reference's shape."""
    cos, jsd, compared = [], [], []  # per example: [L, H]
    cross = 0.0  # running sum of [L, H, H] head-by-head cosines
    causal = store.meta.is_causal(kind)
    for eid in tqdm(shared, desc=f"compare {store.meta.variant}/{kind}", leave=False):
        a, b = store.attention(eid, kind), reference.attention(eid, kind)
        if a.shape != b.shape:  # different tokenizers or stored heads: not comparable
            continue
        cos.append(cosine_similarity(a, b))
        jsd.append(jensen_shannon(a, b, causal))
        compared.append(eid)
        cross = cross + cross_head_cosine(a, b)
    if not cos:
        return None
    mean_cross = cross / len(cos)  # [L, H, H]
    matched = match_heads(mean_cross)  # [L, H]
    cos_n = np.stack(cos)  # [N, L, H]
    low, high = bootstrap_interval(cos_n, stats.bootstrap_resamples, stats.seed)
    layer_low, layer_high = bootstrap_interval(
        cos_n.mean(-1), stats.bootstrap_resamples, stats.seed
    )
    heads = cos_n.shape[-1]
    values = {
        "cosine_similarity": cos_n.mean(axis=0),
        "cosine_ci_low": low,
        "cosine_ci_high": high,
        "layer_cosine_ci_low": np.repeat(layer_low[:, None], heads, axis=1),
        "layer_cosine_ci_high": np.repeat(layer_high[:, None], heads, axis=1),
        "js_divergence": np.stack(jsd).mean(axis=0),
        # Hungarian match of each head to a reference head (indices into stored heads)
        "matched_head": np.asarray(reference.meta.heads)[matched],
        "matched_similarity": np.take_along_axis(mean_cross, matched[..., None], -1)[..., 0],
    }
    pair = {
        "reference": reference.meta.variant,
        "reference_seed": int(reference.meta.seed),
        "n_examples": len(cos),
    }
    table = _long_table(store, kind, values).assign(**pair)
    return table, _example_layers(store, kind, pair, compared, cos_n)


def _example_layers(store, kind: str, pair: dict, compared: list[str], cos_n: np.ndarray):
    """One row per (compared example, layer): its cosine similarity, the mean over heads."""
    layers = np.asarray(store.meta.layers)
    return pd.DataFrame(
        {
            "variant": store.meta.variant,
            "seed": int(store.meta.seed),
            "reference": pair["reference"],
            "reference_seed": pair["reference_seed"],
            "kind": kind,
            "example": np.repeat(np.asarray(compared, dtype=object), len(layers)),
            "layer": np.tile(layers, len(compared)),
            "cosine_similarity": cos_n.mean(-1).ravel(),  # [N, L]: the mean over heads
        }
    )


# the performance table's metric columns, in order (a task fills only its own)
SUMMARY_COLUMNS = (
    "variant",
    "seed",
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
# inference costs (``{job}.costs``, see attention_lab.models.costs)
COST_COLUMNS = (
    "kv_bytes_per_token",
    "prefill_tokens_per_s",
    "decode_tokens_per_s",
    "inference_peak_memory_mb",
)


def summarise_variant(
    metrics: dict[str, Any], head_metrics: pd.DataFrame, costs: dict[str, Any] | None = None
) -> dict[str, Any]:
    """One job's row of the per-run performance table: task metrics, training cost, mean
    entropy and (each variant's first seed) the inference costs."""
    self_attn = head_metrics[head_metrics["kind"].isin(SELF_KINDS)]
    return {
        **{k: metrics.get(k) for k in SUMMARY_COLUMNS},
        "mean_entropy": float(self_attn["entropy"].mean()),
        **{k: (costs or {}).get(k) for k in COST_COLUMNS},
    }


def concat_tables(*tables: pd.DataFrame) -> pd.DataFrame:
    """Stack the per-variant tables into one long table."""
    return pd.concat(tables, ignore_index=True)


SINK_COLUMNS = [
    "variant",
    "seed",
    "kind",
    "layer",
    "first_token_mass",
    "sink_rate_gu",
    "sink_heads",
    "heads",
    "sink_head_share",
]


def attention_sinks(head_metrics: pd.DataFrame, threshold: float = 0.3) -> pd.DataFrame:
    """Per (variant, seed, kind, layer) of self-attention (weights and norms):

    - ``sink_rate_gu``: Gu et al. (2024)'s sink rate, the share of (example, head) pairs whose
      first-token importance exceeds ε = ``threshold`` (their code's definition; averaged over
      layers with equal weight it is their model-level number);
    - ``sink_head_share``: the share of heads whose *mean* first-token mass over examples
      exceeds ``threshold`` (``sink_heads`` of ``heads``), a per-head summary of ours;
    - ``first_token_mass``: the mean over heads.
    """
    data = head_metrics[head_metrics["kind"].map(base_kind).isin(SELF_KINDS)]
    table = data.assign(sink=data["first_token_mass"] > threshold)
    table = table.groupby(["variant", "seed", "kind", "layer"], as_index=False, sort=False).agg(
        first_token_mass=("first_token_mass", "mean"),
        sink_rate_gu=("sink_rate_gu", "mean"),
        sink_heads=("sink", "sum"),
        heads=("head", "count"),
    )
    table["sink_head_share"] = table["sink_heads"] / table["heads"]
    return table[SINK_COLUMNS]
